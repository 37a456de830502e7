/*
 * tests/durability/test_faults.c - fail the N-th write, fsync, rename/link,
 * unlink or allocation of a promote and a rollback, for every N, and check
 * that the command fails cleanly (an error message and exit code, no crash,
 * no sanitizer report) or, for a failure after the commit point, succeeds;
 * that verify passes and the journal is exactly before or after the action;
 * and that the next action works.
 *
 * Two hooks: the LD_PRELOAD shim (SLUICE_SHIM_FAIL) reaches every system
 * call of sluice, libgit2 and LMDB; libsluice's own fault hook
 * (sluice_ctx_set_fault_hook) reaches its writes, fsyncs and allocations
 * through the library API, so allocation failures are covered too.
 */
#include "harness.h"

#include "sluice/channel.h"
#include "sluice/repo.h"

static const char *const classes[] = {"write", "fsync", "rename", "unlink"};

static dh_fixture *fx;
static int trials, failed_cleanly, failed_committed, succeeded, oom_as_bad_signature;

static int group_setup(void **state)
{
	char env[4300];

	(void)state;
	fx = dh_setup("faults");
	/* For the in-process runs: the keys directory of the fixture. */
	snprintf(env, sizeof(env), "%s", fx->keys_env + strlen("SLUICE_KEYS="));
	setenv("SLUICE_KEYS", env, 1);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fprintf(stderr,
	        "fault trials: %d: %d failed cleanly (%d of them after the commit point: the "
	        "action took effect, K4), %d succeeded (a fault in derived state after the commit "
	        "point, or one libgit2 tolerates: the link it tries before a rename, the unlink of "
	        "a temporary); %d allocation failures reported as a bad signature (K3)\n",
	        trials, failed_cleanly, failed_committed, succeeded, oom_as_bad_signature);
	dh_teardown(fx);
	return 0;
}

static int op_class(const char *op)
{
	if (strstr(op, "write"))
		return 0;
	if (strstr(op, "sync"))
		return 1;
	if (!strcmp(op, "rename") || !strcmp(op, "link"))
		return 2;
	if (!strcmp(op, "unlink"))
		return 3;
	return -1;
}

/* How many calls of each class the action makes when nothing fails. */
static void count_classes(dh_fixture *f, const char *args, long counts[4])
{
	char log[4200], setting[4300], line[9000], op[32];
	tu_run_result r;
	FILE *fp;
	int c;

	dh_fresh(f, "count");
	snprintf(log, sizeof(log), "%s/faults.log", f->work);
	unlink(log);
	snprintf(setting, sizeof(setting), "SLUICE_SHIM_LOG=%s", log);
	r = tu_sh(dh_shim_env(f, setting), "%s -C '%s' %s", TU_SLUICE, f->repo, args);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	memset(counts, 0, 4 * sizeof(long));
	assert_non_null(fp = fopen(log, "r"));
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "%*s %31s", op) == 1 && (c = op_class(op)) >= 0)
			counts[c]++;
	fclose(fp);
}

/* After a failed or succeeded action: the invariants, and the next action still works. */
/* Loose objects (not temporary files) in repo's object store. */
static long loose_count(const char *repo)
{
	tu_run_result r = tu_sh(
	        NULL,
	        "find '%s/objects' -type f -path '*/objects/[0-9a-f][0-9a-f]/*' ! -name 'tmp_*' | "
	        "wc -l",
	        repo);
	long n;

	assert_int_equal(r.status, 0);
	n = atol(r.out);
	tu_run_dispose(&r);
	return n;
}

static void after_fault(dh_fixture *f, const dh_state *before, const char *action,
                        const char *target, int status, const char *err, const char *when)
{
	char args[256];
	tu_run_result r;

	trials++;
	if (status == 1 && strstr(err, "bad signature: out of memory")) {
		/* Known problem K3 (docs/durability.md): test_known_issues.c asserts the fix. */
		oom_as_bad_signature++;
		status = 5;
	}
	if (status != 0) {
		if (!strstr(err, "sluice: error: ") || (status != 4 && status != 5))
			fprintf(stderr, "%s: exit %d, stderr:\n%s\n", when, status, err);
		/* An error message and an I/O (5) or conflict (4) code: not a crash. */
		assert_non_null(strstr(err, "sluice: error: "));
		assert_true(status == 4 || status == 5);
		failed_cleanly++;
	} else {
		succeeded++;
	}
	if (dh_check_after(f, before, action, target, status, when) && status != 0) {
		/* Failed after the commit point: it took effect; K4 is how it is reported. */
		failed_committed++;
		assert_null(strstr(err, "nothing was changed"));
	} else if (status != 0 && strstr(when, "fsync")) {
		/*
		 * A failed fsync round leaves none of the names it made: after an
		 * fsync error the bytes behind them may never reach the disk while
		 * the page cache still shows them whole (core/stage.c).
		 */
		long now = loose_count(f->repo), was = loose_count(f->pristine);
		if (now != was)
			fprintf(stderr, "%s: %ld loose objects, %ld before\n", when, now, was);
		assert_int_equal(now, was);
	}
	/* Nothing left behind blocks the next action. */
	snprintf(args, sizeof(args), "promote %s --channel prod --key alice", f->v[3]);
	r = dh_sl(f, args);
	if (r.status != 0)
		fprintf(stderr, "the next promote after %s failed:\n%s%s", when, r.out, r.err);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
}

