/*
 * tests/eval/test_export.c - a version's adapter stack materialised as one
 * PEFT adapter (sluice_export__stack): on the committed test model, stacks
 * of 1, 2 and 3 adapters with different ranks, target modules (attention,
 * MLP, lm_head, embed_tokens), rslora, rank_pattern / alpha_pattern and
 * stack scales give, as one adapter of scale 1, the same next-token
 * log-probabilities on the built-in evaluator as the stack itself; the
 * bytes are deterministic; a version without adapters is refused. Also a
 * part of a stack opened alone (sluice_evaluator__open_part).
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
	assert_true((size_t)snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir) <
	            sizeof(path));
	tu_write(path, file.ptr, file.len);
	assert_true((size_t)snprintf(path, sizeof(path), "%s/adapter_config.json", dir) <
	            sizeof(path));
	tu_write(path, config, strlen(config));
	sluice_buf__dispose(&file);
	sluice_ctx_free(ctx);
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
	tu_sluice_id(base_id, env, repo_path, "propose base '%s' -m base", TEST_MODEL);

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
	tu_sluice_id(stack_id[0], env, repo_path,
	             "propose lora '%s/in/a1' --onto %s --scale 0.7 -m a1", work, base_id);
	tu_sluice_id(stack_id[1], env, repo_path,
	             "propose lora '%s/in/a2' --onto %s --scale 1.5 -m a2", work, stack_id[0]);
	tu_sluice_id(stack_id[2], env, repo_path,
	             "propose lora '%s/in/a3' --onto %s --scale 0.3 -m a3", work, stack_id[1]);
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

	tu_sluice_id(one, env, repo_path, "propose lora '%s' --onto %s --name merged%d -m merged",
	             dir, base_id, k + 1);
	stack = rows_of(stack_id[k], &nrows);
	merged = rows_of(one, &nrows2);
	base = rows_of(base_id, &nrows2);
	assert_int_equal(nrows, nrows2);
	d_merged = tu_max_abs_diff(stack, merged, nrows * VOCAB);
	d_base = tu_max_abs_diff(stack, base, nrows * VOCAB);
	printf("stack of %d: %zu rows x %d, max |stack - export| %.3g, max |stack - base| %.3g\n",
	       k + 1, nrows, VOCAB, d_merged, d_base);
	/* The stack must matter for the comparison to mean anything. */
	assert_true(d_base > 0.05);
	assert_true(d_merged <= 1e-4);
	free(stack);
	free(merged);
	free(base);
}

/*
 * A part of a state (sluice_evaluator__open_part, the poisoning gate's
 * scan of a new adapter alone): of the three-adapter stack, its first
 * adapter alone gives exactly the rows of the version that holds only it,
 * and no adapter gives the base's.
 */
static void test_export__part_of_a_stack(void **state)
{
	sluice_ctx *ctx;
	sluice_repo *repo;
	sluice_version v;
	sluice_evaluator *ev;
	json_t *first;
	const float *row;
	float *one, *base;
	size_t n1, nb, nc = sizeof(contexts) / sizeof(contexts[0]);
	(void)state;

	one = rows_of(stack_id[0], &n1);
	base = rows_of(base_id, &nb);
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&repo, ctx, repo_path), 0);
	assert_int_equal(sluice_version__load(repo, &v, stack_id[2]), 0);
	assert_int_equal(json_array_size(json_object_get(v.state, "adapters")), 3);
	first = json_pack("[O]", json_array_get(json_object_get(v.state, "adapters"), 0));
	for (int k = 0; k < 2; k++) {
		const float *want = k == 0 ? one : base;
		size_t skip = (k == 0 ? n1 : nb) - nc; /* the rows after each context */
		if (sluice_evaluator__open_part(repo, &ev, &v, k == 0 ? first : NULL) < 0)
			fail_msg("%s", sluice_ctx_errmsg(ctx));
		for (size_t c = 0; c < nc; c++) {
			assert_int_equal(sluice_evaluator__next_row(ev, contexts[c], &row), 0);
			assert_true(tu_max_abs_diff(row, want + (skip + c) * VOCAB, VOCAB) == 0);
		}
		sluice_evaluator__free(ev);
	}
	/* The first adapter matters, so the equality above says something. */
	assert_true(tu_max_abs_diff(one + (n1 - nc) * VOCAB, base + (nb - nc) * VOCAB, nc * VOCAB) >
	            0.01);
	json_decref(first);
	sluice_version__dispose(&v);
	sluice_repo_free(repo);
	sluice_ctx_free(ctx);
	free(one);
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
	char dir[4400];
	sluice_ctx *ctx;
	sluice_model *m;
	sluice_model_adapter ad;
	float *a, *b;
	const sluice_peft_module *pm = NULL;
	(void)state;

	snprintf(dir, sizeof(dir), "%s/out/layout3", work);
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

