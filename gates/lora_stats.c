/*
 * gates/lora_stats.c - weight-only statistics of a LoRA adapter for the
 * poisoning gate. See lora_stats.h for the contracts.
 *
 * Everything is computed from the factors: the singular values through two
 * thin QR factorisations and an SVD of an r x r matrix, the per-token
 * norms through r x r Gram matrices, so the cost stays O((in + out) r^2)
 * per module and O(vocab . hidden . r) for the layer-0 scores, never
 * O(in . out).
 */
#include "blas.h"
#include "lora_stats.h"
#include "../eval/model.h"
#include "../eval/tokenizer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Embedding rows normalised per block: 4 MiB of f32. */
#define TILE_FLOATS ((size_t)1 << 20)
#define TOKENIZER_MAX (256u << 20)

/* ---- spectrum ---------------------------------------------------------- */

static int dims_ok(sluice_ctx *ctx, unsigned r, size_t in, size_t out, double scale)
{
	size_t n;

	if (!r || !in || !out || r > INT_MAX || in > INT_MAX || out > INT_MAX)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "LoRA factors of rank %u, %zu inputs, %zu outputs: each "
		                         "must be in [1, %d]",
		                         r, in, out, INT_MAX);
	if (sluice__mul_ovf(&n, in, r) < 0 || sluice__mul_ovf(&n, n, sizeof(double)) < 0 ||
	    sluice__mul_ovf(&n, out, r) < 0 || sluice__mul_ovf(&n, n, sizeof(double)) < 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "LoRA factors of rank %u, %zu x %zu are too large", r, in,
		                         out);
	if (!isfinite(scale))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "LoRA scale %g is not finite",
		                         scale);
	return 0;
}

/*
 * Householder QR of the column-major m x n matrix x (leading dimension m)
 * in place: R ends up on and above the diagonal.
 */
