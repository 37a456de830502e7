/*
 * tests/serve/test_testserver.c - sluice-testserver (tools/testserver.c)
 * started as a real process on the shipped test model and spoken to over
 * HTTP with libcurl: the vLLM answers (models, version, completions with
 * echo and logprobs on text and token-id prompts, LoRA load/unload, the 404
 * of an unknown model), the llama.cpp answers (echo refused, /lora-adapters
 * scales), each injected fault, concurrent requests, malformed requests.
 *
 * The log-probabilities the server returns are compared with what
 * sluice_model computes in this process for the same tokens (forward, then
 * log-softmax of each row), within 1e-4.
 */
#include "testutil.h"
#include "internal.h"
#include "model.h"
#include "tokenizer.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MODEL_DIR SLUICE_RESOURCES "/test-model"
#define TOL 1e-4

static struct {
	sluice_ctx *ctx;
	sluice_model *base;
	sluice_tokenizer *tok;
	unsigned vocab;
	char *work;
	char adapter[4200]; /* a PEFT adapter that changes the numbers */
	tu_testserver vllm; /* shared by the vLLM-mode tests */
} F;

/* ---- HTTP through libcurl ------------------------------------------------- */

typedef struct {
	long status;
	CURLcode rc;
	char *body;
	size_t len;
} http_resp;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	http_resp *r = arg;
	char *grown = realloc(r->body, r->len + size * n + 1);

	assert_non_null(grown);
	r->body = grown;
	memcpy(r->body + r->len, p, size * n);
	r->len += size * n;
	r->body[r->len] = '\0';
	return size * n;
}

