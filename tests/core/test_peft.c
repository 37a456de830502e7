/*
 * tests/core/test_peft.c - PEFT LoRA adapters checked against a small
 * llama-like base (hidden 16, GQA kv dim 8, intermediate 40, vocab 100)
 * whose safetensors headers are built by hand.
 */
#include "testutil.h"

#include "internal.h"
#include "peft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HID 16
#define KV 8
#define INTER 40
#define VOCAB 100

typedef struct {
	const char *name;
	sluice_dtype dt;
	unsigned ndim;
	uint64_t d0, d1;
} spec;

#define END_SPECS                                                                                  \
	{                                                                                          \
		NULL, SLUICE_DT_F32, 0, 0, 0                                                       \
	}

static size_t esize(sluice_dtype dt)
{
	return dt == SLUICE_DT_F32 ? 4 : dt == SLUICE_DT_I8 ? 1 : 2;
}

/* A header as the parser would produce it; free with header_free. */
static void header_build(sluice_st_header *h, const spec *s)
{
	size_t n = 0, i;
	uint64_t off = 0;

	while (s[n].name)
		n++;
	memset(h, 0, sizeof(*h));
	h->ntensors = n;
	h->tensors = calloc(n ? n : 1, sizeof(*h->tensors));
	assert_non_null(h->tensors);
	for (i = 0; i < n; i++) {
		sluice_st_tensor *t = &h->tensors[i];
		uint64_t count = s[i].d0 * (s[i].ndim > 1 ? s[i].d1 : 1);

		t->name = strdup(s[i].name);
		assert_non_null(t->name);
		t->dtype = s[i].dt;
		t->ndim = s[i].ndim;
		t->shape[0] = s[i].d0;
		t->shape[1] = s[i].d1;
		t->begin = off;
		off += count * esize(s[i].dt);
		t->end = off;
	}
}

static void header_free(sluice_st_header *h)
{
	size_t i;

	for (i = 0; i < h->ntensors; i++)
		free(h->tensors[i].name);
	free(h->tensors);
	memset(h, 0, sizeof(*h));
}

static const spec base_layer0[] = {
        {"model.embed_tokens.weight", SLUICE_DT_BF16, 2, VOCAB, HID},
        {"model.layers.0.input_layernorm.weight", SLUICE_DT_BF16, 1, HID, 0},
        {"model.layers.0.self_attn.q_proj.weight", SLUICE_DT_BF16, 2, HID, HID},
        {"model.layers.0.self_attn.k_proj.weight", SLUICE_DT_BF16, 2, KV, HID},
        {"model.layers.0.self_attn.v_proj.weight", SLUICE_DT_BF16, 2, KV, HID},
        {"model.layers.0.self_attn.o_proj.weight", SLUICE_DT_BF16, 2, HID, HID},
        {"model.layers.0.post_attention_layernorm.weight", SLUICE_DT_BF16, 1, HID, 0},
        {"model.layers.0.mlp.gate_proj.weight", SLUICE_DT_BF16, 2, INTER, HID},
        {"model.layers.0.mlp.up_proj.weight", SLUICE_DT_BF16, 2, INTER, HID},
        {"model.layers.0.mlp.down_proj.weight", SLUICE_DT_BF16, 2, HID, INTER},
        END_SPECS};

/* The second shard of a two-shard base: layer 1, the final norm and lm_head. */
static const spec base_layer1[] = {
        {"model.layers.1.input_layernorm.weight", SLUICE_DT_BF16, 1, HID, 0},
        {"model.layers.1.self_attn.q_proj.weight", SLUICE_DT_BF16, 2, HID, HID},
        {"model.layers.1.self_attn.k_proj.weight", SLUICE_DT_BF16, 2, KV, HID},
        {"model.layers.1.self_attn.v_proj.weight", SLUICE_DT_BF16, 2, KV, HID},
        {"model.layers.1.self_attn.o_proj.weight", SLUICE_DT_BF16, 2, HID, HID},
        {"model.layers.1.post_attention_layernorm.weight", SLUICE_DT_BF16, 1, HID, 0},
        {"model.layers.1.mlp.gate_proj.weight", SLUICE_DT_BF16, 2, INTER, HID},
        {"model.layers.1.mlp.up_proj.weight", SLUICE_DT_BF16, 2, INTER, HID},
        {"model.layers.1.mlp.down_proj.weight", SLUICE_DT_BF16, 2, HID, INTER},
        {"model.norm.weight", SLUICE_DT_BF16, 1, HID, 0},
        {"lm_head.weight", SLUICE_DT_BF16, 2, VOCAB, HID},
        END_SPECS};

