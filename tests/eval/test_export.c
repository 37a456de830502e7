/*
 * tests/eval/test_export.c - a version's adapter stack materialised as one
 * PEFT adapter (sluice_export__stack): on the committed test model, stacks
 * of 1, 2 and 3 adapters with different ranks, target modules (attention,
 * MLP, lm_head, embed_tokens), rslora, rank_pattern / alpha_pattern and
 * stack scales give, as one adapter of scale 1, the same next-token
 * log-probabilities on the built-in evaluator as the stack itself; the
 * bytes are deterministic; a version without adapters is refused.
 */
#include "testutil.h"
#include "internal.h"
#include "safetensors.h"
#include "engine.h"
#include "export.h"
#include "model.h"
#include "repo.h"
#include "version.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TEST_MODEL SLUICE_RESOURCES "/test-model"
/* The test model: hidden 128, 4 layers, 4 heads / 2 KV heads (64 KV dims), inter 344, vocab 768. */
#define H 128
#define KV 64
#define INTER 344
#define VOCAB 768

static char *work;
static char repo_path[4096];
static char keysenv[4300];
static const char *env[] = {keysenv, "SLUICE_KEY=alice", NULL};
static char base_id[41], stack_id[3][41];

static uint64_t rng = 777;

/* splitmix64 -> uniform in [-1, 1) */
static double urand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) / 4503599627370496.0 - 1.0;
}

typedef struct {
	const char *module; /* full module name */
	unsigned r;
	uint64_t in, out;
	int embedding;
} amod;

/* Write a PEFT adapter dir: random A (amplitude 0.5) and B (amplitude bamp) for each module. */
static void write_adapter(const char *dir, const char *config, const amod *mods, size_t n,
                          double bamp)
{
	sluice_ctx *ctx;
	sluice_st_spec spec[64];
	char names[64][200], path[4400];
	sluice_buf file = {0};
	uint64_t data_len;

	assert_true(2 * n <= 64);
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	for (size_t i = 0; i < 2 * n; i++) {
		const amod *m = &mods[i / 2];
		int b = (int)(i % 2);
		snprintf(names[i], sizeof(names[i]), "base_model.model.%s.%s%s", m->module,
		         m->embedding ? (b ? "lora_embedding_B" : "lora_embedding_A")
		                      : (b ? "lora_B" : "lora_A"),
		         m->embedding ? "" : ".weight");
		spec[i] = (sluice_st_spec){names[i], SLUICE_DT_F32, 2, {0}};
		spec[i].shape[0] = b ? m->out : m->r;
		spec[i].shape[1] = b ? m->r : m->in;
	}
	assert_int_equal(sluice_safetensors__header(ctx, &file, &data_len, spec, 2 * n, NULL, 0),
	                 0);
	for (size_t i = 0; i < 2 * n; i++) {
		uint64_t el = spec[i].shape[0] * spec[i].shape[1];
		double amp = i % 2 ? bamp : 0.5;
		for (uint64_t e = 0; e < el; e++) {
			float f = (float)(amp * urand());
			assert_int_equal(sluice_buf__put(ctx, &file, &f, 4), 0);
		}
	}
	snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
	tu_write(path, file.ptr, file.len);
	snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
	tu_write(path, config, strlen(config));
	sluice_buf__dispose(&file);
	sluice_ctx_free(ctx);
}

