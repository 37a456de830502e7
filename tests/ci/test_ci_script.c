/*
 * tests/ci/test_ci_script.c - ci/sluice-ci.sh end to end, as a CI job runs
 * it: real repositories, real gate runs on the shipped test model, keys
 * handed over only through the environment or a file descriptor.
 *
 * Scenarios: a good adapter is promoted (exit 0, JUnit valid with one test
 * case per check, the secret's copy gone afterwards); an eroding adapter is
 * stopped (exit 1, the channel unmoved, failures in the JUnit file); a
 * policy asking for an approval blocks without an approver key (exit 3,
 * naming the rule) and passes with one; and two jobs racing on one channel:
 * the loser's promotion is refused because its verdict was against the old
 * head, and it re-gates against the new head, so the channel never holds an
 * ungated combination (sluice verify passes and every head has a verdict).
 */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCRIPT SLUICE_SOURCE_DIR "/ci/sluice-ci.sh"
#define CASES SLUICE_RESOURCES "/gate-cases"

static char *work;
static char repo[4096], keysenv[4300];
/*
 * The script puts key copies in $XDG_RUNTIME_DIR (else /dev/shm); the tests
 * give it a private directory on /dev/shm, so the check that the copies are
 * gone sees only this run's, not those of other runs on the machine.
 */
static char runtime[64];
static const char *env[] = {keysenv, NULL};

static char *ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *ok(const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = tu_sluice_okv(env, repo, fmt, ap);
	va_end(ap);
	return out;
}

