/*
 * tests/gates/test_lora_stats.c - the poisoning gate's weight statistics:
 * spectra against an SVD of the explicitly formed update, robust z-scores on
 * known data, token scores against their definitions, trigger nomination on
 * planted adapters, and the whole analysis on real files (a sluice-synth
 * base and the committed test model).
 */
#include "testutil.h"
#include "internal.h"
#include "safetensors.h"
#include "lora_stats.h"
#include "model.h"
#include "tokenizer.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The reference SVD, from the OpenBLAS this test links (libsluice opens its own). */
extern void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
                    const int *lda, double *s, double *u, const int *ldu, double *vt,
                    const int *ldvt, double *work, const int *lwork, int *info, size_t jobu_len,
                    size_t jobvt_len);

#define TEST_MODEL SLUICE_RESOURCES "/test-model"

typedef struct {
	sluice_ctx *ctx;
	char *tmp;
	char synth[4096]; /* sluice-synth base: hidden 64, vocab 512, 2 layers */
} fixture;

static fixture F;

static uint64_t rng = 12345;

/* splitmix64 -> uniform in [-1, 1) */
static double urand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) / 4503599627370496.0 - 1.0;
}

static float *rand_floats(size_t n, double amp)
{
	float *v = malloc(n * sizeof(float));

	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		v[i] = (float)(amp * urand());
	return v;
}

/* All singular values of the explicitly formed dW = s.B.A (out x in), descending. */
static double *explicit_sv(const float *a, const float *b, unsigned r, size_t in, size_t out,
                           double s, size_t *n, double *fro2)
{
	int m = (int)out, nn = (int)in, lwork = -1, info = 0, one = 1;
	double *w = calloc(in * out, sizeof(double)), q, dummy;
	double *sv = calloc(in < out ? in : out, sizeof(double)), *work;

	*fro2 = 0;
	/* dW column-major: (i, j) at j*out + i */
	for (size_t i = 0; i < out; i++) {
		for (size_t j = 0; j < in; j++) {
			double acc = 0;
			for (unsigned k = 0; k < r; k++)
				acc += (double)b[i * r + k] * a[k * in + j];
			w[j * out + i] = s * acc;
			*fro2 += s * acc * s * acc;
		}
	}
	dgesvd_("N", "N", &m, &nn, w, &m, sv, &dummy, &one, &dummy, &one, &q, &lwork, &info, 1, 1);
	assert_int_equal(info, 0);
	lwork = (int)q;
	work = malloc((size_t)lwork * sizeof(double));
	dgesvd_("N", "N", &m, &nn, w, &m, sv, &dummy, &one, &dummy, &one, work, &lwork, &info, 1,
	        1);
	assert_int_equal(info, 0);
	free(work);
	free(w);
	*n = in < out ? in : out;
	return sv;
}

/* spectrum(a, b) against the explicit SVD; b may have been made rank-deficient. */
static void check_spectrum(const float *a, const float *b, unsigned r, size_t in, size_t out,
                           double s)
{
	size_t k = sluice_lora__nsv(r, in, out), nfull;
	double *sv = calloc(k, sizeof(double)), fro2,
	       *ref = explicit_sv(a, b, r, in, out, s, &nfull, &fro2);
	sluice_lora_figures f;

	assert_int_equal(sluice_lora__spectrum(F.ctx, sv, a, b, r, in, out, s), 0);
	assert_true(ref[0] > 0);
	for (size_t i = 0; i < k; i++) {
		if (fabs(sv[i] - ref[i]) > 1e-10 * ref[0])
			fail_msg("r %u, %zu x %zu: sigma_%zu %.17g, explicit %.17g", r, out, in, i,
			         sv[i], ref[i]);
		if (i)
			assert_true(sv[i] <= sv[i - 1]);
	}
	/* the update has rank at most k: the formed matrix's other values vanish */
	for (size_t i = k; i < nfull; i++)
		assert_true(ref[i] <= 1e-10 * ref[0]);
	sluice_lora__figures(&f, sv, k);
	assert_true(fabs(f.top_sv - ref[0]) <= 1e-10 * ref[0]);
	assert_true(fabs(f.frobenius - sqrt(fro2)) <= 1e-10 * sqrt(fro2));
	assert_true(fabs(f.top_share - ref[0] * ref[0] / fro2) <= 1e-10);
	free(sv);
	free(ref);
}

static void test_lora_stats__spectrum_matches_explicit_svd(void **state)
{
	/* r, in, out: square, tall, wide, r > in, r > out, r > both, rank 1 */
	static const size_t shapes[][3] = {{4, 16, 12}, {8, 40, 7},  {8, 5, 20}, {16, 33, 9},
	                                   {3, 7, 7},   {12, 5, 6},  {1, 1, 1},  {1, 30, 20},
	                                   {6, 64, 64}, {32, 24, 40}};
	(void)state;
	for (size_t c = 0; c < sizeof(shapes) / sizeof(shapes[0]); c++) {
		unsigned r = (unsigned)shapes[c][0];
		size_t in = shapes[c][1], out = shapes[c][2];
		float *a = rand_floats(r * in, 0.5), *b = rand_floats(out * r, 0.1);
		check_spectrum(a, b, r, in, out, c % 2 ? 2.0 : -0.75);
		free(a);
		free(b);
	}
}