static void propose(char out[41], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void propose(char out[41], const char *fmt, ...)
{
	char args[8192];
	tu_run_result r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	r = tu_sh(env, "%s -C '%s' %s", TU_SLUICE, repo_path, args);
	if (r.status)
		fprintf(stderr, "%s", r.err);
	assert_int_equal(r.status, 0);
	tu_last_line(out, r.out);
	tu_run_dispose(&r);
}

static int setup(void **state)
{
	char dir[4400];
	(void)state;

	assert_int_equal(sluice_global_init(), 0);
	work = tu_mkdtemp("export");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo_path, sizeof(repo_path), "%s/repo", work);
	tu_sh_ok(env, "%s init '%s' && %s -C '%s' key new alice --role proposer", TU_SLUICE,
	         repo_path, TU_SLUICE, repo_path);
	propose(base_id, "propose base '%s' -m base", TEST_MODEL);

	/* a1: r 4, alpha 8, q_proj and v_proj of every layer. */
	{
		static const char *const q[] = {
		        "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
		        "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj",
		        "model.layers.2.self_attn.q_proj", "model.layers.2.self_attn.v_proj",
		        "model.layers.3.self_attn.q_proj", "model.layers.3.self_attn.v_proj"};
		amod m[8];
		for (int i = 0; i < 8; i++)
			m[i] = (amod){q[i], 4, H, i % 2 ? KV : H, 0};
		snprintf(dir, sizeof(dir), "%s/in/a1", work);
		write_adapter(dir,
		              "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
		              "\"target_modules\": [\"q_proj\", \"v_proj\"], \"bias\": \"none\", "
		              "\"task_type\": \"CAUSAL_LM\", \"base_model_name_or_path\": "
		              "\"test-model\"}",
		              m, 8, 0.05);
	}
	/*
	 * a2: rslora, r 2 with lm_head at rank 6 (rank_pattern) and o_proj at
	 * alpha 3 (alpha_pattern); k_proj and o_proj of layers 0 and 1 only,
	 * lm_head and the embedding.
	 */
	{
		amod m[] = {{"lm_head", 6, H, VOCAB, 0},
		            {"model.embed_tokens", 2, VOCAB, H, 1},
		            {"model.layers.0.self_attn.k_proj", 2, H, KV, 0},
		            {"model.layers.0.self_attn.o_proj", 2, H, H, 0},
		            {"model.layers.1.self_attn.k_proj", 2, H, KV, 0},
		            {"model.layers.1.self_attn.o_proj", 2, H, H, 0}};
		snprintf(dir, sizeof(dir), "%s/in/a2", work);
		write_adapter(
		        dir,
		        "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"use_rslora\": "
		        "true, "
		        "\"rank_pattern\": {\"lm_head\": 6}, \"alpha_pattern\": {\"o_proj\": 3}, "
		        "\"target_modules\": [\"lm_head\", \"embed_tokens\", "
		        "\"model.layers.0.self_attn.k_proj\", \"model.layers.0.self_attn.o_proj\", "
		        "\"model.layers.1.self_attn.k_proj\", "
		        "\"model.layers.1.self_attn.o_proj\"], "
		        "\"bias\": \"none\", \"task_type\": \"CAUSAL_LM\", "
		        "\"base_model_name_or_path\": \"other\"}",
		        m, sizeof(m) / sizeof(m[0]), 0.03);
	}
	/* a3: r 8, alpha 4, the MLP of layers 1 and 2 and q_proj of layer 2 (also in a1). */
	{
		amod m[] = {{"model.layers.1.mlp.down_proj", 8, INTER, H, 0},
		            {"model.layers.1.mlp.gate_proj", 8, H, INTER, 0},
		            {"model.layers.1.mlp.up_proj", 8, H, INTER, 0},
		            {"model.layers.2.mlp.down_proj", 8, INTER, H, 0},
		            {"model.layers.2.mlp.gate_proj", 8, H, INTER, 0},
		            {"model.layers.2.mlp.up_proj", 8, H, INTER, 0},
		            {"model.layers.2.self_attn.q_proj", 8, H, H, 0}};
		snprintf(dir, sizeof(dir), "%s/in/a3", work);
		write_adapter(
		        dir,
		        "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 4, "
		        "\"target_modules\": \"model\\\\.layers\\\\.(1\\\\.mlp\\\\..*|2\\\\.(mlp"
		        "\\\\..*|self_attn\\\\.q_proj))\", \"bias\": \"none\"}",
		        m, sizeof(m) / sizeof(m[0]), 0.05);
	}
	propose(stack_id[0], "propose lora '%s/in/a1' --onto %s --scale 0.7 -m a1", work, base_id);
	propose(stack_id[1], "propose lora '%s/in/a2' --onto %s --scale 1.5 -m a2", work,
	        stack_id[0]);
	propose(stack_id[2], "propose lora '%s/in/a3' --onto %s --scale 0.3 -m a3", work,
	        stack_id[1]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(work);
	free(work);
	sluice_global_shutdown();
	return 0;
}

/* Export ref's stack into dir with the library. Returns the error code. */
static int export_to(const char *ref, const char *dir, char *msg, size_t msglen)
{
	sluice_ctx *ctx;
	sluice_repo *repo;
	sluice_version v;
	int error;

	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&repo, ctx, repo_path), 0);
	assert_int_equal(sluice_version__load(repo, &v, ref), 0);
	error = sluice_export__stack(repo, &v, dir);
	if (msg)
		snprintf(msg, msglen, "%s", sluice_ctx_errmsg(ctx));
	sluice_version__dispose(&v);
	sluice_repo_free(repo);
	sluice_ctx_free(ctx);
	return error;
}

