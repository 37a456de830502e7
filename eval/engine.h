/*
 * eval/engine.h - the evaluator as the gates use it: one version's full
 * state loaded for scoring (base, adapter stack, memory notes in context),
 * with the scoring primitives sluice eval's figures are made of.
 *
 * Two backends sit behind it. The built-in one runs the model on the CPU
 * (eval/model.h) and has everything, full next-token distributions
 * included. The http one (eval/http.h) tokenizes locally and has an
 * OpenAI-compatible server score the same token sequences; it gives
 * log-likelihoods but not full rows (sluice_evaluator__full_rows is 0 and
 * cont_rows / next_row fail): the checks that need rows say inconclusive.
 *
 * An evaluator is not thread-safe: its calls share one logits buffer.
 */
#ifndef SLUICE_EVAL_ENGINE_H
#define SLUICE_EVAL_ENGINE_H

#include "repo.h"
#include "version.h"

typedef struct sluice_evaluator sluice_evaluator;

typedef enum { SLUICE_BACKEND_BUILTIN = 0, SLUICE_BACKEND_HTTP = 1 } sluice_backend;

/* "builtin" (or NULL) or "http" into *out; SLUICE_EUSAGE for another name. */
int sluice_evaluator__backend(sluice_ctx *ctx, const char *name, sluice_backend *out);

/*
 * Load v's state for scoring: checked out once into the repository's
 * cache, base mapped, adapters stacked, notes prefix read.
 * SLUICE_EINVALID for a state the evaluator cannot run (no base, no
 * tokenizer.json, an unsupported config). Free with sluice_evaluator__free.
 */
int sluice_evaluator__open(sluice_repo *repo, sluice_evaluator **out, const sluice_version *v);

/*
 * The same on a chosen backend. The http one reads only the tokenizer and
 * the notes from the checked-out state, connects to the server of the
 * repository's sluice.http.* settings, and for a state with adapters
 * materialises the stack once as one adapter (sluice_export__stack) in
 * sluice.http.adapterDir/<state digest>/ and has the server load it.
 */
int sluice_evaluator__open_backend(sluice_repo *repo, sluice_evaluator **out,
                                   const sluice_version *v, sluice_backend backend);
void sluice_evaluator__free(sluice_evaluator *ev);

/*
 * A part of v's state on the builtin backend: its base and the adapters
 * of its stack whose names are among adapters' entries (a JSON array of
 * adapter entries as the state lists them; NULL for none: the bare base),
 * in the stack's order, with no memory notes. The poisoning gate scans a
 * new adapter on the bare base this way. Scores cache under a key of the
 * part's own (the state and the names kept).
 */
int sluice_evaluator__open_part(sluice_repo *repo, sluice_evaluator **out, const sluice_version *v,
                                json_t *adapters);

/*
 * The directory of v's state checked out into the repository's cache
 * (REPO/sluice/cache/state-<state blob>), checked out and verified on first
 * use, written to out (len bytes). The evaluator and the export read states
 * from here. Returns 0, SLUICE_EINVALID (path too long) or what
 * sluice_version_checkout returns.
 */
int sluice_evaluator__checkout(sluice_repo *repo, const sluice_version *v, char *out, size_t len);

/*
 * "builtin-cpu; openblas ...; threads N; sluice X; numerics R", or "http; url U; model
 * M; server-version V; sluice X". Borrowed.
 */
const char *sluice_evaluator__identity(const sluice_evaluator *ev);
/* The checked-out state's directory (base/, adapters/, memory/, replay/). Borrowed. */
const char *sluice_evaluator__dir(const sluice_evaluator *ev);
/* The model's vocabulary size (the length of every row below; the tokenizer's on http). */
uint32_t sluice_evaluator__vocab(const sluice_evaluator *ev);

/* 1 when cont_rows and next_row give full distributions (builtin), 0 when they cannot (http). */
int sluice_evaluator__full_rows(const sluice_evaluator *ev);
/* "builtin" or "http". Static. */
const char *sluice_evaluator__backend_name(const sluice_evaluator *ev);

/*
 * Score one pinned suite (its stored manifest and items' bytes, as
 * sluice_suite__load gives them) on ev's state, through the result cache:
 * *result is {"figures", "per_item", "cached"} as sluice eval reports them
 * (new reference).
 */
int sluice_evaluator__score(sluice_repo *repo, sluice_evaluator *ev, json_t *manifest,
                            const sluice_buf *items, json_t **result);

/*
 * What a check derived from ev's rows alone, kept in the result cache
 * beside the suites' scores, so that gating many candidates against one
 * head computes the head's side once. The key is ev's state, extra note
 * and backend identity with what (the check's name and the version of its
 * value's layout) and inputs (the hex digest of everything else the value
 * was computed from). get: a new reference, or NULL when absent or on any
 * cache error (the caller computes instead; it must check the value's
 * shape). put: an accelerator only, a failed write is silent.
 */
json_t *sluice_evaluator__derived_get(sluice_repo *repo, sluice_evaluator *ev, const char *what,
                                      const char *inputs);