static void test_lora_stats__rank_deficient_factors(void **state)
{
	enum { R = 6, IN = 20, OUT = 15 };
	float *a = rand_floats(R * IN, 1.0), *b = rand_floats(OUT * R, 1.0);
	double sv[R];
	sluice_lora_figures f;

	(void)state;
	/* B's columns 3..5 copy columns 0..2: rank 3 */
	for (size_t i = 0; i < OUT; i++)
		for (size_t j = 3; j < R; j++)
			b[i * R + j] = b[i * R + j - 3];
	check_spectrum(a, b, R, IN, OUT, 1.5);
	assert_int_equal(sluice_lora__spectrum(F.ctx, sv, a, b, R, IN, OUT, 1.5), 0);
	assert_true(sv[2] > 1e-3 * sv[0]);
	for (size_t i = 3; i < R; i++)
		assert_true(sv[i] <= 1e-12 * sv[0]);

	/* A with a zero row and B = 0: all zeros, figures 0 */
	memset(a, 0, IN * sizeof(float));
	check_spectrum(a, b, R, IN, OUT, 1.0);
	memset(b, 0, OUT * R * sizeof(float));
	assert_int_equal(sluice_lora__spectrum(F.ctx, sv, a, b, R, IN, OUT, 3.0), 0);
	for (size_t i = 0; i < R; i++)
		assert_true(sv[i] == 0.0);
	sluice_lora__figures(&f, sv, R);
	assert_true(f.top_sv == 0 && f.top_share == 0 && f.frobenius == 0);
	free(a);
	free(b);
}

static void test_lora_stats__spectrum_refuses_bad_input(void **state)
{
	float *a = rand_floats(4 * 8, 1.0), *b = rand_floats(8 * 4, 1.0);
	double sv[4];

	(void)state;
	b[2 * 4 + 3] = NAN;
	assert_int_equal(sluice_lora__spectrum(F.ctx, sv, a, b, 4, 8, 8, 1.0), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(F.ctx), "lora_B element [2][3]"));
	b[2 * 4 + 3] = 0;
	a[9] = INFINITY;
	assert_int_equal(sluice_lora__spectrum(F.ctx, sv, a, b, 4, 8, 8, 1.0), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(F.ctx), "lora_A element [1][1]"));
	a[9] = 0;
	assert_int_equal(sluice_lora__spectrum(F.ctx, sv, a, b, 4, 8, 8, NAN), SLUICE_EINVALID);
	assert_int_equal(sluice_lora__spectrum(F.ctx, sv, a, b, 0, 8, 8, 1.0), SLUICE_EINVALID);
	assert_int_equal(sluice_lora__spectrum(F.ctx, sv, a, b, 4, 0, 8, 1.0), SLUICE_EINVALID);
	free(a);
	free(b);
}

static void test_lora_stats__robust_z_on_known_data(void **state)
{
	const double odd[] = {4, 1, 100, 3, 2};          /* median 3, MAD 1 */
	const double even[] = {1, 2, 3, 4};              /* median 2.5, MAD 1 */
	const double same[] = {5, 5, 5, 5, 5, 5};        /* MAD 0: the floor */
	const double zeros[] = {0, 0, 0};                /* median 0 too */
	const double holes[] = {1, NAN, 2, INFINITY, 3}; /* 3 finite values */
	sluice_lora_ref ref;

	(void)state;
	assert_true(fabs(sluice_lora__robust_z(10, odd, 5) - 7 / 1.4826) < 1e-12);
	assert_true(fabs(sluice_lora__robust_z(0, odd, 5) + 3 / 1.4826) < 1e-12);
	assert_true(fabs(sluice_lora__robust_z(4, even, 4) - 1.5 / 1.4826) < 1e-12);
	assert_true(sluice_lora__robust_z(5, same, 6) == 0);
	/* 10% above identical values: 0.5 / (1.4826 . 1e-3 . 5.5) */
	assert_true(fabs(sluice_lora__robust_z(5.5, same, 6) - 0.5 / (1.4826 * 5.5e-3)) < 1e-9);
	assert_true(fabs(sluice_lora__robust_z(4.5, same, 6) + 0.5 / (1.4826 * 5e-3)) < 1e-9);
	assert_true(isfinite(sluice_lora__robust_z(1e300, same, 6)));
	assert_true(fabs(sluice_lora__robust_z(1e300, same, 6)) < 1350);
	assert_true(sluice_lora__robust_z(0, zeros, 3) == 0);
	assert_true(fabs(sluice_lora__robust_z(2, zeros, 3) - 1 / 1.4826e-3) < 1e-6);
	/* non-finite entries are left out: {1, 2, 3} */
	assert_true(fabs(sluice_lora__robust_z(4, holes, 5) - 2 / 1.4826) < 1e-12);
	/* no reference: fewer than 3 (finite) values */
	assert_true(isnan(sluice_lora__robust_z(1, odd, 2)));
	assert_true(isnan(sluice_lora__robust_z(1, odd, 0)));
	assert_true(isnan(sluice_lora__robust_z(1, holes, 4)));
	assert_true(isnan(sluice_lora__robust_z(NAN, odd, 5)));
	assert_int_equal(sluice_lora__ref_init(F.ctx, &ref, odd, 5), 0);
	assert_true(ref.median == 3 && ref.mad == 1 && ref.n == 5);
}

