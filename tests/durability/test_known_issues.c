/*
 * tests/durability/test_known_issues.c - problems in core/ that the
 * durability tests found, one test each, asserting the behaviour the fix
 * should give (docs/durability.md, "Known issues", describes each and its
 * fix). They fail until core/ is fixed; the other durability tests accept
 * exactly these behaviours and count them.
 */
#include "harness.h"

#include "sluice/channel.h"
#include "sluice/repo.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static dh_fixture *fx;

static int group_setup(void **state)
{
	(void)state;
	fx = dh_setup("known");
	setenv("SLUICE_KEYS", fx->keys_env + strlen("SLUICE_KEYS="), 1);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dh_teardown(fx);
	return 0;
}

/* The 1-based number of the first logged call of op on a path ending in suffix, after call `after`.
 */
static long call_number(dh_fixture *f, const char *args, const char *op, const char *suffix,
                        long after)
{
	char log[4200], setting[4300];
	tu_run_result r;
	long n;

	dh_fresh(f, "count");
	snprintf(log, sizeof(log), "%s/known.log", f->work);
	unlink(log);
	snprintf(setting, sizeof(setting), "SLUICE_SHIM_LOG=%s", log);
	r = tu_sh(dh_shim_env(f, setting), "%s -C '%s' %s", TU_SLUICE, f->repo, args);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	r = tu_sh(NULL, "awk '$1 > %ld && $2 == \"%s\" && $3 ~ /%s$/ { print $1; exit }' '%s'",
	          after, op, suffix, log);
	n = strtol(r.out, NULL, 10);
	tu_run_dispose(&r);
	assert_true(n > 0);
	return n;
}

static void kill_at(dh_fixture *f, const char *args, long n)
{
	char setting[64];
	tu_run_result r;

	dh_fresh(f, "trial");
	snprintf(setting, sizeof(setting), "SLUICE_SHIM_KILL=%ld", n);
	r = tu_sh(dh_shim_env(f, setting), "%s -C '%s' %s", TU_SLUICE, f->repo, args);
	assert_int_equal(r.status, 128 + 9);
	tu_run_dispose(&r);
}

/*
 * K1: a proposal killed while writing its chunk pack leaves the pack
 * unsealed; verify must still pass (nothing acknowledged refers to it),
 * and reindex, which verify's message recommends, must leave no problem.
 */
static void test_known_issues__verify_after_propose_killed_in_pack(void **state)
{
	char args[8192];
	tu_run_result r;
	long n;

	(void)state;
	snprintf(args, sizeof(args), "propose base '%s/base2' --onto %s --key alice -m base2",
	         fx->in, fx->v[3]);
	/* Just after the first pack write. */
	n = call_number(fx, args, "pwritev", "\\.pack", 0) + 1;
	kill_at(fx, args, n);
	r = dh_sl(fx, "verify");
	if (r.status != 0)
		fprintf(stderr, "K1: verify after a kill at call %ld:\n%s", n, r.out);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	dh_sl_ok(fx, "reindex");
	dh_verify_ok(fx, "reindex after a killed proposal");
}

/*
 * K2: a process killed between creating refs/sluice/journal.lock and
 * renaming it leaves the lock behind, and every later action then fails
 * with "the journal kept changing" after 16 retries. The next action must
 * work (or, at the least, name the stale lock file).
 */
static void test_known_issues__action_after_kill_holding_journal_lock(void **state)
{
	char args[256];
	tu_run_result r;
	long n;

	(void)state;
	snprintf(args, sizeof(args), "promote %s --channel prod --key alice", fx->v[2]);
	/* Before the lock file's fsync: it exists, the ref has not moved. */
	n = call_number(fx, args, "fsync", "journal\\.lock", 0);
	kill_at(fx, args, n);
	r = dh_sl(fx, args);
	if (r.status != 0)
		fprintf(stderr, "K2: the next promote after a kill at call %ld: exit %d\n%s", n,
		        r.status, r.err);
	/* The killed writer's intent is in journal.flock: its lock is removed. */
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
}

/*
 * A journal.lock that no sluice writer announced (git's, during git gc's
 * pack-refs or an update-ref) is never removed: the action waits, then
 * fails naming the file, and works once the file is gone.
 */
