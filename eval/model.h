/*
 * eval/model.h - the built-in CPU evaluator's model: a Hugging Face
 * llama-family checkpoint (config.json + safetensors) with a stack of PEFT
 * LoRA adapters applied on the fly, scored through OpenBLAS sgemm.
 *
 * Semantics follow transformers' LlamaForCausalLM (see docs/evaluator.md):
 * RMSNorm in f32 (x * rsqrt(mean(x^2) + eps) * w), rotate-half RoPE with
 * rope_theta and optional llama3 frequency scaling, grouped-query attention
 * by repeating KV heads, causal softmax scaled by 1/sqrt(head_dim), SwiGLU
 * MLP down(silu(gate(x)) * up(x)), final norm, lm_head or tied embeddings.
 * Every linear layer computes y = x.W^T + sum_i s_i.(x.A_i^T).B_i^T; the
 * adapters are never merged into W.
 *
 * Weights: F32 tensors are used in place from the memory map (when 4-byte
 * aligned); BF16 and F16 rows are converted to f32 one tile at a time into
 * a scratch buffer, so no full f32 copy of a weight ever exists. Adapter
 * tensors are small and are held as f32 copies.
 *
 * A model is not thread-safe (forward uses the model's scratch buffers);
 * OpenBLAS parallelises each product internally.
 */
#ifndef SLUICE_EVAL_MODEL_H
#define SLUICE_EVAL_MODEL_H

#include "internal.h"
#include "peft.h"

typedef struct sluice_model sluice_model;

/* The hyperparameters read from config.json (after defaults). */
typedef struct {
	unsigned hidden;    /* hidden_size */
	unsigned inter;     /* intermediate_size */
	unsigned layers;    /* num_hidden_layers */
	unsigned heads;     /* num_attention_heads */
	unsigned kv_heads;  /* num_key_value_heads (default: heads) */
	unsigned head_dim;  /* head_dim (default: hidden / heads) */
	unsigned vocab;     /* vocab_size */
	double rms_eps;     /* rms_norm_eps (default 1e-6, as LlamaConfig) */
	double rope_theta;  /* rope_theta (default 10000) */
	int tied;           /* tie_word_embeddings (default false) */
	int rope_llama3;    /* rope_scaling {"rope_type": "llama3", ...} */
	double rope_factor; /* llama3: factor */
	double rope_low;    /* llama3: low_freq_factor */
	double rope_high;   /* llama3: high_freq_factor */
	double rope_orig;   /* llama3: original_max_position_embeddings */
} sluice_model_config;

/*
 * Parse config.json text (len bytes, need not be NUL-terminated) into *out,
 * with the defaults and refusals described at sluice_model__open; path
 * names the file in messages. Returns 0 or SLUICE_EINVALID; on failure *out
 * is zeroed. What sluice_model__open uses, and what the fuzz target drives.
 */
int sluice_model__parse_config(sluice_ctx *ctx, sluice_model_config *out, const char *text,
                               size_t len, const char *path);

/*
 * Open the model in dir: dir/config.json, then dir/model.safetensors or the
 * shards named by dir/model.safetensors.index.json, memory-mapped. Every
 * tensor the architecture needs must be present once with the shape the
 * config implies and dtype F32, BF16 or F16; an unexpected tensor (a bias,
 * lm_head.weight beside tie_word_embeddings) is refused, except
 * "*.rotary_emb.inv_freq", which is recomputed as transformers does.
 * Refused with SLUICE_EINVALID and a message naming the field: a
 * model_type other than "llama", hidden_act other than "silu",
 * attention_bias or mlp_bias true, a rope_scaling type other than null,
 * "default" or "llama3", quantization_config, missing or out-of-range
 * sizes, heads not dividing into kv_heads. SLUICE_ENOTFOUND when no
 * config.json or weights file exists, SLUICE_EIO, SLUICE_ENOMEM. On success
 * *out is a new model; free it with sluice_model__free.
 */