static void test_lora_stats__top_tokens_rank_and_break_ties(void **state)
{
	const double s[] = {0.5, 3, 1, 3, NAN, 2, 0.1, 0.2, 0.3, 0.4};
	sluice_lora_token t[12];

	(void)state;
	assert_int_equal(sluice_lora__top_tokens(F.ctx, t, 4, s, 10), 4);
	assert_int_equal(t[0].id, 1); /* tie at 3: the lower id first */
	assert_int_equal(t[1].id, 3);
	assert_int_equal(t[2].id, 5);
	assert_int_equal(t[3].id, 2);
	/* z against all 10 (NaN left out): median of 9 values = 0.5, MAD = 0.4 */
	assert_true(fabs(t[2].z - 1.5 / (1.4826 * 0.4)) < 1e-9);
	/* k above n: everything, the NaN last */
	assert_int_equal(sluice_lora__top_tokens(F.ctx, t, 12, s, 10), 10);
	assert_int_equal(t[9].id, 4);
	assert_int_equal(t[8].id, 6);
	assert_int_equal(sluice_lora__top_tokens(F.ctx, t, 0, s, 10), 0);
	/* a tie between kept tokens: the higher id is the one pushed out */
	{
		const double u[] = {1, 1, 5};
		assert_int_equal(sluice_lora__top_tokens(F.ctx, t, 2, u, 3), 2);
		assert_int_equal(t[0].id, 2);
		assert_int_equal(t[1].id, 0);
	}
}

/* ---- files ---------------------------------------------------------------- */

typedef struct {
	const char *name;
	uint64_t rows, cols;
	const float *data;
} st_tensor;

/* Write a safetensors file of n 2-D tensors in dtype "F32" or "BF16". */
static void write_st(const char *path, const st_tensor *t, size_t n, const char *dtype)
{
	size_t esz = strcmp(dtype, "F32") ? 2 : 4, off = 0, tlen, padded;
	json_t *hdr = json_object();
	sluice_buf out = {0};
	unsigned char len8[8];
	char *text;

	for (size_t i = 0; i < n; i++) {
		size_t bytes = (size_t)(t[i].rows * t[i].cols) * esz;
		json_object_set_new(hdr, t[i].name,
		                    json_pack("{s:s,s:[I,I],s:[I,I]}", "dtype", dtype, "shape",
		                              (json_int_t)t[i].rows, (json_int_t)t[i].cols,
		                              "data_offsets", (json_int_t)off,
		                              (json_int_t)(off + bytes)));
		off += bytes;
	}
	text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	tlen = strlen(text);
	padded = (tlen + 7) & ~(size_t)7;
	sluice__st64(len8, padded);
	assert_int_equal(sluice_buf__put(F.ctx, &out, len8, 8), 0);
	assert_int_equal(sluice_buf__put(F.ctx, &out, text, tlen), 0);
	assert_int_equal(sluice_buf__put(F.ctx, &out, "        ", padded - tlen), 0);
	for (size_t i = 0; i < n; i++) {
		for (uint64_t k = 0; k < t[i].rows * t[i].cols; k++) {
			unsigned char le[4];
			uint32_t u;
			if (esz == 4) {
				memcpy(&u, &t[i].data[k], 4);
				sluice__st32(le, u);
			} else {
				uint16_t h = tu_bf16_bits(t[i].data[k]);
				le[0] = (unsigned char)h;
				le[1] = (unsigned char)(h >> 8);
			}
			assert_int_equal(sluice_buf__put(F.ctx, &out, le, esz), 0);
		}
	}
	tu_write(path, out.ptr, out.len);
	sluice_buf__dispose(&out);
	free(text);
	json_decref(hdr);
}