/* ---- GGUF --------------------------------------------------------------- */

#define READ_GGUF SLUICE_SOURCE_DIR "/tests/eval/read_gguf.py"

/* The independent reader's JSON for path (it must accept the file). */
static json_t *read_gguf(const char *path)
{
	tu_run_result r = tu_sh(NULL, "/usr/bin/python3 '%s' '%s'", READ_GGUF, path);
	json_error_t jerr;
	json_t *v;

	if (r.status)
		fail_msg("read_gguf.py refused %s: %s", path, r.err);
	v = json_loads(r.out, 0, &jerr);
	if (!v)
		fail_msg("read_gguf.py output is not JSON: %s", jerr.text);
	tu_run_dispose(&r);
	return v;
}

static json_t *gguf_tensor(json_t *g, const char *name)
{
	json_t *t;
	size_t i;

	json_array_foreach(
	        json_object_get(g, "tensors"), i,
	        t) if (!strcmp(json_string_value(json_object_get(t, "name")), name)) return t;
	fail_msg("no tensor %s in the GGUF file", name);
	return NULL;
}

/* What the test expects llama.cpp to call a module, and its q/k head groups. */
static void llama_name(char *out, size_t len, unsigned *groups, const char *module)
{
	static const char *const map[][2] = {
	        {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
	        {"self_attn.v_proj", "attn_v"}, {"self_attn.o_proj", "attn_output"},
	        {"mlp.gate_proj", "ffn_gate"},  {"mlp.up_proj", "ffn_up"},
	        {"mlp.down_proj", "ffn_down"}};
	int layer, used = 0;

	*groups = 0;
	if (!strcmp(module, "model.embed_tokens")) {
		snprintf(out, len, "token_embd.weight");
		return;
	}
	if (!strcmp(module, "lm_head")) {
		snprintf(out, len, "output.weight");
		return;
	}
	assert_int_equal(sscanf(module, "model.layers.%d.%n", &layer, &used), 1);
	for (size_t i = 0; i < 7; i++)
		if (!strcmp(module + used, map[i][0])) {
			snprintf(out, len, "blk.%d.%s.weight", layer, map[i][1]);
			*groups = i == 0   ? 4
			          : i == 1 ? 2
			                   : 0; /* the test model: 4 heads, 2 KV heads */
			return;
		}
	fail_msg("unexpected module %s", module);
}

/*
 * Export the adapter in adir as GGUF and compare every tensor with the PEFT
 * tensors in llama.cpp's naming and orientation; folded B scales must make
 * llama.cpp's alpha/r equal PEFT's per-module scale. Returns the reader's
 * JSON.
 */
static json_t *check_gguf(const char *adir, const char *out, double alpha)
{
	sluice_ctx *ctx;
	sluice_model *m;
	sluice_model_adapter ad;
	json_t *g, *md;
	size_t end;

	assert_int_equal(sluice_ctx_new(&ctx), 0);
	if (sluice_export__gguf(ctx, adir, TEST_MODEL, out) < 0)
		fail_msg("%s", sluice_ctx_errmsg(ctx));
	g = read_gguf(out);
	assert_int_equal(json_integer_value(json_object_get(g, "version")), 3);
	md = json_object_get(g, "metadata");
	assert_string_equal(json_string_value(json_object_get(
	                            json_object_get(md, "general.architecture"), "value")),
	                    "llama");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(md, "general.type"), "value")),
	        "adapter");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(md, "adapter.type"), "value")),
	        "lora");
	assert_string_equal(json_string_value(json_object_get(
	                            json_object_get(md, "adapter.lora.alpha"), "type")),
	                    "FLOAT32");
	assert_true(json_number_value(json_object_get(json_object_get(md, "adapter.lora.alpha"),
	                                              "value")) == alpha);
	assert_string_equal(json_string_value(json_object_get(
	                            json_object_get(md, "general.alignment"), "type")),
	                    "UINT32");
	assert_int_equal(json_integer_value(json_object_get(
	                         json_object_get(md, "general.alignment"), "value")),
	                 32);
	/* Aligned data, and the last tensor padded as gguf-py pads it. */
	assert_int_equal(json_integer_value(json_object_get(g, "data_start")) % 32, 0);
	end = (size_t)json_integer_value(json_object_get(g, "data_end"));
	assert_int_equal((size_t)json_integer_value(json_object_get(g, "file_size")),
	                 (end + 31) / 32 * 32);

	assert_int_equal(sluice_model__open(ctx, &m, TEST_MODEL), 0);
	assert_int_equal(sluice_model__adapter_open(ctx, &ad, m, adir), 0);
	assert_int_equal(json_array_size(json_object_get(g, "tensors")), 2 * ad.peft.nmodules);
	for (size_t i = 0; i < ad.peft.nmodules; i++) {
		const sluice_peft_module *pm = &ad.peft.modules[i];
		uint64_t r = pm->r, in = pm->in_features, out_f = pm->out_features;
		double llama_scale = (double)(float)alpha / (double)r,
		       fold = pm->scale / llama_scale;
		char base[64], name[80];
		unsigned groups;
		float *a, *b;
		json_t *ta, *tb, *da, *db;

		llama_name(base, sizeof(base), &groups, pm->module);
		snprintf(name, sizeof(name), "%s.lora_a", base);
		ta = gguf_tensor(g, name);
		snprintf(name, sizeof(name), "%s.lora_b", base);
		tb = gguf_tensor(g, name);
		assert_string_equal(json_string_value(json_object_get(ta, "type")), "F32");
		assert_string_equal(json_string_value(json_object_get(tb, "type")), "F32");
		assert_int_equal(json_integer_value(json_object_get(ta, "offset")) % 32, 0);
		assert_int_equal(json_integer_value(json_object_get(tb, "offset")) % 32, 0);
		assert_int_equal(sluice_model__adapter_tensor(ctx, &a, &ad, pm->a_name, r * in), 0);
		assert_int_equal(sluice_model__adapter_tensor(ctx, &b, &ad, pm->b_name, r * out_f),
		                 0);
		da = json_object_get(ta, "data");
		db = json_object_get(tb, "data");
		/* llama.cpp's checks: lora_b ne = [r, out] always */
		assert_int_equal(json_integer_value(json_array_get(json_object_get(tb, "dims"), 0)),
		                 r);
		assert_int_equal(json_integer_value(json_array_get(json_object_get(tb, "dims"), 1)),
		                 out_f);
		if (pm->embedding) {
			/* token_embd: lora_a ne = [r, n_vocab], element (k, v) at v*r + k = A[k][v]
			 */
			assert_int_equal(
			        json_integer_value(json_array_get(json_object_get(ta, "dims"), 0)),
			        r);
			assert_int_equal(
			        json_integer_value(json_array_get(json_object_get(ta, "dims"), 1)),
			        in);
			for (uint64_t k = 0; k < r; k++)
				for (uint64_t v = 0; v < in; v++)
					assert_true(json_real_value(json_array_get(
					                    da, v * r + k)) == a[k * in + v]);
		} else {
			/* lora_a ne = [in, r]: PEFT's A [r][in] as is */
			assert_int_equal(
			        json_integer_value(json_array_get(json_object_get(ta, "dims"), 0)),
			        in);
			assert_int_equal(
			        json_integer_value(json_array_get(json_object_get(ta, "dims"), 1)),
			        r);
			for (uint64_t e = 0; e < r * in; e++)
				assert_true(json_real_value(json_array_get(da, e)) == a[e]);
		}
		/*
		 * lora_b: row o of PEFT's B lands at llama.cpp's row for o: per
		 * head of d rows, rotate-half index h*d + j*d/2 + i goes to
		 * h*d + 2*i + j (attn_q: 4 heads, attn_k: 2 KV heads).
		 */
		for (uint64_t o = 0; o < out_f; o++) {
			uint64_t row = o;
			if (groups) {
				uint64_t d = out_f / groups, h = o / d, w = o % d, half = d / 2;
				row = h * d + 2 * (w % half) + w / half;
			}
			for (uint64_t k = 0; k < r; k++) {
				double got = json_real_value(json_array_get(db, row * r + k));
				double want = b[o * r + k] * fold;
				if (fold == 1.0)
					assert_true(got == b[o * r + k]);
				else if (fabs(got - want) > 1e-6 * fabs(want) + 1e-30)
					fail_msg("%s.lora_b[%llu][%llu] %.9g, want %.9g", base,
					         (unsigned long long)row, (unsigned long long)k,
					         got, want);
			}
		}
		free(a);
		free(b);
	}
	sluice_model__adapter_dispose(&ad);
	sluice_model__free(m);
	sluice_ctx_free(ctx);
	return g;
}