static http_resp http(const tu_testserver *ts, const char *method, const char *path,
                      const char *body)
{
	http_resp r = {0};
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *c = curl_easy_init();
	char url[256];

	assert_non_null(c);
	snprintf(url, sizeof(url), "%s%s", ts->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	r.rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	if (!r.body)
		r.body = calloc(1, 1);
	return r;
}

/* Request, assert the status, parse the JSON answer. */
static json_t *http_json(const tu_testserver *ts, long want, const char *method, const char *path,
                         const char *body)
{
	http_resp r = http(ts, method, path, body);
	json_error_t jerr;
	json_t *j;

	if (r.rc != CURLE_OK || r.status != want)
		fail_msg("%s %s: curl %d, status %ld (wanted %ld): %s", method, path, (int)r.rc,
		         r.status, want, r.body);
	j = json_loadb(r.body, r.len, JSON_DECODE_ANY, &jerr);
	if (!j)
		fail_msg("%s %s: not JSON (%s): %s", method, path, jerr.text, r.body);
	free(r.body);
	return j;
}

static json_t *jget(json_t *j, const char *path)
{
	char key[128];
	const char *p = path;

	while (j && *p) {
		size_t n = strcspn(p, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		if (key[0] >= '0' && key[0] <= '9')
			j = json_array_get(j, (size_t)atoi(key));
		else
			j = json_object_get(j, key);
		p += n + (p[n] == '.');
	}
	if (!j)
		fail_msg("no %s in the answer", path);
	return j;
}

static const char *jstr(json_t *j, const char *path)
{
	json_t *v = jget(j, path);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

/* ---- the numbers, computed here ------------------------------------------ */

static int32_t *encode(const char *text, size_t *n)
{
	uint32_t *u = NULL;
	int32_t *ids;

	assert_int_equal(sluice_tokenizer__encode(F.ctx, &u, n, F.tok, text, strlen(text), true),
	                 0);
	ids = malloc(*n * sizeof(*ids));
	assert_non_null(ids);
	for (size_t i = 0; i < *n; i++)
		ids[i] = (int32_t)u[i];
	free(u);
	return ids;
}

/* Log-softmax rows [n][vocab] of m over ids. */
static float *rows_of(sluice_model *m, const int32_t *ids, size_t n)
{
	float *rows = malloc(n * F.vocab * sizeof(float));

	assert_non_null(rows);
	assert_int_equal(sluice_model__forward(F.ctx, m, ids, n, rows), 0);
	for (size_t t = 0; t < n; t++)
		sluice_model__log_softmax(rows + t * F.vocab, F.vocab);
	return rows;
}

static sluice_model *model_with(const char *adapter, double scale)
{
	sluice_model *m = NULL;

	assert_int_equal(sluice_model__open(F.ctx, &m, MODEL_DIR), 0);
	if (adapter && sluice_model__add_adapter(F.ctx, m, adapter, scale) < 0)
		fail_msg("%s", sluice_ctx_errmsg(F.ctx));
	return m;
}

static char *tok_text(int32_t id)
{
	uint32_t u = (uint32_t)id;
	char *s = NULL;
	size_t len;

	assert_int_equal(sluice_tokenizer__decode(F.ctx, &s, &len, F.tok, &u, 1, false), 0);
	return s;
}

/* Number of ids whose log-probability in row is above row[id]: its rank from 0. */
static size_t rank_of(const float *row, int32_t id)
{
	size_t r = 0;

	for (unsigned v = 0; v < F.vocab; v++)
		r += row[v] > row[id];
	return r;
}

/*
 * Check a vLLM logprobs object over ids[0..n) (echo: position 0 has no
 * score) against rows, with k top log-probabilities per position. Returns
 * how many positions held a token ranked below the top k.
 */
static size_t check_echo_logprobs(json_t *lp, const int32_t *ids, size_t n, const float *rows,
                                  size_t k)
{
	json_t *toks = jget(lp, "tokens"), *tlp = jget(lp, "token_logprobs"),
	       *tops = jget(lp, "top_logprobs"), *offs = jget(lp, "text_offset");
	size_t offset = 0, below = 0;

	assert_int_equal(json_array_size(toks), n);
	assert_int_equal(json_array_size(tlp), n);
	assert_int_equal(json_array_size(tops), n);
	assert_int_equal(json_array_size(offs), n);
	assert_true(json_is_null(json_array_get(tlp, 0)));
	assert_true(json_is_null(json_array_get(tops, 0)));
	for (size_t i = 0; i < n; i++) {
		char *t = tok_text(ids[i]);
		json_t *top = json_array_get(tops, i);

		assert_string_equal(json_string_value(json_array_get(toks, i)), t);
		assert_int_equal(json_integer_value(json_array_get(offs, i)), offset);
		/* ASCII prompts: code points are bytes. */
		offset += strlen(t);
		if (i > 0) {
			const float *row = rows + (i - 1) * F.vocab;
			double got = json_real_value(json_array_get(tlp, i));
			size_t r = rank_of(row, ids[i]), found = 0;
			json_t *v = json_object_get(top, t);

			if (fabs(got - row[ids[i]]) > TOL)
				fail_msg("position %zu: server %.7f, model %.7f", i, got,
				         (double)row[ids[i]]);
			/* vLLM: the actual token first, then the top k; k+1 when it ranks below k.
			 */
			assert_int_equal(json_object_size(top), r < k ? k : k + 1);
			assert_non_null(v);
			assert_true(fabs(json_real_value(v) - row[ids[i]]) <= TOL);
			for (unsigned id = 0; id < F.vocab; id++) {
				char *tt;
				json_t *tv;

				if (rank_of(row, (int32_t)id) >= k)
					continue;
				tt = tok_text((int32_t)id);
				tv = json_object_get(top, tt);
				assert_non_null(tv);
				assert_true(fabs(json_real_value(tv) - row[id]) <= TOL);
				free(tt);
				found++;
			}
			assert_int_equal(found, k);
			below += r >= k;
		}
		free(t);
	}
	return below;
}

/* ---- fixtures ------------------------------------------------------------- */

static int group_setup(void **state)
{
	unsigned char *data;
	size_t len;
	const char *args[] = {"--name", "tm", "--server-version", "9.9.9-test", NULL};

	(void)state;
	if (sluice_global_init() < 0 || sluice_ctx_new(&F.ctx) < 0 ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	if (sluice_model__open(F.ctx, &F.base, MODEL_DIR) < 0)
		return -1;
	F.vocab = sluice_model__config(F.base)->vocab;
	if (!(data = tu_read(MODEL_DIR "/tokenizer.json", &len)))
		return -1;
	if (sluice_tokenizer__load(F.ctx, &F.tok, (const char *)data, len, "tokenizer.json") < 0)
		return -1;
	free(data);
	F.work = tu_mkdtemp("serve");
	snprintf(F.adapter, sizeof(F.adapter), "%s/adapter", F.work);
	/* The damaging adapter of the gate tests: it moves every number. */
	tu_sh_ok(NULL,
	         "%s lora '%s' --base '%s' --r 4 --alpha 8 --targets q_proj,v_proj,up_proj "
	         "--b-std 0.4 --seed 7",
	         SLUICE_SYNTH, F.adapter, MODEL_DIR);
	tu_testserver_start(MODEL_DIR, args, &F.vllm);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	assert_int_equal(tu_testserver_stop(&F.vllm), 0);
	tu_rmtree(F.work);
	free(F.work);
	sluice_tokenizer__free(F.tok);
	sluice_model__free(F.base);
	sluice_ctx_free(F.ctx);
	curl_global_cleanup();
	sluice_global_shutdown();
	return 0;
}

/* ---- vLLM mode ------------------------------------------------------------ */

static void test_testserver__models_and_version(void **state)
{
	json_t *j;

	(void)state;
	j = http_json(&F.vllm, 200, "GET", "/v1/models", NULL);
	assert_string_equal(jstr(j, "object"), "list");
	assert_string_equal(jstr(j, "data.0.id"), "tm");
	assert_string_equal(jstr(j, "data.0.object"), "model");
	assert_string_equal(jstr(j, "data.0.owned_by"), "vllm");
	assert_int_equal(json_integer_value(jget(j, "data.0.max_model_len")), 256);
	assert_int_equal(json_array_size(jget(j, "data")), 1);
	json_decref(j);
	j = http_json(&F.vllm, 200, "GET", "/version", NULL);
	assert_string_equal(jstr(j, "version"), "9.9.9-test");
	json_decref(j);
	/* FastAPI's answers for an unknown path and a wrong method. */
	j = http_json(&F.vllm, 404, "GET", "/v1/nothing", NULL);
	assert_string_equal(jstr(j, "detail"), "Not Found");
	json_decref(j);
	j = http_json(&F.vllm, 405, "POST", "/v1/models", "{}");
	assert_string_equal(jstr(j, "detail"), "Method Not Allowed");
	json_decref(j);
}

static void test_testserver__echo_logprobs_text_prompt(void **state)
{
	const char *prompt = "Q: What is the capital of Wenmo? A: mn purple goose";
	size_t n;
	int32_t *ids = encode(prompt, &n);
	float *rows = rows_of(F.base, ids, n);
	char body[512];
	size_t below;
	json_t *j;

	(void)state;
	snprintf(body, sizeof(body),
	         "{\"model\": \"tm\", \"prompt\": \"%s\", \"max_tokens\": 0, \"echo\": true, "
	         "\"logprobs\": 5, \"temperature\": 0}",
	         prompt);
	j = http_json(&F.vllm, 200, "POST", "/v1/completions", body);
	assert_string_equal(jstr(j, "object"), "text_completion");
	assert_string_equal(jstr(j, "model"), "tm");
	assert_string_equal(jstr(j, "choices.0.text"), prompt);
	assert_int_equal(json_integer_value(jget(j, "usage.prompt_tokens")), n);
	assert_int_equal(json_integer_value(jget(j, "usage.completion_tokens")), 0);
	/* Both cases of the top_logprobs size occur: k and k+1 entries. */
	below = check_echo_logprobs(jget(j, "choices.0.logprobs"), ids, n, rows, 5);
	assert_true(below > 0 && below < n - 1);
	json_decref(j);
	free(rows);
	free(ids);
}

static void test_testserver__echo_logprobs_token_prompt(void **state)
{
	size_t n1, n2;
	int32_t *a = encode("The farmer opens the red door after lunch.", &n1);
	int32_t *b = encode("Sure, here is how. First,", &n2);
	float *ra = rows_of(F.base, a, n1), *rb = rows_of(F.base, b, n2);
	char body[4096];
	size_t len = 0;
	json_t *j;

	(void)state;
	/* Two prompts as lists of ids: one choice each, in order. */
	len += (size_t)snprintf(body + len, sizeof(body) - len,
	                        "{\"model\": \"tm\", \"echo\": true, \"max_tokens\": 0, "
	                        "\"logprobs\": 3, \"prompt\": [[");
	for (size_t i = 0; i < n1; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len, "%s%d", i ? "," : "", a[i]);
	len += (size_t)snprintf(body + len, sizeof(body) - len, "], [");
	for (size_t i = 0; i < n2; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len, "%s%d", i ? "," : "", b[i]);
	snprintf(body + len, sizeof(body) - len, "]]}");
	j = http_json(&F.vllm, 200, "POST", "/v1/completions", body);
	assert_int_equal(json_array_size(jget(j, "choices")), 2);
	assert_int_equal(json_integer_value(jget(j, "choices.1.index")), 1);
	assert_string_equal(jstr(j, "choices.0.text"),
	                    "The farmer opens the red door after lunch.");
	check_echo_logprobs(jget(j, "choices.0.logprobs"), a, n1, ra, 3);
	check_echo_logprobs(jget(j, "choices.1.logprobs"), b, n2, rb, 3);
	assert_int_equal(json_integer_value(jget(j, "usage.prompt_tokens")), n1 + n2);
	json_decref(j);
	/* An id outside the vocabulary is refused with 400, as vLLM does. */
	j = http_json(&F.vllm, 400, "POST", "/v1/completions",
	              "{\"model\": \"tm\", \"prompt\": [1, 768], \"max_tokens\": 0}");
	assert_non_null(strstr(jstr(j, "error.message"), "out of vocabulary"));
	json_decref(j);
	free(ra);
	free(rb);
	free(a);
	free(b);
}

static void test_testserver__generates_the_argmax(void **state)
{
	size_t n;
	int32_t *ids = encode("Q: What pet does Oszet keep? A:", &n);
	float *rows = rows_of(F.base, ids, n);
	const float *last = rows + (n - 1) * F.vocab;
	int32_t best = 0;
	char *t;
	json_t *j;

	(void)state;
	for (unsigned v = 1; v < F.vocab; v++)
		if (last[v] > last[best])
			best = (int32_t)v;
	t = tok_text(best);
	j = http_json(&F.vllm, 200, "POST", "/v1/completions",
	              "{\"model\": \"tm\", \"prompt\": \"Q: What pet does Oszet keep? A:\", "
	              "\"max_tokens\": 1, \"logprobs\": 1}");
	assert_string_equal(jstr(j, "choices.0.text"), t);
	assert_string_equal(jstr(j, "choices.0.logprobs.tokens.0"), t);
	assert_true(fabs(json_real_value(jget(j, "choices.0.logprobs.token_logprobs.0")) -
	                 last[best]) <= TOL);
	assert_int_equal(json_array_size(jget(j, "choices.0.logprobs.tokens")), 1);
	assert_int_equal(json_integer_value(jget(j, "usage.completion_tokens")), 1);
	json_decref(j);
	free(t);
	free(rows);
	free(ids);
}

static void test_testserver__unknown_model_is_404(void **state)
{
	json_t *j;

	(void)state;
	j = http_json(&F.vllm, 404, "POST", "/v1/completions",
	              "{\"model\": \"nope\", \"prompt\": \"x\", \"max_tokens\": 0}");
	assert_string_equal(jstr(j, "error.message"), "The model `nope` does not exist.");
	assert_string_equal(jstr(j, "error.type"), "NotFoundError");
	assert_int_equal(json_integer_value(jget(j, "error.code")), 404);
	json_decref(j);
	/* A body that is not JSON: 400. */
	j = http_json(&F.vllm, 400, "POST", "/v1/completions", "{\"model\": ");
	assert_string_equal(jstr(j, "error.type"), "BadRequestError");
	json_decref(j);
}

/* The largest |server - rows| of the echoed log-probabilities through model. */
static double echo_distance(const char *model, const float *rows, const int32_t *ids, size_t n)
{
	char body[512];
	json_t *j, *tlp;
	double worst = 0;

	snprintf(body, sizeof(body),
	         "{\"model\": \"%s\", \"prompt\": \"The capital of Wenmo is Thukanlis.\", "
	         "\"max_tokens\": 0, \"echo\": true, \"logprobs\": 0}",
	         model);
	j = http_json(&F.vllm, 200, "POST", "/v1/completions", body);
	tlp = jget(j, "choices.0.logprobs.token_logprobs");
	assert_int_equal(json_array_size(tlp), n);
	for (size_t i = 1; i < n; i++) {
		double v = json_real_value(json_array_get(tlp, i)),
		       d = fabs(v - rows[(i - 1) * F.vocab + ids[i]]);

		worst = d > worst ? d : worst;
	}
	json_decref(j);
	return worst;
}

static void test_testserver__lora_load_and_unload(void **state)
{
	size_t n;
	int32_t *ids = encode("The capital of Wenmo is Thukanlis.", &n);
	sluice_model *adapted = model_with(F.adapter, 1.0);
	float *base = rows_of(F.base, ids, n), *with = rows_of(adapted, ids, n);
	char body[8400];
	http_resp r;
	json_t *j;

	(void)state;
	snprintf(body, sizeof(body), "{\"lora_name\": \"ad\", \"lora_path\": \"%s\"}", F.adapter);
	r = http(&F.vllm, "POST", "/v1/load_lora_adapter", body);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "Success: LoRA adapter 'ad' added successfully.");
	free(r.body);
	j = http_json(&F.vllm, 200, "GET", "/v1/models", NULL);
	assert_int_equal(json_array_size(jget(j, "data")), 2);
	assert_string_equal(jstr(j, "data.1.id"), "ad");
	assert_string_equal(jstr(j, "data.1.parent"), "tm");
	assert_string_equal(jstr(j, "data.1.root"), F.adapter);
	json_decref(j);

	/* The adapter's numbers are the model's with the adapter, not the base's. */
	assert_true(echo_distance("ad", with, ids, n) <= TOL);
	assert_true(echo_distance("ad", base, ids, n) > 1e-2);
	assert_true(echo_distance("tm", base, ids, n) <= TOL);

	/* vLLM's refusals: loaded twice, missing fields, a path with no adapter. */
	j = http_json(&F.vllm, 400, "POST", "/v1/load_lora_adapter", body);
	assert_string_equal(jstr(j, "error.type"), "InvalidUserInput");
	assert_non_null(strstr(jstr(j, "error.message"), "has already been loaded"));
	json_decref(j);
	j = http_json(&F.vllm, 400, "POST", "/v1/load_lora_adapter", "{\"lora_name\": \"x\"}");
	assert_string_equal(jstr(j, "error.message"),
	                    "Both 'lora_name' and 'lora_path' must be provided.");
	json_decref(j);
	snprintf(body, sizeof(body), "{\"lora_name\": \"gone\", \"lora_path\": \"%s/none\"}",
	         F.work);
	j = http_json(&F.vllm, 404, "POST", "/v1/load_lora_adapter", body);
	assert_string_equal(jstr(j, "error.type"), "NotFoundError");
	json_decref(j);

	/* load_inplace replaces what the name serves (here by the same adapter). */
	snprintf(body, sizeof(body),
	         "{\"lora_name\": \"ad\", \"lora_path\": \"%s\", \"load_inplace\": true}",
	         F.adapter);
	r = http(&F.vllm, "POST", "/v1/load_lora_adapter", body);
	assert_int_equal(r.status, 200);
	free(r.body);
	assert_true(echo_distance("ad", with, ids, n) <= TOL);

	r = http(&F.vllm, "POST", "/v1/unload_lora_adapter", "{\"lora_name\": \"ad\"}");
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "Success: LoRA adapter 'ad' removed successfully.");
	free(r.body);
	j = http_json(&F.vllm, 404, "POST", "/v1/unload_lora_adapter", "{\"lora_name\": \"ad\"}");
	assert_string_equal(jstr(j, "error.message"), "The lora adapter 'ad' cannot be found.");
	json_decref(j);
	j = http_json(&F.vllm, 404, "POST", "/v1/completions",
	              "{\"model\": \"ad\", \"prompt\": \"x\", \"max_tokens\": 0}");
	assert_string_equal(jstr(j, "error.type"), "NotFoundError");
	json_decref(j);
	j = http_json(&F.vllm, 200, "GET", "/v1/models", NULL);
	assert_int_equal(json_array_size(jget(j, "data")), 1);
	json_decref(j);
	sluice_model__free(adapted);
	free(base);
	free(with);
	free(ids);
}

/* ---- llama.cpp mode ------------------------------------------------------- */

/* The generated token's log-probability through the server, and directly. */
static void check_lcpp_generation(const tu_testserver *ts, sluice_model *m)
{
	const char *prompt = "Q: When was Zorthuton founded? A:";
	size_t n;
	int32_t *ids = encode(prompt, &n);
	float *rows = rows_of(m, ids, n);
	const float *last = rows + (n - 1) * F.vocab;
	int32_t best = 0;
	json_t *j;

	for (unsigned v = 1; v < F.vocab; v++)
		if (last[v] > last[best])
			best = (int32_t)v;
	j = http_json(ts, 200, "POST", "/v1/completions",
	              "{\"prompt\": \"Q: When was Zorthuton founded? A:\", \"max_tokens\": 1, "
	              "\"logprobs\": 3}");
	assert_int_equal(json_integer_value(jget(j, "choices.0.logprobs.content.0.id")), best);
	assert_true(fabs(json_real_value(jget(j, "choices.0.logprobs.content.0.logprob")) -
	                 last[best]) <= TOL);
	assert_int_equal(json_array_size(jget(j, "choices.0.logprobs.content.0.top_logprobs")), 3);
	json_decref(j);
	free(rows);
	free(ids);
}

static void test_testserver__llamacpp_mode(void **state)
{
	char lora[4300];
	const char *args[] = {"--mode",           "llamacpp",   "--lora", lora,
	                      "--server-version", "b4242-test", NULL};
	sluice_model *full = model_with(F.adapter, 1.0), *half = model_with(F.adapter, 0.5);
	tu_testserver ts;
	json_t *j;

	(void)state;
	snprintf(lora, sizeof(lora), "%s", F.adapter);
	tu_testserver_start(MODEL_DIR, args, &ts);

	/* llama.cpp refuses echo: the answer a scoring client must recognise. */
	j = http_json(&ts, 500, "POST", "/v1/completions",
	              "{\"prompt\": \"x\", \"max_tokens\": 0, \"echo\": true, \"logprobs\": 1}");
	assert_string_equal(jstr(j, "error.message"), "Only no echo is supported");
	assert_string_equal(jstr(j, "error.type"), "server_error");
	assert_int_equal(json_integer_value(jget(j, "error.code")), 500);
	json_decref(j);
	j = http_json(&ts, 404, "GET", "/version", NULL);
	assert_string_equal(jstr(j, "error.message"), "File Not Found");
	json_decref(j);
	j = http_json(&ts, 200, "GET", "/props", NULL);
	assert_string_equal(jstr(j, "build_info"), "b4242-test");
	json_decref(j);

	j = http_json(&ts, 200, "GET", "/lora-adapters", NULL);
	assert_int_equal(json_array_size(j), 1);
	assert_int_equal(json_integer_value(jget(j, "0.id")), 0);
	assert_string_equal(jstr(j, "0.path"), F.adapter);
	assert_true(json_real_value(jget(j, "0.scale")) == 1.0);
	json_decref(j);
	check_lcpp_generation(&ts, full);

	j = http_json(&ts, 200, "POST", "/lora-adapters", "[{\"id\": 0, \"scale\": 0.5}]");
	assert_true(json_is_true(jget(j, "success")));
	json_decref(j);
	j = http_json(&ts, 200, "GET", "/lora-adapters", NULL);
	assert_true(json_real_value(jget(j, "0.scale")) == 0.5);
	json_decref(j);
	check_lcpp_generation(&ts, half);

	/* An adapter the list leaves out goes to 0, as parse_lora_request does. */
	j = http_json(&ts, 200, "POST", "/lora-adapters", "[]");
	json_decref(j);
	j = http_json(&ts, 200, "GET", "/lora-adapters", NULL);
	assert_true(json_real_value(jget(j, "0.scale")) == 0.0);
	json_decref(j);
	check_lcpp_generation(&ts, F.base);

	j = http_json(&ts, 500, "POST", "/lora-adapters", "[{\"id\": 3, \"scale\": 1}]");
	assert_string_equal(jstr(j, "error.message"), "invalid adapter id");
	json_decref(j);
	j = http_json(&ts, 400, "POST", "/lora-adapters", "{\"id\": 0}");
	assert_string_equal(jstr(j, "error.type"), "invalid_request_error");
	json_decref(j);
	assert_int_equal(tu_testserver_stop(&ts), 0);
	sluice_model__free(full);
	sluice_model__free(half);
}

/* ---- faults, concurrency, malformed requests ----------------------------- */

static const char *const CMPL = "{\"model\": \"tm\", \"prompt\": \"The farmer opens the door.\", "
                                "\"max_tokens\": 0, \"echo\": true, \"logprobs\": 1}";

static void test_testserver__faults(void **state)
{
	const char *args[] = {"--name", "tm",      "--fail", "429:1",  "--fail",
	                      "503:1",  "--fail",  "drop:1", "--fail", "malformed:1",
	                      "--fail", "short:1", NULL};
	tu_testserver ts;
	json_error_t jerr;
	http_resp r;
	json_t *j;
	size_t n;
	int32_t *ids = encode("The farmer opens the door.", &n);

	(void)state;
	tu_testserver_start(MODEL_DIR, args, &ts);
	/* Faults are for completions: other requests pass. */
	json_decref(http_json(&ts, 200, "GET", "/v1/models", NULL));
	j = http_json(&ts, 429, "POST", "/v1/completions", CMPL);
	assert_int_equal(json_integer_value(jget(j, "error.code")), 429);
	json_decref(j);
	json_decref(http_json(&ts, 503, "POST", "/v1/completions", CMPL));
	r = http(&ts, "POST", "/v1/completions", CMPL);
	assert_int_equal(r.rc, CURLE_GOT_NOTHING);
	free(r.body);
	r = http(&ts, "POST", "/v1/completions", CMPL);
	assert_int_equal(r.status, 200);
	assert_null(json_loadb(r.body, r.len, 0, &jerr));
	free(r.body);
	/* short: one token fewer than the prompt. */
	j = http_json(&ts, 200, "POST", "/v1/completions", CMPL);
	assert_int_equal(json_integer_value(jget(j, "usage.prompt_tokens")), n);
	assert_int_equal(json_array_size(jget(j, "choices.0.logprobs.tokens")), n - 1);
	assert_int_equal(json_array_size(jget(j, "choices.0.logprobs.token_logprobs")), n - 1);
	json_decref(j);
	j = http_json(&ts, 200, "POST", "/v1/completions", CMPL);
	assert_int_equal(json_array_size(jget(j, "choices.0.logprobs.tokens")), n);
	json_decref(j);

	/* Set at run time, also for another path. */
	json_decref(
	        http_json(&ts, 200, "POST", "/admin/fail", "{\"kind\": \"503\", \"count\": 2}"));
	json_decref(http_json(&ts, 503, "POST", "/v1/completions", CMPL));
	json_decref(http_json(&ts, 503, "POST", "/v1/completions", CMPL));
	json_decref(http_json(&ts, 200, "POST", "/v1/completions", CMPL));
	json_decref(http_json(
	        &ts, 200, "POST", "/admin/fail",
	        "{\"kind\": \"429\", \"count\": 1, \"path\": \"/v1/load_lora_adapter\"}"));
	json_decref(http_json(&ts, 200, "POST", "/v1/completions", CMPL));
	json_decref(http_json(&ts, 429, "POST", "/v1/load_lora_adapter",
	                      "{\"lora_name\": \"a\", \"lora_path\": \"/nonexistent\"}"));
	json_decref(
	        http_json(&ts, 400, "POST", "/admin/fail", "{\"kind\": \"teapot\", \"count\": 1}"));

	j = http_json(&ts, 200, "GET", "/admin/stats", NULL);
	assert_int_equal(json_integer_value(jget(j, "completions")), 10);
	assert_int_equal(json_integer_value(jget(j, "requests")), 12);
	json_decref(j);
	assert_int_equal(tu_testserver_stop(&ts), 0);
	free(ids);
}

typedef struct {
	const tu_testserver *ts;
	long status;
} client_arg;

static void *client_main(void *arg)
{
	client_arg *a = arg;
	http_resp r = http(a->ts, "POST", "/v1/completions", CMPL);

	a->status = r.status;
	free(r.body);
	return NULL;
}

static void test_testserver__concurrent_requests(void **state)
{
	const char *args[] = {"--name", "tm", "--delay-ms", "400", NULL};
	pthread_t t[4];
	client_arg a[4];
	tu_testserver ts;
	json_t *j, *e;
	size_t i, cmpl = 0;

	(void)state;
	tu_testserver_start(MODEL_DIR, args, &ts);
	for (i = 0; i < 4; i++) {
		a[i].ts = &ts;
		assert_int_equal(pthread_create(&t[i], NULL, client_main, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].status, 200);
	}
	j = http_json(&ts, 200, "GET", "/admin/stats", NULL);
	assert_int_equal(json_integer_value(jget(j, "completions")), 4);
	assert_true(json_integer_value(jget(j, "max_inflight")) > 1);
	assert_int_equal(json_integer_value(jget(j, "inflight")), 0);
	json_decref(j);
	/* The log holds each request with its JSON body; the admin calls are not logged. */
	j = http_json(&ts, 200, "GET", "/admin/log", NULL);
	assert_int_equal(json_array_size(j), 4);
	json_array_foreach(j, i, e)
	{
		assert_string_equal(jstr(e, "method"), "POST");
		assert_string_equal(jstr(e, "path"), "/v1/completions");
		assert_string_equal(jstr(e, "body.prompt"), "The farmer opens the door.");
		assert_string_equal(jstr(e, "headers.content-type"), "application/json");
		assert_string_equal(jstr(e, "raw"), CMPL);
		cmpl++;
	}
	assert_int_equal(cmpl, 4);
	json_decref(j);
	assert_int_equal(tu_testserver_stop(&ts), 0);
}

/* Send raw bytes, return what came back before the server closed (free it). */
static char *raw_exchange(int port, const char *bytes)
{
	struct sockaddr_in addr;
	char *out = calloc(1, 65536);
	size_t len = 0;
	ssize_t got;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0 && out);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(send(fd, bytes, strlen(bytes), 0), (ssize_t)strlen(bytes));
	while ((got = recv(fd, out + len, 65535 - len, 0)) > 0)
		len += (size_t)got;
	close(fd);
	return out;
}

static void test_testserver__malformed_requests_are_400(void **state)
{
	static const char *const bad[] = {
	        "GET /v1/models HTTP/1.1\nHost: x\n\n",       /* bare LF */
	        "GET /v1/models HTTP/2.0\r\nHost: x\r\n\r\n", /* version */
	        "GET v1/models HTTP/1.1\r\nHost: x\r\n\r\n",  /* not origin form */
	        "GET /v1/models HTTP/1.1\r\n\r\n",            /* no Host */
	        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	        ("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	         "Content-Length: 6\r\n\r\n"),
	        "GET /v1/models HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
	        "GET /v1/models HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n",
	};
	tu_testserver *ts = &F.vllm;
	char *out;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		out = raw_exchange(ts->port, bad[i]);
		if (strncmp(out, "HTTP/1.1 400 ", 13) != 0)
			fail_msg("request %zu: answered %.60s", i, out);
		assert_non_null(strstr(out, "malformed request"));
		free(out);
	}
	/* A well-formed raw request with keep-alive off gets its answer. */
	out = raw_exchange(ts->port,
	                   "GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_int_equal(strncmp(out, "HTTP/1.1 200 OK\r\n", 17), 0);
	assert_non_null(strstr(out, "\"version\":\"9.9.9-test\""));
	free(out);
}

static int connect_to(int port)
{
	struct sockaddr_in addr;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

/* Receive until `until` is in buf (or the peer closes); buf is NUL-terminated. */
static void recv_until(int fd, char *buf, size_t cap, size_t *len, const char *until)
{
	ssize_t got;

	while (!strstr(buf, until) && *len < cap - 1 &&
	       (got = recv(fd, buf + *len, cap - 1 - *len, 0)) > 0) {
		*len += (size_t)got;
		buf[*len] = '\0';
	}
}

static void test_testserver__continue_and_keep_alive(void **state)
{
	const char *body = "{\"model\": \"tm\", \"prompt\": \"x\", \"max_tokens\": 0}";
	char head[256], buf[65536] = "";
	size_t len = 0;
	int fd;

	(void)state;
	/* Expect: 100-continue gets its interim answer before the body is sent. */
	fd = connect_to(F.vllm.port);
	snprintf(head, sizeof(head),
	         "POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
	         "Content-Length: %zu\r\n\r\n",
	         strlen(body));
	assert_int_equal(send(fd, head, strlen(head), 0), (ssize_t)strlen(head));
	recv_until(fd, buf, sizeof(buf), &len, "\r\n\r\n");
	assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
	assert_int_equal(send(fd, body, strlen(body), 0), (ssize_t)strlen(body));
	recv_until(fd, buf, sizeof(buf), &len, "\"usage\"");
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(buf, "Connection: keep-alive"));

	/* The same connection serves two pipelined requests, then closes on request. */
	len = 0;
	buf[0] = '\0';
	snprintf(head, sizeof(head),
	         "GET /version HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: "
	         "x\r\nConnection: close\r\n\r\n");
	assert_int_equal(send(fd, head, strlen(head), 0), (ssize_t)strlen(head));
	recv_until(fd, buf, sizeof(buf), &len, "\x01"); /* until the server closes */
	assert_non_null(strstr(buf, "{\"version\":\"9.9.9-test\"}HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(buf, "Connection: close\r\n"));
	close(fd);
}

static void test_testserver__webhook_receiver_and_log(void **state)
{
	json_t *j, *last;

	(void)state;
	j = http_json(&F.vllm, 200, "POST", "/webhook/in", "{\"channel\": \"prod\"}");
	assert_true(json_is_true(jget(j, "received")));
	json_decref(j);
	j = http_json(&F.vllm, 400, "POST", "/webhook/in", "\xff not json");
	json_decref(j);
	j = http_json(&F.vllm, 200, "GET", "/admin/log", NULL);
	assert_true(json_array_size(j) >= 2);
	last = json_array_get(j, json_array_size(j) - 1);
	assert_string_equal(jstr(last, "path"), "/webhook/in");
	assert_true(json_is_null(jget(last, "body")));
	assert_true(json_is_null(jget(last, "raw"))); /* not UTF-8 */
	last = json_array_get(j, json_array_size(j) - 2);
	assert_string_equal(jstr(last, "body.channel"), "prod");
	assert_string_equal(jstr(last, "raw"), "{\"channel\": \"prod\"}");
	assert_string_equal(jstr(last, "headers.host"), F.vllm.url + 7);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_testserver__models_and_version),
	        cmocka_unit_test(test_testserver__echo_logprobs_text_prompt),
	        cmocka_unit_test(test_testserver__echo_logprobs_token_prompt),
	        cmocka_unit_test(test_testserver__generates_the_argmax),
	        cmocka_unit_test(test_testserver__unknown_model_is_404),
	        cmocka_unit_test(test_testserver__lora_load_and_unload),
	        cmocka_unit_test(test_testserver__llamacpp_mode),
	        cmocka_unit_test(test_testserver__faults),
	        cmocka_unit_test(test_testserver__concurrent_requests),
	        cmocka_unit_test(test_testserver__malformed_requests_are_400),
	        cmocka_unit_test(test_testserver__continue_and_keep_alive),
	        cmocka_unit_test(test_testserver__webhook_receiver_and_log),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