static const char *const contexts[] = {"The capital of France is", "Two and two make",
                                       "Once upon a time",
                                       "Q: How do I bake bread?\nA:", "zzz 123 !?"};
static const char cont[] = " the quick brown fox jumps over the lazy dog.";

/*
 * Every next-token row of the evaluator on ref's state: after each context,
 * and at each token of cont after the first context. *out[k][vocab].
 */
static float *rows_of(const char *ref, size_t *nrows)
{
	sluice_ctx *ctx;
	sluice_repo *repo;
	sluice_evaluator *ev;
	sluice_version v;
	const float *row;
	const uint32_t *toks;
	size_t nc = sizeof(contexts) / sizeof(contexts[0]), nt, k = 0;
	float *out;

	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&repo, ctx, repo_path), 0);
	assert_int_equal(sluice_version__load(repo, &v, ref), 0);
	if (sluice_evaluator__open(repo, &ev, &v) < 0)
		fail_msg("%s", sluice_ctx_errmsg(ctx));
	assert_int_equal(sluice_evaluator__vocab(ev), VOCAB);
	assert_int_equal(sluice_evaluator__cont_rows(ev, contexts[0], cont, &row, &toks, &nt), 0);
	out = malloc((nc + nt) * VOCAB * sizeof(float));
	assert_non_null(out);
	memcpy(out, row, nt * VOCAB * sizeof(float));
	k = nt;
	for (size_t c = 0; c < nc; c++) {
		assert_int_equal(sluice_evaluator__next_row(ev, contexts[c], &row), 0);
		memcpy(out + k++ * VOCAB, row, VOCAB * sizeof(float));
	}
	*nrows = k;
	sluice_evaluator__free(ev);
	sluice_version__dispose(&v);
	sluice_repo_free(repo);
	sluice_ctx_free(ctx);
	return out;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		if (fabs((double)a[i] - b[i]) > m)
			m = fabs((double)a[i] - b[i]);
	return m;
}

/* The stack of stack_id[k] (k + 1 adapters) against its export proposed as one adapter. */
static void check_stack(int k, unsigned want_r, size_t want_modules)
{
	char dir[4400], dir2[4400], msg[1024], one[41], path[4500];
	unsigned char *cfgtext, *st1, *st2;
	size_t n1, n2, nrows, nrows2, len;
	float *stack, *merged, *base;
	double d_merged, d_base;
	json_t *cfg;

	snprintf(dir, sizeof(dir), "%s/out/stack%d", work, k + 1);
	if (export_to(stack_id[k], dir, msg, sizeof(msg)) != 0)
		fail_msg("export: %s", msg);

	/* The config: one rank R = sum of the widths, scale 1, every module named. */
	snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
	cfgtext = tu_read(path, &len);
	assert_non_null(cfgtext);
	cfg = json_loadb((const char *)cfgtext, len, 0, NULL);
	assert_non_null(cfg);
	assert_int_equal(json_integer_value(json_object_get(cfg, "r")), want_r);
	assert_int_equal(json_integer_value(json_object_get(cfg, "lora_alpha")), want_r);
	assert_true(json_is_false(json_object_get(cfg, "use_rslora")));
	assert_string_equal(json_string_value(json_object_get(cfg, "peft_type")), "LORA");
	assert_string_equal(json_string_value(json_object_get(cfg, "task_type")), "CAUSAL_LM");
	assert_string_equal(json_string_value(json_object_get(cfg, "bias")), "none");
	assert_string_equal(json_string_value(json_object_get(cfg, "base_model_name_or_path")),
	                    "test-model");
	assert_int_equal(json_array_size(json_object_get(cfg, "target_modules")), want_modules);
	json_decref(cfg);
	free(cfgtext);

	/* Deterministic bytes: a second export is identical. */
	snprintf(dir2, sizeof(dir2), "%s/out/again%d", work, k + 1);
	assert_int_equal(export_to(stack_id[k], dir2, NULL, 0), 0);
	snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
	st1 = tu_read(path, &n1);
	snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir2);
	st2 = tu_read(path, &n2);
	assert_non_null(st1);
	assert_non_null(st2);
	assert_int_equal(n1, n2);
	assert_memory_equal(st1, st2, n1);
	free(st1);
	free(st2);
	tu_sh_ok(NULL, "diff -r '%s' '%s'", dir, dir2);

	propose(one, "propose lora '%s' --onto %s --name merged%d -m merged", dir, base_id, k + 1);
	stack = rows_of(stack_id[k], &nrows);
	merged = rows_of(one, &nrows2);
	base = rows_of(base_id, &nrows2);
	assert_int_equal(nrows, nrows2);
	d_merged = max_abs_diff(stack, merged, nrows * VOCAB);
	d_base = max_abs_diff(stack, base, nrows * VOCAB);
	printf("stack of %d: %zu rows x %d, max |stack - export| %.3g, max |stack - base| %.3g\n",
	       k + 1, nrows, VOCAB, d_merged, d_base);
	/* The stack must matter for the comparison to mean anything. */
	assert_true(d_base > 0.05);
	assert_true(d_merged <= 1e-4);
	free(stack);
	free(merged);
	free(base);
}