/* An adapter directory: config with the given target_modules and r, alpha = 2r (scale 2). */
static void write_adapter(const char *dir, const char *targets, unsigned r, const st_tensor *t,
                          size_t n, const char *dtype)
{
	char path[8192], cfg[1024];

	snprintf(cfg, sizeof(cfg),
	         "{\"peft_type\": \"LORA\", \"r\": %u, \"lora_alpha\": %u, \"target_modules\": "
	         "[%s], \"bias\": \"none\", \"task_type\": \"CAUSAL_LM\"}",
	         r, 2 * r, targets);
	snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
	tu_write(path, cfg, strlen(cfg));
	snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
	write_st(path, t, n, dtype);
}

static json_t *analyse_ok(const char *adir, const char *base, double stack, size_t k)
{
	json_t *j = NULL;
	int rc = sluice_lora__analyse(F.ctx, &j, adir, base, stack, k);

	if (rc != 0)
		fail_msg("analyse %s: %d %s", adir, rc, sluice_ctx_errmsg(F.ctx));
	assert_non_null(j);
	return j;
}

/* The triggers entry of a method, or NULL. */
static json_t *method(json_t *j, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(j, "triggers"), i, v)
	{
		if (!strcmp(json_string_value(json_object_get(v, "method")), name))
			return v;
	}
	return NULL;
}

static json_int_t tok_id(json_t *m, size_t i)
{
	return json_integer_value(
	        json_object_get(json_array_get(json_object_get(m, "tokens"), i), "id"));
}

static double tok_num(json_t *m, size_t i, const char *field)
{
	return json_number_value(
	        json_object_get(json_array_get(json_object_get(m, "tokens"), i), field));
}

/*
 * An adapter on layer 0's q_proj and gate_proj whose A's first row is
 * g . RMSNorm(e_t) for the planted token t (the rest small noise): the
 * projections react to t far more than to any other token, so t must be
 * nominated first, and stand far out of the vocabulary's scores.
 */
static void test_lora_stats__layer0_trigger_is_nominated(void **state)
{
	enum { H = 64, V = 512, I = 172, R = 4, T = 321 };
	sluice_model *m = NULL;
	float e[H], u[H], *aq = rand_floats(R * H, 0.01), *bq = rand_floats(H * R, 0.1);
	float *ag = rand_floats(R * H, 0.01), *bg = rand_floats(I * R, 0.1);
	char adir[4096];
	double ss = 0;
	json_t *j, *l0;
	const sluice_model_config *c;

	(void)state;
	assert_int_equal(sluice_model__open(F.ctx, &m, F.synth), 0);
	c = sluice_model__config(m);
	assert_int_equal(c->vocab, V);
	sluice_model__embed_rows(m, e, T, 1);
	for (size_t d = 0; d < H; d++)
		ss += (double)e[d] * e[d];
	for (size_t d = 0; d < H; d++)
		u[d] = (float)(e[d] / sqrt(ss / H + c->rms_eps));
	for (size_t d = 0; d < H; d++) {
		aq[d] = u[d] * sluice_model__norm_weight(m, 0, 0)[d] / 8;
		ag[d] = u[d] * sluice_model__norm_weight(m, 0, 1)[d] / 8;
	}
	sluice_model__free(m);
	{
		const st_tensor t[] = {
		        {"base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight", R, H, ag},
		        {"base_model.model.model.layers.0.mlp.gate_proj.lora_B.weight", I, R, bg},
		        {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", R, H,
		         aq},
		        {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", H, R,
		         bq}};
		snprintf(adir, sizeof(adir), "%s/l0", F.tmp);
		/* BF16: the reading path converts, and the plant survives the rounding */
		write_adapter(adir, "\"q_proj\", \"gate_proj\"", R, t, 4, "BF16");
	}
	j = analyse_ok(adir, F.synth, 1.0, 5);
	assert_int_equal(json_array_size(json_object_get(j, "modules")), 2);
	assert_int_equal(json_array_size(json_object_get(j, "triggers")), 1);
	assert_non_null(l0 = method(j, "layer0-projections"));
	assert_int_equal(json_array_size(json_object_get(l0, "modules")), 2);
	assert_int_equal(json_array_size(json_object_get(l0, "tokens")), 5);
	assert_int_equal(tok_id(l0, 0), T);
	if (!(tok_num(l0, 0, "z") > 8))
		fail_msg("planted token's z %g", tok_num(l0, 0, "z"));
	/* the planted token stands out; the runner-up does not by much */
	assert_true(tok_num(l0, 0, "score") > 2 * tok_num(l0, 1, "score"));
	assert_true(tok_num(l0, 1, "z") < tok_num(l0, 0, "z") / 2);
	/* no tokenizer.json in a sluice-synth model */
	assert_string_equal(json_string_value(json_object_get(j, "tokenizer")), "absent");
	assert_true(json_is_null(
	        json_object_get(json_array_get(json_object_get(l0, "tokens"), 0), "text")));
	json_decref(j);
	free(aq);
	free(bq);
	free(ag);
	free(bg);
}

/*
 * An embedding adapter whose lora_embedding_A column for t is large, and an
 * lm_head adapter whose lora_B row for u is: each method nominates its
 * token first.
 */