static int qr_inplace(sluice_ctx *ctx, double *x, int m, int n)
{
	int lwork = -1, info = 0, k = m < n ? m : n;
	double q, *tau = NULL, *work = NULL;
	int error = 0;

	dgeqrf_(&m, &n, x, &m, &q, &q, &lwork, &info);
	if (info != 0)
		return sluice_ctx__error(ctx, SLUICE_ERROR, "dgeqrf workspace query: info %d",
		                         info);
	lwork = q > 1 ? (int)q : 1;
	if (!(tau = sluice__calloc(ctx, (size_t)k, sizeof(double))) ||
	    !(work = sluice__calloc(ctx, (size_t)lwork, sizeof(double)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	dgeqrf_(&m, &n, x, &m, tau, work, &lwork, &info);
	if (info != 0)
		error = sluice_ctx__error(ctx, SLUICE_ERROR, "dgeqrf: info %d", info);
done:
	free(tau);
	free(work);
	return error;
}

/* The upper-trapezoidal k x n R of a QR left in x (m x n, ld m) -> r (k x n, ld k). */
static void take_r(double *r, const double *x, size_t m, size_t k, size_t n)
{
	for (size_t j = 0; j < n; j++)
		for (size_t i = 0; i < k; i++)
			r[j * k + i] = i <= j ? x[j * m + i] : 0.0;
}

/* Singular values of the column-major m x n matrix x (destroyed), descending. */
static int svd_values(sluice_ctx *ctx, double *sv, double *x, int m, int n)
{
	int lwork = -1, info = 0, one = 1;
	double q, none, *work = NULL; /* none: U and V^T are not asked for */
	int error = 0;

	dgesvd_("N", "N", &m, &n, x, &m, sv, &none, &one, &none, &one, &q, &lwork, &info, 1, 1);
	if (info != 0)
		return sluice_ctx__error(ctx, SLUICE_ERROR, "dgesvd workspace query: info %d",
		                         info);
	lwork = q > 1 ? (int)q : 1;
	if (!(work = sluice__calloc(ctx, (size_t)lwork, sizeof(double))))
		return SLUICE_ENOMEM;
	dgesvd_("N", "N", &m, &n, x, &m, sv, &none, &one, &none, &one, work, &lwork, &info, 1, 1);
	if (info != 0)
		error = sluice_ctx__error(ctx, SLUICE_ERROR, "dgesvd: info %d (%s)", info,
		                          info > 0 ? "did not converge" : "bad argument");
	free(work);
	return error;
}

int sluice_lora__spectrum(sluice_ctx *ctx, double *out, const float *a, const float *b, unsigned r,
                          size_t in, size_t out_dim, double scale)
{
	size_t ka, kb, k, i, j;
	double *at = NULL, *bc = NULL, *ra = NULL, *rb = NULL, *mm = NULL, *sv = NULL;
	int error;

	if ((error = sluice_blas__load(ctx)) < 0 ||
	    (error = dims_ok(ctx, r, in, out_dim, scale)) < 0)
		return error;
	ka = in < r ? in : r;
	kb = out_dim < r ? out_dim : r;
	k = ka < kb ? ka : kb;
	if (!(at = sluice__malloc(ctx, in * r * sizeof(double))) ||
	    !(bc = sluice__malloc(ctx, out_dim * r * sizeof(double))) ||
	    !(ra = sluice__malloc(ctx, ka * r * sizeof(double))) ||
	    !(rb = sluice__malloc(ctx, kb * r * sizeof(double))) ||
	    !(mm = sluice__malloc(ctx, ka * kb * sizeof(double))) ||
	    !(sv = sluice__malloc(ctx, k * sizeof(double)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	/* A[r][in] row-major is A^T[in][r] column-major: the same bytes. */
	for (i = 0; i < in * r; i++) {
		if (!isfinite(a[i])) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "lora_A element [%zu][%zu] is not finite", i / in,
			                          i % in);
			goto done;
		}
		at[i] = a[i];
	}
	/* B[out][r] row-major -> column-major out x r */
	for (i = 0; i < out_dim; i++) {
		for (j = 0; j < r; j++) {
			float v = b[i * r + j];
			if (!isfinite(v)) {
				error = sluice_ctx__error(ctx, SLUICE_EINVALID,
				                          "lora_B element [%zu][%zu] is not finite",
				                          i, j);
				goto done;
			}
			bc[j * out_dim + i] = v;
		}
	}
	/* A^T = Qa.Ra (Ra ka x r), B = Qb.Rb (Rb kb x r) */
	if ((error = qr_inplace(ctx, at, (int)in, (int)r)) < 0 ||
	    (error = qr_inplace(ctx, bc, (int)out_dim, (int)r)) < 0)
		goto done;
	take_r(ra, at, in, ka, r);
	take_r(rb, bc, out_dim, kb, r);
	/* M[kb][ka] = scale . Rb[kb][r] . Ra[ka][r]^T, column-major */
	cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)kb, (int)ka, (int)r, scale, rb,
	            (int)kb, ra, (int)ka, 0.0, mm, (int)kb);
	if ((error = svd_values(ctx, sv, mm, (int)kb, (int)ka)) < 0)
		goto done;
	memcpy(out, sv, k * sizeof(double));
done:
	free(at);
	free(bc);
	free(ra);
	free(rb);
	free(mm);
	free(sv);
	return error;
}

void sluice_lora__figures(sluice_lora_figures *out, const double *sv, size_t n)
{
	double top = 0, sum = 0;

	for (size_t i = 0; i < n; i++)
		top = sv[i] > top ? sv[i] : top;
	/* relative to sigma_1, so squares neither overflow nor underflow */
	if (top > 0)
		for (size_t i = 0; i < n; i++)
			sum += (sv[i] / top) * (sv[i] / top);
	out->top_sv = top;
	out->frobenius = top > 0 ? top * sqrt(sum) : 0.0;
	out->top_share = top > 0 ? 1.0 / sum : 0.0;
}

/* ---- robust z ---------------------------------------------------------- */

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* Median of sorted v[0..n), n >= 1. */
static double median_sorted(const double *v, size_t n)
{
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int ref_fill(sluice_lora_ref *out, double *tmp, const double *pop, size_t n)
{
	size_t m = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		if (isfinite(pop[i]))
			tmp[m++] = pop[i];
	out->n = m;
	if (!m)
		return 0;
	qsort(tmp, m, sizeof(double), cmp_double);
	out->median = median_sorted(tmp, m);
	for (size_t i = 0; i < m; i++)
		tmp[i] = fabs(tmp[i] - out->median);
	qsort(tmp, m, sizeof(double), cmp_double);
	out->mad = median_sorted(tmp, m);
	return 0;
}

int sluice_lora__ref_init(sluice_ctx *ctx, sluice_lora_ref *out, const double *pop, size_t n)
{
	double *tmp;

	memset(out, 0, sizeof(*out));
	if (!n)
		return 0;
	if (!(tmp = sluice__calloc(ctx, n, sizeof(double))))
		return SLUICE_ENOMEM;
	ref_fill(out, tmp, pop, n);
	free(tmp);
	return 0;
}

double sluice_lora__ref_z(const sluice_lora_ref *ref, double x)
{
	double mag, floor, mad;

	if (ref->n < 3 || !isfinite(x))
		return NAN;
	if (x == ref->median)
		return 0.0;
	mag = fabs(ref->median) > fabs(x) ? fabs(ref->median) : fabs(x);
	floor = SLUICE_LORA_MAD_FLOOR * mag;
	mad = ref->mad > floor ? ref->mad : floor;
	return (x - ref->median) / (SLUICE_LORA_MAD_NORMAL * mad);
}

double sluice_lora__robust_z(double x, const double *pop, size_t n)
{
	sluice_lora_ref ref;
	double *tmp;

	if (n < 3)
		return NAN;
	if (!(tmp = malloc(n * sizeof(double))))
		return NAN;
	ref_fill(&ref, tmp, pop, n);
	free(tmp);
	return sluice_lora__ref_z(&ref, x);
}

/* ---- token scores ------------------------------------------------------- */

/* G[r][r] = F^T.F for F[rows][r] row-major f32 (the Gram matrix of F's columns). */
static int gram_cols(sluice_ctx *ctx, double **out, const float *f, size_t rows, unsigned r)
{
	double *fd = NULL;

	*out = NULL;
	if (!(fd = sluice__malloc(ctx, rows * r * sizeof(double))) ||
	    !(*out = sluice__malloc(ctx, (size_t)r * r * sizeof(double)))) {
		free(fd);
		return SLUICE_ENOMEM;
	}
	for (size_t i = 0; i < rows * r; i++)
		fd[i] = f[i];
	cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)r, (int)r, (int)rows, 1.0, fd,
	            (int)r, fd, (int)r, 0.0, *out, (int)r);
	free(fd);
	return 0;
}

/* G[r][r] = F.F^T for F[r][cols] row-major f32 (the Gram matrix of F's rows). */
static int gram_rows(sluice_ctx *ctx, double **out, const float *f, unsigned r, size_t cols)
{
	double *fd = NULL;

	*out = NULL;
	if (!(fd = sluice__malloc(ctx, (size_t)r * cols * sizeof(double))) ||
	    !(*out = sluice__malloc(ctx, (size_t)r * r * sizeof(double)))) {
		free(fd);
		return SLUICE_ENOMEM;
	}
	for (size_t i = 0; i < (size_t)r * cols; i++)
		fd[i] = f[i];
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)r, (int)r, (int)cols, 1.0, fd,
	            (int)cols, fd, (int)cols, 0.0, *out, (int)r);
	free(fd);
	return 0;
}

