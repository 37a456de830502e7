/*
 * tests/durability/test_readers.c - a process killed while it holds an
 * LMDB read transaction leaves its slot in the reader table; while any
 * other process keeps the environment open, LMDB does not reset the table
 * by itself, and the dead slot would pin old pages forever. Every sluice
 * process clears such slots (mdb_reader_check) when it opens an index.
 */
#include "harness.h"

#include <lmdb.h>
#include <signal.h>
#include <sys/wait.h>

static dh_fixture *fx;

static int group_setup(void **state)
{
	(void)state;
	fx = dh_setup("readers");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dh_teardown(fx);
	return 0;
}

typedef struct {
	pid_t pid;
	int found;
} reader_search;

/* mdb_reader_list prints a header, then "pid thread txnid" per slot. */
static int reader_line(const char *msg, void *ctx)
{
	reader_search *s = ctx;
	long pid;

	if (sscanf(msg, "%ld", &pid) == 1 && pid == (long)s->pid)
		s->found = 1;
	return 0;
}

static int has_reader(MDB_env *env, pid_t pid)
{
	reader_search s = {pid, 0};

	assert_true(mdb_reader_list(env, reader_line, &s) >= 0);
	return s.found;
}

static MDB_env *open_env(const char *dir)
{
	MDB_env *env;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0644), 0);
	return env;
}

/* A child that opens dir, begins a read transaction, says so, and waits to be killed. */
static pid_t reader_child(const char *dir)
{
	int fds[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;
		close(fds[0]);
		if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 4) ||
		    mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0644) ||
		    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
			_exit(1);
		if (write(fds[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	return pid;
}

static void stale_reader_cleared(const char *sub, const char *command)
{
	char dir[4200];
	MDB_env *env;
	pid_t pid;
	int status;
	tu_run_result r;

	snprintf(dir, sizeof(dir), "%s/sluice/%s", fx->repo, sub);
	pid = reader_child(dir);
	/* We keep the environment open, as a long-running reader would. */
	env = open_env(dir);
	assert_true(has_reader(env, pid));
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	/* Dead, and still in the table. */
	assert_true(has_reader(env, pid));
	r = tu_sh(
	        NULL,
	        "command -v mdb_stat >/dev/null || exit 127; mdb_stat -r '%s' | grep -c '^ *%ld '",
	        dir, (long)pid);
	if (r.status != 127)
		assert_int_equal(strtol(r.out, NULL, 10), 1);
	tu_run_dispose(&r);

	dh_sl_ok(fx, command);
	assert_false(has_reader(env, pid));
	/* As lmdb-utils' mdb_stat sees it too (skipped if it is not installed). */
	r = tu_sh(NULL, "command -v mdb_stat >/dev/null || exit 127; mdb_stat -r '%s'", dir);
	if (r.status != 127) {
		char needle[32];
		assert_non_null(strstr(r.out, "Reader Table Status"));
		snprintf(needle, sizeof(needle), " %ld ", (long)pid);
		assert_null(strstr(r.out, needle));
		fprintf(stderr, "%s after sluice %s:\n%s", dir, command, r.out);
	}
	tu_run_dispose(&r);
	mdb_env_close(env);
}

static void test_readers__journal_index_cleared_by_status(void **state)
{
	(void)state;
	dh_fresh(fx, "jix");
	dh_sl_ok(fx, "status");
	stale_reader_cleared("journal-index", "status");
}

static void test_readers__chunk_index_cleared_by_verify(void **state)
{
	(void)state;
	dh_fresh(fx, "cix");
	stale_reader_cleared("index", "verify");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_readers__journal_index_cleared_by_status),
	        cmocka_unit_test(test_readers__chunk_index_cleared_by_verify),
	};

	sluice_global_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