static json_t *okj(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *okj(const char *fmt, ...)
{
	va_list ap;
	json_t *out;

	va_start(ap, fmt);
	out = tu_sluice_jsonv(env, repo, fmt, ap);
	va_end(ap);
	return out;
}

static void head_of(const char *channel, char out[41])
{
	json_t *st = okj("status"), *c;
	size_t i;

	out[0] = 0;
	json_array_foreach(json_object_get(st, "channels"), i,
	                   c) if (!strcmp(json_string_value(json_object_get(c, "name")), channel))
	        snprintf(out, 41, "%s", json_string_value(json_object_get(c, "head")));
	json_decref(st);
}

/*
 * Run the script with the private keys directory hidden (SLUICE_KEYS points
 * at an empty directory), so the keys can only come from what extra passes.
 */
static tu_run_result ci(const char *extra, const char *args)
{
	return tu_sh(
	        NULL,
	        "cd '%s' && env SLUICE_KEYS='%s/nokeys' SLUICE='%s' %s bash '%s' --repo '%s' %s",
	        work, work, TU_SLUICE, extra, SCRIPT, repo, args);
}

/* The number of <testcase> and <failure> elements, parsing the file as XML. */
static void junit_counts(const char *path, int *cases, int *failures)
{
	tu_run_result r = tu_sh(NULL,
	                        "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E; "
	                        "t = E.parse(sys.argv[1]).getroot(); "
	                        "print(len(t.findall(\".//testcase\")), "
	                        "len(t.findall(\".//testcase/failure\")))' '%s'",
	                        path);
	assert_int_equal(r.status, 0); /* well-formed XML */
	assert_int_equal(sscanf(r.out, "%d %d", cases, failures), 2);
	tu_run_dispose(&r);
}

/* The secret of key NAME as shell text: VAR="$(cat FILE)". */
static void secret_env(char *out, size_t len, const char *var, const char *name)
{
	snprintf(out, len, "%s=\"$(cat '%s/keys/%s.key')\"", var, work, name);
}

static int setup(void **state)
{
	char base[41], *o;
	(void)state;

	work = tu_mkdtemp("ci");
	snprintf(runtime, sizeof(runtime), "/dev/shm/sluice-ci-test.XXXXXX");
	assert_non_null(mkdtemp(runtime));
	setenv("XDG_RUNTIME_DIR", runtime, 1);
	snprintf(repo, sizeof(repo), "%s/repo", work);
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	tu_sh_ok(NULL, "mkdir -p '%s/nokeys'", work);
	tu_sh_ok(env, "%s init '%s' --root-key root >/dev/null", TU_SLUICE, repo);
	free(ok("key new ci --role proposer --role gate-runner --role operator"));
	free(ok("key new other --role proposer --role gate-runner --role operator"));
	free(ok("key new bob --role approver"));
	free(ok("suite add %s/eval/suites/*.json --key ci", SLUICE_SOURCE_DIR));
	/* Adapters with lora_B zero (as PEFT initialises them): they pass on anything. */
	for (int i = 1; i <= 6; i++)
		tu_sh_ok(
		        NULL,
		        "%s lora '%s/small-%d' --base %s/test-model --seed %d --b-std 0 >/dev/null",
		        SLUICE_SYNTH, work, i, SLUICE_RESOURCES, i);
	o = ok("propose base %s/test-model --key ci -m base", SLUICE_RESOURCES);
	tu_last_line(base, o);
	free(o);
	free(ok("gate %s --channel prod --key ci", base));
	free(ok("promote %s --channel prod --key ci", base));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(work);
	tu_rmtree(runtime);
	free(work);
	return 0;
}

static void good_adapter_is_promoted_from_a_secret_in_the_environment(void **state)
{
	char before[41], after[41], sec[4400], junit[4200];
	int cases, failures;
	tu_run_result r;
	json_t *v;
	(void)state;

	head_of("prod", before);
	secret_env(sec, sizeof(sec), "SLUICE_CI_KEY_CI", "ci");
	snprintf(junit, sizeof(junit), "%s/good.xml", work);
	r = ci(sec, "--channel prod --lora " CASES "/good-adapter-01 --junit good.xml");
	if (r.status != 0)
		print_message("%s\n%s\n", r.out, r.err);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "promoted"));
	tu_run_dispose(&r);
	head_of("prod", after);
	assert_string_not_equal(before, after);
	/* The new head is the adapter on the old head. */
	v = okj("show %s", after);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(v, "update"), "parent")), before);
	json_decref(v);
	junit_counts(junit, &cases, &failures);
	assert_true(cases >= 5); /* every check of three gates */
	assert_int_equal(failures, 0);
	/* The key copy made from the secret is gone. */
	r = tu_sh(NULL, "ls -d '%s'/sluice-ci-keys.* 2>/dev/null | wc -l", runtime);
	assert_int_equal(atoi(r.out), 0);
	tu_run_dispose(&r);
}

static void eroding_adapter_is_stopped_with_a_key_on_a_file_descriptor(void **state)
{
	char before[41], after[41], extra[4400], junit[4200];
	int cases, failures;
	tu_run_result r;
	(void)state;

	head_of("prod", before);
	snprintf(extra, sizeof(extra), "SLUICE_CI_KEY_FD_CI=7 7<'%s/keys/ci.key'", work);
	snprintf(junit, sizeof(junit), "%s/bad.xml", work);
	r = ci(extra, "--channel prod --lora " CASES "/erosion-00 --junit bad.xml");
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "the gates failed"));
	tu_run_dispose(&r);
	head_of("prod", after);
	assert_string_equal(before, after);
	junit_counts(junit, &cases, &failures);
	assert_true(cases >= 5);
	assert_true(failures >= 1);
}

static void bad_input_is_refused_before_anything_runs(void **state)
{
	char before[41], after[41];
	tu_run_result r;
	(void)state;

	head_of("prod", before);
	r = ci("", "--channel prod --lora /nonexistent");
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "adapter_config.json"));
	tu_run_dispose(&r);
	r = ci("", "--channel prod --lora " CASES "/good-adapter-01 --attempts x");
	assert_int_equal(r.status, 4);
	tu_run_dispose(&r);
	/* No key anywhere: the proposal is refused and nothing moves. */
	r = ci("", "--channel prod --lora " CASES "/good-adapter-01");
	assert_int_equal(r.status, 4);
	tu_run_dispose(&r);
	head_of("prod", after);
	assert_string_equal(before, after);
}