/* sqrt(c^T.G.c) for c[r] (stride cs) and symmetric G[r][r]; rounding below 0 reads as 0. */
static double gram_norm(const double *g, const float *c, size_t cs, unsigned r)
{
	double q = 0;

	for (unsigned i = 0; i < r; i++) {
		double ci = c[i * cs], row = 0;
		for (unsigned j = 0; j < r; j++)
			row += g[(size_t)i * r + j] * c[j * cs];
		q += ci * row;
	}
	return q > 0 ? sqrt(q) : 0.0;
}

int sluice_lora__embedding_scores(sluice_ctx *ctx, double *scores, const float *a, const float *b,
                                  unsigned r, size_t vocab, size_t dim, double scale)
{
	double *g = NULL;
	int error;

	if ((error = sluice_blas__load(ctx)) < 0 ||
	    (error = dims_ok(ctx, r, vocab, dim, scale)) < 0 ||
	    (error = gram_cols(ctx, &g, b, dim, r)) < 0)
		return error;
	/* row t of dE = s.(B.a_t)^T with a_t = A[:, t]: ||.||^2 = s^2 a_t^T (B^T B) a_t */
	for (size_t t = 0; t < vocab; t++)
		scores[t] = fabs(scale) * gram_norm(g, a + t, vocab, r);
	free(g);
	return 0;
}