int sluice_model__open(sluice_ctx *ctx, sluice_model **out, const char *dir);

/*
 * Push a PEFT LoRA adapter (dir/adapter_config.json and
 * dir/adapter_model.safetensors) onto the model's stack. The adapter is
 * checked by sluice_peft__load against the model's headers; each module's
 * scale (alpha/r or alpha/sqrt(r)) is multiplied by stack_scale. Adapted
 * modules may be any of the linear projections, lm_head (when not tied) and
 * embed_tokens (lora_embedding_A/B). Adapter tensors may be F32, BF16 or
 * F16. Returns 0, SLUICE_EINVALID (message from the PEFT check, or a
 * non-finite stack_scale), SLUICE_ENOTFOUND, SLUICE_EIO, SLUICE_ENOMEM. On
 * failure the stack is unchanged.
 */
int sluice_model__add_adapter(sluice_ctx *ctx, sluice_model *m, const char *dir,
                              double stack_scale);

/*
 * A PEFT adapter directory opened and checked against a model, as
 * sluice_model__add_adapter reads it, for callers that want the adapter's
 * tensors themselves (gates/lora_stats.c). Scales in peft are the
 * adapter's own (alpha/r or alpha/sqrt(r)), without any stack scale.
 */
typedef struct {
	sluice_peft_adapter peft;
	sluice_st_header hdr; /* adapter_model.safetensors's header */
	char *path;           /* dir/adapter_model.safetensors, for messages */
	int fd;               /* open on path; -1 when closed */
} sluice_model_adapter;

/*
 * Open dir/adapter_config.json and dir/adapter_model.safetensors and check
 * them with sluice_peft__load against m's headers. Returns 0,
 * SLUICE_EINVALID (message from the PEFT check), SLUICE_ENOTFOUND,
 * SLUICE_EIO, SLUICE_ENOMEM. Whatever it returns, *out must be released
 * with sluice_model__adapter_dispose (on failure it holds nothing).
 */
int sluice_model__adapter_open(sluice_ctx *ctx, sluice_model_adapter *out, const sluice_model *m,
                               const char *dir);

/*
 * As sluice_model__adapter_open, checked against the given base headers
 * (one per shard) instead of an open model's, for callers that need the
 * adapter but not the model (eval/export.c). Same returns and contract.
 */
int sluice_model__adapter_open_on(sluice_ctx *ctx, sluice_model_adapter *out,
                                  const sluice_st_header *const *base, size_t nbase,
                                  const char *dir);

/*
 * Read the adapter tensor `name` (F32, BF16 or F16) into a new f32 array of
 * count elements (free() it). SLUICE_EINVALID (missing tensor, other dtype,
 * element count not count; the message names the file and tensor),
 * SLUICE_EIO, SLUICE_ECORRUPT, SLUICE_ENOMEM.
 */
int sluice_model__adapter_tensor(sluice_ctx *ctx, float **out, const sluice_model_adapter *a,
                                 const char *name, uint64_t count);

/* Close the file and release what *a holds; *a is left closed and empty. */
void sluice_model__adapter_dispose(sluice_model_adapter *a);

/*
 * Causal logits for a whole sequence in one scoring pass: logits[n][vocab]
 * where row t is the next-token distribution after ids[0..t]. n >= 1.
 * Returns 0, SLUICE_EINVALID (an id outside [0, vocab), n == 0),
 * SLUICE_ENOMEM.
 */
int sluice_model__forward(sluice_ctx *ctx, sluice_model *m, const int32_t *ids, size_t n,
                          float *logits);

/*
 * As sluice_model__forward, but only rows [first, n) of the logits are
 * computed and written: logits[n - first][vocab]. Scoring a continuation
 * needs only its rows, which saves the lm_head work and the memory of the
 * context's rows. SLUICE_EINVALID when first >= n.
 */
