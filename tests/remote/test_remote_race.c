/*
 * tests/remote/test_remote_race.c - two pushers racing to one remote on
 * this machine (docs/remotes.md, "Order, concurrency and crashes"). Pusher
 * A runs in this process; the fault hook, consulted just before A writes
 * the remote's journal ref, lets pusher B (the sluice program) push first.
 * To a plain bare repository B wins and A's compare-and-swap fails; to a
 * sluice repository B blocks on the remote's journal writers' lock (seen in
 * /proc/locks) until A is done, and then B's compare-and-swap fails.
 * Either way exactly one wins, the loser says so and changed no ref, and
 * the remote holds the winner's journal entire.
 */
#include "testutil.h"

#include "sluice/remote.h"
#include "sluice/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *work;
static char keysenv[4300], a[4200], b[4200], plain[4300], sluiced[4300];
static const char *env[] = {keysenv, "SLUICE_KEY=ops", NULL};

static char *ok_in(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *ok_in(const char *dir, const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = tu_sluice_okv(env, dir, fmt, ap);
	va_end(ap);
	return out;
}

static void git_ref(const char *dir, const char *ref, char out[41])
{
	tu_run_result r = tu_sh(NULL, "git --git-dir='%s' rev-parse -q --verify %s", dir, ref);
	snprintf(out, 41, "%s", r.status == 0 ? r.out : "");
	tu_run_dispose(&r);
}

/* What the hook does when A is about to write the remote's journal ref. */
struct race {
	const char *remote; /* B's remote name */
	int background;     /* start B and wait until it blocks on the lock */
	const char *lockfile;
	int fired;
	char out[4300], rc[4300]; /* B's output and exit code files (background) */
};

/* Whether a process waits for a flock on the file with inode ino (/proc/locks "->" lines). */
static int someone_waits(unsigned long ino)
{
	FILE *f = fopen("/proc/locks", "r");
	char line[512], needle[64];
	int found = 0;

	if (!f)
		return 0;
	snprintf(needle, sizeof(needle), ":%lu ", ino);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "->") && strstr(line, "FLOCK") && strstr(line, needle))
			found = 1;
	fclose(f);
	return found;
}

static int hook(void *data, sluice_fault_op op, const char *what)
{
	struct race *rc = data;
	size_t n = strlen(what), k = strlen("refs/sluice/journal");

	if (op != SLUICE_FAULT_WRITE || rc->fired || n < k ||
	    strcmp(what + n - k, "refs/sluice/journal"))
		return 0;
	rc->fired = 1;
	if (!rc->background) {
		/* B pushes now, start to end, and wins. */
		free(ok_in(b, "push %s", rc->remote));
		return 0;
	}
	snprintf(rc->out, sizeof(rc->out), "%s/b-push.out", work);
	snprintf(rc->rc, sizeof(rc->rc), "%s/b-push.rc", work);
	unlink(rc->rc);
	tu_sh_ok(env, "(%s -C '%s' push %s > '%s' 2>&1; echo $? > '%s.tmp' && mv '%s.tmp' '%s') &",
	         TU_SLUICE, b, rc->remote, rc->out, rc->rc, rc->rc, rc->rc);
	{
		struct stat st;
		int i;
		assert_int_equal(stat(rc->lockfile, &st), 0);
		/* B decided against the same remote head and now waits for A's lock. */
		for (i = 0; i < 600 && !someone_waits((unsigned long)st.st_ino); i++)
			usleep(50000);
		if (i == 600)
			fail_msg("pusher B never waited for %s", rc->lockfile);
	}
	return 0;
}

/* Push repository dir to name in this process with the hook; returns the code and message. */
static int push_hooked(const char *dir, const char *name, struct race *rc, char *msg, size_t size)
{
	sluice_ctx *ctx = NULL;
	sluice_repo *repo = NULL;
	char *report = NULL;
	int error;

	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&repo, ctx, dir), 0);
	sluice_ctx_set_fault_hook(ctx, hook, rc);
	error = sluice_remote_push(repo, name, NULL, &report);
	snprintf(msg, size, "%s", error < 0 ? sluice_ctx_errmsg(ctx) : "");
	free(report);
	sluice_repo_free(repo);
	sluice_ctx_free(ctx);
	assert_true(rc->fired);
	return error;
}

/*
 * Whether sluice key list's table (one key a line, its name first) names
 * the key name. Not a substring search: a fingerprint's base64 can hold any
 * short name by chance.
 */