#define Q "base_model.model.model.layers.0.self_attn.q_proj"
#define V "base_model.model.model.layers.0.self_attn.v_proj"

/* q_proj and v_proj of layer 0 at rank 4. */
static const spec adapter_qv[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
                                  {Q ".lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
                                  {V ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
                                  {V ".lora_B.weight", SLUICE_DT_F32, 2, KV, 4},
                                  END_SPECS};

#define CFG_QV                                                                                     \
	"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": "              \
	"[\"q_proj\", \"v_proj\"], \"base_model_name_or_path\": \"tiny-llama\", \"bias\": "        \
	"\"none\", \"task_type\": \"CAUSAL_LM\", \"lora_dropout\": 0.05, \"inference_mode\": "     \
	"true, \"use_dora\": false, \"fan_in_fan_out\": false, \"modules_to_save\": null, "        \
	"\"layers_to_transform\": null, \"layers_pattern\": null, \"rank_pattern\": {}, "          \
	"\"alpha_pattern\": {}, \"use_rslora\": false, \"megatron_config\": null, "                \
	"\"loftq_config\": {}, \"layer_replication\": null, \"use_qalora\": false, "               \
	"\"some_field_from_the_future\": [1, 2]}"

struct fixture {
	sluice_ctx *ctx;
	sluice_st_header shard0, shard1;
	const sluice_st_header *base[2];
	sluice_peft_adapter out;
};

static int group_setup(void **state)
{
	(void)state;
	return sluice_global_init() < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sluice_global_shutdown();
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(sluice_ctx_new(&f->ctx), 0);
	header_build(&f->shard0, base_layer0);
	header_build(&f->shard1, base_layer1);
	f->base[0] = &f->shard0;
	f->base[1] = &f->shard1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sluice_peft__dispose(&f->out);
	header_free(&f->shard0);
	header_free(&f->shard1);
	sluice_ctx_free(f->ctx);
	free(f);
	return 0;
}

/* Load cfg + adapter against the base (both shards); returns the code. */
static int load(struct fixture *f, const char *cfg, const spec *adapter)
{
	sluice_st_header ad;
	int rc;

	header_build(&ad, adapter);
	sluice_peft__dispose(&f->out);
	rc = sluice_peft__load(f->ctx, &f->out, cfg, strlen(cfg), "adapter_config.json", &ad,
	                       "adapter_model.safetensors", f->base, 2);
	header_free(&ad);
	return rc;
}

/* Assert a refusal whose message holds each of the NULL-terminated needles. */
static void assert_refused(struct fixture *f, int rc, ...)
{
	const char *msg = sluice_ctx_errmsg(f->ctx), *needle;
	va_list ap;

	if (rc != SLUICE_EINVALID)
		fail_msg("expected SLUICE_EINVALID, got %d (%s)", rc, msg);
	va_start(ap, rc);
	while ((needle = va_arg(ap, const char *)) != NULL)
		if (!strstr(msg, needle))
			fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
	va_end(ap);
	/* A refusal leaves nothing behind for the caller to misuse. */
	assert_int_equal(f->out.nmodules, 0);
	assert_null(f->out.modules);
}

static void test_peft__valid_qv(void **state)
{
	struct fixture *f = *state;
	const sluice_peft_module *q, *v;

	assert_int_equal(load(f, CFG_QV, adapter_qv), 0);
	assert_string_equal(f->out.peft_type, "LORA");
	assert_string_equal(f->out.base_model, "tiny-llama");
	assert_int_equal(f->out.r, 4);
	assert_true(f->out.alpha == 8.0);
	assert_int_equal(f->out.use_rslora, 0);
	assert_int_equal(f->out.nmodules, 2);
	q = &f->out.modules[0];
	v = &f->out.modules[1];
	assert_string_equal(q->module, "model.layers.0.self_attn.q_proj");
	assert_string_equal(v->module, "model.layers.0.self_attn.v_proj");
	assert_string_equal(q->a_name, Q ".lora_A.weight");
	assert_string_equal(q->b_name, Q ".lora_B.weight");
	assert_int_equal(q->embedding, 0);
	assert_int_equal(q->r, 4);
	assert_true(q->scale == 2.0);
	assert_int_equal(q->in_features, HID);
	assert_int_equal(q->out_features, HID);
	/* GQA: v_proj maps the hidden size to the smaller kv dimension */
	assert_int_equal(v->in_features, HID);
	assert_int_equal(v->out_features, KV);
	assert_true(v->scale == 2.0);
}

static void test_peft__modules_sorted_whatever_the_file_order(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{V ".lora_B.weight", SLUICE_DT_BF16, 2, KV, 4},
	                          {Q ".lora_B.weight", SLUICE_DT_BF16, 2, HID, 4},
	                          {V ".lora_A.weight", SLUICE_DT_F16, 2, 4, HID},
	                          {Q ".lora_A.weight", SLUICE_DT_BF16, 2, 4, HID},
	                          END_SPECS};

	assert_int_equal(load(f, CFG_QV, ad), 0);
	assert_int_equal(f->out.nmodules, 2);
	assert_string_equal(f->out.modules[0].module, "model.layers.0.self_attn.q_proj");
	assert_string_equal(f->out.modules[1].module, "model.layers.0.self_attn.v_proj");
	assert_string_equal(f->out.modules[1].a_name, V ".lora_A.weight");
}

static void test_peft__rslora_scale(void **state)
{
	struct fixture *f = *state;
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"use_rslora\": "
	                  "true, \"target_modules\": [\"q_proj\", \"v_proj\"]}";

	assert_int_equal(load(f, cfg, adapter_qv), 0);
	assert_int_equal(f->out.use_rslora, 1);
	assert_null(f->out.base_model);
	/* 8 / sqrt(4) */
	assert_true(f->out.modules[0].scale == 4.0);
	assert_true(f->out.modules[1].scale == 4.0);
}

static void test_peft__rank_and_alpha_pattern_override_one_module(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {Q ".lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
	                          {V ".lora_A.weight", SLUICE_DT_F32, 2, 8, HID},
	                          {V ".lora_B.weight", SLUICE_DT_F32, 2, KV, 8},
	                          END_SPECS};
	/* the longer key self_attn.v_proj wins over v_proj */
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                  "\"rank_pattern\": {\"v_proj\": 2, \"self_attn.v_proj\": 8}, "
	                  "\"alpha_pattern\": {\"model.layers.0.self_attn.v_proj\": 32.0, "
	                  "\"k_proj\": 1}, \"target_modules\": [\"q_proj\", \"v_proj\"]}";
	const sluice_peft_module *q, *v;

	assert_int_equal(load(f, cfg, ad), 0);
	q = &f->out.modules[0];
	v = &f->out.modules[1];
	assert_int_equal(q->r, 4);
	assert_true(q->alpha == 8.0);
	assert_true(q->scale == 2.0);
	assert_int_equal(v->r, 8);
	assert_true(v->alpha == 32.0);
	assert_true(v->scale == 4.0);
}

static void test_peft__rank_pattern_with_rslora(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{V ".lora_A.weight", SLUICE_DT_F32, 2, 16, HID},
	                          {V ".lora_B.weight", SLUICE_DT_F32, 2, KV, 16},
	                          END_SPECS};
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                  "\"use_rslora\": true, \"rank_pattern\": {\"v_proj\": 16}}";

	assert_int_equal(load(f, cfg, ad), 0);
	assert_int_equal(f->out.modules[0].r, 16);
	assert_true(f->out.modules[0].scale == 2.0);
}

static void test_peft__embedding_adapter(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {
	        {"base_model.model.model.embed_tokens.lora_embedding_A", SLUICE_DT_F32, 2, 4,
	         VOCAB},
	        {"base_model.model.model.embed_tokens.lora_embedding_B", SLUICE_DT_F32, 2, HID, 4},
	        END_SPECS};
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 16, "
	                  "\"target_modules\": [\"embed_tokens\"]}";
	const sluice_peft_module *m;

	assert_int_equal(load(f, cfg, ad), 0);
	assert_int_equal(f->out.nmodules, 1);
	m = &f->out.modules[0];
	assert_string_equal(m->module, "model.embed_tokens");
	assert_int_equal(m->embedding, 1);
	assert_int_equal(m->in_features, VOCAB);
	assert_int_equal(m->out_features, HID);
	assert_true(m->scale == 4.0);
	assert_string_equal(m->b_name, "base_model.model.model.embed_tokens.lora_embedding_B");
}

static void test_peft__embedding_wrong_shape(void **state)
{
	struct fixture *f = *state;
	/* lora_embedding_A laid out like a Linear lora_A [r, dim] */
	static const spec ad[] = {
	        {"base_model.model.model.embed_tokens.lora_embedding_A", SLUICE_DT_F32, 2, 4, HID},
	        {"base_model.model.model.embed_tokens.lora_embedding_B", SLUICE_DT_F32, 2, HID, 4},
	        END_SPECS};
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 16}";

	assert_refused(f, load(f, cfg, ad), "lora_embedding_A", "[4, 16]", "expected [4, 100]",
	               NULL);
}