static void test_known_issues__a_lock_that_git_holds_is_left_alone(void **state)
{
	char lock[4200];
	tu_run_result r;
	struct stat sb;
	FILE *f;

	(void)state;
	dh_fresh(fx, "git-lock");
	snprintf(lock, sizeof(lock), "%s/refs/sluice/journal.lock", fx->repo);
	assert_non_null(f = fopen(lock, "w"));
	fclose(f);
	r = dh_sl(fx, "rollback prod --reason git-holds-the-lock --key alice");
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "journal.lock is held by a program that is not sluice"));
	tu_run_dispose(&r);
	assert_int_equal(stat(lock, &sb), 0);
	unlink(lock);
	r = dh_sl(fx, "rollback prod --reason git-released-it --key alice");
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
}

/*
 * K3: an allocation failure while checking a signature is reported as
 * "bad signature" (SLUICE_EDENIED, exit 1: "a check said no"); it must be
 * SLUICE_ENOMEM.
 */
typedef struct {
	long fail_at, seen;
} alloc_fail;

static int fail_alloc(void *data, sluice_fault_op op, const char *what)
{
	alloc_fail *a = data;

	(void)what;
	return op == SLUICE_FAULT_ALLOC && ++a->seen == a->fail_at;
}

static void test_known_issues__out_of_memory_is_not_a_bad_signature(void **state)
{
	long n;
	int oom = 0;

	(void)state;
	for (n = 1; n <= 40; n++) {
		alloc_fail a = {n, 0};
		sluice_ctx *ctx = NULL;
		sluice_repo *repo = NULL;
		char *report = NULL;
		int error;

		dh_fresh(fx, "trial");
		assert_int_equal(sluice_ctx_new(&ctx), 0);
		assert_int_equal(sluice_repo_open(&repo, ctx, fx->repo), 0);
		sluice_ctx_set_fault_hook(ctx, fail_alloc, &a);
		error = sluice_channel_promote(repo, fx->v[2], "prod", "alice", NULL, &report);
		if (error < 0 && strstr(sluice_ctx_errmsg(ctx), "out of memory")) {
			oom++;
			if (error != SLUICE_ENOMEM)
				fprintf(stderr, "K3: allocation %ld: error %d: %s\n", n, error,
				        sluice_ctx_errmsg(ctx));
			assert_int_equal(error, SLUICE_ENOMEM);
		}
		sluice_free(report);
		sluice_repo_free(repo);
		sluice_ctx_free(ctx);
	}
	assert_true(oom > 0);
}

/*
 * K4: when the journal ref has been renamed into place but fsyncing its
 * directory fails, the action took effect (every reader sees it), yet
 * sluice reports only "cannot update refs/sluice/journal" — a user who
 * retries a rollback then rolls back twice. The error must say the entry
 * was recorded, naming it.
 */
static void test_known_issues__error_after_commit_point_names_the_entry(void **state)
{
	const char *args = "rollback prod --reason known-issue --key alice";
	char setting[64];
	tu_run_result r, head;
	long ren, n;

	(void)state;
	ren = call_number(fx, args, "rename", "journal\\.lock", 0);
	n = call_number(fx, args, "fsync", "refs\\/sluice", ren);
	/* The shim's fsync count: how many fsyncs come up to and including call n. */
	r = tu_sh(NULL,
	          "awk '$1 <= %ld && ($2 == \"fsync\" || $2 == \"fdatasync\") { k++ } END { print "
	          "k }' '%s/known.log'",
	          n, fx->work);
	snprintf(setting, sizeof(setting), "SLUICE_SHIM_FAIL=fsync:%ld", strtol(r.out, NULL, 10));
	tu_run_dispose(&r);
	dh_fresh(fx, "trial");
	r = tu_sh(dh_shim_env(fx, setting), "%s -C '%s' %s", TU_SLUICE, fx->repo, args);
	head = tu_sh(NULL, "git -C '%s' rev-parse --short=12 refs/sluice/journal", fx->repo);
	head.out[12] = '\0';
	if (r.status != 0 && !strstr(r.err, head.out))
		fprintf(stderr, "K4: the journal moved to %s, but sluice said (exit %d):\n%s",
		        head.out, r.status, r.err);
	assert_true(r.status == 0 || strstr(r.err, head.out));
	tu_run_dispose(&head);
	tu_run_dispose(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_known_issues__verify_after_propose_killed_in_pack),
	        cmocka_unit_test(test_known_issues__action_after_kill_holding_journal_lock),
	        cmocka_unit_test(test_known_issues__a_lock_that_git_holds_is_left_alone),
	        cmocka_unit_test(test_known_issues__out_of_memory_is_not_a_bad_signature),
	        cmocka_unit_test(test_known_issues__error_after_commit_point_names_the_entry),
	};

	sluice_global_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
