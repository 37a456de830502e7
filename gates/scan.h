/*
 * gates/scan.h - the poisoning gate's data-only checks: those that need no
 * model. A replay batch (JSONL, one {"prompt","completion","source",...}
 * object a line) is checked for out-of-proportion duplicate clusters,
 * trigger-like n-grams, secrets and personal data, and missing provenance;
 * a memory note for prompt-injection patterns, instructions
 * (notes_instr.h), hidden text, exfiltration links and its length.
 * Library-private; the fuzz target and tests use it.
 */
#ifndef SLUICE_GATES_SCAN_H
#define SLUICE_GATES_SCAN_H

#include "internal.h"

#include <jansson.h>

/*
 * Thresholds. sluice_scan__opts_init fills the defaults below; each was
 * chosen from what the check measures, not tuned on test data.
 *
 * Duplicates (MinHash over 3-word shingles of prompt+completion, 128
 * permutations, LSH with 32 bands of 4 rows, candidates verified by the
 * estimated Jaccard; union-find clusters):
 *   dup_jaccard = 0.6. Two records of equal size with Jaccard 0.6 share 3/4
 *     of their word trigrams; unrelated texts share almost none (J < 0.1)
 *     and a one-word edit in a 30-word record leaves J ~ 0.8, so 0.6 sits
 *     far from both ends, several estimator standard deviations (<= 0.044
 *     at 128 permutations) from each. The 32x4 banding makes a pair at
 *     J = 0.6 a candidate with probability 0.988 (0.9998 at J = 0.7).
 *   dup_min_records = 3. Two copies of one example happen by chance (two
 *     people ask the same thing); three are a choice.
 *   dup_share = 0.02. A single example repeated as 2% of a batch carries
 *     2% of the update's gradient on its own, several times the weight
 *     reported sufficient for instruction-tuning backdoors (~0.5-1%).
 *   dup_buffer_ratio = 4. The replay buffer is what training already
 *     accepted: a cluster whose share is within 4x of the buffer's largest
 *     cluster share is this data's normal repetitiveness (templates), not
 *     an anomaly. An empty buffer has share 0.
 *
 * Trigger n-grams (word 1-3 grams of the prompt, counted once a record;
 * completions are grouped when their words are equal or they are
 * near-duplicates by the measure above, taken on the completion alone;
 * for an n-gram g and the completion group C that most of g's records share:
 * m records have g and C, k have g; the foreground rate is m / (records
 * with C), the background rate (b + 1/2) / (N + 1) where b counts g in
 * the background's N texts: batch records with another completion,
 * replay-buffer prompts and corpus texts):
 *   trig_min_records = 3 and trig_min_share = 0.005: a trigger must occur
 *     in at least max(3, ceil(0.005 n)) distinct prompts (near-duplicate
 *     prompts, by the measure above, count once: repeating one example is
 *     the duplicates check's finding, not a trigger). Below 0.5% (and below
 *     three records) an answer repeated with a shared word is common in
 *     natural data and too light to implant a behaviour in one update.
 *     Candidates with >= 3 distinct prompts are listed (and mined) even
 *     when not flagged; a candidate is dropped when a listed one with the
 *     same completion covers its records and shares a word with it.
 *   trig_agreement = 0.8: at least 80% of g's records share the
 *     completion; a phrase of natural prompts (a topic word, a template)
 *     goes with varied answers.
 *   trig_min_log2_ratio = 4: g is at least 16x more frequent among the
 *     records answering C than in the background. A rare phrase
 *     (b = 0) passes once N + 1 >= 8 #C / m; a common one cannot.
 *   trig_top = 20 candidates listed and mined.
 *
 * Secrets: any finding flags. api_key assignments count only when the
 *   value has >= secret_min_value_len = 16 characters and a Shannon
 *   entropy of >= secret_min_entropy = 3.5 bits/character (or >=
 *   secret_hex_min_entropy = 3.0 for hex-only values): random keys of 16+
 *   characters over 16+ symbols land above, placeholders ("xxxx...",
 *   "your_api_key_here") below. The hex bound follows detect-secrets.
 *
 * Provenance: provenance_max_share = 0. Ingest requires a source string on
 *   every record, so an empty or "unknown" one is an admission, never noise.
 *
 * Notes: any injection, hidden-text or exfiltration pattern flags; a note
 *   over note_token_budget = 512 tokens flags (0: no budget) since a note
 *   is a fact or preference (a paragraph is ~150 tokens) and every note is
 *   placed in every context: 512 is a quarter of a 2k-token window.
 *   note_base64_min = 100: base64 runs of 100+ characters (75 bytes, a
 *   sentence of hidden instructions), longer than base64 digests; runs
 *   that are hex only or single-case are not reported.
 *
 * max_findings = 100 findings listed per check (totals are in figures).
 */
