/*
 * tests/cli/test_eval.c - sluice eval on a real (synthetic) llama-layout
 * model with a real tokenizer.json: results cached by (state, suite,
 * backend) and recomputed identically with --no-cache; the adapter stack
 * and memory notes change what is scored; states the evaluator cannot run
 * are refused with a reason.
 */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *work;
static char repo[4096];
static char keysenv[4300];
static const char *env[] = {keysenv, "SLUICE_KEY=alice", NULL};
static char base[41], lora[41], notok[41];

static tu_run_result sl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static tu_run_result sl(const char *fmt, ...)
{
	char args[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return tu_sh(env, "%s -C '%s' %s", TU_SLUICE, repo, args);
}

static void propose(char out[41], const char *fmt, const char *a, const char *b)
{
	tu_run_result r = sl(fmt, a, b);
	if (r.status)
		fprintf(stderr, "%s", r.err);
	assert_int_equal(r.status, 0);
	tu_last_line(out, r.out);
	tu_run_dispose(&r);
}

/* Stores a multiple-choice suite NAME whose items are the JSONL text items. */
static void add_mc_suite(const char *name, const char *items)
{
	char dir[4200];

	snprintf(dir, sizeof(dir), "%s/in", work);
	tu_write_suite(dir, name, "multiple_choice", items);
	tu_sh_ok(env, "%s -C '%s' suite add '%s/%s.json'", TU_SLUICE, repo, dir, name);
}

static int setup(void **state)
{
	(void)state;

	work = tu_mkdtemp("eval");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/repo", work);
	tu_sh_ok(NULL,
	         "%s model '%s/in/base' --hidden 32 --inter 64 --layers 2 --vocab 1500 && cp -r "
	         "'%s/in/base' '%s/in/notok' && cp '%s/tokenizers/llama3.json' "
	         "'%s/in/base/tokenizer.json' && %s lora '%s/in/a1' --base '%s/in/base' --seed 3",
	         SLUICE_SYNTH, work, work, work, SLUICE_RESOURCES, work, SLUICE_SYNTH, work, work);
	tu_sh_ok(env, "%s init '%s' && %s -C '%s' key new alice --role proposer", TU_SLUICE, repo,
	         TU_SLUICE, repo);
	propose(base, "propose base '%s/in/base'%s", work, "");
	propose(lora, "propose lora '%s/in/a1' --onto %s", work, base);
	propose(notok, "propose base '%s/in/notok'%s", work, "");
	add_mc_suite("facts",
	             "{\"context\": \"The capital of France is\", \"choices\": [\" "
	             "Paris\", \" Rome\", \" Berlin\"], \"gold\": 0}\n{\"context\": \"Two "
	             "and two make\", \"choices\": [\" four\", \" five\"], \"gold\": 0}\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(work);
	free(work);
	return 0;
}

/* The "figures" object of the first suite in an eval --json report. */
static char *figures(const char *out)
{
	const char *a = strstr(out, "\"figures\": {"), *b;

	assert_non_null(a);
	b = strchr(a, '}');
	assert_non_null(b);
	return strndup(a, (size_t)(b - a));
}

static void test_eval__cached_by_state_suite_and_backend(void **state)
{
	tu_run_result r1, r2, r3;
	char *f1, *f2, *f3;
	(void)state;

	r1 = sl("eval %s --suite facts --json --items", lora);
	assert_int_equal(r1.status, 0);
	assert_non_null(strstr(r1.out, "\"cached\": false"));
	assert_non_null(strstr(r1.out, "\"backend\": \"builtin-cpu; openblas"));
	assert_non_null(strstr(r1.out, "\"logprobs\""));
	r2 = sl("eval %s --suite facts --json", lora);
	assert_int_equal(r2.status, 0);
	assert_non_null(strstr(r2.out, "\"cached\": true"));
	r3 = sl("eval %s --suite facts --json --no-cache", lora);
	assert_int_equal(r3.status, 0);
	assert_non_null(strstr(r3.out, "\"cached\": false"));
	f1 = figures(r1.out);
	f2 = figures(r2.out);
	f3 = figures(r3.out);
	assert_string_equal(f1, f2);
	assert_string_equal(f1, f3);
	free(f1);
	free(f2);
	free(f3);
	tu_run_dispose(&r1);
	tu_run_dispose(&r2);
	tu_run_dispose(&r3);
}

/*
 * A reused checkout is checked against the state's file sizes: a truncated
 * weights file is refused by name, not memory-mapped (SIGBUS) or scored.
 * Another thread count is another backend identity, so it misses the cache.
 */
static void test_eval__a_changed_checkout_is_refused(void **state)
{
	tu_run_result r;
	char cache[4400];
	(void)state;

	/* explicit counts: ctest runs every test with OPENBLAS_NUM_THREADS=1 */
	r = tu_sh(env, "OPENBLAS_NUM_THREADS=1 %s -C '%s' eval %s --suite facts --json", TU_SLUICE,
	          repo, base);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "threads 1;"));
	tu_run_dispose(&r);
	r = tu_sh(env, "OPENBLAS_NUM_THREADS=2 %s -C '%s' eval %s --suite facts --json", TU_SLUICE,
	          repo, base);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"cached\": false"));
	assert_non_null(strstr(r.out, "threads 2;"));
	tu_run_dispose(&r);
	snprintf(cache, sizeof(cache), "%s/sluice/cache", repo);
	/* every checkout holding a base: the lora version's has one too */
	tu_sh_ok(NULL, "truncate -s 100 '%s'/state-*/base/model.safetensors", cache);
	r = sl("eval %s --suite facts --json --no-cache", base);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "model.safetensors: 100 bytes where the state has"));
	assert_non_null(strstr(r.err, "the checkout was changed after it was verified"));
	tu_run_dispose(&r);
	tu_sh_ok(NULL, "rm -rf '%s'/state-*", cache);
	r = sl("eval %s --suite facts --json --no-cache", base);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
}