static void test_lora_stats__embedding_and_head_triggers(void **state)
{
	enum { H = 64, V = 512, R = 3, T = 77, U = 400 };
	float *ae = rand_floats(R * V, 0.01), *be = rand_floats(H * R, 0.1);
	float *al = rand_floats(R * H, 0.1), *bl = rand_floats(V * R, 0.01);
	char adir[4096];
	json_t *j, *em, *lm;

	(void)state;
	for (size_t k = 0; k < R; k++)
		ae[k * V + T] = 0.5f;
	for (size_t k = 0; k < R; k++)
		bl[U * R + k] = k == 1 ? -0.4f : 0.3f;
	{
		const st_tensor t[] = {
		        {"base_model.model.lm_head.lora_A.weight", R, H, al},
		        {"base_model.model.lm_head.lora_B.weight", V, R, bl},
		        {"base_model.model.model.embed_tokens.lora_embedding_A", R, V, ae},
		        {"base_model.model.model.embed_tokens.lora_embedding_B", H, R, be}};
		snprintf(adir, sizeof(adir), "%s/embhead", F.tmp);
		write_adapter(adir, "\"embed_tokens\", \"lm_head\"", R, t, 4, "F32");
	}
	j = analyse_ok(adir, F.synth, 0.5, 3);
	assert_int_equal(json_array_size(json_object_get(j, "triggers")), 2);
	/* order: embedding-rows before lm-head-rows */
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(json_object_get(j, "triggers"), 0), "method")),
	                    "embedding-rows");
	assert_non_null(em = method(j, "embedding-rows"));
	assert_non_null(lm = method(j, "lm-head-rows"));
	assert_null(method(j, "layer0-projections"));
	assert_int_equal(tok_id(em, 0), T);
	assert_int_equal(tok_id(lm, 0), U);
	assert_true(tok_num(em, 0, "z") > 20);
	assert_true(tok_num(lm, 0, "z") > 20);
	/* scale 2 (alpha = 2r) x stack 0.5 */
	assert_true(fabs(json_number_value(json_object_get(
	                         json_array_get(json_object_get(j, "modules"), 0), "scale")) -
	                 1.0) < 1e-12);
	json_decref(j);
	free(ae);
	free(be);
	free(al);
	free(bl);
}

/* Score functions against the norms of rows of the formed dE and dW. */
static void test_lora_stats__row_scores_match_formed_rows(void **state)
{
	enum { V = 50, H = 12, R = 5 };
	float *a = rand_floats(R * V, 1.0), *b = rand_floats(H * R, 1.0);
	float *al = rand_floats(R * H, 1.0), *bl = rand_floats(V * R, 1.0);
	double sc[V], s = -1.25;

	(void)state;
	assert_int_equal(sluice_lora__embedding_scores(F.ctx, sc, a, b, R, V, H, s), 0);
	for (size_t t = 0; t < V; t++) {
		double n2 = 0;
		for (size_t d = 0; d < H; d++) {
			double v = 0; /* dE[t][d] = s . sum_k B[d][k] A[k][t] */
			for (size_t k = 0; k < R; k++)
				v += (double)b[d * R + k] * a[k * V + t];
			n2 += s * v * s * v;
		}
		assert_true(fabs(sc[t] - sqrt(n2)) <= 1e-9 * sqrt(n2));
	}
	assert_int_equal(sluice_lora__lm_head_scores(F.ctx, sc, al, bl, R, V, H, s), 0);
	for (size_t t = 0; t < V; t++) {
		double n2 = 0;
		for (size_t d = 0; d < H; d++) {
			double v = 0; /* dW[t][d] = s . sum_k B[t][k] A[k][d] */
			for (size_t k = 0; k < R; k++)
				v += (double)bl[t * R + k] * al[k * H + d];
			n2 += s * v * s * v;
		}
		assert_true(fabs(sc[t] - sqrt(n2)) <= 1e-9 * sqrt(n2));
	}
	free(a);
	free(b);
	free(al);
	free(bl);
}

/*
 * Layer-0 scores against the definition, on the committed test model
 * (trained norms, so g is far from 1): for each token,
 * sum_P |s| ||B.A.(g_P * RMSNorm(e_t))||.
 */