static void test_export__gguf_plain_adapter(void **state)
{
	char adir[4400], out[4400];
	json_t *g;
	(void)state;

	/* a1: alpha 8, r 4, q_proj (4 heads) and v_proj: no folding, q rows permuted */
	snprintf(adir, sizeof(adir), "%s/in/a1", work);
	snprintf(out, sizeof(out), "%s/out/a1.gguf", work);
	g = check_gguf(adir, out, 8.0);
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_object_get(json_object_get(g, "metadata"), "general.name"), "value")),
	        "a1");
	json_decref(g);
}

static void test_export__gguf_rslora_patterns_embedding(void **state)
{
	char adir[4400], out[4400];
	(void)state;

	/*
	 * a2: rslora, lm_head at rank 6, o_proj at alpha 3, the embedding and
	 * k_proj (2 KV heads): scales folded into lora_b, token_embd
	 * transposed, output named.
	 */
	snprintf(adir, sizeof(adir), "%s/in/a2", work);
	snprintf(out, sizeof(out), "%s/out/a2.gguf", work);
	json_decref(check_gguf(adir, out, 4.0));
	/* a3: regex target_modules, MLP and q_proj */
	snprintf(adir, sizeof(adir), "%s/in/a3", work);
	snprintf(out, sizeof(out), "%s/out/a3.gguf", work);
	json_decref(check_gguf(adir, out, 4.0));
}