static void test_peft__adapter_name_in_tensor_names(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.default.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {Q ".lora_B.default.weight", SLUICE_DT_F32, 2, HID, 4},
	                          END_SPECS};
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                  "\"target_modules\": [\"q_proj\"]}";

	assert_int_equal(load(f, cfg, ad), 0);
	assert_string_equal(f->out.modules[0].module, "model.layers.0.self_attn.q_proj");
	/* the names as stored, so the evaluator can find them in the file */
	assert_string_equal(f->out.modules[0].a_name, Q ".lora_A.default.weight");
}

static void test_peft__sharded_base(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {
	        {Q ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	        {Q ".lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
	        {"base_model.model.model.layers.1.mlp.down_proj.lora_A.weight", SLUICE_DT_F32, 2, 4,
	         INTER},
	        {"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", SLUICE_DT_F32, 2,
	         HID, 4},
	        {"base_model.model.lm_head.lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	        {"base_model.model.lm_head.lora_B.weight", SLUICE_DT_F32, 2, VOCAB, 4},
	        END_SPECS};
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 4, "
	                  "\"target_modules\": \"all-linear\"}";

	assert_int_equal(load(f, cfg, ad), 0);
	assert_int_equal(f->out.nmodules, 3);
	assert_string_equal(f->out.modules[0].module, "lm_head");
	assert_int_equal(f->out.modules[0].out_features, VOCAB);
	assert_string_equal(f->out.modules[1].module, "model.layers.0.self_attn.q_proj");
	assert_string_equal(f->out.modules[2].module, "model.layers.1.mlp.down_proj");
	assert_int_equal(f->out.modules[2].in_features, INTER);
	assert_int_equal(f->out.modules[2].out_features, HID);
	assert_true(f->out.modules[2].scale == 1.0);
}

static void test_peft__only_one_shard_given(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{"base_model.model.model.layers.1.mlp.down_proj.lora_A.weight",
	                           SLUICE_DT_F32, 2, 4, INTER},
	                          {"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
	                           SLUICE_DT_F32, 2, HID, 4},
	                          END_SPECS};
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 4}";
	sluice_st_header h;
	int rc;

	header_build(&h, ad);
	rc = sluice_peft__load(f->ctx, &f->out, cfg, strlen(cfg), "adapter_config.json", &h,
	                       "adapter_model.safetensors", f->base, 1);
	header_free(&h);
	assert_refused(f, rc,
	               "target module model.layers.1.mlp.down_proj does not exist in the base",
	               NULL);
}

static void test_peft__base_tensor_in_two_shards(void **state)
{
	struct fixture *f = *state;
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8}";
	const sluice_st_header *twice[2] = {&f->shard0, &f->shard0};
	sluice_st_header h;
	int rc;

	header_build(&h, adapter_qv);
	rc = sluice_peft__load(f->ctx, &f->out, cfg, strlen(cfg), "adapter_config.json", &h,
	                       "adapter_model.safetensors", twice, 2);
	header_free(&h);
	assert_refused(f, rc, "model.layers.0.self_attn.q_proj.weight", "more than one shard",
	               NULL);
}