static int lists_key(const char *table, const char *name)
{
	size_t n = strlen(name);
	const char *line = table;

	while (*line) {
		const char *end = strchr(line, '\n');
		if (!strncmp(line, name, n) && (line[n] == ' ' || line[n] == '\t'))
			return 1;
		if (!end)
			break;
		line = end + 1;
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;

	if (sluice_global_init() < 0)
		return -1;
	work = tu_mkdtemp("remote-race");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(a, sizeof(a), "%s/a", work);
	snprintf(b, sizeof(b), "%s/b", work);
	snprintf(plain, sizeof(plain), "%s/plain.git", work);
	snprintf(sluiced, sizeof(sluiced), "%s/sluiced", work);
	/* Journal entries without versions: no chunk moves, so no chunk store is needed. */
	tu_sh_ok(env, "%s init '%s' --required-gates none", TU_SLUICE, a);
	free(ok_in(a, "key new ops --role operator --role proposer"));
	tu_sh_ok(NULL, "git init -q --bare '%s'", plain);
	free(ok_in(a, "remote add plain '%s'", plain));
	free(ok_in(a, "push plain"));
	tu_sh_ok(env, "%s clone '%s' '%s'", TU_SLUICE, plain, b);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(work);
	free(work);
	sluice_global_shutdown();
	return 0;
}

/* To a plain bare repository: B pushes while A is about to move the ref; A's CAS fails. */
static void test_remote_race__plain_remote_one_wins(void **state)
{
	struct race rc = {"origin", 0, NULL, 0, "", ""};
	char msg[4096], before[41], ahead[41], bhead[41], head[41], c[4300];
	int error;
	(void)state;

	free(ok_in(a, "key new ka --role proposer"));
	free(ok_in(b, "key new kb --role proposer"));
	git_ref(a, "refs/sluice/journal", ahead);
	git_ref(b, "refs/sluice/journal", bhead);
	git_ref(plain, "refs/sluice/journal", before);
	assert_string_not_equal(ahead, bhead);

	error = push_hooked(a, "plain", &rc, msg, sizeof(msg));
	assert_int_equal(error, SLUICE_ECONFLICT);
	assert_non_null(strstr(msg, "remote plain's journal moved while this push ran"));
	assert_non_null(strstr(msg, "run sluice pull plain"));
	/* B won: the remote holds B's journal; A's is as it was. */
	git_ref(plain, "refs/sluice/journal", head);
	assert_string_equal(head, bhead);
	git_ref(a, "refs/sluice/journal", head);
	assert_string_equal(head, ahead);
	/* Nothing lost: a clone of the remote has B's entry and verifies. */
	snprintf(c, sizeof(c), "%s/check-plain", work);
	tu_sh_ok(env, "%s clone '%s' '%s'", TU_SLUICE, plain, c);
	free(ok_in(c, "verify"));
	{
		char *out = ok_in(c, "key list");
		assert_true(lists_key(out, "kb"));
		assert_false(lists_key(out, "ka"));
		free(out);
	}
	/* The loser's way on: it is now diverged, and says so (its entry must be redone). */
	{
		tu_run_result r = tu_sh(env, "%s -C '%s' pull plain", TU_SLUICE, a);
		assert_int_equal(r.status, 4);
		assert_non_null(strstr(r.err, "diverged"));
		tu_run_dispose(&r);
	}
}

/*
 * To a sluice repository: A holds its journal writers' lock from the
 * objects to the refs; B, which decided against the same head, waits on
 * it, and its compare-and-swap then fails.
 */
static void test_remote_race__sluice_remote_lock_then_cas(void **state)
{
	struct race rc = {"sl", 1, NULL, 0, "", ""};
	char msg[4096], a2[4300], lock[4400], ahead[41], bhead[41], head[41];
	int error;
	(void)state;

	snprintf(a2, sizeof(a2), "%s/a2", work);
	tu_sh_ok(env, "%s clone '%s' '%s'", TU_SLUICE, plain, sluiced);
	tu_sh_ok(env, "%s clone '%s' '%s'", TU_SLUICE, plain, a2);
	free(ok_in(a2, "remote add sl '%s'", sluiced));
	free(ok_in(b, "remote add sl '%s'", sluiced));
	free(ok_in(a2, "key new ka2 --role proposer"));
	free(ok_in(b, "key new kb2 --role proposer"));
	git_ref(a2, "refs/sluice/journal", ahead);
	git_ref(b, "refs/sluice/journal", bhead);
	snprintf(lock, sizeof(lock), "%s/sluice/journal.flock", sluiced);
	/* The lock file exists once any writer took it; make sure it does for stat. */
	tu_sh_ok(NULL, "touch '%s'", lock);
	rc.lockfile = lock;

	error = push_hooked(a2, "sl", &rc, msg, sizeof(msg));
	assert_int_equal(error, 0);
	git_ref(sluiced, "refs/sluice/journal", head);
	assert_string_equal(head, ahead);
	/* B finishes after A released the lock, and loses. */
	for (int i = 0; i < 1200 && access(rc.rc, F_OK) != 0; i++)
		usleep(50000);
	{
		size_t len;
		char *out = (char *)tu_read(rc.out, &len), *code = (char *)tu_read(rc.rc, &len);
		assert_non_null(code);
		assert_int_equal(atoi(code), 4);
		assert_non_null(out);
		assert_non_null(strstr(out, "remote sl's journal moved while this push ran"));
		free(out);
		free(code);
	}
	git_ref(sluiced, "refs/sluice/journal", head);
	assert_string_equal(head, ahead);
	git_ref(b, "refs/sluice/journal", head);
	assert_string_equal(head, bhead);
	/* The remote is a sluice repository: it opens, catches up and verifies. */
	free(ok_in(sluiced, "verify"));
	{
		char *out = ok_in(sluiced, "key list");
		assert_true(lists_key(out, "ka2"));
		assert_false(lists_key(out, "kb2"));
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_remote_race__plain_remote_one_wins),
	        cmocka_unit_test(test_remote_race__sluice_remote_lock_then_cas),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