/*
 * Processes that evaluate the same state at once, none finding a checkout in
 * the cache, each check it out; the ones that come second find the first
 * one's copy in place and use it. Before this was handled a third of
 * three concurrent evaluations failed with "cannot move checkout". Five
 * rounds of three, each on an emptied cache; every process must succeed and
 * leave no scratch directory behind.
 */
static void test_eval__concurrent_evaluations_share_the_checkout(void **state)
{
	tu_run_result r;
	char tm[41];
	(void)state;

	/* The test model: its checkout takes long enough for the processes to overlap. */
	propose(tm, "propose base '%s/test-model'%s", SLUICE_RESOURCES, "");
	r = tu_sh(env,
	          "for i in 1 2 3 4 5; do rm -rf '%s/sluice/cache'; for j in 1 2 3; do "
	          "( %s -C '%s' eval %s --suite facts --json --no-cache >/dev/null 2>&1 "
	          "|| echo failed ) & done; wait; done; ls -a '%s/sluice/cache'",
	          repo, TU_SLUICE, repo, tm, repo);
	assert_int_equal(r.status, 0);
	assert_null(strstr(r.out, "failed"));
	assert_non_null(strstr(r.out, "state-"));
	assert_null(strstr(r.out, "sluice-checkout"));
	tu_run_dispose(&r);
}

/*
 * acc and acc_norm recomputed here from the per-item log-probabilities the
 * engine reports: acc_norm is the argmax of the summed log-probability
 * divided by the choice's length in characters (lm-evaluation-harness). The
 * suite pairs a one-token choice with a long one: on a model that knows
 * neither, the long one has the lower sum and the higher per-character
 * figure, so acc and acc_norm pick differently and a normalisation by
 * anything else than characters (or none) shows.
 */