static void test_lora_stats__layer0_scores_match_definition(void **state)
{
	sluice_model *m = NULL;
	const sluice_model_config *c;
	size_t H, V, kv;
	sluice_lora_proj p[3];
	float *a[3], *b[3], *e;
	double *sc;

	(void)state;
	assert_int_equal(sluice_model__open(F.ctx, &m, TEST_MODEL), 0);
	c = sluice_model__config(m);
	H = c->hidden;
	V = c->vocab;
	kv = (size_t)c->kv_heads * c->head_dim;
	{
		const size_t outs[3] = {kv, c->inter, H};
		const unsigned rs[3] = {4, 7, 2};
		const double ss[3] = {2.0, -0.5, 1.0};
		const int post[3] = {0, 1, 0};
		for (int i = 0; i < 3; i++) {
			a[i] = rand_floats(rs[i] * H, 0.2);
			b[i] = rand_floats(outs[i] * rs[i], 0.2);
			p[i] = (sluice_lora_proj){a[i], b[i], rs[i], outs[i], ss[i], post[i]};
		}
	}
	sc = calloc(V, sizeof(double));
	e = malloc(H * sizeof(float));
	assert_int_equal(sluice_lora__layer0_scores(F.ctx, sc, m, p, 3), 0);
	for (size_t t = 0; t < V; t++) {
		double ss = 0, want = 0;
		sluice_model__embed_rows(m, e, t, 1);
		for (size_t d = 0; d < H; d++)
			ss += (double)e[d] * e[d];
		for (int i = 0; i < 3; i++) {
			const float *g = sluice_model__norm_weight(m, 0, p[i].post);
			double h[8] = {0}, n2 = 0;
			for (unsigned k = 0; k < p[i].r; k++)
				for (size_t d = 0; d < H; d++)
					h[k] += (double)p[i].a[k * H + d] * g[d] * e[d] /
					        sqrt(ss / (double)H + c->rms_eps);
			for (size_t o = 0; o < p[i].out; o++) {
				double v = 0;
				for (unsigned k = 0; k < p[i].r; k++)
					v += (double)p[i].b[o * p[i].r + k] * h[k];
				n2 += v * v;
			}
			want += fabs(p[i].scale) * sqrt(n2);
		}
		if (fabs(sc[t] - want) > 1e-4 * want)
			fail_msg("token %zu: score %.9g, definition %.9g", t, sc[t], want);
	}
	/* the norms matter: the same projections with g = 1 score differently */
	{
		const float *g0 = sluice_model__norm_weight(m, 0, 0);
		double lo = g0[0], hi = g0[0];
		for (size_t d = 1; d < H; d++)
			lo = g0[d] < lo ? g0[d] : lo, hi = g0[d] > hi ? g0[d] : hi;
		assert_true(hi > 1.5 * lo);
	}
	for (int i = 0; i < 3; i++) {
		free(a[i]);
		free(b[i]);
	}
	free(sc);
	free(e);
	sluice_model__free(m);
}

/*
 * The committed test model with a sluice-synth adapter on every projection:
 * real files load, the report has the documented shape, and each module's
 * figures agree with the spectrum of its own tensors. Prints the time.
 */