static void test_export__one_adapter(void **state)
{
	(void)state;
	/* a1: r 4; q and v of 4 layers */
	check_stack(0, 4, 8);
}

static void test_export__two_adapters(void **state)
{
	(void)state;
	/* a1 (4) + a2 (width 6: lm_head at rank 6); 8 + 6 modules */
	check_stack(1, 10, 14);
}

static void test_export__three_adapters(void **state)
{
	(void)state;
	/* + a3 (8); 7 modules, of which layer 2's q_proj is shared with a1 */
	check_stack(2, 18, 20);
}

/* The layout: in the 3-stack, a module only a2 adapts has zero rows for a1 and a3. */
static void test_export__zero_blocks(void **state)
{
	char dir[4400], path[4500];
	sluice_ctx *ctx;
	sluice_model *m;
	sluice_model_adapter ad;
	float *a, *b;
	const sluice_peft_module *pm = NULL;
	(void)state;

	snprintf(dir, sizeof(dir), "%s/out/stack3", work);
	snprintf(path, sizeof(path), "%s/adapter_config.json", dir);
	if (!tu_read(path, &(size_t){0}))
		assert_int_equal(export_to(stack_id[2], dir, NULL, 0), 0);
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_model__open(ctx, &m, TEST_MODEL), 0);
	assert_int_equal(sluice_model__adapter_open(ctx, &ad, m, dir), 0);
	assert_int_equal(ad.peft.r, 18);
	assert_true(ad.peft.alpha == 18);
	for (size_t i = 0; i < ad.peft.nmodules; i++) {
		assert_int_equal(ad.peft.modules[i].r, 18);
		assert_true(ad.peft.modules[i].scale == 1.0);
		if (!strcmp(ad.peft.modules[i].module, "model.layers.0.self_attn.k_proj"))
			pm = &ad.peft.modules[i];
	}
	assert_non_null(pm);
	assert_int_equal(sluice_model__adapter_tensor(ctx, &a, &ad, pm->a_name, 18 * H), 0);
	assert_int_equal(sluice_model__adapter_tensor(ctx, &b, &ad, pm->b_name, 18 * KV), 0);
	/* rows: a1 [0, 4), a2 [4, 10) of which rank 2 used, a3 [10, 18) */
	for (size_t r = 0; r < 18; r++) {
		int used = r >= 4 && r < 6;
		double an = 0, bn = 0;
		for (size_t j = 0; j < H; j++)
			an += fabs(a[r * H + j]);
		for (size_t o = 0; o < KV; o++)
			bn += fabs(b[o * 18 + r]);
		if (used) {
			assert_true(an > 0);
			assert_true(bn > 0);
		} else {
			assert_true(an == 0);
			assert_true(bn == 0);
		}
	}
	free(a);
	free(b);
	sluice_model__adapter_dispose(&ad);
	sluice_model__free(m);
	sluice_ctx_free(ctx);
}

static void test_export__refused_without_adapters(void **state)
{
	char dir[4400], msg[1024];
	struct stat st;
	(void)state;

	snprintf(dir, sizeof(dir), "%s/out/none", work);
	assert_int_equal(export_to(base_id, dir, msg, sizeof(msg)), SLUICE_EINVALID);
	assert_non_null(strstr(msg, "no adapters"));
	assert_true(stat(dir, &st) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_export__one_adapter),
	        cmocka_unit_test(test_export__two_adapters),
	        cmocka_unit_test(test_export__three_adapters),
	        cmocka_unit_test(test_export__zero_blocks),
	        cmocka_unit_test(test_export__refused_without_adapters),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
