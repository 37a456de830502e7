/*
 * eval/tokenizer.h - Hugging Face tokenizer.json BPE tokenizers: byte-level
 * (GPT-2, Llama-3) and SentencePiece-style with byte fallback (Llama-2,
 * Mistral, TinyLlama).
 *
 * Encoding follows the `tokenizers` library: added tokens are cut out first
 * (leftmost, longest), each remaining segment is normalized, cut again on
 * added tokens marked "normalized", pre-tokenized into words, and each word
 * goes through BPE (lowest merge rank first, leftmost on ties). Everything a
 * file asks for that this module does not implement exactly is refused at
 * load, never ignored. docs/tokenizer.md lists what is supported.
 *
 * A loaded tokenizer is immutable: encode and decode may run on it from
 * several threads at once, each with its own context.
 */
#ifndef SLUICE_EVAL_TOKENIZER_H
#define SLUICE_EVAL_TOKENIZER_H

#include "internal.h"

/* Ids above this are refused at load (bounds the id -> token table). */
#define SLUICE_TOKENIZER_MAX_ID (1u << 20)

typedef struct sluice_tokenizer sluice_tokenizer;

/*
 * Parse a tokenizer.json held in json[0..len). `name` names the file in
 * messages. Returns 0 and a new tokenizer in *out, or SLUICE_EINVALID with a
 * message naming the field: a model type other than BPE, malformed vocab or
 * merges (a merge naming a token not in vocab, a string merge without
 * exactly one space), a normalizer, pre-tokenizer, post-processor or decoder
 * component not implemented (NFC/NFKC included), an unknown field, an added
 * token with lstrip/rstrip/single_word set, truncation or padding set,
 * dropout, continuing_subword_prefix or end_of_word_suffix set; also
 * SLUICE_ENOMEM. *out is left NULL on failure.
 */
int sluice_tokenizer__load(sluice_ctx *ctx, sluice_tokenizer **out, const char *json, size_t len,
                           const char *name);

/* Destroy a tokenizer; accepts NULL. */
void sluice_tokenizer__free(sluice_tokenizer *tok);

/*
 * Encode text[0..len) (UTF-8) into token ids. With add_special, the
 * post-processor's template tokens (e.g. Llama's BOS) surround the ids;
 * added/special tokens written in the text are always matched. Returns 0
 * with a new array in *out (free() it; may be NULL when *nout is 0), or
 * SLUICE_EINVALID (text not UTF-8, a regex failing to run) or
 * SLUICE_ENOMEM.
 */
int sluice_tokenizer__encode(sluice_ctx *ctx, uint32_t **out, size_t *nout,
                             const sluice_tokenizer *tok, const char *text, size_t len,
                             bool add_special);

/*
 * Decode ids into text through the file's decoder (tokens joined by spaces
 * when it has none). Unknown ids are skipped, as tokenizers does; with
 * skip_special, added tokens marked special are skipped too. Returns 0 with
 * a new NUL-terminated string in *out (free() it) and its length in
 * *outlen, or SLUICE_ENOMEM.
 */
int sluice_tokenizer__decode(sluice_ctx *ctx, char **out, size_t *outlen,
                             const sluice_tokenizer *tok, const uint32_t *ids, size_t n,
                             bool skip_special);

/*
 * Ids the post-processor puts before / after a single sequence when
 * add_special is set (e.g. BOS for Llama). Borrowed from tok.
 */
const uint32_t *sluice_tokenizer__prefix(const sluice_tokenizer *tok, size_t *n);
const uint32_t *sluice_tokenizer__suffix(const sluice_tokenizer *tok, size_t *n);

/* The id of a token (added tokens first, then the model's vocab), or -1. */
int64_t sluice_tokenizer__token_id(const sluice_tokenizer *tok, const char *s, size_t len);

/* One more than the largest id of the model's vocab, added tokens and template. */
uint32_t sluice_tokenizer__vocab_size(const sluice_tokenizer *tok);

#endif
