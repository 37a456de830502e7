/*
 * gates/lora_stats.h - the weight-only part of the poisoning gate: spectral
 * figures of each LoRA module's update, robust z-scores against a
 * reference population, and trigger-token candidates read off the weights.
 *
 * A LoRA module adds dW = s.B.A to a base weight, with A [r][in] and
 * B [out][r] stored row-major as PEFT saves them (lora_A.weight,
 * lora_B.weight); for an embedding, lora_embedding_A is [r][num_embeddings],
 * lora_embedding_B is [dim][r] and dE = s.(B.A)^T is [num_embeddings][dim],
 * whose singular values are those of B.A. dW is never formed: with the thin
 * QR factorisations A^T = Qa.Ra and B = Qb.Rb (LAPACK dgeqrf),
 * dW = Qb.(s.Rb.Ra^T).Qa^T and the orthonormal Qa, Qb leave the singular
 * values of the small matrix M = s.Rb.Ra^T (at most r x r) unchanged.
 *
 * Nothing here is thread-safe beyond what OpenBLAS gives; each call works on
 * its own buffers.
 */
#ifndef SLUICE_GATES_LORA_STATS_H
#define SLUICE_GATES_LORA_STATS_H

#include "internal.h"

#include <jansson.h>

struct sluice_model;

/* LAPACK (dgeqrf_, dgesvd_) comes through core/blas.h, opened on first use. */

/* How many singular values a module has: min(r, in, out). */
static inline size_t sluice_lora__nsv(unsigned r, size_t in, size_t out)
{
	size_t k = r;

	if (in < k)
		k = in;
	if (out < k)
		k = out;
	return k;
}

/*
 * Singular values of dW = scale.B.A, descending, into out[sluice_lora__nsv(r,
 * in, out_dim)]. a is [r][in], b is [out_dim][r], both row-major f32 (for an
 * embedding pass in = num_embeddings, out_dim = dim: the values are those of
 * dE too). A rank above in or out_dim, and rank-deficient or zero factors,
 * are fine: the QR is taken without pivoting, whose Q is orthonormal whatever
 * the rank, so the values are exact up to rounding (zeros where the update
 * has no rank). Works in double. Returns 0; SLUICE_EINVALID for r, in or
 * out_dim of 0 or above INT_MAX, a non-finite scale, or a non-finite element
 * (the message names lora_A or lora_B and the [row][column]);
 * SLUICE_ENOMEM; SLUICE_ERROR if LAPACK reports a failure (an SVD that does
 * not converge).
 */
int sluice_lora__spectrum(sluice_ctx *ctx, double *out, const float *a, const float *b, unsigned r,
                          size_t in, size_t out_dim, double scale);

/* The figures a module is judged by, from its singular values. */
typedef struct {
	double top_sv;    /* sigma_1, the update's spectral norm */
	double top_share; /* sigma_1^2 / sum sigma_i^2: the energy of the top direction; 0 if all 0
	                   */
	double frobenius; /* sqrt(sum sigma_i^2) = ||dW||_F */
} sluice_lora_figures;

/* Figures of sv[0..n) (descending, as sluice_lora__spectrum gives). n may be 0. */
void sluice_lora__figures(sluice_lora_figures *out, const double *sv, size_t n);

/*
 * A reference population summarised for robust z-scores: the median and the
 * median absolute deviation (MAD) of its finite values.
 */
typedef struct {
	double median, mad;
	size_t n; /* finite values counted */
} sluice_lora_ref;

/* The MAD floor, relative to max(|median|, |x|): see sluice_lora__ref_z. */
#define SLUICE_LORA_MAD_FLOOR 1e-3
/* 1 / Phi^-1(3/4): makes 1.4826.MAD estimate a normal population's sigma. */
#define SLUICE_LORA_MAD_NORMAL 1.4826

/*
 * Summarise pop[0..n). Non-finite values (NaN, +-inf) are left out and not
 * counted. Returns 0 or SLUICE_ENOMEM (it sorts a copy).
 */
int sluice_lora__ref_init(sluice_ctx *ctx, sluice_lora_ref *out, const double *pop, size_t n);

/*
 * z = (x - median) / (1.4826 . max(MAD, floor)), where
 * floor = SLUICE_LORA_MAD_FLOOR . max(|median|, |x|). The floor keeps a
 * population of identical values (MAD 0) from giving an infinite z: there a
 * value 10% above the rest scores about 61 (10% below, about -67), and |z|
 * never exceeds 2 / (1.4826e-3), about 1349, while the MAD is at the floor;
 * x equal to the median gives 0 (so does x 0 against a population of
 * zeros). Rules: fewer than 3 finite values in the reference gives NAN,
 * meaning "no reference" (a median and spread from one or two values say
 * nothing); a non-finite x gives NAN.
 */
double sluice_lora__ref_z(const sluice_lora_ref *ref, double x);

/*
 * sluice_lora__ref_z of x against pop[0..n) in one call (sorts a copy each
 * time: summarise once with sluice_lora__ref_init to score many values).
 * NAN also when the copy cannot be allocated.
 */
double sluice_lora__robust_z(double x, const double *pop, size_t n);

