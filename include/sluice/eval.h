/*
 * sluice/eval.h - scoring a version's full state on pinned suites with the
 * built-in CPU evaluator (docs/evaluation.md, docs/evaluator.md) or through
 * an OpenAI-compatible inference server (docs/evaluation-http.md).
 *
 * The state is checked out once into the repository's cache
 * (sluice/cache/state-<state digest>/), the base model is loaded from it
 * with the adapter stack applied on the fly, and the memory notes are
 * placed before every prompt (docs/evaluation.md gives the template).
 * Results are cached in LMDB by (state digest, suite digest, backend
 * identity): scoring the same triple again computes nothing.
 */
#ifndef SLUICE_EVAL_H
#define SLUICE_EVAL_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
	int no_cache;        /* recompute and overwrite cached results */
	int with_items;      /* include per-item results in the report */
	const char *backend; /* "builtin" (or NULL) or "http" (docs/evaluation-http.md) */
} sluice_eval_opts;

/*
 * Score ref on each named suite. *report: {"version","state","backend",
 * "suites":[{"name","type","digest","items","cached","figures":{...},
 * "per_item"?:[...]}]}. SLUICE_ENOTFOUND for an unknown suite,
 * SLUICE_EINVALID for a state the evaluator cannot run (no base, no
 * tokenizer.json, an unsupported config) or, on the http backend, a server
 * that cannot score prompts or answers what the client does not
 * understand; SLUICE_EIO when the server cannot be reached (after the
 * retries); SLUICE_EUSAGE for an unknown backend.
 */
int sluice_eval_run(sluice_repo *repo, const char *ref, const char *const *suites, size_t n,
                    const sluice_eval_opts *opts, char **report);

#ifdef __cplusplus
}
#endif
#endif