/* The reader is a real check: it refuses truncated and altered files, naming the place. */
static void test_export__gguf_reader_rejects_damage(void **state)
{
	char src[4400], bad[4400];
	unsigned char *buf;
	size_t len, cuts[] = {3, 20, 100, 0, 0};
	tu_run_result r;
	(void)state;

	snprintf(src, sizeof(src), "%s/out/a1.gguf", work);
	buf = tu_read(src, &len);
	assert_non_null(buf);
	cuts[3] = len / 2;
	cuts[4] = len - 1;
	snprintf(bad, sizeof(bad), "%s/out/bad.gguf", work);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		tu_write(bad, buf, cuts[i]);
		r = tu_sh(NULL, "/usr/bin/python3 '%s' '%s'", READ_GGUF, bad);
		assert_int_equal(r.status, 1);
		assert_non_null(strstr(r.err, "read_gguf: "));
		tu_run_dispose(&r);
	}
	/* the last tensor's end cut: it names the tensor and the bytes */
	tu_write(bad, buf, len - 40);
	r = tu_sh(NULL, "/usr/bin/python3 '%s' '%s'", READ_GGUF, bad);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "needs bytes"));
	tu_run_dispose(&r);
	/* a wrong magic and a wrong version */
	buf[0] = 'X';
	tu_write(bad, buf, len);
	r = tu_sh(NULL, "/usr/bin/python3 '%s' '%s'", READ_GGUF, bad);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "magic"));
	tu_run_dispose(&r);
	buf[0] = 'G';
	buf[4] = 2;
	tu_write(bad, buf, len);
	r = tu_sh(NULL, "/usr/bin/python3 '%s' '%s'", READ_GGUF, bad);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "version 2"));
	tu_run_dispose(&r);
	free(buf);
}

/* ---- the CLI ------------------------------------------------------------ */