static void policy_asking_for_approval_blocks_until_an_approver_signs(void **state)
{
	char path[4200], before[41], after[41], sec[9000], b[4400];
	static const char policy[] = "version: 1\n"
	                             "channels:\n"
	                             "  prod:\n"
	                             "    gates:\n"
	                             "      required: [regression, safety, poisoning]\n"
	                             "    approvals:\n"
	                             "      roles: [approver]\n"
	                             "      count: 1\n";
	tu_run_result r;
	(void)state;

	snprintf(path, sizeof(path), "%s/policy.yaml", work);
	tu_write(path, policy, strlen(policy));
	free(ok("policy set '%s' --signer root", path));
	head_of("prod", before);
	secret_env(sec, sizeof(sec), "SLUICE_CI_KEY_CI", "ci");
	r = ci(sec, "--channel prod --lora small-1");
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.err, "approvals"));
	tu_run_dispose(&r);
	head_of("prod", after);
	assert_string_equal(before, after);

	secret_env(b, sizeof(b), "SLUICE_CI_KEY_BOB", "bob");
	strncat(sec, " ", sizeof(sec) - strlen(sec) - 1);
	strncat(sec, b, sizeof(sec) - strlen(sec) - 1);
	r = ci(sec, "--channel prod --lora small-1 --approver bob");
	if (r.status != 0)
		print_message("%s\n%s\n", r.out, r.err);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	head_of("prod", after);
	assert_string_not_equal(before, after);
}

/*
 * Two jobs on one channel. A wrapper around sluice runs job B to completion
 * the moment job A first tries to promote: A's verdict is then against a
 * head that is no longer the channel's, its promotion is refused, and A
 * proposes onto B's result and gates again.
 */
static void racing_jobs_never_ship_an_ungated_combination(void **state)
{
	char wrapper[4200], script[16384], sec[4400], mid[41], final[41], before[41];
	tu_run_result r;
	json_t *v, *hist, *e;
	size_t i;
	int adapters;
	(void)state;

	head_of("prod", before);
	snprintf(wrapper, sizeof(wrapper), "%s/racing-sluice", work);
	snprintf(script, sizeof(script),
	         "#!/usr/bin/env bash\n"
	         "for a in \"$@\"; do\n"
	         "  if [ \"$a\" = promote ] && mkdir '%s/raced' 2>/dev/null; then\n"
	         "    SLUICE='%s' bash '%s' --repo '%s' --channel prod --key other "
	         "--lora '%s/small-3' --approver bob >&2 || exit 99\n"
	         "  fi\n"
	         "done\n"
	         "exec '%s' \"$@\"\n",
	         work, TU_SLUICE, SCRIPT, repo, work, TU_SLUICE);
	tu_write(wrapper, script, strlen(script));
	chmod(wrapper, 0755);
	secret_env(sec, sizeof(sec), "SLUICE_CI_KEY_CI", "ci");
	/* Job B (inside the wrapper) uses the keys directory; job A only the secret. */
	r = tu_sh(env,
	          "cd '%s' && %s bash '%s' --repo '%s' --sluice '%s' --channel prod "
	          "--lora small-2 --approver bob",
	          work, sec, SCRIPT, repo, wrapper);
	if (r.status != 0)
		fprintf(stderr, "%s\n", r.err + (strlen(r.err) > 3000 ? strlen(r.err) - 3000 : 0));
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "while gating; gating again against the new head"));
	tu_run_dispose(&r);
	head_of("prod", final);
	/* B's result is the final head's parent, and the final head holds both adapters. */
	v = okj("show %s", final);
	snprintf(mid, sizeof(mid), "%s",
	         json_string_value(json_object_get(json_object_get(v, "update"), "parent")));
	assert_string_not_equal(mid, before);
	adapters = (int)json_array_size(json_object_get(json_object_get(v, "state"), "adapters"));
	json_decref(v);
	v = okj("show %s", mid);
	assert_int_equal(json_array_size(json_object_get(json_object_get(v, "state"), "adapters")) +
	                         1,
	                 (size_t)adapters);
	json_decref(v);
	/*
	 * Every head prod held came with the three verdicts, each move starting
	 * where the one before ended, and B's result was a head before A's.
	 */
	hist = okj("history prod");
	{
		const char *prev = NULL;
		int saw_mid = 0;
		json_array_foreach(json_object_get(hist, "moves"), i, e)
		{
			json_t *vd = json_object_get(e, "verdicts");
			assert_string_equal(json_string_value(json_object_get(e, "action")),
			                    "promote");
			assert_int_equal(json_object_size(vd), 3);
			if (prev)
				assert_string_equal(json_string_value(json_object_get(e, "from")),
				                    prev);
			prev = json_string_value(json_object_get(e, "to"));
			saw_mid |= !strcmp(prev, mid);
		}
		assert_true(saw_mid);
		assert_string_equal(prev, final);
	}
	json_decref(hist);
	free(ok("verify"));
}

