/*
 * tests/hooks/test_servers.c - hooks that bring inference servers to a
 * channel's head, against sluice-testserver on loopback: vLLM (the stack
 * loaded as one adapter by path, the previous one unloaded; completions
 * through it equal the built-in evaluator's on the version) and llama.cpp
 * (scales of the adapters it loaded at start-up; an adapter it lacks is a
 * failed attempt that says how to restart it), and what sluice status
 * shows each server acknowledged.
 */
#include "hooktest.h"

#include "model.h"

#include <curl/curl.h>
#include <math.h>

#define MODEL_DIR SLUICE_RESOURCES "/test-model"
#define TOL 1e-4

static int setup(void **state)
{
	ht_fixture *f = calloc(1, sizeof(*f));
	char args[8192];
	tu_run_result r;

	f->work = tu_mkdtemp("hooksrv");
	snprintf(f->keysenv, sizeof(f->keysenv), "SLUICE_KEYS=%s/keys", f->work);
	f->env_ops[0] = f->keysenv;
	f->env_ops[1] = "SLUICE_KEY=ops";
	f->env_alice[0] = f->keysenv;
	f->env_alice[1] = "SLUICE_KEY=alice";
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->work);
	tu_sh_ok(NULL,
	         "%s lora '%s/in/a1' --base '%s' --seed 3 && %s lora '%s/in/a2' --base '%s' "
	         "--seed 4",
	         SLUICE_SYNTH, f->work, MODEL_DIR, SLUICE_SYNTH, f->work, MODEL_DIR);
	r = ht_run(f, f->env_ops, "init --required-gates none");
	ht_ok(&r);
	tu_run_dispose(&r);
	r = ht_run(f, f->env_ops, "key new alice --role proposer");
	ht_ok(&r);
	tu_run_dispose(&r);
	r = ht_run(f, f->env_ops, "key new ops --role operator");
	ht_ok(&r);
	tu_run_dispose(&r);
	snprintf(args, sizeof(args), "base '%s' -m base", MODEL_DIR);
	ht_propose(f, f->base, args);
	snprintf(args, sizeof(args), "lora '%s/in/a1' --onto %s -m a1", f->work, f->base);
	ht_propose(f, f->a1, args);
	snprintf(args, sizeof(args), "lora '%s/in/a2' --onto %s --scale 0.5 -m a2", f->work, f->a1);
	ht_propose(f, f->a2, args);
	/* The adapters as PEFT directories named as in the state (a llama.cpp server's --lora). */
	r = ht_run(f, f->env_ops, "checkout %s '%s/co'", f->a2, f->work);
	ht_ok(&r);
	tu_run_dispose(&r);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	ht_teardown(*state);
	return 0;
}

struct resp {
	char *body;
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
	struct resp *r = data;
	r->body = realloc(r->body, r->len + size * n + 1);
	memcpy(r->body + r->len, p, size * n);
	r->len += size * n;
	r->body[r->len] = 0;
	return size * n;
}

/* A request to the test server; the answer parsed (asserting status 200). */
static json_t *server(const tu_testserver *ts, const char *method, const char *path,
                      const char *body)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	struct resp r = {0};
	char url[256];
	long status = 0;
	json_error_t jerr;
	json_t *v;
	CURL *c = curl_easy_init();

	snprintf(url, sizeof(url), "%s%s", ts->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (status != 200)
		fail_msg("%s %s: HTTP %ld: %s", method, path, status, r.body ? r.body : "");
	v = json_loadb(r.body, r.len, JSON_DECODE_ANY, &jerr);
	if (!v)
		fail_msg("%s %s: not JSON: %s", method, path, r.body);
	free(r.body);
	return v;
}

/* The ids of /v1/models. */
static int models_has(const tu_testserver *ts, const char *id)
{
	json_t *v = server(ts, "GET", "/v1/models", NULL), *m;
	size_t i;
	int has = 0;

	json_array_foreach(json_object_get(v, "data"), i, m) has |=
	        !strcmp(json_string_value(json_object_get(m, "id")), id);
	json_decref(v);
	return has;
}