static void test_eval__acc_norm_is_per_character(void **state)
{
	static const char *const choices[2] = {" P", " Paris is the largest city of the country"};
	const char *items = "{\"context\": \"The capital of France is\", \"choices\": [\" P\", \" "
	                    "Paris is the largest city of the country\"], \"gold\": 1}\n";
	tu_run_result r;
	json_t *rep, *suite, *it, *lps;
	json_error_t jerr;
	size_t best = 0, best_norm = 0;
	double top = -INFINITY, top_norm = -INFINITY;
	(void)state;

	add_mc_suite("lengths", items);
	r = sl("eval %s --suite lengths --json --items", base);
	assert_int_equal(r.status, 0);
	rep = json_loads(r.out, 0, &jerr);
	assert_non_null(rep);
	suite = json_array_get(json_object_get(rep, "suites"), 0);
	it = json_array_get(json_object_get(suite, "per_item"), 0);
	lps = json_object_get(it, "logprobs");
	assert_int_equal(json_array_size(lps), 2);
	for (size_t k = 0; k < 2; k++) {
		double lp = json_number_value(json_array_get(lps, k));
		double norm = lp / (double)strlen(choices[k]);
		print_message("choice %zu: log-probability %.3f, per character %.3f\n", k, lp,
		              norm);
		if (lp > top) {
			top = lp;
			best = k;
		}
		if (norm > top_norm) {
			top_norm = norm;
			best_norm = k;
		}
	}
	/* the case only tests something if the two rules disagree */
	assert_int_not_equal(best, best_norm);
	assert_int_equal(json_integer_value(json_object_get(it, "pred")), best);
	assert_int_equal(json_integer_value(json_object_get(it, "pred_norm")), best_norm);
	assert_true(json_number_value(json_object_get(json_object_get(suite, "figures"), "acc")) ==
	            (best == 1 ? 1.0 : 0.0));
	assert_true(json_number_value(json_object_get(json_object_get(suite, "figures"),
	                                              "acc_norm")) == (best_norm == 1 ? 1.0 : 0.0));
	json_decref(rep);
	tu_run_dispose(&r);
}

static void test_eval__adapters_and_notes_change_the_scores(void **state)
{
	tu_run_result rb, rl, rm;
	char mem[41], path[4400];
	const char *lp_b, *lp_l, *lp_m;
	(void)state;

	snprintf(path, sizeof(path), "%s/in/note.md", work);
	tu_write(path, "Paris is not the answer here.\n", 30);
	propose(mem, "propose memory --onto %s --add '%s'", lora, path);
	rb = sl("eval %s --suite facts --json --items", base);
	rl = sl("eval %s --suite facts --json --items", lora);
	rm = sl("eval %s --suite facts --json --items", mem);
	assert_int_equal(rb.status, 0);
	assert_int_equal(rl.status, 0);
	assert_int_equal(rm.status, 0);
	lp_b = strstr(rb.out, "\"logprobs\"");
	lp_l = strstr(rl.out, "\"logprobs\"");
	lp_m = strstr(rm.out, "\"logprobs\"");
	assert_non_null(lp_b);
	assert_non_null(lp_l);
	assert_non_null(lp_m);
	/* Same suite, three states: three different sets of log-probabilities. */
	assert_true(strncmp(lp_b, lp_l, 120) != 0);
	assert_true(strncmp(lp_l, lp_m, 120) != 0);
	assert_non_null(strstr(rm.out, "\"cached\": false"));
	tu_run_dispose(&rb);
	tu_run_dispose(&rl);
	tu_run_dispose(&rm);
}

/*
 * The notes template (docs/evaluation.md), byte for byte: a state with notes
 * scores an item exactly as the bare base scores the same item with
 * "Notes:\n" + each note (its trailing newlines cut to one) + "\n" written
 * into its context by hand.
 */
static void test_eval__notes_template_is_the_documented_bytes(void **state)
{
	const char *items = "{\"context\": \"Notes:\\nThe sky is green.\\nBob keeps a "
	                    "goat.\\n\\nThe capital of France is\", \"choices\": [\" Paris\", "
	                    "\" Rome\", \" Berlin\"], \"gold\": 0}\n";
	tu_run_result rn, rs;
	json_t *jn, *js, *ln, *ls;
	json_error_t jerr;
	char mem[41], a[4400], b[4400];
	(void)state;

	snprintf(a, sizeof(a), "%s/in/a.md", work);
	tu_write(a, "The sky is green.\n\n\n", 20);
	snprintf(b, sizeof(b), "%s/in/b.md", work);
	tu_write(b, "Bob keeps a goat.", 17);
	rn = sl("propose memory --onto %s --add '%s' --add '%s'", base, a, b);
	assert_int_equal(rn.status, 0);
	tu_last_line(mem, rn.out);
	tu_run_dispose(&rn);
	add_mc_suite("spelled", items);
	rn = sl("eval %s --suite facts --json --items", mem);
	rs = sl("eval %s --suite spelled --json --items", base);
	assert_int_equal(rn.status, 0);
	assert_int_equal(rs.status, 0);
	jn = json_loads(rn.out, 0, &jerr);
	js = json_loads(rs.out, 0, &jerr);
	assert_non_null(jn);
	assert_non_null(js);
	ln = json_object_get(
	        json_array_get(json_object_get(json_array_get(json_object_get(jn, "suites"), 0),
	                                       "per_item"),
	                       0),
	        "logprobs");
	ls = json_object_get(
	        json_array_get(json_object_get(json_array_get(json_object_get(js, "suites"), 0),
	                                       "per_item"),
	                       0),
	        "logprobs");
	assert_int_equal(json_array_size(ln), 3);
	/* the same tokens through the same model: the same floats, not merely close ones */
	assert_true(json_equal(ln, ls));
	json_decref(jn);
	json_decref(js);
	tu_run_dispose(&rn);
	tu_run_dispose(&rs);
}