/*
 * An ephemeral runner: the job starts from nothing but the remote (a bare
 * git repository by path, and a WebDAV chunk store served by nginx),
 * clones it pinning the root key, gates and promotes there, and pushes
 * the result back; a pull shows the promotion here.
 */
static void ephemeral_runner_works_on_a_clone_and_pushes_back(void **state)
{
	char origin[4200], store[4300], sec[4400], extra[9000], before[41], after[41], fp[128],
	        args[65536];
	tu_nginx ng;
	json_t *keys, *k;
	tu_run_result r;
	char tmpdir[4300], *saved_tmpdir = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
	size_t i;
	(void)state;

	/*
	 * The runner clones into ${TMPDIR:-/tmp}; give it a directory of this
	 * run's own, so that its clones are counted apart from those of any
	 * other run of this test on the machine (a CI run beside a local one).
	 */
	snprintf(tmpdir, sizeof(tmpdir), "%s/runner-tmp", work);
	tu_sh_ok(NULL, "mkdir -p '%s'", tmpdir);
	setenv("TMPDIR", tmpdir, 1);
	snprintf(origin, sizeof(origin), "%s/origin.git", work);
	tu_sh_ok(NULL, "git init -q --bare '%s'", origin);
	snprintf(store, sizeof(store), "%s/nginx", work);
	tu_nginx_start(&ng, store);
	snprintf(store, sizeof(store), "%s/store", ng.url);
	free(ok("remote add origin '%s' --chunks %s", origin, store));
	free(ok("push origin"));
	keys = okj("key list");
	fp[0] = 0;
	json_array_foreach(json_object_get(keys, "keys"), i,
	                   k) if (!strcmp(json_string_value(json_object_get(k, "name")), "root"))
	        snprintf(fp, sizeof(fp), "%s",
	                 json_string_value(json_object_get(k, "fingerprint")));
	json_decref(keys);
	assert_true(fp[0] != 0);
	head_of("prod", before);

	secret_env(sec, sizeof(sec), "SLUICE_CI_KEY_CI", "ci");
	snprintf(extra, sizeof(extra), "%s SLUICE_CI_KEY_BOB=\"$(cat '%s/keys/bob.key')\"", sec,
	         work);
	snprintf(args, sizeof(args),
	         "cd '%s' && env SLUICE_KEYS='%s/nokeys' SLUICE='%s' %s bash '%s' --remote '%s' "
	         "--chunks %s --root '%s' --channel prod --lora small-4 --approver bob",
	         work, work, TU_SLUICE, extra, SCRIPT, origin, store, fp);
	r = tu_sh(NULL, "%s", args);
	if (r.status != 0)
		fprintf(stderr, "%s\n", r.err + (strlen(r.err) > 3000 ? strlen(r.err) - 3000 : 0));
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "pushed to"));
	tu_run_dispose(&r);
	/* Nothing changed here until the pull; then prod is the runner's promotion. */
	head_of("prod", after);
	assert_string_equal(before, after);
	free(ok("pull origin"));
	head_of("prod", after);
	assert_string_not_equal(before, after);
	{
		json_t *v = okj("show %s", after);
		assert_string_equal(
		        json_string_value(json_object_get(json_object_get(v, "update"), "parent")),
		        before);
		json_decref(v);
	}
	free(ok("verify"));

	/*
	 * Two runners: a wrapper runs runner B to completion when runner A
	 * first pushes, so A's push meets a remote that moved, is refused, and
	 * A starts again from a fresh clone of B's result.
	 */
	{
		char wrapper[4300], script[16384], final[41], mid[41];
		json_t *v;
		snprintf(wrapper, sizeof(wrapper), "%s/racing-push", work);
		snprintf(script, sizeof(script),
		         "#!/usr/bin/env bash\n"
		         "for a in \"$@\"; do\n"
		         "  if [ \"$a\" = push ] && mkdir '%s/raced-push' 2>/dev/null; then\n"
		         "    SLUICE='%s' bash '%s' --remote '%s' --chunks %s --channel prod "
		         "--lora '%s/small-5' --approver bob >&2 || exit 99\n"
		         "  fi\n"
		         "done\n"
		         "exec '%s' \"$@\"\n",
		         work, TU_SLUICE, SCRIPT, origin, store, work, TU_SLUICE);
		tu_write(wrapper, script, strlen(script));
		chmod(wrapper, 0755);
		snprintf(args, sizeof(args),
		         "cd '%s' && env SLUICE_KEYS='%s/nokeys' %s bash '%s' --sluice '%s' "
		         "--remote '%s' --chunks %s --channel prod --lora small-6 --approver bob",
		         work, work, extra, SCRIPT, wrapper, origin, store);
		r = tu_sh(NULL, "%s", args);
		if (r.status != 0)
			fprintf(stderr, "%s\n",
			        r.err + (strlen(r.err) > 3000 ? strlen(r.err) - 3000 : 0));
		assert_int_equal(r.status, 0);
		assert_non_null(strstr(r.err, "starting again from a fresh clone"));
		tu_run_dispose(&r);
		free(ok("pull origin"));
		head_of("prod", final);
		v = okj("show %s", final);
		snprintf(
		        mid, sizeof(mid), "%s",
		        json_string_value(json_object_get(json_object_get(v, "update"), "parent")));
		json_decref(v);
		/* A's update sits on B's, which sits on what the first runner promoted. */
		v = okj("show %s", mid);
		assert_string_equal(
		        json_string_value(json_object_get(json_object_get(v, "update"), "parent")),
		        after);
		json_decref(v);
		free(ok("verify"));
	}
	/* Every clone the runners worked in is gone. */
	r = tu_sh(NULL, "ls -d '%s'/sluice-ci-repo.* 2>/dev/null | wc -l", tmpdir);
	assert_int_equal(atoi(r.out), 0);
	tu_run_dispose(&r);
	if (saved_tmpdir)
		setenv("TMPDIR", saved_tmpdir, 1);
	else
		unsetenv("TMPDIR");
	free(saved_tmpdir);
	tu_proc_stop(&ng.pid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(good_adapter_is_promoted_from_a_secret_in_the_environment),
	        cmocka_unit_test(eroding_adapter_is_stopped_with_a_key_on_a_file_descriptor),
	        cmocka_unit_test(bad_input_is_refused_before_anything_runs),
	        cmocka_unit_test(policy_asking_for_approval_blocks_until_an_approver_signs),
	        cmocka_unit_test(racing_jobs_never_ship_an_ungated_combination),
	        cmocka_unit_test(ephemeral_runner_works_on_a_clone_and_pushes_back),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