static void test_peft__target_modules_null_and_absent(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f,
	                      "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                      "\"target_modules\": null}",
	                      adapter_qv),
	                 0);
	assert_int_equal(f->out.nmodules, 2);
	assert_int_equal(
	        load(f, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8}", adapter_qv), 0);
	assert_int_equal(f->out.nmodules, 2);
}

static void test_peft__target_modules_full_names_and_repeats(void **state)
{
	struct fixture *f = *state;
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                  "\"target_modules\": [\"v_proj\", \"model.layers.0.self_attn.q_proj\", "
	                  "\"self_attn.v_proj\", \"v_proj\"]}";

	assert_int_equal(load(f, cfg, adapter_qv), 0);
	assert_int_equal(f->out.nmodules, 2);
}

static void test_peft__target_entry_matching_nothing(void **state)
{
	struct fixture *f = *state;
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                  "\"target_modules\": [\"q_proj\", \"k_proj\", \"v_proj\"]}";

	assert_refused(f, load(f, cfg, adapter_qv),
	               "target module 'k_proj' in adapter_config.json matches no tensor in "
	               "adapter_model.safetensors",
	               NULL);
}

static void test_peft__target_entry_is_not_a_dot_suffix(void **state)
{
	struct fixture *f = *state;
	/* "proj" is a suffix of q_proj, but not after a '.' */
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                  "\"target_modules\": [\"proj\"]}";

	assert_refused(f, load(f, cfg, adapter_qv), "model.layers.0.self_attn.q_proj",
	               "not named by target_modules", NULL);
}