/* The last hook record's field. */
static json_t *last_record(ht_fixture *f)
{
	json_t *recs = ht_hook_records(f);
	json_t *r = json_incref(json_array_get(recs, json_array_size(recs) - 1));

	json_decref(recs);
	assert_non_null(r);
	return r;
}

static void promote(ht_fixture *f, const char *version)
{
	tu_run_result r = ht_run(f, f->env_ops, "promote %s --channel prod", version);
	ht_ok(&r);
	tu_run_dispose(&r);
}

/* The built-in evaluator's log-probabilities of ids[1..n) under version's stack. */
static void builtin_logprobs(ht_fixture *f, const char *version, const int32_t *ids, size_t n,
                             double *out)
{
	sluice_ctx *ctx = NULL;
	sluice_model *m = NULL;
	json_t *v = ht_json(f, "show %s", version), *a;
	char dir[4400];
	size_t i, vocab;
	float *rows;

	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_model__open(ctx, &m, MODEL_DIR), 0);
	json_array_foreach(json_object_get(json_object_get(v, "state"), "adapters"), i, a)
	{
		snprintf(dir, sizeof(dir), "%s/co/adapters/%s", f->work,
		         json_string_value(json_object_get(a, "name")));
		if (sluice_model__add_adapter(ctx, m, dir,
		                              json_number_value(json_object_get(a, "scale"))) < 0)
			fail_msg("%s", sluice_ctx_errmsg(ctx));
	}
	vocab = sluice_model__config(m)->vocab;
	rows = calloc(n * vocab, sizeof(float));
	assert_int_equal(sluice_model__forward(ctx, m, ids, n, rows), 0);
	for (size_t t = 1; t < n; t++) {
		sluice_model__log_softmax(rows + (t - 1) * vocab, vocab);
		out[t] = rows[(t - 1) * vocab + (size_t)ids[t]];
	}
	free(rows);
	sluice_model__free(m);
	sluice_ctx_free(ctx);
	json_decref(v);
}

/* What the server's completions through model give ids[1..n) (echo, max_tokens 0). */
static void server_logprobs(const tu_testserver *ts, const char *model, const int32_t *ids,
                            size_t n, double *out)
{
	char body[1024];
	size_t len;
	json_t *v, *tlp;

	len = (size_t)snprintf(body, sizeof(body),
	                       "{\"model\": \"%s\", \"echo\": true, \"max_tokens\": 0, "
	                       "\"logprobs\": 1, \"prompt\": [",
	                       model);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len, "%s%d", i ? "," : "",
		                        ids[i]);
	snprintf(body + len, sizeof(body) - len, "]}");
	v = server(ts, "POST", "/v1/completions", body);
	tlp = json_object_get(
	        json_object_get(json_array_get(json_object_get(v, "choices"), 0), "logprobs"),
	        "token_logprobs");
	assert_int_equal(json_array_size(tlp), n);
	for (size_t t = 1; t < n; t++)
		out[t] = json_number_value(json_array_get(tlp, t));
	json_decref(v);
}