static void shim_faults(const char *args, const char *action, const char *target)
{
	char setting[64], when[512];
	long counts[4], n;
	dh_state before;
	tu_run_result r;
	int c;

	count_classes(fx, args, counts);
	dh_fresh(fx, "before");
	dh_read_state(fx, &before);
	for (c = 0; c < 4; c++) {
		fprintf(stderr, "%s: %ld %s calls\n", args, counts[c], classes[c]);
		for (n = 1; n <= counts[c]; n++) {
			dh_fresh(fx, "trial");
			snprintf(setting, sizeof(setting), "SLUICE_SHIM_FAIL=%s:%ld", classes[c],
			         n);
			snprintf(when, sizeof(when), "%s failing at %s", args, setting);
			r = tu_sh(dh_shim_env(fx, setting), "%s -C '%s' %s", TU_SLUICE, fx->repo,
			          args);
			after_fault(fx, &before, action, target, r.status, r.err, when);
			tu_run_dispose(&r);
		}
	}
	assert_true(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
}

static void test_faults__promote_every_syscall(void **state)
{
	char args[256];

	(void)state;
	snprintf(args, sizeof(args), "promote %s --channel prod --key alice", fx->v[2]);
	shim_faults(args, "promote", fx->v[2]);
}

static void test_faults__rollback_every_syscall(void **state)
{
	(void)state;
	shim_faults("rollback prod --reason fault-test --key alice", "rollback", fx->v[0]);
}

/* ---- libsluice's own fault hook, through the library API ---------------- */

typedef struct {
	sluice_fault_op op;
	long fail_at; /* 0: count only */
	long seen[4];
} hook_state;

static int hook(void *data, sluice_fault_op op, const char *what)
{
	hook_state *h = data;

	(void)what;
	h->seen[op]++;
	return h->fail_at && op == h->op && h->seen[op] == h->fail_at;
}

/* Promote (rollback when promote is 0) in this process with the hook installed. */
static int run_in_process(dh_fixture *f, hook_state *h, int promote, char *err, size_t cap)
{
	sluice_ctx *ctx = NULL;
	sluice_repo *repo = NULL;
	char *report = NULL;
	int error;

	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&repo, ctx, f->repo), 0);
	sluice_ctx_set_fault_hook(ctx, hook, h);
	if (promote)
		error = sluice_channel_promote(repo, f->v[2], "prod", "alice", NULL, &report);
	else
		error = sluice_channel_rollback(repo, "prod", NULL, "fault-test", "alice", &report);
	snprintf(err, cap, "sluice: error: %s", sluice_ctx_errmsg(ctx));
	sluice_free(report);
	sluice_repo_free(repo);
	sluice_ctx_free(ctx);
	return error;
}

static void hook_faults(int promote)
{
	static const sluice_fault_op ops[] = {SLUICE_FAULT_WRITE, SLUICE_FAULT_FSYNC,
	                                      SLUICE_FAULT_ALLOC};
	static const char *const names[] = {"", "write", "fsync", "allocation"};
	hook_state count = {0};
	char err[2048], when[128];
	const char *action = promote ? "promote" : "rollback";
	const char *target = promote ? fx->v[2] : fx->v[0];
	dh_state before;
	size_t k;
	long n;
	int error;

	dh_fresh(fx, "count");
	assert_int_equal(run_in_process(fx, &count, promote, err, sizeof(err)), 0);
	fprintf(stderr, "%s in process: %ld writes, %ld fsyncs, %ld allocations through the hook\n",
	        action, count.seen[SLUICE_FAULT_WRITE], count.seen[SLUICE_FAULT_FSYNC],
	        count.seen[SLUICE_FAULT_ALLOC]);
	assert_true(count.seen[SLUICE_FAULT_ALLOC] > 0);
	dh_fresh(fx, "before");
	dh_read_state(fx, &before);
	for (k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		for (n = 1; n <= count.seen[ops[k]]; n++) {
			hook_state h = {ops[k], n, {0}};
			dh_fresh(fx, "trial");
			error = run_in_process(fx, &h, promote, err, sizeof(err));
			snprintf(when, sizeof(when), "%s failing its %s #%ld", action,
			         names[ops[k]], n);
			if (error < 0 && strlen(err) <= strlen("sluice: error: "))
				fprintf(stderr, "%s: error %d without a message\n", when, error);
			assert_true(error <= 0);
			assert_true(error == 0 || strlen(err) > strlen("sluice: error: "));
			after_fault(fx, &before, action, target,
			            error == 0 ? 0 : sluice_exit_code(error), err, when);
		}
	}
}

static void test_faults__promote_every_hook_point(void **state)
{
	(void)state;
	hook_faults(1);
}

static void test_faults__rollback_every_hook_point(void **state)
{
	(void)state;
	hook_faults(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_faults__promote_every_syscall),
	        cmocka_unit_test(test_faults__rollback_every_syscall),
	        cmocka_unit_test(test_faults__promote_every_hook_point),
	        cmocka_unit_test(test_faults__rollback_every_hook_point),
	};

	sluice_global_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
