/*
 * tests/durability/test_crash.c - SIGKILL at every crash point of promote,
 * rollback and propose (the shim kills the process just before its N-th
 * write, fsync, rename, link or unlink, in sluice, libgit2 or LMDB), plus
 * kills at random moments. After each: verify passes, and the journal and
 * prod's head are either as before or exactly the action's result — never
 * older, never anything else; an acknowledged action is never lost.
 */
#include "harness.h"

#include <time.h>

typedef struct {
	const char *name;   /* journal action */
	char args[8192];    /* sluice arguments */
	const char *target; /* prod's head after it, NULL: unchanged */
} action;

static dh_fixture *fx;
static int trials;

static int group_setup(void **state)
{
	(void)state;
	fx = dh_setup("crash");
	dh_tolerate_unsealed = 1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fprintf(stderr,
	        "crash trials: %d, each followed by verify and the state checks; "
	        "%d left an unsealed pack that verify reports (K1)\n",
	        trials, dh_unsealed_seen);
	dh_teardown(fx);
	return 0;
}

static void make_actions(dh_fixture *f, action a[4])
{
	a[0].name = "promote";
	snprintf(a[0].args, sizeof(a[0].args), "promote %s --channel prod --key alice", f->v[2]);
	a[0].target = f->v[2];
	a[1].name = "rollback";
	snprintf(a[1].args, sizeof(a[1].args), "rollback prod --reason crash-test --key alice");
	a[1].target = f->v[0];
	a[2].name = "propose";
	snprintf(a[2].args, sizeof(a[2].args),
	         "propose memory --onto %s --replace n1.md '%s/n4.md' --key alice -m v4", f->v[3],
	         f->in);
	a[2].target = NULL;
	a[3].name = "propose";
	snprintf(a[3].args, sizeof(a[3].args),
	         "propose base '%s/base2' --onto %s --key alice -m base2", f->in, f->v[3]);
	a[3].target = NULL;
}

/* How many mutating calls the action makes when nothing goes wrong, and how long it takes. */
static long count_calls(dh_fixture *f, const action *a, double *seconds)
{
	char log[4200], setting[4300];
	struct timespec t0, t1;
	tu_run_result r;
	long n;

	dh_fresh(f, "count");
	snprintf(log, sizeof(log), "%s/count.log", f->work);
	unlink(log);
	snprintf(setting, sizeof(setting), "SLUICE_SHIM_LOG=%s", log);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = tu_sh(dh_shim_env(f, setting), "%s -C '%s' %s", TU_SLUICE, f->repo, a->args);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r.status != 0)
		fprintf(stderr, "%s: %s%s", a->args, r.out, r.err);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	/* Counted calls only: lines numbered 0 are logged, not counted (io_submit, io_setup). */
	r = tu_sh(NULL, "awk '$1 != 0' '%s' | wc -l", log);
	n = strtol(r.out, NULL, 10);
	tu_run_dispose(&r);
	*seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	return n;
}

/* Kill at crash point n (0: at a random moment, after `delay` seconds). */
static int trial(dh_fixture *f, const action *a, const dh_state *before, long n, double delay,
                 int *moved)
{
	char setting[64], when[9000];
	tu_run_result r;
	int status;

	dh_fresh(f, "trial");
	if (n > 0) {
		snprintf(setting, sizeof(setting), "SLUICE_SHIM_KILL=%ld", n);
		r = tu_sh(dh_shim_env(f, setting), "%s -C '%s' %s", TU_SLUICE, f->repo, a->args);
		snprintf(when, sizeof(when), "a kill at call %ld of sluice %s", n, a->args);
	} else {
		r = tu_sh(dh_env(f),
		          "%s -C '%s' %s >/dev/null 2>&1 & p=$!; sleep %.4f; kill -9 $p "
		          "2>/dev/null; wait $p",
		          TU_SLUICE, f->repo, a->args, delay);
		snprintf(when, sizeof(when), "a kill after %.4fs of sluice %s", delay, a->args);
	}
	status = r.status;
	/* A deterministic crash point is always reached; a timed kill may come too late. */
	if (n > 0 && status != 128 + 9)
		fprintf(stderr, "%s: exit %d\n%s%s", when, status, r.out, r.err);
	assert_true(n == 0 || status == 128 + 9);
	assert_true(status == 0 || status == 128 + 9);
	tu_run_dispose(&r);
	*moved = dh_check_after(f, before, a->name, a->target, status, when);
	trials++;
	return status;
}