/*
 * Trigger-token scores over a vocabulary. Each method fills
 * scores[vocab] with one non-negative number per token id.
 *
 * "layer0-projections": a layer-0 projection P among q_proj, k_proj, v_proj
 * (input: input_layernorm) and gate_proj, up_proj (input:
 * post_attention_layernorm, applied to the raw embedding as an
 * approximation: the real input also carries the attention output) moves
 * token t's activation by ||s.B.A.(g * RMSNorm(e_t))||, RMSNorm(x) =
 * x / sqrt(mean(x^2) + eps), e_t row t of embed_tokens. The score is the sum
 * over the projections the adapter touches.
 */
typedef struct {
	const float *a; /* [r][hidden] */
	const float *b; /* [out][r] */
	unsigned r;
	size_t out;
	double scale;
	int post; /* 0: input_layernorm; 1: post_attention_layernorm */
} sluice_lora_proj;

/*
 * Layer-0 scores for every token of m's vocabulary (m as opened by
 * sluice_model__open; its embedding may be F32, BF16 or F16) into
 * scores[vocab]. Returns 0, SLUICE_EINVALID (a rank of 0, a non-finite
 * scale), SLUICE_ENOMEM.
 */
int sluice_lora__layer0_scores(sluice_ctx *ctx, double *scores, const struct sluice_model *m,
                               const sluice_lora_proj *p, size_t np);

/*
 * "embedding-rows": scores[t] = ||row t of dE|| with dE = s.(B.A)^T, a
 * [r][vocab], b [dim][r] (lora_embedding_A/B). "lm-head-rows" (transpose 0
 * below): scores[t] = ||row t of dW|| with dW = s.B.A, b [vocab][r],
 * a [r][hidden]: how far the adapter moves token t's logit direction.
 * Computed through the r x r Gram matrix of the other factor. Returns 0,
 * SLUICE_EINVALID (zero sizes, non-finite scale), SLUICE_ENOMEM.
 */
int sluice_lora__embedding_scores(sluice_ctx *ctx, double *scores, const float *a, const float *b,
                                  unsigned r, size_t vocab, size_t dim, double scale);
int sluice_lora__lm_head_scores(sluice_ctx *ctx, double *scores, const float *a, const float *b,
                                unsigned r, size_t vocab, size_t hidden, double scale);

/* A nominated token. */
typedef struct {
	uint32_t id;
	double score;
	double z; /* robust z of score against all tokens' scores */
} sluice_lora_token;

/*
 * The k highest scores[0..n) (fewer when n < k), highest first, ties by the
 * lower id, each with its robust z against all n scores. Returns the number
 * written to out (>= 0), or SLUICE_ENOMEM.
 */
int sluice_lora__top_tokens(sluice_ctx *ctx, sluice_lora_token *out, size_t k, const double *scores,
                            size_t n);

/*
 * The whole weight-only analysis of the adapter in adapter_dir
 * (adapter_config.json + adapter_model.safetensors, tensors F32, BF16 or
 * F16) for the base in base_dir (config.json + model.safetensors or the
 * shards of model.safetensors.index.json; the llama family that
 * sluice_model__open reads). The adapter is checked against the base by
 * sluice_peft__load; each module's scale (alpha/r or alpha/sqrt(r)) is
 * multiplied by stack_scale. Token text comes from base_dir/tokenizer.json
 * when it exists and loads.
 *
 * *out is a new JSON object (json_decref it):
 *   {"modules": [{"module": "model.layers.0.self_attn.q_proj",
 *                 "embedding": false, "r": 8, "in": 4096, "out": 4096,
 *                 "scale": 2.0, "sigma": [s1, s2, ...] (descending,
 *                 min(r,in,out) values), "top_sv": s1, "top_share": ...,
 *                 "frobenius": ...}, ...]   (sorted by module name),
 *    "triggers": [{"method": "layer0-projections" | "embedding-rows" |
 *                              "lm-head-rows" | "none",
 *                  "modules": [module names the method used],
 *                  "median": median score over the vocabulary,
 *                  "mad": its MAD,
 *                  "tokens": [{"id": 17, "text": "foo" | null,
 *                              "score": ..., "z": ... | null}, ...]},
 *                 ...],
 *    "tokenizer": "loaded" | "absent" | "refused: <message>"}
 * "triggers" holds one entry per method the adapter allows, in the order
 * above, or the single entry {"method": "none", "modules": [], "median":
 * null, "mad": null, "tokens": []} when it adapts none of those modules. Each
 * list has min(top_k, vocab) tokens, highest score first. A number that is
 * not finite is written as null. "text" is null without a tokenizer or when
 * the decoded text is not valid UTF-8.
 *
 * Returns 0; SLUICE_EINVALID (the base or adapter refused, a non-finite
 * stack_scale or element; messages name the file and tensor),
 * SLUICE_ENOTFOUND, SLUICE_EIO, SLUICE_ECORRUPT, SLUICE_ENOMEM. *out is
 * NULL on failure.
 */
int sluice_lora__analyse(sluice_ctx *ctx, json_t **out, const char *adapter_dir,
                         const char *base_dir, double stack_scale, size_t top_k);

#endif