static void test_lora_stats__analyse_test_model(void **state)
{
	char adir[4096];
	struct timespec t0, t1;
	json_t *j, *mod, *l0, *tok;
	size_t i, k;
	double ms;

	(void)state;
	snprintf(adir, sizeof(adir), "%s/tm-adapter", F.tmp);
	tu_sh_ok(NULL,
	         "'%s' lora '%s' --base '%s' --r 8 --alpha 16 --targets "
	         "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --seed 9",
	         SLUICE_SYNTH, adir, TEST_MODEL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	j = analyse_ok(adir, TEST_MODEL, 1.0, 10);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("sluice_lora__analyse on the test model (28 modules, r 8): %.1f ms\n", ms);
	assert_int_equal(json_array_size(json_object_get(j, "modules")), 28);
	json_array_foreach(json_object_get(j, "modules"), i, mod)
	{
		json_t *sig = json_object_get(mod, "sigma");
		double sum = 0, top = json_number_value(json_object_get(mod, "top_sv"));
		assert_int_equal(json_integer_value(json_object_get(mod, "r")), 8);
		assert_true(json_is_false(json_object_get(mod, "embedding")));
		assert_true(fabs(json_number_value(json_object_get(mod, "scale")) - 2.0) < 1e-12);
		assert_int_equal(json_array_size(sig), 8);
		for (k = 0; k < 8; k++) {
			double s = json_number_value(json_array_get(sig, k));
			sum += s * s;
			if (k)
				assert_true(s <= json_number_value(json_array_get(sig, k - 1)));
		}
		assert_true(top > 0 && top == json_number_value(json_array_get(sig, 0)));
		assert_true(fabs(json_number_value(json_object_get(mod, "frobenius")) - sqrt(sum)) <
		            1e-9 * sqrt(sum));
		assert_true(fabs(json_number_value(json_object_get(mod, "top_share")) -
		                 top * top / sum) < 1e-9);
		if (i)
			assert_true(
			        strcmp(json_string_value(json_object_get(
			                       json_array_get(json_object_get(j, "modules"), i - 1),
			                       "module")),
			               json_string_value(json_object_get(mod, "module"))) < 0);
	}
	assert_string_equal(json_string_value(json_object_get(j, "tokenizer")), "loaded");
	assert_int_equal(json_array_size(json_object_get(j, "triggers")), 1);
	assert_non_null(l0 = method(j, "layer0-projections"));
	assert_int_equal(json_array_size(json_object_get(l0, "modules")), 5);
	assert_int_equal(json_array_size(json_object_get(l0, "tokens")), 10);
	assert_true(json_number_value(json_object_get(l0, "median")) > 0);
	assert_true(json_number_value(json_object_get(l0, "mad")) > 0);
	json_array_foreach(json_object_get(l0, "tokens"), i, tok)
	{
		assert_true(json_is_string(json_object_get(tok, "text")));
		assert_true(json_is_real(json_object_get(tok, "z")));
		if (i)
			assert_true(tok_num(l0, i, "score") <= tok_num(l0, i - 1, "score"));
	}
	/* each text is the tokenizer's decoding of its id */
	{
		size_t len;
		unsigned char *raw = tu_read(TEST_MODEL "/tokenizer.json", &len);
		sluice_tokenizer *tk = NULL;
		assert_non_null(raw);
		assert_int_equal(sluice_tokenizer__load(F.ctx, &tk, (const char *)raw, len, "t"),
		                 0);
		json_array_foreach(json_object_get(l0, "tokens"), i, tok)
		{
			uint32_t id = (uint32_t)json_integer_value(json_object_get(tok, "id"));
			char *text;
			size_t tl;
			assert_int_equal(
			        sluice_tokenizer__decode(F.ctx, &text, &tl, tk, &id, 1, false), 0);
			assert_string_equal(json_string_value(json_object_get(tok, "text")), text);
			free(text);
		}
		sluice_tokenizer__free(tk);
		free(raw);
	}
	json_decref(j);
}

/* An adapter on no module the methods read: triggers say "none". */
static void test_lora_stats__no_method_says_none(void **state)
{
	enum { H = 64, R = 2 };
	float *a = rand_floats(R * H, 0.1), *b = rand_floats(H * R, 0.1);
	char adir[4096];
	json_t *j, *t;

	(void)state;
	{
		const st_tensor ts[] = {
		        {"base_model.model.model.layers.1.self_attn.o_proj.lora_A.weight", R, H, a},
		        {"base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight", H, R,
		         b}};
		snprintf(adir, sizeof(adir), "%s/none", F.tmp);
		write_adapter(adir, "\"o_proj\"", R, ts, 2, "F32");
	}
	j = analyse_ok(adir, F.synth, 1.0, 5);
	assert_int_equal(json_array_size(json_object_get(j, "triggers")), 1);
	assert_non_null(t = method(j, "none"));
	assert_int_equal(json_array_size(json_object_get(t, "tokens")), 0);
	assert_int_equal(json_array_size(json_object_get(t, "modules")), 0);
	assert_true(json_is_null(json_object_get(t, "median")));
	assert_int_equal(json_array_size(json_object_get(j, "modules")), 1);
	json_decref(j);
	free(a);
	free(b);
}

/*
 * A two-token vocabulary is no reference population: z is NAN, written as
 * null, and so is nothing else.
 */
static void test_lora_stats__tiny_vocabulary_has_no_reference(void **state)
{
	enum { H = 16, V = 2, R = 2 };
	float *a = rand_floats(R * V, 0.1), *b = rand_floats(H * R, 0.1);
	char base[4096], adir[4096];
	json_t *j, *em, *t0;

	(void)state;
	snprintf(base, sizeof(base), "%s/tiny", F.tmp);
	tu_sh_ok(NULL, "'%s' model '%s' --hidden 16 --heads 2 --kv-heads 1 --inter 8 --vocab 2",
	         SLUICE_SYNTH, base);
	{
		const st_tensor ts[] = {
		        {"base_model.model.model.embed_tokens.lora_embedding_A", R, V, a},
		        {"base_model.model.model.embed_tokens.lora_embedding_B", H, R, b}};
		snprintf(adir, sizeof(adir), "%s/tiny-adapter", F.tmp);
		write_adapter(adir, "\"embed_tokens\"", R, ts, 2, "F32");
	}
	j = analyse_ok(adir, base, 1.0, 5);
	assert_non_null(em = method(j, "embedding-rows"));
	assert_int_equal(json_array_size(json_object_get(em, "tokens")), 2);
	t0 = json_array_get(json_object_get(em, "tokens"), 0);
	assert_true(json_is_null(json_object_get(t0, "z")));
	assert_true(json_is_real(json_object_get(t0, "score")));
	assert_true(json_number_value(json_object_get(t0, "score")) > 0);
	json_decref(j);
	free(a);
	free(b);
}

static void test_lora_stats__analyse_refusals_name_file_and_tensor(void **state)
{
	enum { H = 64, R = 2 };
	float *a = rand_floats(R * H, 0.1), *b = rand_floats(H * R, 0.1);
	char adir[4096], missing[4096];
	json_t *j = (json_t *)&j;

	(void)state;
	b[5] = NAN; /* lora_B [2][1] */
	{
		const st_tensor ts[] = {
		        {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", R, H, a},
		        {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", H, R,
		         b}};
		snprintf(adir, sizeof(adir), "%s/nan", F.tmp);
		write_adapter(adir, "\"q_proj\"", R, ts, 2, "F32");
	}
	assert_int_equal(sluice_lora__analyse(F.ctx, &j, adir, F.synth, 1.0, 5), SLUICE_EINVALID);
	assert_null(j);
	assert_non_null(strstr(sluice_ctx_errmsg(F.ctx), "adapter_model.safetensors"));
	assert_non_null(strstr(sluice_ctx_errmsg(F.ctx),
	                       "layers.0.self_attn.q_proj.lora_B.weight: element [2][1]"));
	/* a module the base does not have: the PEFT check refuses it */
	b[5] = 0;
	{
		const st_tensor ts[] = {
		        {"base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight", R, H, a},
		        {"base_model.model.model.layers.7.self_attn.q_proj.lora_B.weight", H, R,
		         b}};
		snprintf(adir, sizeof(adir), "%s/nolayer", F.tmp);
		write_adapter(adir, "\"q_proj\"", R, ts, 2, "F32");
	}
	assert_int_equal(sluice_lora__analyse(F.ctx, &j, adir, F.synth, 1.0, 5), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(F.ctx), "layers.7"));
	snprintf(missing, sizeof(missing), "%s/does-not-exist", F.tmp);
	assert_int_equal(sluice_lora__analyse(F.ctx, &j, missing, F.synth, 1.0, 5),
	                 SLUICE_ENOTFOUND);
	assert_int_equal(sluice_lora__analyse(F.ctx, &j, adir, missing, 1.0, 5), SLUICE_ENOTFOUND);
	assert_int_equal(sluice_lora__analyse(F.ctx, &j, adir, F.synth, NAN, 5), SLUICE_EINVALID);
	free(a);
	free(b);
}

static int fail_nth_alloc(void *data, sluice_fault_op op, const char *what)
{
	int *left = data;

	(void)what;
	if (op != SLUICE_FAULT_ALLOC)
		return 0;
	return (*left)-- == 0;
}

static void test_lora_stats__allocation_failures_are_clean(void **state)
{
	char adir[4096];
	int n, rc;

	(void)state;
	snprintf(adir, sizeof(adir), "%s/alloc", F.tmp);
	tu_sh_ok(NULL, "'%s' lora '%s' --base '%s' --r 4 --targets q_proj,up_proj,o_proj",
	         SLUICE_SYNTH, adir, F.synth);
	for (n = 0;; n++) {
		int left = n;
		json_t *j = NULL;
		sluice_ctx_set_fault_hook(F.ctx, fail_nth_alloc, &left);
		rc = sluice_lora__analyse(F.ctx, &j, adir, F.synth, 1.0, 4);
		sluice_ctx_set_fault_hook(F.ctx, NULL, NULL);
		json_decref(j);
		if (rc == 0)
			break;
		assert_int_equal(rc, SLUICE_ENOMEM);
		assert_null(j);
		assert_true(n < 10000);
	}
	assert_true(n > 20);
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(sluice_global_init(), 0);
	assert_int_equal(sluice_ctx_new(&F.ctx), 0);
	F.tmp = tu_mkdtemp("lora-stats");
	snprintf(F.synth, sizeof(F.synth), "%s/synth", F.tmp);
	tu_sh_ok(NULL, "'%s' model '%s' --hidden 64 --vocab 512 --layers 2 --seed 3", SLUICE_SYNTH,
	         F.synth);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(F.tmp);
	free(F.tmp);
	sluice_ctx_free(F.ctx);
	sluice_global_shutdown();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_lora_stats__spectrum_matches_explicit_svd),
	        cmocka_unit_test(test_lora_stats__rank_deficient_factors),
	        cmocka_unit_test(test_lora_stats__spectrum_refuses_bad_input),
	        cmocka_unit_test(test_lora_stats__robust_z_on_known_data),
	        cmocka_unit_test(test_lora_stats__top_tokens_rank_and_break_ties),
	        cmocka_unit_test(test_lora_stats__row_scores_match_formed_rows),
	        cmocka_unit_test(test_lora_stats__layer0_scores_match_definition),
	        cmocka_unit_test(test_lora_stats__layer0_trigger_is_nominated),
	        cmocka_unit_test(test_lora_stats__embedding_and_head_triggers),
	        cmocka_unit_test(test_lora_stats__no_method_says_none),
	        cmocka_unit_test(test_lora_stats__analyse_test_model),
	        cmocka_unit_test(test_lora_stats__tiny_vocabulary_has_no_reference),
	        cmocka_unit_test(test_lora_stats__analyse_refusals_name_file_and_tensor),
	        cmocka_unit_test(test_lora_stats__allocation_failures_are_clean),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
