/*
 * tests/policies/test_enforce.c - what sluice_policy__evaluate makes of
 * the gate-runner threshold, on verdicts written into the state by hand
 * (real runs agree by construction: the gates are deterministic, so a
 * disagreement needs a runner with other inputs or a lying one). The
 * repository has no policy: init requires the regression gate only.
 */
#include "testutil.h"

#include "enforce.h"
#include "repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char cand[] = "1111111111111111111111111111111111111111";
static const char head[] = "2222222222222222222222222222222222222222";

typedef struct {
	tu_repo *t;
	sluice_jstate st;
	char config[65];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	const char *roots[] = {"r1"}, *gates[] = {"regression"};
	sluice_init_opts opts = {0};
	json_t *cfg = NULL;

	f->t = tu_repo_new("enforce");
	opts.gates_set = 1;
	opts.required_gates = gates;
	opts.ngates = 1;
	assert_int_equal(sluice_repo_init(&f->t->r, f->t->ctx, f->t->repo, roots, 1, &opts, NULL),
	                 0);
	assert_int_equal(sluice_journal__read(f->t->r, &f->st), 0);
	assert_int_equal(sluice_journal__config(f->t->r, &f->st, &cfg, f->config), 0);
	json_decref(cfg);
	/* Three gate-runner keys (fingerprints need only be distinct here); one revoked at #5. */
	json_object_set_new(
	        f->st.keys, "g1",
	        json_pack("{s:s,s:[s]}", "fingerprint", "FP:g1", "roles", "gate-runner"));
	json_object_set_new(
	        f->st.keys, "g2",
	        json_pack("{s:s,s:[s]}", "fingerprint", "FP:g2", "roles", "gate-runner"));
	json_object_set_new(f->st.keys, "g3",
	                    json_pack("{s:s,s:[s],s:{s:i}}", "fingerprint", "FP:g3", "roles",
	                              "gate-runner", "revoked", "seq", 5));
	json_object_set_new(f->st.keys, "op",
	                    json_pack("{s:s,s:[s]}", "fingerprint", "FP:op", "roles", "operator"));
	json_object_set_new(f->st.trust, "thresholds",
	                    json_pack("{s:i,s:i}", "root", 1, "gate-runner", 2));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	sluice_journal__dispose(&f->st);
	tu_repo_free(f->t);
	free(f);
	return 0;
}

/* One runner's verdict: result on suite digest `suite`, journaled at seq. */
static json_t *verdict(const char *result, const char *suite, int seq)
{
	char now[32];

	sluice_repo__now(now);
	return json_pack("{s:s,s:s,s:s,s:s,s:{s:s},s:i}", "result", result, "statement", "00",
	                 "time", now, "policy", "", "suites", "knowledge", suite, "seq", seq);
}

/*
 * Evaluate cand over head with the given runners on the regression gate;
 * returns the "gates.runners" check (new reference) or NULL, and whether
 * the gate's result check passed.
 */
static json_t *evaluate(fixture *f, json_t *runners, int *result_ok)
{
	json_t *c, *gv, *checks = json_array(), *used = json_object(), *e, *found = NULL;
	size_t i;

	gv = json_deep_copy(
	        json_object_get(runners, json_object_iter_key(json_object_iter(runners))));
	json_object_set_new(gv, "runner",
	                    json_string(json_object_iter_key(json_object_iter(runners))));
	json_object_set_new(gv, "runners", runners);
	c = json_pack("{s:s,s:{s:{s:s,s:s,s:{s:o}}}}", "head", head, "verdicts", cand, "head", head,
	              "config", f->config, "gates", "regression", gv);
	assert_int_equal(
	        sluice_policy__evaluate(f->t->r, &f->st, c, "prod", cand, head, checks, used), 0);
	*result_ok = 0;
	json_array_foreach(checks, i, e)
	{
		const char *rule = json_string_value(json_object_get(e, "rule"));
		if (!strcmp(rule, "gates.runners"))
			found = json_incref(e);
		if (!strcmp(rule, "gates.result"))
			*result_ok = json_is_true(json_object_get(e, "ok"));
	}
	json_decref(checks);
	json_decref(used);
	json_decref(c);
	return found;
}

static void expect(json_t *check, int ok, const char *needle)
{
	assert_non_null(check);
	if (!strstr(json_string_value(json_object_get(check, "detail")), needle))
		fail_msg("detail \"%s\" lacks \"%s\"",
		         json_string_value(json_object_get(check, "detail")), needle);
	assert_int_equal(json_is_true(json_object_get(check, "ok")), ok);
	json_decref(check);
}

static void test_enforce__single_gate_runner_under_threshold(void **state)
{
	fixture *f = *state;
	int result_ok;
	json_t *ch = evaluate(f, json_pack("{s:o}", "FP:g1", verdict("pass", "aa", 3)), &result_ok);

	expect(ch, 0, "verdicts from 1 of 2 gate-runner keys needed");
	assert_false(result_ok);
}

static void test_enforce__two_gate_runners_agree(void **state)
{
	fixture *f = *state;
	int result_ok;
	json_t *ch = evaluate(f,
	                      json_pack("{s:o,s:o}", "FP:g1", verdict("pass", "aa", 3), "FP:g2",
	                                verdict("pass", "aa", 4)),
	                      &result_ok);

	expect(ch, 1, "2 gate-runner keys agree on the regression gate");
	assert_true(result_ok);
}

static void test_enforce__gate_runners_disagree(void **state)
{
	fixture *f = *state;
	int result_ok;
	json_t *ch = evaluate(f,
	                      json_pack("{s:o,s:o}", "FP:g1", verdict("pass", "aa", 3), "FP:g2",
	                                verdict("fail", "aa", 4)),
	                      &result_ok);

	expect(ch, 0, "its gate-runners disagree");
	assert_false(result_ok);
	ch = evaluate(f,
	              json_pack("{s:o,s:o}", "FP:g1", verdict("pass", "aa", 3), "FP:g2",
	                        verdict("pass", "bb", 4)),
	              &result_ok);
	expect(ch, 0, "2 said pass, 0 fail, 0 inconclusive, on different suite digests");
}

/* Keys that do not count: revoked before their verdict, outside the role, unregistered. */
static void test_enforce__runners_that_do_not_count(void **state)
{
	fixture *f = *state;
	int result_ok;
	json_t *ch =
	        evaluate(f,
	                 json_pack("{s:o,s:o,s:o,s:o}", "FP:g1", verdict("pass", "aa", 3), "FP:g3",
	                           verdict("pass", "aa", 6), "FP:op", verdict("pass", "aa", 7),
	                           "FP:nobody", verdict("pass", "aa", 8)),
	                 &result_ok);

	expect(ch, 0, "verdicts from 1 of 2");
	/* g3's verdict before its revocation (#5) counts. */
	ch = evaluate(f,
	              json_pack("{s:o,s:o}", "FP:g1", verdict("pass", "aa", 3), "FP:g3",
	                        verdict("pass", "aa", 4)),
	              &result_ok);
	expect(ch, 1, "2 gate-runner keys agree");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_enforce__single_gate_runner_under_threshold,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_enforce__two_gate_runners_agree, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_enforce__gate_runners_disagree, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_enforce__runners_that_do_not_count, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