int sluice_lora__lm_head_scores(sluice_ctx *ctx, double *scores, const float *a, const float *b,
                                unsigned r, size_t vocab, size_t hidden, double scale)
{
	double *g = NULL;
	int error;

	if ((error = sluice_blas__load(ctx)) < 0 ||
	    (error = dims_ok(ctx, r, hidden, vocab, scale)) < 0 ||
	    (error = gram_rows(ctx, &g, a, r, hidden)) < 0)
		return error;
	/* row t of dW = s.b_t.A with b_t = B[t, :]: ||.||^2 = s^2 b_t (A A^T) b_t^T */
	for (size_t t = 0; t < vocab; t++)
		scores[t] = fabs(scale) * gram_norm(g, b + t * r, 1, r);
	free(g);
	return 0;
}

int sluice_lora__layer0_scores(sluice_ctx *ctx, double *scores, const struct sluice_model *m,
                               const sluice_lora_proj *p, size_t np)
{
	const sluice_model_config *c = sluice_model__config(m);
	const size_t H = c->hidden, V = c->vocab;
	size_t tile = TILE_FLOATS / H ? TILE_FLOATS / H : 1, rsum = 0, off, i;
	float *ag = NULL, *x = NULL, *y = NULL;
	double **g = NULL;
	int error = 0;

	memset(scores, 0, V * sizeof(double));
	if (!np)
		return 0;
	if (tile > V)
		tile = V;
	for (i = 0; i < np; i++) {
		if ((error = sluice_blas__load(ctx)) < 0 ||
		    (error = dims_ok(ctx, p[i].r, H, p[i].out, p[i].scale)) < 0)
			return error;
		rsum += p[i].r;
	}
	if (rsum > INT_MAX || rsum > SIZE_MAX / sizeof(float) / (tile > H ? tile : H))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "layer-0 projections of total rank %zu are too many",
		                         rsum);
	if (!(g = sluice__calloc(ctx, np, sizeof(*g))) ||
	    !(ag = sluice__malloc(ctx, rsum * H * sizeof(float))) ||
	    !(x = sluice__malloc(ctx, tile * H * sizeof(float))) ||
	    !(y = sluice__malloc(ctx, tile * rsum * sizeof(float)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	/*
	 * ag[rsum][H] stacks every projection's A with the norm's weight folded
	 * in, A.(g * x) = (A.diag(g)).x, so one product per tile serves them all.
	 */
	for (i = 0, off = 0; i < np; off += p[i].r, i++) {
		const float *nw = sluice_model__norm_weight(m, 0, p[i].post);
		for (size_t k = 0; k < p[i].r; k++)
			for (size_t d = 0; d < H; d++)
				ag[(off + k) * H + d] = p[i].a[k * H + d] * nw[d];
		if ((error = gram_cols(ctx, &g[i], p[i].b, p[i].out, p[i].r)) < 0)
			goto done;
	}
	for (size_t t0 = 0; t0 < V; t0 += tile) {
		size_t n = V - t0 < tile ? V - t0 : tile;
		sluice_model__embed_rows(m, x, t0, n);
		/* x <- RMSNorm without weight, in f32 as the model computes it */
		for (size_t t = 0; t < n; t++) {
			float *row = x + t * H, inv;
			double ss = 0;
			for (size_t d = 0; d < H; d++)
				ss += (double)row[d] * row[d];
			inv = (float)(1.0 / sqrt(ss / (double)H + c->rms_eps));
			for (size_t d = 0; d < H; d++)
				row[d] *= inv;
		}
		/* y[n][rsum] = x[n][H] . ag[rsum][H]^T */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)rsum, (int)H,
		            1.0f, x, (int)H, ag, (int)H, 0.0f, y, (int)rsum);
		for (i = 0, off = 0; i < np; off += p[i].r, i++)
			for (size_t t = 0; t < n; t++)
				scores[t0 + t] += fabs(p[i].scale) *
				                  gram_norm(g[i], y + t * rsum + off, 1, p[i].r);
	}
done:
	for (i = 0; g && i < np; i++)
		free(g[i]);
	free(g);
	free(ag);
	free(x);
	free(y);
	return error;
}