typedef struct {
	double dup_jaccard;
	size_t dup_min_records;
	double dup_share;
	double dup_buffer_ratio;
	size_t trig_min_records;
	double trig_min_share;
	double trig_agreement;
	double trig_min_log2_ratio;
	size_t trig_top;
	size_t secret_min_value_len;
	double secret_min_entropy;
	double secret_hex_min_entropy;
	double provenance_max_share;
	size_t note_token_budget;
	size_t note_base64_min;
	size_t max_findings;
} sluice_scan_opts;

/* Fill o with the defaults documented above. */
void sluice_scan__opts_init(sluice_scan_opts *o);

/* One replay record; strings are borrowed from the records set. */
typedef struct {
	const char *prompt;
	size_t prompt_len;
	const char *completion;
	size_t completion_len;
	const char *source; /* NULL when the field is absent or null */
	size_t source_len;
	bool source_null; /* "source": null, as opposed to absent */
	size_t line;      /* 1-based line in the batch */
} sluice_scan_record;

/* A parsed batch: rec[0..n) in line order. Dispose with _records_dispose. */
typedef struct {
	sluice_scan_record *rec;
	size_t n;
	json_t *objs; /* the parsed lines, which own the strings */
} sluice_scan_records;

/*
 * Parse a replay batch's exact bytes: UTF-8, at least one line, each line
 * (a final newline is optional) a JSON object without duplicate keys whose
 * "prompt" and "completion" are strings and whose "source", if present, is
 * a string or null; other fields are ignored. This is how the gate iterates
 * records (e.g. to score each with the model). Errors are SLUICE_EINVALID
 * naming name and the line; SLUICE_ENOMEM. On error *out is left empty.
 */
int sluice_scan__records_parse(sluice_ctx *ctx, sluice_scan_records *out,
                               const unsigned char *batch, size_t len, const char *name);
void sluice_scan__records_dispose(sluice_scan_records *r);

/*
 * Data-only checks of replay batch `batch` against the replay buffer
 * (buffer[i] of buffer_len[i] bytes, nbuffer batches, same format) and a
 * pinned text corpus (ncorpus NUL-terminated strings). opts NULL means the
 * defaults. *out (new reference) is
 *   {"batch": name, "records": n,
 *    "checks": [{"check": "duplicates"|"trigger_ngrams"|"secrets"|"provenance",
 *                "flagged": bool, "figures": {...}, "thresholds": {...},
 *                "findings": [...]}, ...],       (always these four, in order)
 *    "mined_triggers": [str, ...]}
 * Findings name records by 1-based line ("line"/"lines") and never hold a
 * whole secret. Errors: SLUICE_EINVALID for a malformed batch (naming
 * batch_name and the line) or buffer batch ("replay buffer batch I"),
 * SLUICE_ENOMEM.
 */
int sluice_scan__replay(sluice_ctx *ctx, json_t **out, const unsigned char *batch, size_t len,
                        const char *batch_name, const unsigned char *const *buffer,
                        const size_t *buffer_len, size_t nbuffer, const char *const *corpus,
                        size_t ncorpus, const sluice_scan_opts *opts);

/*
 * Model-free checks of memory note `text` (len bytes, UTF-8); tokens is its
 * length in the model's tokens, counted by the caller. *out (new reference):
 *   {"note": name, "checks": [{"check": "injection"|"hidden_text"|
 *    "exfiltration"|"instruction"|"length", "flagged", "figures", "thresholds",
 *    "findings": [{"pattern", "offset", ...}]}]}  (always these five; the
 *    instruction check's figures and findings are notes_instr.h's)
 * Offsets are bytes into text. Errors: SLUICE_EINVALID if text is not
 * UTF-8 (naming name and the byte offset), SLUICE_ENOMEM.
 */
int sluice_scan__note(sluice_ctx *ctx, json_t **out, const char *text, size_t len, const char *name,
                      size_t tokens, const sluice_scan_opts *opts);

#endif