static void test_peft__module_outside_target_list(void **state)
{
	struct fixture *f = *state;
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                  "\"target_modules\": [\"q_proj\"]}";

	assert_refused(f, load(f, cfg, adapter_qv), "module model.layers.0.self_attn.v_proj",
	               "not named by target_modules", NULL);
}

static void test_peft__target_regex_full_match(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f,
	                      "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                      "\"target_modules\": \".*\\\\.(q_proj|v_proj)\"}",
	                      adapter_qv),
	                 0);
	assert_int_equal(f->out.nmodules, 2);
	assert_int_equal(load(f,
	                      "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                      "\"target_modules\": "
	                      "\"model\\\\.layers\\\\.[0-9]+\\\\.self_attn\\\\.[qv]_proj\"}",
	                      adapter_qv),
	                 0);
	/* matches inside the name, but not the whole name */
	assert_refused(f,
	               load(f,
	                    "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                    "\"target_modules\": \"(q|v)_proj\"}",
	                    adapter_qv),
	               "module model.layers.0.self_attn.q_proj", "does not match target_modules",
	               NULL);
	assert_refused(f,
	               load(f,
	                    "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
	                    "\"target_modules\": \"model.*q_proj\"}",
	                    adapter_qv),
	               "module model.layers.0.self_attn.v_proj", NULL);
}

static void test_peft__all_linear_excludes_embeddings(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {
	        {"base_model.model.model.embed_tokens.lora_embedding_A", SLUICE_DT_F32, 2, 4,
	         VOCAB},
	        {"base_model.model.model.embed_tokens.lora_embedding_B", SLUICE_DT_F32, 2, HID, 4},
	        END_SPECS};
	const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 16, "
	                  "\"target_modules\": \"all-linear\"}";

	assert_refused(f, load(f, cfg, ad), "model.embed_tokens", "all-linear", NULL);
}

/* ---- config refusals --------------------------------------------------- */

struct bad_config {
	const char *json;
	const char *needle1, *needle2;
};

#define LORA "\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8"