static void test_servers__vllm_follows_the_channel(void **state)
{
	ht_fixture *f = *state;
	const char *args[] = {"--name", "tm", NULL};
	static const int32_t ids[] = {1, 17, 42, 5, 99, 23, 64, 8, 31, 77};
	size_t n = sizeof(ids) / sizeof(ids[0]);
	double want[16], got[16];
	tu_testserver ts = {0};
	json_t *rec, *log, *e, *ch, *hk;
	char first[96], second[96];
	size_t i, loads = 0, unloads = 0;
	tu_run_result r;

	tu_testserver_start(MODEL_DIR, args, &ts);
	r = ht_run(f, f->env_ops, "hook add srv --type vllm --url %s --channel prod", ts.url);
	ht_ok(&r);
	tu_run_dispose(&r);

	/* The base alone: nothing to load. */
	promote(f, f->base);
	rec = last_record(f);
	assert_true(json_is_true(json_object_get(rec, "ok")));
	assert_string_equal(json_string_value(json_object_get(rec, "loaded")), "");
	json_decref(rec);

	/* One adapter: loaded under sluice-prod-<16 hex of the state digest>. */
	promote(f, f->a1);
	rec = last_record(f);
	assert_true(json_is_true(json_object_get(rec, "ok")));
	snprintf(first, sizeof(first), "%s", json_string_value(json_object_get(rec, "loaded")));
	assert_int_equal(strncmp(first, "sluice-prod-", 12), 0);
	assert_int_equal(strncmp(first + 12, json_string_value(json_object_get(rec, "state")), 16),
	                 0);
	json_decref(rec);
	assert_true(models_has(&ts, first));

	/* Two adapters (the second at scale 0.5): one adapter of rank 2r, the first unloaded. */
	promote(f, f->a2);
	rec = last_record(f);
	assert_true(json_is_true(json_object_get(rec, "ok")));
	snprintf(second, sizeof(second), "%s", json_string_value(json_object_get(rec, "loaded")));
	json_decref(rec);
	assert_string_not_equal(first, second);
	assert_true(models_has(&ts, second));
	assert_false(models_has(&ts, first));
	log = server(&ts, "GET", "/admin/log", NULL);
	json_array_foreach(log, i, e)
	{
		const char *path = json_string_value(json_object_get(e, "path"));
		json_t *b = json_object_get(e, "body");
		if (!strcmp(path, "/v1/load_lora_adapter")) {
			loads++;
			/* Loaded by path from sluice.http.adapterDir/<state digest>. */
			assert_non_null(strstr(json_string_value(json_object_get(b, "lora_path")),
			                       "/sluice/cache/served/"));
		} else if (!strcmp(path, "/v1/unload_lora_adapter")) {
			unloads++;
			assert_string_equal(json_string_value(json_object_get(b, "lora_name")),
			                    first);
		}
	}
	assert_int_equal(loads, 2);
	assert_int_equal(unloads, 1);
	json_decref(log);

	/* Completions through the loaded adapter equal the built-in evaluator's stack. */
	builtin_logprobs(f, f->a2, ids, n, want);
	server_logprobs(&ts, second, ids, n, got);
	for (i = 1; i < n; i++)
		if (fabs(want[i] - got[i]) > TOL)
			fail_msg("position %zu: server %.7f, built-in %.7f", i, got[i], want[i]);
	/* ...and differ from the base's, so the comparison means something. */
	server_logprobs(&ts, "tm", ids, n, got);
	{
		double d = 0;
		for (i = 1; i < n; i++)
			d = fmax(d, fabs(want[i] - got[i]));
		assert_true(d > 1e-3);
	}

	/* Rolling back to the base unloads the stack. */
	r = ht_run(f, f->env_ops, "rollback prod --to %s --reason test", f->base);
	ht_ok(&r);
	tu_run_dispose(&r);
	assert_false(models_has(&ts, second));

	/* Status: the server acknowledged the head. */
	ch = ht_status_channel(f, "prod");
	hk = json_array_get(json_object_get(ch, "hooks"), 0);
	assert_string_equal(json_string_value(json_object_get(hk, "type")), "vllm");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(hk, "acknowledged"), "version")),
	        f->base);
	assert_true(json_is_true(json_object_get(hk, "current")));
	json_decref(ch);
	tu_testserver_stop(&ts);
}

static void test_servers__vllm_down_then_superseded_moves_are_skipped(void **state)
{
	ht_fixture *f = *state;
	const char *args[] = {"--name", "tm", NULL};
	tu_testserver ts = {0};
	json_t *rec, *log, *e, *ch, *hk;
	size_t i, loads = 0;
	tu_run_result r;

	/* A server that is not there: both moves stand, the hook owes the latest. */
	r = ht_run(f, f->env_ops,
	           "hook add srv --type vllm --url http://127.0.0.1:9 --channel prod");
	ht_ok(&r);
	tu_run_dispose(&r);
	promote(f, f->a1);
	promote(f, f->a2);
	ch = ht_status_channel(f, "prod");
	hk = json_array_get(json_object_get(ch, "hooks"), 0);
	assert_int_equal(json_integer_value(json_object_get(hk, "pending")), 1);
	assert_non_null(json_object_get(hk, "last_error"));
	json_decref(ch);

	tu_testserver_start(MODEL_DIR, args, &ts);
	tu_sh_ok(NULL, "git --git-dir='%s' config hook.srv.url %s", f->repo, ts.url);
	r = ht_run(f, f->env_ops, "hook deliver");
	ht_ok(&r);
	tu_run_dispose(&r);
	/* Only the head is loaded; the move it supersedes is named, not delivered. */
	rec = last_record(f);
	assert_true(json_is_true(json_object_get(rec, "ok")));
	assert_string_equal(json_string_value(json_object_get(rec, "version")), f->a2);
	assert_int_equal(json_array_size(json_object_get(rec, "superseded")), 1);
	json_decref(rec);
	log = server(&ts, "GET", "/admin/log", NULL);
	json_array_foreach(log, i, e) loads +=
	        !strcmp(json_string_value(json_object_get(e, "path")), "/v1/load_lora_adapter");
	assert_int_equal(loads, 1);
	json_decref(log);
	tu_testserver_stop(&ts);
}

