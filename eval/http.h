/*
 * eval/http.h - the HTTP evaluation backend's client: prompts given as
 * token ids are scored by an OpenAI-compatible server's /v1/completions
 * with echo true and max_tokens 0 (or 1 when the server refuses 0), and
 * the answer's per-position log-probabilities of the prompt's own tokens
 * are returned (docs/evaluation-http.md).
 *
 * Requests go out through libcurl's multi interface, `concurrency` in
 * flight, each with a timeout; 429, 5xx and connection errors are retried
 * up to `retries` times with exponential backoff from 0.2 s (a
 * Retry-After header is honoured). A server that refuses echo (llama.cpp's
 * server) is reported as unable to score prompts; no figure is ever made
 * from a completion without the prompt's log-probabilities.
 *
 * A client is not thread-safe: use one per thread.
 */
#ifndef SLUICE_EVAL_HTTP_H
#define SLUICE_EVAL_HTTP_H

#include "repo.h"

/* The sluice.http.* settings (docs/cli.md, "sluice config"). */
typedef struct {
	char *url;   /* base URL without a trailing '/' */
	char *model; /* the base model's name on the server */
	int64_t concurrency, timeout, retries, top_logprobs;
	char *adapter_dir; /* absolute */
} sluice_http_config;

/*
 * Read the settings from repo's config, with the defaults. SLUICE_EINVALID
 * naming the key when sluice.http.url or sluice.http.model is unset or a
 * value is out of range. Release with sluice_http__config_dispose.
 */
int sluice_http__config_load(sluice_repo *repo, sluice_http_config *out);
void sluice_http__config_dispose(sluice_http_config *cfg);

typedef struct sluice_http sluice_http;

/*
 * Connect to cfg's server (cfg is copied): GET /v1/models must list
 * cfg->model, and the server's version is read from GET /version (vLLM),
 * else GET /props' build_info (llama-server), else the model's /v1/models
 * entry. SLUICE_EIO when the server
 * cannot be reached (after the retries), SLUICE_EINVALID when it does not
 * serve the model or answers something this client does not understand.
 */
int sluice_http__open(sluice_ctx *ctx, sluice_http **out, const sluice_http_config *cfg);
void sluice_http__free(sluice_http *h);

/* The server's reported version ("unreported" when it says none). Borrowed. */
const char *sluice_http__server_version(const sluice_http *h);

/*
 * Load a PEFT adapter directory under name (vLLM's POST
 * /v1/load_lora_adapter); an answer that it is already loaded is success.
 */
int sluice_http__load_lora(sluice_http *h, const char *name, const char *path);

/*
 * Score n prompts on model: prompts[i] holds lens[i] >= 1 token ids (>= 0). On
 * success out[i] is a new array of lens[i] doubles (free each, and out
 * itself is the caller's n-slot array): out[i][t] is log P(token t |
 * tokens before it), out[i][0] NaN. Fails with the first request that
 * failed for good, naming it ("request i of n").
 */
int sluice_http__score(sluice_http *h, const char *model, size_t n, const int32_t *const *prompts,
                       const size_t *lens, double **out);

/* Completions requests sent, counting retries (what the tests read). */
uint64_t sluice_http__requests(const sluice_http *h);

/*
 * Parse one /v1/completions answer to a prompt of `prompt_len` tokens sent
 * with max_tokens (0 or 1): choices[0].logprobs.tokens and token_logprobs
 * must hold prompt_len entries (prompt_len or prompt_len + 1 with
 * max_tokens 1; a generated token is ignored), usage.prompt_tokens, when
 * present, must equal prompt_len, every log-probability after the first
 * must be a finite number <= 0 (a tolerance of 1e-4 for rounding), and
 * top_logprobs, when present, one null or {text: log-probability} object
 * per token. *out is a new array of prompt_len doubles, (*out)[0] NaN.
 * SLUICE_EINVALID with a message naming `what` and the field otherwise.
 * This is the function the fuzz target drives.
 */
int sluice_http__parse_completion(sluice_ctx *ctx, double **out, const char *body, size_t len,
                                  size_t prompt_len, int max_tokens, const char *what);

#endif