static const struct bad_config bad_configs[] = {
        {"[]", "adapter_config.json: expected a JSON object", NULL},
        {"", "adapter_config.json: line", NULL},
        {"{\"r\": 4, \"r\": 5, \"peft_type\": \"LORA\", \"lora_alpha\": 8}", "adapter_config.json",
         "duplicate"},
        {"{" LORA "} trailing", "adapter_config.json: line 1", NULL},
        {"{\"r\": 4, \"lora_alpha\": 8}", "field peft_type: missing", NULL},
        {"{\"peft_type\": \"PREFIX_TUNING\", \"r\": 4, \"lora_alpha\": 8}", "field peft_type",
         "PREFIX_TUNING"},
        {"{\"peft_type\": \"lora\", \"r\": 4, \"lora_alpha\": 8}", "field peft_type", NULL},
        {"{\"peft_type\": 1, \"r\": 4, \"lora_alpha\": 8}", "field peft_type: expected a string",
         NULL},
        {"{\"peft_type\": \"LORA\", \"r\": \"4\", \"lora_alpha\": 8}",
         "adapter_config.json: field r: expected a positive integer", NULL},
        {"{\"peft_type\": \"LORA\", \"r\": 0, \"lora_alpha\": 8}", "field r: expected a positive",
         NULL},
        {"{\"peft_type\": \"LORA\", \"r\": -4, \"lora_alpha\": 8}", "field r: expected a positive",
         NULL},
        {"{\"peft_type\": \"LORA\", \"r\": 4.5, \"lora_alpha\": 8}", "field r: expected a positive",
         NULL},
        {"{\"peft_type\": \"LORA\", \"r\": 99999999999, \"lora_alpha\": 8}", "field r", NULL},
        {"{\"peft_type\": \"LORA\", \"lora_alpha\": 8}", "field r: expected a positive", NULL},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": \"8\"}",
         "field lora_alpha: expected a number", NULL},
        {"{\"peft_type\": \"LORA\", \"r\": 4}", "field lora_alpha: expected a number", NULL},
        {"{" LORA ", \"use_rslora\": \"yes\"}", "field use_rslora: expected true or false", NULL},
        {"{" LORA ", \"use_dora\": true}",
         "DoRA adapters (use_dora) are not supported: their magnitude vectors would be ignored",
         NULL},
        {"{" LORA ", \"use_dora\": 1}", "field use_dora: expected true or false", NULL},
        {"{" LORA ", \"fan_in_fan_out\": true}", "field fan_in_fan_out", "Conv1D"},
        {"{" LORA ", \"modules_to_save\": [\"lm_head\", \"score\"]}",
         "modules_to_save: full weight copies of lm_head, score in an adapter are refused", NULL},
        {"{" LORA ", \"modules_to_save\": \"lm_head\"}", "field modules_to_save: expected a list",
         NULL},
        {"{" LORA ", \"layers_to_transform\": [0, 1]}", "field layers_to_transform: not supported",
         NULL},
        {"{" LORA ", \"layers_to_transform\": 0}", "field layers_to_transform: not supported",
         NULL},
        {"{" LORA ", \"layers_pattern\": \"layers\"}", "field layers_pattern: not supported", NULL},
        {"{" LORA ", \"bias\": \"all\"}", "field bias: \"all\" is refused", "base model's biases"},
        {"{" LORA ", \"bias\": \"lora_only\"}", "field bias: \"lora_only\"", NULL},
        {"{" LORA ", \"bias\": false}", "field bias: expected \"none\"", NULL},
        {"{" LORA ", \"lora_bias\": true}", "field lora_bias: not supported", NULL},
        {"{" LORA ", \"use_qalora\": true}", "field use_qalora: not supported", NULL},
        {"{" LORA ", \"layer_replication\": [[0, 4], [2, 5]]}",
         "field layer_replication: not supported", NULL},
        {"{" LORA ", \"trainable_token_indices\": [1, 2]}", "field trainable_token_indices", NULL},
        {"{" LORA ", \"target_modules\": 5}", "field target_modules: expected a list", NULL},
        {"{" LORA ", \"target_modules\": [\"q_proj\", 5]}", "field target_modules", NULL},
        {"{" LORA ", \"target_modules\": \"(?:q|v)_proj\"}", "field target_modules",
         "POSIX extended"},
        {"{" LORA ", \"target_modules\": \"((a{999}){999})\"}", "field target_modules", "too many"},
        /* each '+' doubles what glibc's regcomp builds: found by the fuzzer */
        {"{" LORA ", \"target_modules\": \"module+++++++++\"}", "field target_modules", "too many"},
        {"{" LORA ", \"target_modules\": \"(a)\\\\1\"}", "field target_modules", "back-references"},
        {"{" LORA ", \"rank_pattern\": {\"q_proj\": 0}}", "field rank_pattern: key 'q_proj'",
         "positive integer"},
        {"{" LORA ", \"rank_pattern\": [1]}", "field rank_pattern: expected an object", NULL},
        {"{" LORA ", \"alpha_pattern\": {\"q_proj\": \"8\"}}", "field alpha_pattern: key 'q_proj'",
         "expected a number"},
        {"{" LORA ", \"alpha_pattern\": {\"^model.layers.[0-3].*q_proj\": 8}}",
         "field alpha_pattern: key '^model.layers.[0-3].*q_proj'", "regular expressions"},
        {"{" LORA ", \"base_model_name_or_path\": 7}", "field base_model_name_or_path", NULL},
};

static void test_peft__config_refusals(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++) {
		const struct bad_config *b = &bad_configs[i];
		int rc;

		sluice_ctx_clear_error(f->ctx);
		rc = sluice_peft__parse_config(f->ctx, &f->out, b->json, strlen(b->json),
		                               "adapter_config.json");
		if (rc != SLUICE_EINVALID)
			fail_msg("config %s: expected refusal, got %d", b->json, rc);
		assert_refused(f, rc, b->needle1, b->needle2, NULL);
		assert_null(f->out.peft_type);
		/* load refuses the same config with the same message */
		rc = load(f, b->json, adapter_qv);
		assert_refused(f, rc, b->needle1, b->needle2, NULL);
	}
}

static void test_peft__config_size_cap(void **state)
{
	struct fixture *f = *state;
	size_t n = (1u << 20) + 1;
	char *big = malloc(n);

	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "{" LORA "}", strlen("{" LORA "}"));
	assert_refused(f, sluice_peft__parse_config(f->ctx, &f->out, big, n, "cfg.json"),
	               "cfg.json", "limit", NULL);
	/* just under the cap is parsed */
	assert_int_equal(sluice_peft__parse_config(f->ctx, &f->out, big, n - 1, "cfg.json"), 0);
	free(big);
}