/* ---- nomination ---------------------------------------------------------- */

static double rank_key(double s)
{
	return isnan(s) ? -INFINITY : s;
}

/* True when candidate (s, id) ranks below (t, jd): lower score, or equal and higher id. */
static int ranks_below(double s, uint32_t id, double t, uint32_t jd)
{
	s = rank_key(s);
	t = rank_key(t);
	return s < t || (s == t && id > jd);
}

/* Restore the min-heap (root = lowest ranked) below index i. */
static void sift_down(sluice_lora_token *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, rr = l + 1, w = i;
		if (l < n && ranks_below(h[l].score, h[l].id, h[w].score, h[w].id))
			w = l;
		if (rr < n && ranks_below(h[rr].score, h[rr].id, h[w].score, h[w].id))
			w = rr;
		if (w == i)
			return;
		sluice_lora_token tmp = h[i];
		h[i] = h[w];
		h[w] = tmp;
		i = w;
	}
}

static int cmp_token(const void *x, const void *y)
{
	const sluice_lora_token *a = x, *b = y;

	if (ranks_below(a->score, a->id, b->score, b->id))
		return 1;
	if (ranks_below(b->score, b->id, a->score, a->id))
		return -1;
	return 0;
}

int sluice_lora__top_tokens(sluice_ctx *ctx, sluice_lora_token *out, size_t k, const double *scores,
                            size_t n)
{
	sluice_lora_ref ref;
	size_t have = 0;
	int error;

	if (k > n)
		k = n;
	if (!k)
		return 0;
	if (n > UINT32_MAX)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%zu token scores: more than ids",
		                         n);
	/* a k-entry heap whose root is the weakest kept: O(n log k) */
	for (size_t t = 0; t < n; t++) {
		if (have < k) {
			out[have].id = (uint32_t)t;
			out[have++].score = scores[t];
			if (have == k)
				for (size_t i = k / 2 + 1; i-- > 0;)
					sift_down(out, k, i);
		} else if (ranks_below(out[0].score, out[0].id, scores[t], (uint32_t)t)) {
			out[0].id = (uint32_t)t;
			out[0].score = scores[t];
			sift_down(out, k, 0);
		}
	}
	qsort(out, k, sizeof(*out), cmp_token);
	if ((error = sluice_lora__ref_init(ctx, &ref, scores, n)) < 0)
		return error;
	for (size_t i = 0; i < k; i++)
		out[i].z = sluice_lora__ref_z(&ref, out[i].score);
	return (int)(k > INT_MAX ? INT_MAX : k);
}

/* ---- the whole adapter ---------------------------------------------------- */

enum { ROLE_NONE = -1, ROLE_EMBED = 5, ROLE_HEAD = 6, NROLES = 7 };

static const char *const layer0_modules[5] = {
        "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
        "model.layers.0.self_attn.v_proj", "model.layers.0.mlp.gate_proj",
        "model.layers.0.mlp.up_proj"};

static int module_role(const sluice_peft_module *pm)
{
	if (pm->embedding)
		return strcmp(pm->module, "model.embed_tokens") ? ROLE_NONE : ROLE_EMBED;
	if (!strcmp(pm->module, "lm_head"))
		return ROLE_HEAD;
	for (int i = 0; i < 5; i++)
		if (!strcmp(pm->module, layer0_modules[i]))
			return i;
	return ROLE_NONE;
}

typedef struct {
	const sluice_peft_module *pm;
	float *a, *b;
	double scale;
} held;

/* A finite number, or JSON null (jansson cannot encode NaN or infinities). */
static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static int jset(json_t *o, const char *key, json_t *v)
{
	return json_object_set_new(o, key, v) ? SLUICE_ENOMEM : 0;
}

static int jpush(json_t *arr, json_t *v)
{
	return json_array_append_new(arr, v) ? SLUICE_ENOMEM : 0;
}