static void test_servers__vllm_failed_unload_leaves_nothing_loaded_behind(void **state)
{
	ht_fixture *f = *state;
	const char *args[] = {"--name", "tm", NULL};
	tu_testserver ts = {0};
	json_t *recs, *rec, *v;
	char first[96], second[96];
	tu_run_result r;

	tu_testserver_start(MODEL_DIR, args, &ts);
	r = ht_run(f, f->env_ops, "hook add srv --type vllm --url %s --channel prod", ts.url);
	ht_ok(&r);
	tu_run_dispose(&r);
	promote(f, f->a1);
	rec = last_record(f);
	snprintf(first, sizeof(first), "%s", json_string_value(json_object_get(rec, "loaded")));
	json_decref(rec);

	/* The server refuses every unload of this process: the new adapter is loaded anyway. */
	v = server(&ts, "POST", "/admin/fail",
	           "{\"kind\": \"503\", \"count\": 3, \"path\": \"/v1/unload_lora_adapter\"}");
	json_decref(v);
	promote(f, f->a2);
	recs = ht_hook_records(f);
	assert_int_equal(json_array_size(recs), 1 + 3);
	for (size_t i = 1; i < 4; i++) {
		rec = json_array_get(recs, i);
		assert_true(json_is_false(json_object_get(rec, "ok")));
		assert_int_equal(json_integer_value(json_object_get(rec, "status")), 503);
		assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), first));
	}
	snprintf(second, sizeof(second), "%s",
	         json_string_value(json_object_get(json_array_get(recs, 3), "loaded")));
	json_decref(recs);
	assert_true(models_has(&ts, first));
	assert_true(models_has(&ts, second));

	/*
	 * The channel moves back before that is resolved: the stack it returns to is
	 * still loaded, and the adapter the failed attempts loaded is unloaded too.
	 */
	r = ht_run(f, f->env_ops, "rollback prod --reason test");
	ht_ok(&r);
	tu_run_dispose(&r);
	rec = last_record(f);
	assert_true(json_is_true(json_object_get(rec, "ok")));
	assert_string_equal(json_string_value(json_object_get(rec, "loaded")), first);
	assert_int_equal(json_array_size(json_object_get(rec, "superseded")), 1);
	json_decref(rec);
	assert_true(models_has(&ts, first));
	assert_false(models_has(&ts, second));
	tu_testserver_stop(&ts);
}

/* Scale of the adapter whose path ends in name, from GET /lora-adapters. */
static double scale_of(const tu_testserver *ts, const char *name)
{
	json_t *v = server(ts, "GET", "/lora-adapters", NULL), *a;
	size_t i, n = strlen(name);
	double s = -1;

	json_array_foreach(v, i, a)
	{
		const char *p = json_string_value(json_object_get(a, "path"));
		if (strlen(p) >= n && !strcmp(p + strlen(p) - n, name))
			s = json_number_value(json_object_get(a, "scale"));
	}
	json_decref(v);
	return s;
}