static void test_peft__parse_config_alone(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(sluice_peft__parse_config(f->ctx, &f->out, CFG_QV, strlen(CFG_QV), NULL),
	                 0);
	assert_string_equal(f->out.peft_type, "LORA");
	assert_string_equal(f->out.base_model, "tiny-llama");
	assert_int_equal(f->out.r, 4);
	assert_true(f->out.alpha == 8.0);
	assert_int_equal(f->out.nmodules, 0);
	assert_null(f->out.modules);
}

static void test_peft__empty_lists_are_harmless(void **state)
{
	struct fixture *f = *state;
	const char *cfg = "{" LORA ", \"modules_to_save\": [], \"trainable_token_indices\": null, "
	                  "\"lora_bias\": false, \"target_parameters\": [], \"bias\": null}";

	assert_int_equal(sluice_peft__parse_config(f->ctx, &f->out, cfg, strlen(cfg), NULL), 0);
}

/* ---- tensor refusals --------------------------------------------------- */

static void test_peft__dora_magnitude_tensor(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {Q ".lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
	                          {Q ".lora_magnitude_vector", SLUICE_DT_F32, 1, HID, 0},
	                          END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), Q ".lora_magnitude_vector", "DoRA", NULL);
}

static void test_peft__modules_to_save_tensor(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {Q ".lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
	                          {"base_model.model.lm_head.modules_to_save.default.weight",
	                           SLUICE_DT_F32, 2, VOCAB, HID},
	                          END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad),
	               "base_model.model.lm_head.modules_to_save.default.weight",
	               "full weight copies", NULL);
}

static void test_peft__bias_tensor(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {Q ".lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
	                          {Q ".bias", SLUICE_DT_F32, 1, HID, 0},
	                          END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), Q ".bias", "bias", NULL);
}

static void test_peft__foreign_tensor_names(void **state)
{
	struct fixture *f = *state;
	static const spec no_prefix[] = {
	        {"model.layers.0.self_attn.q_proj.lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	        END_SPECS};
	static const spec other_adapter[] = {{Q ".lora_A.mine.weight", SLUICE_DT_F32, 2, 4, HID},
	                                     END_SPECS};
	static const spec no_module[] = {
	        {"base_model.model.lora_A.weight", SLUICE_DT_F32, 2, 4, HID}, END_SPECS};
	static const spec empty_module[] = {
	        {"base_model.model..lora_A.weight", SLUICE_DT_F32, 2, 4, HID}, END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", no_prefix),
	               "tensor model.layers.0.self_attn.q_proj.lora_A.weight", "base_model.model.",
	               NULL);
	assert_refused(f, load(f, "{" LORA "}", other_adapter), Q ".lora_A.mine.weight",
	               "not a LoRA tensor", NULL);
	assert_refused(f, load(f, "{" LORA "}", no_module), "base_model.model.lora_A.weight",
	               "not a LoRA tensor", NULL);
	assert_refused(f, load(f, "{" LORA "}", empty_module), "base_model.model..lora_A.weight",
	               "not a LoRA tensor", NULL);
}

static void test_peft__b_wrong_shape(void **state)
{
	struct fixture *f = *state;
	/* v_proj's B sized for q_proj: out must be the kv dimension, 8 */
	static const spec ad[] = {{V ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {V ".lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
	                          END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), "tensor " V ".lora_B.weight", "shape [16, 4]",
	               "expected [8, 4]", NULL);
}

static void test_peft__a_rank_differs_from_config(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 2, 8, HID},
	                          {Q ".lora_B.weight", SLUICE_DT_F32, 2, HID, 8},
	                          END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), "tensor " Q ".lora_A.weight", "shape [8, 16]",
	               "rank 4", "expected [4, 16]", NULL);
}

static void test_peft__a_not_two_dimensional(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 1, 64, 0},
	                          {Q ".lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
	                          END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), Q ".lora_A.weight", "shape [64]",
	               "expected [4, 16]", NULL);
}

static void test_peft__a_missing(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {Q ".lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
	                          {V ".lora_B.weight", SLUICE_DT_F32, 2, KV, 4},
	                          END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), "module model.layers.0.self_attn.v_proj",
	               V ".lora_B.weight", "no matching lora_A", NULL);
}

static void test_peft__b_missing(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{V ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID}, END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), V ".lora_A.weight", "no matching lora_B",
	               NULL);
}

static void test_peft__duplicate_half(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {Q ".lora_A.default.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {Q ".lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
	                          END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), Q ".lora_A.default.weight", Q ".lora_A.weight",
	               "both its lora_A", NULL);
}