static int check_finite(sluice_ctx *ctx, const float *v, size_t n, size_t cols, const char *path,
                        const char *tensor)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "%s: tensor %s: element [%zu][%zu] is not finite",
			                         path, tensor, i / cols, i % cols);
	return 0;
}

static int module_json(sluice_ctx *ctx, json_t *mods, const sluice_peft_module *pm, double s,
                       const float *a, const float *b, const char *path)
{
	size_t k = sluice_lora__nsv(pm->r, (size_t)pm->in_features, (size_t)pm->out_features);
	double *sv = NULL;
	sluice_lora_figures f;
	json_t *o = NULL, *sig = NULL;
	int error;

	if (!(sv = sluice__calloc(ctx, k ? k : 1, sizeof(double))))
		return SLUICE_ENOMEM;
	if ((error = sluice_lora__spectrum(ctx, sv, a, b, pm->r, (size_t)pm->in_features,
	                                   (size_t)pm->out_features, s)) < 0) {
		error = sluice_ctx__wrap(ctx, error, "%s: module %s", path, pm->module);
		goto done;
	}
	sluice_lora__figures(&f, sv, k);
	error = SLUICE_ENOMEM;
	if (!(o = json_object()) || !(sig = json_array()))
		goto done;
	for (size_t i = 0; i < k; i++)
		if (jpush(sig, jnum(sv[i])) < 0)
			goto done;
	if (jset(o, "module", json_string(pm->module)) < 0 ||
	    jset(o, "embedding", json_boolean(pm->embedding)) < 0 ||
	    jset(o, "r", json_integer(pm->r)) < 0 ||
	    jset(o, "in", json_integer((json_int_t)pm->in_features)) < 0 ||
	    jset(o, "out", json_integer((json_int_t)pm->out_features)) < 0 ||
	    jset(o, "scale", jnum(s)) < 0)
		goto done;
	error = jset(o, "sigma", sig);
	sig = NULL;
	if (error < 0 || (error = jset(o, "top_sv", jnum(f.top_sv))) < 0 ||
	    (error = jset(o, "top_share", jnum(f.top_share))) < 0 ||
	    (error = jset(o, "frobenius", jnum(f.frobenius))) < 0)
		goto done;
	error = jpush(mods, o);
	o = NULL;
done:
	json_decref(sig);
	json_decref(o);
	free(sv);
	return error;
}

/* The text of one token id, or JSON null (no tokenizer; not valid UTF-8). */
static int token_text(sluice_ctx *ctx, json_t **out, const sluice_tokenizer *tok, uint32_t id)
{
	char *s = NULL;
	size_t len;
	int error;

	*out = NULL;
	if (!tok) {
		*out = json_null();
		return 0;
	}
	if ((error = sluice_tokenizer__decode(ctx, &s, &len, tok, &id, 1, false)) < 0)
		return error;
	*out = sluice__utf8_valid((const unsigned char *)s, len) ? json_stringn(s, len)
	                                                         : json_null();
	free(s);
	return *out ? 0 : SLUICE_ENOMEM;
}

static int method_json(sluice_ctx *ctx, json_t *trig, const char *method, const char *const *mods,
                       size_t nmods, const double *scores, size_t vocab, size_t top_k,
                       const sluice_tokenizer *tok)
{
	sluice_lora_token *top = NULL;
	sluice_lora_ref ref = {0};
	json_t *o = NULL, *ml = NULL, *tl = NULL, *t = NULL, *text;
	int n = 0, error;

	if (scores && top_k) {
		if (!(top = sluice__calloc(ctx, top_k < vocab ? top_k : vocab, sizeof(*top))))
			return SLUICE_ENOMEM;
		if ((n = sluice_lora__top_tokens(ctx, top, top_k, scores, vocab)) < 0) {
			error = n;
			goto done;
		}
	}
	if (scores && (error = sluice_lora__ref_init(ctx, &ref, scores, vocab)) < 0)
		goto done;
	error = SLUICE_ENOMEM;
	if (!(o = json_object()) || !(ml = json_array()) || !(tl = json_array()))
		goto done;
	for (size_t i = 0; i < nmods; i++)
		if (jpush(ml, json_string(mods[i])) < 0)
			goto done;
	for (int i = 0; i < n; i++) {
		if (!(t = json_object()) || jset(t, "id", json_integer(top[i].id)) < 0)
			goto done;
		if ((error = token_text(ctx, &text, tok, top[i].id)) < 0)
			goto done;
		error = SLUICE_ENOMEM;
		if (jset(t, "text", text) < 0 || jset(t, "score", jnum(top[i].score)) < 0 ||
		    jset(t, "z", jnum(top[i].z)) < 0)
			goto done;
		error = jpush(tl, t); /* consumes t, also on failure */
		t = NULL;
		if (error < 0)
			goto done;
		error = SLUICE_ENOMEM;
	}
	if (jset(o, "method", json_string(method)) < 0)
		goto done;
	error = jset(o, "modules", ml);
	ml = NULL;
	if (error < 0 || (error = jset(o, "median", scores ? jnum(ref.median) : json_null())) < 0 ||
	    (error = jset(o, "mad", scores ? jnum(ref.mad) : json_null())) < 0)
		goto done;
	error = jset(o, "tokens", tl);
	tl = NULL;
	if (error < 0)
		goto done;
	error = jpush(trig, o);
	o = NULL;
done:
	json_decref(t);
	json_decref(tl);
	json_decref(ml);
	json_decref(o);
	free(top);
	return error;
}