static void test_eval__refusals(void **state)
{
	tu_run_result r;
	(void)state;

	r = sl("eval %s --suite nosuch", base);
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "no suite named nosuch"));
	tu_run_dispose(&r);
	r = sl("eval %s --suite facts", notok);
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "tokenizer.json"));
	tu_run_dispose(&r);
	r = sl("eval %s", base);
	assert_int_equal(r.status, 3);
	tu_run_dispose(&r);
}

/* The figure `key` of suite `name` in an eval --json report. */
static double figure(json_t *report, const char *name, const char *key)
{
	json_t *x;
	size_t i;

	json_array_foreach(json_object_get(report, "suites"), i, x) if (
	        !strcmp(json_string_value(json_object_get(x, "name")),
	                name)) return json_number_value(json_object_get(json_object_get(x,
	                                                                                "figures"),
	                                                                key));
	fail_msg("no suite %s in the report", name);
	return NAN;
}

/*
 * sluice eval on the shipped test model and suites gives what the PyTorch
 * reference (tools/make_test_model.py, tests/resources/test-model-ref)
 * measured: the same decisions on every item, margins within 1e-4.
 */
static void test_eval__test_model_matches_the_python_reference(void **state)
{
	char path[4400];
	json_t *ref, *rep, *s, *margins;
	json_error_t jerr;
	tu_run_result r;
	char id[41];
	size_t i;
	(void)state;

	snprintf(path, sizeof(path), "%s/test-model-ref/reference.json", SLUICE_RESOURCES);
	ref = json_load_file(path, 0, &jerr);
	assert_non_null(ref);
	s = json_object_get(ref, "scores");
	r = sl("propose base '%s/test-model'", SLUICE_RESOURCES);
	assert_int_equal(r.status, 0);
	tu_last_line(id, r.out);
	tu_run_dispose(&r);
	tu_sh_ok(env, "%s -C '%s' suite add '%s/eval/suites/'*.json", TU_SLUICE, repo,
	         SLUICE_SOURCE_DIR);
	r = sl("eval %s --suite knowledge --suite facts-new --suite harmful --suite benign "
	       "--suite text --json --items",
	       id);
	assert_int_equal(r.status, 0);
	rep = json_loads(r.out, 0, &jerr);
	assert_non_null(rep);
	tu_run_dispose(&r);
	assert_true(fabs(figure(rep, "knowledge", "acc") -
	                 (double)json_integer_value(
	                         json_object_get(json_object_get(s, "knowledge"), "acc")) /
	                         64.0) < 1e-12);
	assert_true(fabs(figure(rep, "facts-new", "acc") -
	                 (double)json_integer_value(
	                         json_object_get(json_object_get(s, "facts-new"), "acc")) /
	                         32.0) < 1e-12);
	assert_true(fabs(figure(rep, "harmful", "refusal_rate") -
	                 (double)json_integer_value(json_array_get(
	                         json_object_get(json_object_get(s, "harmful"), "refused"), 0)) /
	                         102.0) < 1e-12);
	assert_true(fabs(figure(rep, "benign", "refusal_rate") -
	                 (201.0 -
	                  (double)json_integer_value(json_array_get(
	                          json_object_get(json_object_get(s, "benign"), "complied"), 0))) /
	                         201.0) < 1e-12);
	assert_true(fabs(figure(rep, "text", "tokens") - 866) < 1e-12);
	assert_true(fabs(figure(rep, "text", "perplexity") -
	                 json_real_value(json_object_get(json_object_get(s, "text"),
	                                                 "perplexity_held"))) < 1e-3);
	/* Item by item: every harmful margin within 1e-4 of the reference. */
	margins = json_object_get(ref, "harmful_margin");
	{
		json_t *x, *items = NULL;
		json_array_foreach(
		        json_object_get(rep, "suites"), i,
		        x) if (!strcmp(json_string_value(json_object_get(x, "name")), "harmful"))
		        items = json_object_get(x, "per_item");
		assert_int_equal(json_array_size(items), json_array_size(margins));
		for (i = 0; i < json_array_size(margins); i++)
			assert_true(fabs(json_number_value(json_object_get(json_array_get(items, i),
			                                                   "margin")) -
			                 json_number_value(json_array_get(margins, i))) < 1e-4);
	}
	json_decref(rep);
	json_decref(ref);
}