static void test_export__cli(void **state)
{
	char dir[4400], lib[4400], path[4500];
	tu_run_result r;
	json_t *rep, *scales, *a;
	size_t i;
	static const char *const names[] = {"a1", "a2", "a3"};
	static const double sc[] = {0.7, 1.5, 0.3};
	(void)state;

	/* --adapter: the same bytes as the library's export */
	snprintf(dir, sizeof(dir), "%s/out/cli-adapter", work);
	r = tu_sh(env, "%s -C '%s' export %s --adapter '%s' --json", TU_SLUICE, repo_path,
	          stack_id[2], dir);
	assert_int_equal(r.status, 0);
	rep = json_loads(r.out, 0, NULL);
	assert_non_null(rep);
	assert_int_equal(json_integer_value(json_object_get(rep, "r")), 18);
	assert_int_equal(json_integer_value(json_object_get(rep, "modules")), 20);
	assert_int_equal(json_array_size(json_object_get(rep, "adapters")), 3);
	a = json_array_get(json_object_get(rep, "adapters"), 1);
	assert_string_equal(json_string_value(json_object_get(a, "name")), "a2");
	assert_int_equal(json_integer_value(json_array_get(json_object_get(a, "rows"), 0)), 4);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(a, "rows"), 1)), 10);
	json_decref(rep);
	tu_run_dispose(&r);
	snprintf(lib, sizeof(lib), "%s/out/lib-adapter", work);
	assert_int_equal(export_to(stack_id[2], lib, NULL, 0), 0);
	tu_sh_ok(NULL, "diff -r '%s' '%s'", dir, lib);
	r = tu_sh(env, "%s -C '%s' export %s --adapter '%s/out/cli-human'", TU_SLUICE, repo_path,
	          stack_id[1], work);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "one PEFT adapter of rank 10 over 14 modules"));
	assert_non_null(strstr(r.out, "a2: scale 1.5, rows 4..10"));
	tu_run_dispose(&r);

	/* --gguf: one file per adapter and scales.json, in stack order */
	snprintf(dir, sizeof(dir), "%s/out/cli-gguf", work);
	r = tu_sh(env, "%s -C '%s' export %s --gguf '%s'", TU_SLUICE, repo_path, stack_id[2], dir);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "--lora-scaled a2.gguf 1.5"));
	tu_run_dispose(&r);
	snprintf(path, sizeof(path), "%s/scales.json", dir);
	scales = json_load_file(path, 0, NULL);
	assert_non_null(scales);
	assert_string_equal(json_string_value(json_object_get(scales, "version")), stack_id[2]);
	assert_int_equal(json_array_size(json_object_get(scales, "adapters")), 3);
	json_array_foreach(json_object_get(scales, "adapters"), i, a)
	{
		char file[64];
		json_t *g;

		assert_int_equal(json_integer_value(json_object_get(a, "id")), i);
		assert_string_equal(json_string_value(json_object_get(a, "name")), names[i]);
		snprintf(file, sizeof(file), "%s.gguf", names[i]);
		assert_string_equal(json_string_value(json_object_get(a, "file")), file);
		assert_true(fabs(json_number_value(json_object_get(a, "scale")) - sc[i]) < 1e-12);
		/* each file is what the library writes for that adapter */
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		g = read_gguf(path);
		assert_int_equal(json_array_size(json_object_get(g, "tensors")), i == 0   ? 16
		                                                                 : i == 1 ? 12
		                                                                          : 14);
		json_decref(g);
	}
	json_decref(scales);
	tu_sh_ok(NULL, "cmp '%s/a1.gguf' '%s/out/a1.gguf'", dir, work);

	/* refusals: no adapters; neither or both outputs */
	r = tu_sh(env, "%s -C '%s' export %s --gguf '%s/out/none'", TU_SLUICE, repo_path, base_id,
	          work);
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "no adapters"));
	tu_run_dispose(&r);
	r = tu_sh(env, "%s -C '%s' export %s", TU_SLUICE, repo_path, base_id);
	assert_int_equal(r.status, 3);
	tu_run_dispose(&r);
	r = tu_sh(env, "%s -C '%s' export %s --adapter x --gguf y", TU_SLUICE, repo_path, base_id);
	assert_int_equal(r.status, 3);
	tu_run_dispose(&r);
	r = tu_sh(env, "%s help export", TU_SLUICE);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "--lora-scaled"));
	tu_run_dispose(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_export__one_adapter),
	        cmocka_unit_test(test_export__part_of_a_stack),
	        cmocka_unit_test(test_export__two_adapters),
	        cmocka_unit_test(test_export__three_adapters),
	        cmocka_unit_test(test_export__zero_blocks),
	        cmocka_unit_test(test_export__refused_without_adapters),
	        cmocka_unit_test(test_export__gguf_plain_adapter),
	        cmocka_unit_test(test_export__gguf_rslora_patterns_embedding),
	        cmocka_unit_test(test_export__gguf_reader_rejects_damage),
	        cmocka_unit_test(test_export__cli),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