int sluice_model__forward_from(sluice_ctx *ctx, sluice_model *m, const int32_t *ids, size_t n,
                               size_t first, float *logits);

/*
 * Next-token log-probabilities without a logits matrix: for each row t in
 * [first, n), lp[t - first] = log softmax(logits row t)[targets[t - first]],
 * row t being the distribution after ids[0..t] (targets[j] is usually
 * ids[first + j + 1]). The lm_head runs over the vocabulary in bands folded
 * into a running log-sum-exp per row, so the pass holds its activations and
 * nothing of size rows x vocab; it does the lm_head work of all rows, as
 * forward_from does. Its sums differ from log_softmax over forward_from's
 * rows in the last bits (exp in f32, another order). Returns 0,
 * SLUICE_EINVALID (as forward_from, or a target outside the vocabulary),
 * SLUICE_ENOMEM.
 */
int sluice_model__score_next(sluice_ctx *ctx, sluice_model *m, const int32_t *ids, size_t n,
                             size_t first, const int32_t *targets, double *lp);

/*
 * Branches after one prefix, in one pass: for each of nb next tokens,
 * lp[j * nt + k] is the log-probability of targets[k] right after
 * ids[0..n) followed by next[j]. The prefix rows and every branch row go
 * through each layer together; a branch row sits at position n and
 * attends to the prefix and to itself, never to another branch, so it
 * equals score_next on ids + next[j] up to rounding (attention sums in
 * another order). Scoring every token of a small vocabulary after a prompt
 * (the poisoning gate's token_margin_drop) costs one pass of n + nb rows
 * instead of nb passes of n + 1. Activations grow with n + nb: the caller
 * bounds nb. n may be 0. With lp_last (may be NULL) and n > 0, lp_last[k]
 * is targets[k]'s log-probability right after ids[0..n) alone, read from
 * the same pass. Returns 0, SLUICE_EINVALID (an id or target outside the
 * vocabulary, nb or nt 0), SLUICE_ENOMEM.
 */
int sluice_model__branch_logprobs(sluice_ctx *ctx, sluice_model *m, const int32_t *ids, size_t n,
                                  const int32_t *next, size_t nb, const int32_t *targets, size_t nt,
                                  double *lp, double *lp_last);

/* The configuration in effect. Borrowed: valid until sluice_model__free. */
const sluice_model_config *sluice_model__config(const sluice_model *m);

/* Number of adapters on the stack. */
size_t sluice_model__nadapters(const sluice_model *m);

/*
 * Rows [first, first + count) of model.embed_tokens.weight converted to f32
 * into dst[count][hidden]. The caller keeps first + count <= vocab.
 */
void sluice_model__embed_rows(const sluice_model *m, float *dst, size_t first, size_t count);

/*
 * Layer l's input_layernorm weight (post 0) or post_attention_layernorm
 * weight (post 1) as f32 [hidden]. l < layers. Borrowed: valid until
 * sluice_model__free.
 */
const float *sluice_model__norm_weight(const sluice_model *m, unsigned l, int post);

/*
 * The backend's identity, for reports: "builtin-cpu; openblas 0.3.21
 * <build> <core>; threads N; sluice 0.1.0; numerics R" where build is
 * serial, pthread or openmp (openblas_get_parallel), core is OpenBLAS's
 * detected core (openblas_get_corename), N its thread count and R the
 * revision of the evaluator's arithmetic. Writes at most len bytes
 * (NUL included); returns the length the full string needs, as snprintf.
 */
size_t sluice_model__identity(const sluice_model *m, char *buf, size_t len);

/*
 * In place: row[i] = row[i] - logsumexp(row), accumulated in double.
 * For scoring: the log-probability of token k after position t is
 * logits[t][k] after this call on row t.
 */
void sluice_model__log_softmax(float *row, size_t n);

/* Release the model (maps, adapters, scratch); accepts NULL. */
void sluice_model__free(sluice_model *m);

#endif