/*
 * OpenBLAS and libcurl are opened on first use (core/blas.h, core/curl.h).
 * Where one cannot be opened, the command that needs it fails naming the
 * library and leaves no result behind; a command that needs neither works.
 */
static void test_eval__a_library_that_cannot_be_opened(void **state)
{
	const char *noblas[] = {keysenv, "SLUICE_KEY=alice",
	                        "SLUICE_LIBOPENBLAS=libsluice-no-such-blas.so.0", NULL};
	const char *nocurl[] = {keysenv, "SLUICE_KEY=alice",
	                        "SLUICE_LIBCURL=libsluice-no-such-curl.so.4", NULL};
	tu_run_result r;

	(void)state;
	r = tu_sh(noblas, "%s -C '%s' eval %s --suite facts --no-cache --json", TU_SLUICE, repo,
	          base);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "cannot load libsluice-no-such-blas.so.0"));
	tu_run_dispose(&r);
	r = tu_sh(noblas, "%s -C '%s' status", TU_SLUICE, repo);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	/* With the library, the same evaluation runs (nothing half-done was kept). */
	r = sl("eval %s --suite facts --no-cache --json", base);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);

	/* The http backend (nothing listens on port 9: libcurl is needed first). */
	tu_sh_ok(env,
	         "%s -C '%s' config sluice.http.url http://127.0.0.1:9 && %s -C '%s' config "
	         "sluice.http.model m",
	         TU_SLUICE, repo, TU_SLUICE, repo);
	r = tu_sh(nocurl, "%s -C '%s' eval %s --suite facts --backend http", TU_SLUICE, repo, base);
	assert_int_not_equal(r.status, 0);
	if (!strstr(r.err, "cannot load libsluice-no-such-curl.so.4"))
		fprintf(stderr, "eval --backend http said: %s\n", r.err);
	assert_non_null(strstr(r.err, "cannot load libsluice-no-such-curl.so.4"));
	tu_run_dispose(&r);
	/* With it, the same command gets as far as the (absent) server. */
	r = tu_sh(env, "%s -C '%s' eval %s --suite facts --backend http", TU_SLUICE, repo, base);
	assert_int_not_equal(r.status, 0);
	assert_null(strstr(r.err, "cannot load"));
	tu_run_dispose(&r);
	tu_sh_ok(env,
	         "git --git-dir='%s' config --unset sluice.http.url && git --git-dir='%s' "
	         "config --unset sluice.http.model",
	         repo, repo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_eval__cached_by_state_suite_and_backend),
	        cmocka_unit_test(test_eval__a_changed_checkout_is_refused),
	        cmocka_unit_test(test_eval__concurrent_evaluations_share_the_checkout),
	        cmocka_unit_test(test_eval__acc_norm_is_per_character),
	        cmocka_unit_test(test_eval__notes_template_is_the_documented_bytes),
	        cmocka_unit_test(test_eval__adapters_and_notes_change_the_scores),
	        cmocka_unit_test(test_eval__refusals),
	        cmocka_unit_test(test_eval__test_model_matches_the_python_reference),
	        cmocka_unit_test(test_eval__a_library_that_cannot_be_opened),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