static void test_servers__llamacpp_scales_follow_the_channel(void **state)
{
	ht_fixture *f = *state;
	char l1[4400], l2[4400];
	const char *args[] = {"--name", "tm",     "--mode", "llamacpp", "--lora",
	                      l1,       "--lora", l2,       NULL};
	tu_testserver ts = {0};
	json_t *rec, *ch, *hk;
	tu_run_result r;

	snprintf(l1, sizeof(l1), "%s/co/adapters/a1", f->work);
	snprintf(l2, sizeof(l2), "%s/co/adapters/a2", f->work);
	tu_testserver_start(MODEL_DIR, args, &ts);
	r = ht_run(f, f->env_ops, "hook add cpp --type llamacpp --url %s --channel prod", ts.url);
	ht_ok(&r);
	tu_run_dispose(&r);
	promote(f, f->a1);
	assert_true(fabs(scale_of(&ts, "/a1") - 1.0) < 1e-9);
	assert_true(fabs(scale_of(&ts, "/a2") - 0.0) < 1e-9);
	promote(f, f->a2);
	assert_true(fabs(scale_of(&ts, "/a1") - 1.0) < 1e-9);
	assert_true(fabs(scale_of(&ts, "/a2") - 0.5) < 1e-9);
	rec = last_record(f);
	assert_true(json_is_true(json_object_get(rec, "ok")));
	assert_string_equal(json_string_value(json_object_get(rec, "loaded")), "a1=1 a2=0.5");
	json_decref(rec);
	/* Back to the base: every adapter at 0. */
	r = ht_run(f, f->env_ops, "rollback prod --to %s --reason test", f->a1);
	ht_ok(&r);
	tu_run_dispose(&r);
	assert_true(fabs(scale_of(&ts, "/a2") - 0.0) < 1e-9);
	ch = ht_status_channel(f, "prod");
	hk = json_array_get(json_object_get(ch, "hooks"), 0);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(hk, "acknowledged"), "version")),
	        f->a1);
	json_decref(ch);
	tu_testserver_stop(&ts);
}

static void test_servers__llamacpp_without_the_adapter_says_to_restart(void **state)
{
	ht_fixture *f = *state;
	char l1[4400];
	const char *args[] = {"--name", "tm", "--mode", "llamacpp", "--lora", l1, NULL};
	tu_testserver ts = {0};
	json_t *rec, *ch;
	tu_run_result r;

	snprintf(l1, sizeof(l1), "%s/co/adapters/a1", f->work);
	tu_testserver_start(MODEL_DIR, args, &ts);
	r = ht_run(f, f->env_ops, "hook add cpp --type llamacpp --url %s --channel prod", ts.url);
	ht_ok(&r);
	tu_run_dispose(&r);
	r = ht_run(f, f->env_ops, "promote %s --channel prod", f->a2);
	ht_ok(&r); /* the move stands */
	assert_non_null(strstr(r.err, "hook cpp"));
	tu_run_dispose(&r);
	rec = last_record(f);
	assert_true(json_is_false(json_object_get(rec, "ok")));
	assert_non_null(
	        strstr(json_string_value(json_object_get(rec, "error")), "adapter a2 of version"));
	assert_non_null(strstr(json_string_value(json_object_get(rec, "error")),
	                       "restart it with --lora a2.gguf"));
	assert_non_null(strstr(json_string_value(json_object_get(rec, "error")), "--gguf"));
	json_decref(rec);
	/* Scales were left alone. */
	assert_true(fabs(scale_of(&ts, "/a1") - 1.0) < 1e-9);
	ch = ht_status_channel(f, "prod");
	assert_string_equal(json_string_value(json_object_get(ch, "head")), f->a2);
	assert_int_equal(json_integer_value(json_object_get(
	                         json_array_get(json_object_get(ch, "hooks"), 0), "pending")),
	                 1);
	json_decref(ch);
	tu_testserver_stop(&ts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_servers__vllm_follows_the_channel, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_servers__vllm_down_then_superseded_moves_are_skipped, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_servers__vllm_failed_unload_leaves_nothing_loaded_behind, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_servers__llamacpp_scales_follow_the_channel,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_servers__llamacpp_without_the_adapter_says_to_restart, setup,
	                teardown),
	};
	int rc;

	sluice_global_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	sluice_global_shutdown();
	return rc;
}