static void test_peft__mixed_linear_and_embedding_halves(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {Q ".lora_embedding_B", SLUICE_DT_F32, 2, HID, 4},
	                          END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), "model.layers.0.self_attn.q_proj", "mix",
	               NULL);
}

static void test_peft__integer_dtype(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {{Q ".lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	                          {Q ".lora_B.weight", SLUICE_DT_I8, 2, HID, 4},
	                          END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), Q ".lora_B.weight", "F32, F16 or BF16", NULL);
}

static void test_peft__module_absent_from_base(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {
	        {"base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight", SLUICE_DT_F32,
	         2, 4, HID},
	        {"base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight", SLUICE_DT_F32,
	         2, HID, 4},
	        END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad),
	               "target module model.layers.0.self_attn.qkv_proj does not exist in the base "
	               "model",
	               NULL);
}

static void test_peft__base_weight_not_a_matrix(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {
	        {"base_model.model.model.norm.lora_A.weight", SLUICE_DT_F32, 2, 4, HID},
	        {"base_model.model.model.norm.lora_B.weight", SLUICE_DT_F32, 2, HID, 4},
	        END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), "model.norm.weight", "2-dimensional", NULL);
}

static void test_peft__empty_adapter(void **state)
{
	struct fixture *f = *state;
	static const spec ad[] = {END_SPECS};

	assert_refused(f, load(f, "{" LORA "}", ad), "adapter_model.safetensors", "no LoRA tensors",
	               NULL);
}

/* ---- allocation failures ----------------------------------------------- */

struct nth {
	unsigned n, seen;
};

static int fail_nth_alloc(void *data, sluice_fault_op op, const char *what)
{
	struct nth *s = data;

	(void)what;
	return op == SLUICE_FAULT_ALLOC && ++s->seen == s->n;
}

static void test_peft__allocation_failures(void **state)
{
	struct fixture *f = *state;
	struct nth s = {0, 0};
	int rc;

	/* fail each allocation in turn until the load needs none that fail */
	for (s.n = 1;; s.n++) {
		s.seen = 0;
		sluice_ctx_set_fault_hook(f->ctx, fail_nth_alloc, &s);
		rc = load(f, CFG_QV, adapter_qv);
		if (rc == 0)
			break;
		assert_int_equal(rc, SLUICE_ENOMEM);
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "out of memory"));
		assert_null(f->out.modules);
		assert_null(f->out.peft_type);
		assert_true(s.n < 100);
	}
	sluice_ctx_set_fault_hook(f->ctx, NULL, NULL);
	assert_true(s.n > 5);
	assert_int_equal(f->out.nmodules, 2);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_peft__valid_qv),
	        T(test_peft__modules_sorted_whatever_the_file_order),
	        T(test_peft__rslora_scale),
	        T(test_peft__rank_and_alpha_pattern_override_one_module),
	        T(test_peft__rank_pattern_with_rslora),
	        T(test_peft__embedding_adapter),
	        T(test_peft__embedding_wrong_shape),
	        T(test_peft__adapter_name_in_tensor_names),
	        T(test_peft__sharded_base),
	        T(test_peft__only_one_shard_given),
	        T(test_peft__base_tensor_in_two_shards),
	        T(test_peft__target_modules_null_and_absent),
	        T(test_peft__target_modules_full_names_and_repeats),
	        T(test_peft__target_entry_matching_nothing),
	        T(test_peft__target_entry_is_not_a_dot_suffix),
	        T(test_peft__module_outside_target_list),
	        T(test_peft__target_regex_full_match),
	        T(test_peft__all_linear_excludes_embeddings),
	        T(test_peft__config_refusals),
	        T(test_peft__config_size_cap),
	        T(test_peft__parse_config_alone),
	        T(test_peft__empty_lists_are_harmless),
	        T(test_peft__dora_magnitude_tensor),
	        T(test_peft__modules_to_save_tensor),
	        T(test_peft__bias_tensor),
	        T(test_peft__foreign_tensor_names),
	        T(test_peft__b_wrong_shape),
	        T(test_peft__a_rank_differs_from_config),
	        T(test_peft__a_not_two_dimensional),
	        T(test_peft__a_missing),
	        T(test_peft__b_missing),
	        T(test_peft__duplicate_half),
	        T(test_peft__mixed_linear_and_embedding_halves),
	        T(test_peft__integer_dtype),
	        T(test_peft__module_absent_from_base),
	        T(test_peft__base_weight_not_a_matrix),
	        T(test_peft__empty_adapter),
	        T(test_peft__allocation_failures),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