void sluice_evaluator__derived_put(sluice_repo *repo, sluice_evaluator *ev, const char *what,
                                   const char *inputs, json_t *value);

/*
 * Log-probability of cont after context (the notes prefix and the
 * tokenizer's BOS before it, as docs/evaluation.md defines): the sum over
 * cont's tokens in *sum and their count in *ntok.
 */
int sluice_evaluator__loglik(sluice_evaluator *ev, const char *context, const char *cont,
                             double *sum, size_t *ntok);

/*
 * n log-likelihoods at once: sums[i], ntoks[i] for (contexts[i],
 * conts[i]), exactly as sluice_evaluator__loglik gives them one by one.
 * The http backend has them in flight together.
 */
int sluice_evaluator__loglik_batch(sluice_evaluator *ev, size_t n, const char *const *contexts,
                                   const char *const *conts, double *sums, size_t *ntoks);

/*
 * Each token's log-probability, for n pairs: out[i] a new array of
 * ntoks[i] values (the terms of sluice_evaluator__loglik's sum), ids[i]
 * a new array of conts[i]'s token ids; free each. With tops (may be
 * NULL), on the http backend tops[i] is a new JSON array of the server's
 * top-k list at each of those positions (null or {token text:
 * log-probability}; the texts are the server's), or NULL when it sent
 * none; always NULL on the built-in backend. Nothing is left allocated on
 * failure.
 */
int sluice_evaluator__token_logprobs_batch(sluice_evaluator *ev, size_t n,
                                           const char *const *contexts, const char *const *conts,
                                           double **out, uint32_t **ids, size_t *ntoks,
                                           json_t **tops);

/*
 * The next-token log-probabilities at each of cont's tokens: *rows is
 * [*ntok][vocab] (row j is the distribution that predicts cont's token j,
 * log-softmaxed), *toks cont's token ids. Both borrowed from the
 * evaluator, valid until its next call. With an empty context the rules of
 * sluice_evaluator__loglik apply (the first token may condition the rest).
 * SLUICE_EINVALID when !sluice_evaluator__full_rows(ev).
 */
int sluice_evaluator__cont_rows(sluice_evaluator *ev, const char *context, const char *cont,
                                const float **rows, const uint32_t **toks, size_t *ntok);

/*
 * The next-token log-probabilities right after context (notes and BOS
 * before it): one row of vocab values, borrowed until the next call.
 * SLUICE_EINVALID when !sluice_evaluator__full_rows(ev).
 */
int sluice_evaluator__next_row(sluice_evaluator *ev, const char *context, const float **row);

/* The text of token ids (the tokenizer's decoder, special tokens skipped); *out is malloc'd. */
/*
 * Branches after context (notes and BOS before it, as next_row): for each
 * of nb next tokens, lp[j * nt + k] is the log-probability of targets[k]
 * right after context's tokens followed by next[j] (a token id, not text:
 * nothing is re-tokenized). With lp_last (may be NULL), lp_last[k] is
 * targets[k]'s log-probability right after context alone, from the same
 * pass. One forward pass per chunk of branches
 * (sluice_model__branch_logprobs). SLUICE_EINVALID when
 * !sluice_evaluator__full_rows(ev), for an empty context, an id outside
 * the vocabulary, nb or nt 0.
 */
int sluice_evaluator__branch_logprobs(sluice_evaluator *ev, const char *context,
                                      const uint32_t *next, size_t nb, const uint32_t *targets,
                                      size_t nt, double *lp, double *lp_last);

/*
 * Push the PEFT adapter in dir onto the builtin evaluator's stack, at
 * scale 1: a model that is no version's state, for measuring an adapter
 * that was never committed (sluice gate --token-drops). From then on
 * nothing ev computes is cached, since no cache key describes it.
 * SLUICE_EINVALID on the http backend or as sluice_model__add_adapter.
 */
int sluice_evaluator__add_adapter(sluice_evaluator *ev, const char *dir);

int sluice_evaluator__decode(sluice_evaluator *ev, const uint32_t *ids, size_t n, char **out);

/*
 * One token's text as servers key top-k lists by it: the decoder on that
 * id alone, special tokens included; *out is malloc'd.
 */
int sluice_evaluator__token_text(sluice_evaluator *ev, uint32_t id, char **out);

/*
 * Score as if the state held one more memory note, text, after its own
 * (the notes prefix rebuilt as docs/evaluation.md defines it); NULL puts
 * the state's own notes back. What sluice_evaluator__score computes
 * meanwhile is cached under the state and the note's digest, apart from the
 * state's own results. The safety gate's length-matched control uses it
 * (docs/gates.md).
 */
int sluice_evaluator__extra_note(sluice_evaluator *ev, const char *text);

/* The number of tokens text encodes to (without special tokens). */
/*
 * text's token ids as a continuation is tokenized (no BOS, no notes):
 * *ids malloc'd (free it), *n of them. As sluice_tokenizer__encode.
 */
int sluice_evaluator__encode(sluice_evaluator *ev, const char *text, uint32_t **ids, size_t *n);

int sluice_evaluator__count_tokens(sluice_evaluator *ev, const char *text, size_t len, size_t *out);

#endif