static void every_point(const action *a, long stride)
{
	double seconds;
	long calls = count_calls(fx, a, &seconds), n;
	int moved, before_commit = 0, after_commit = 0;
	dh_state before;

	/* Every trial starts from a copy of the same repository. */
	dh_fresh(fx, "before");
	dh_read_state(fx, &before);
	assert_true(calls > 5);
	for (n = 1; n <= calls; n++) {
		/* With a stride, still every point of the last 12: the commit point is there. */
		if (stride > 1 && n % stride && n < calls - 12)
			continue;
		trial(fx, a, &before, n, 0, &moved);
		if (moved)
			after_commit++;
		else
			before_commit++;
	}
	/* Both sides of the commit point were exercised. */
	assert_true(before_commit > 0);
	assert_true(after_commit > 0);
	fprintf(stderr, "%s: %ld crash points, %d before the commit point, %d after\n", a->args,
	        calls, before_commit, after_commit);
}

static void test_crash__promote_every_point(void **state)
{
	action a[4];

	(void)state;
	make_actions(fx, a);
	every_point(&a[0], 1);
}

static void test_crash__rollback_every_point(void **state)
{
	action a[4];

	(void)state;
	make_actions(fx, a);
	every_point(&a[1], 1);
}

/*
 * The same with every batch of fsyncs submitted through Linux AIO, as a
 * long-lived process's are (a command's first batches run on threads,
 * core/io.c): the shim runs each fsync of an io_submit in turn, so a kill
 * can land between two fsyncs of one submission.
 */
static void test_crash__rollback_every_point_through_aio(void **state)
{
	action a[4];

	(void)state;
	make_actions(fx, a);
	setenv("SLUICE_FSYNC_BATCH", "aio", 1);
	every_point(&a[1], 1);
	unsetenv("SLUICE_FSYNC_BATCH");
}

static void test_crash__propose_memory_points(void **state)
{
	action a[4];

	(void)state;
	make_actions(fx, a);
	every_point(&a[2], 3);
}

static void test_crash__propose_base_points(void **state)
{
	action a[4];

	(void)state;
	make_actions(fx, a);
	every_point(&a[3], 4);
}

static void test_crash__random_moments(void **state)
{
	action a[4];
	double seconds[4];
	unsigned seed = (unsigned)time(NULL);
	int i, moved, acked = 0, committed = 0;
	dh_state before;

	(void)state;
	make_actions(fx, a);
	dh_fresh(fx, "before");
	dh_read_state(fx, &before);
	for (i = 0; i < 4; i++)
		count_calls(fx, &a[i], &seconds[i]);
	fprintf(stderr, "random kills, seed %u\n", seed);
	srand(seed);
	for (i = 0; i < 12; i++) {
		const action *ai = &a[i % 4];
		double delay = seconds[i % 4] * ((double)rand() / RAND_MAX) * 1.2;
		if (trial(fx, ai, &before, 0, delay, &moved) == 0)
			acked++;
		committed += moved;
	}
	fprintf(stderr, "random kills: 12, %d past the commit point, %d finished before the kill\n",
	        committed, acked);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crash__promote_every_point),
	        cmocka_unit_test(test_crash__rollback_every_point),
	        cmocka_unit_test(test_crash__rollback_every_point_through_aio),
	        cmocka_unit_test(test_crash__propose_memory_points),
	        cmocka_unit_test(test_crash__propose_base_points),
	        cmocka_unit_test(test_crash__random_moments),
	};

	sluice_global_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