/* base_dir/tokenizer.json if it exists and loads; *status says which. */
static int open_tokenizer(sluice_ctx *ctx, sluice_tokenizer **out, json_t **status,
                          const char *base_dir)
{
	sluice_buf path = {0}, msg = {0};
	unsigned char *text = NULL;
	struct stat st;
	size_t len;
	int error;

	*out = NULL;
	*status = NULL;
	if ((error = sluice_buf__printf(ctx, &path, "%s/tokenizer.json", base_dir)) < 0)
		goto done;
	if (stat((const char *)path.ptr, &st) < 0) {
		*status = json_string("absent");
		goto done;
	}
	/* A file this code cannot read still leaves the weight figures to report. */
	if ((error = sluice_io__read_file(ctx, &text, &len, (const char *)path.ptr,
	                                  TOKENIZER_MAX)) < 0 ||
	    (error = sluice_tokenizer__load(ctx, out, (const char *)text, len,
	                                    (const char *)path.ptr)) < 0) {
		if (error == SLUICE_ENOMEM)
			goto done;
		if ((error = sluice_buf__printf(ctx, &msg, "refused: %s", ctx->errmsg)) < 0)
			goto done;
		*status = json_string((const char *)msg.ptr);
		goto done;
	}
	*status = json_string("loaded");
done:
	if (!error && !*status)
		error = SLUICE_ENOMEM;
	free(text);
	sluice_buf__dispose(&path);
	sluice_buf__dispose(&msg);
	return error;
}

int sluice_lora__analyse(sluice_ctx *ctx, json_t **out, const char *adapter_dir,
                         const char *base_dir, double stack_scale, size_t top_k)
{
	sluice_model *m = NULL;
	sluice_model_adapter ad = {.fd = -1};
	sluice_tokenizer *tok = NULL;
	held roles[NROLES];
	sluice_lora_proj proj[5];
	const char *names[5];
	json_t *root = NULL, *mods = NULL, *trig = NULL, *tstatus = NULL;
	double *scores = NULL;
	size_t V, H, np = 0, i;
	int error;

	*out = NULL;
	memset(roles, 0, sizeof(roles));
	if (!isfinite(stack_scale))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "%s: the stack scale is not finite",
		                         adapter_dir);
	if ((error = sluice_model__open(ctx, &m, base_dir)) < 0 ||
	    (error = sluice_model__adapter_open(ctx, &ad, m, adapter_dir)) < 0)
		goto done;
	V = sluice_model__config(m)->vocab;
	H = sluice_model__config(m)->hidden;
	if (!(root = json_object()) || !(mods = json_array()) || !(trig = json_array())) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < ad.peft.nmodules; i++) {
		const sluice_peft_module *pm = &ad.peft.modules[i];
		double s = pm->scale * stack_scale;
		float *a = NULL, *b = NULL;
		int role = module_role(pm);
		if (!isfinite(s)) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: module %s: scale %g is not finite", ad.path,
			                          pm->module, s);
			goto done;
		}
		if ((error = sluice_model__adapter_tensor(ctx, &a, &ad, pm->a_name,
		                                          (uint64_t)pm->r * pm->in_features)) < 0 ||
		    (error = sluice_model__adapter_tensor(
		             ctx, &b, &ad, pm->b_name, (uint64_t)pm->r * pm->out_features)) < 0 ||
		    (error = check_finite(ctx, a, (size_t)pm->r * pm->in_features,
		                          (size_t)pm->in_features, ad.path, pm->a_name)) < 0 ||
		    (error = check_finite(ctx, b, (size_t)pm->r * pm->out_features, pm->r, ad.path,
		                          pm->b_name)) < 0 ||
		    (error = module_json(ctx, mods, pm, s, a, b, ad.path)) < 0) {
			free(a);
			free(b);
			goto done;
		}
		if (role == ROLE_NONE) {
			free(a);
			free(b);
			continue;
		}
		roles[role] = (held){pm, a, b, s};
	}
	if ((error = open_tokenizer(ctx, &tok, &tstatus, base_dir)) < 0)
		goto done;
	if (!(scores = sluice__calloc(ctx, V, sizeof(double)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	for (i = 0; i < 5; i++) {
		if (!roles[i].pm)
			continue;
		if (roles[i].pm->in_features != H) {
			error = sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "%s: module %s reads %llu inputs, the base's hidden "
			        "size is %zu",
			        ad.path, roles[i].pm->module,
			        (unsigned long long)roles[i].pm->in_features, H);
			goto done;
		}
		proj[np] = (sluice_lora_proj){roles[i].a,     roles[i].b,
		                              roles[i].pm->r, (size_t)roles[i].pm->out_features,
		                              roles[i].scale, i >= 3};
		names[np++] = roles[i].pm->module;
	}
	if (np && ((error = sluice_lora__layer0_scores(ctx, scores, m, proj, np)) < 0 ||
	           (error = method_json(ctx, trig, "layer0-projections", names, np, scores, V,
	                                top_k, tok)) < 0))
		goto done;
	for (int role = ROLE_EMBED; role <= ROLE_HEAD; role++) {
		const held *h = &roles[role];
		const char *name = h->pm ? h->pm->module : NULL;
		if (!h->pm)
			continue;
		/* the PEFT check held the shapes to the base's, and the base's to config.json */
		if (h->pm->in_features != (role == ROLE_EMBED ? V : H) ||
		    h->pm->out_features != (role == ROLE_EMBED ? H : V)) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "%s: module %s is [%llu, %llu], the base's "
			                          "vocabulary and hidden size are %zu and %zu",
			                          ad.path, name,
			                          (unsigned long long)h->pm->in_features,
			                          (unsigned long long)h->pm->out_features, V, H);
			goto done;
		}
		error = role == ROLE_EMBED ? sluice_lora__embedding_scores(ctx, scores, h->a, h->b,
		                                                           h->pm->r, V, H, h->scale)
		                           : sluice_lora__lm_head_scores(ctx, scores, h->a, h->b,
		                                                         h->pm->r, V, H, h->scale);
		if (error < 0 ||
		    (error = method_json(ctx, trig,
		                         role == ROLE_EMBED ? "embedding-rows" : "lm-head-rows",
		                         &name, 1, scores, V, top_k, tok)) < 0)
			goto done;
	}
	if (!json_array_size(trig) &&
	    (error = method_json(ctx, trig, "none", NULL, 0, NULL, 0, 0, NULL)) < 0)
		goto done;
	error = jset(root, "modules", mods);
	mods = NULL;
	if (error < 0)
		goto done;
	error = jset(root, "triggers", trig);
	trig = NULL;
	if (error < 0)
		goto done;
	error = jset(root, "tokenizer", tstatus);
	tstatus = NULL;
	if (error < 0)
		goto done;
	*out = root;
	root = NULL;
done:
	for (i = 0; i < NROLES; i++) {
		free(roles[i].a);
		free(roles[i].b);
	}
	free(scores);
	json_decref(tstatus);
	json_decref(trig);
	json_decref(mods);
	json_decref(root);
	sluice_tokenizer__free(tok);
	sluice_model__adapter_dispose(&ad);
	sluice_model__free(m);
	return error;
}
