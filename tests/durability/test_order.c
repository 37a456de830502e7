/*
 * tests/durability/test_order.c - the order of writes, fsyncs and renames
 * that makes an acknowledged action survive a power cut, read from the
 * shim's log of the real system calls (sluice's, libgit2's and LMDB's):
 * chunk pack, then its directory, then the LMDB commit, then the git
 * objects (each fsynced, then its directory), then the journal ref's lock
 * file fsynced, renamed over the ref and its directory fsynced. Derived
 * state comes only after (mirror refs) or in the next command that reads
 * it (the journal index).
 */
#include "harness.h"

#include <sys/stat.h>

typedef struct {
	char op[16];
	char a[4096];
	char b[4096];
} logline;

static dh_fixture *fx;

static int group_setup(void **state)
{
	(void)state;
	fx = dh_setup("order");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dh_teardown(fx);
	return 0;
}

/* Run sluice under the shim's log; returns the calls, *n of them, and stdout. */
static logline *logged_run(dh_fixture *f, const char *args, size_t *n, char **out)
{
	char log[4200], setting[4300];
	logline *lines = NULL;
	tu_run_result r;
	size_t cap = 0;
	FILE *fp;
	char buf[9000];

	/* The journal index caught up first (an action leaves it to the next reader). */
	dh_sl_ok(f, "status");
	snprintf(log, sizeof(log), "%s/order.log", f->work);
	unlink(log);
	snprintf(setting, sizeof(setting), "SLUICE_SHIM_LOG=%s", log);
	r = tu_sh(dh_shim_env(f, setting), "%s -C '%s' %s", TU_SLUICE, f->repo, args);
	if (r.status != 0)
		fprintf(stderr, "%s: %s%s", args, r.out, r.err);
	assert_int_equal(r.status, 0);
	*out = r.out;
	r.out = NULL;
	tu_run_dispose(&r);
	assert_non_null(fp = fopen(log, "r"));
	*n = 0;
	while (fgets(buf, sizeof(buf), fp)) {
		logline *l;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			assert_non_null(lines = realloc(lines, cap * sizeof(*lines)));
		}
		l = &lines[(*n)++];
		l->a[0] = l->b[0] = '\0';
		assert_true(sscanf(buf, "%*s %15s %4095s %4095s", l->op, l->a, l->b) >= 2);
	}
	fclose(fp);
	assert_true(*n > 0);
	return lines;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* Index of the first (or, with last, the final) call with this op and path suffix; -1 if none. */
static long find(const logline *l, size_t n, const char *op, const char *suffix, int last)
{
	long found = -1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(l[i].op, op) || !ends_with(l[i].a, suffix))
			continue;
		found = (long)i;
		if (!last)
			break;
	}
	return found;
}

/* The call that gave a loose object its name (link, or rename where link is not used). */
static long object_named(const logline *l, size_t n, const char *id)
{
	char suffix[64];
	size_t i;

	snprintf(suffix, sizeof(suffix), "objects/%.2s/%s", id, id + 2);
	for (i = 0; i < n; i++)
		if ((!strcmp(l[i].op, "link") || !strcmp(l[i].op, "rename")) &&
		    ends_with(l[i].b, suffix))
			return (long)i;
	return -1;
}

/*
 * A loose object's temporary file: libgit2's (objects/tmp_object_git2_*)
 * or libsluice's staged journal objects (objects/xx/tmp_object_sluice_*).
 */
static int is_object_tmp(const char *path)
{
	return strstr(path, "/objects/tmp_object_git2_") || strstr(path, "/tmp_object_sluice_");
}

/*
 * libgit2 with GIT_OPT_ENABLE_FSYNC_GITDIR (or core/stage.c for a journal
 * entry's objects): every loose object is written
 * to a temporary file, fsynced, linked to its name, and its directory is
 * fsynced — all before `before`.
 */
static void objects_durable_before(const logline *l, size_t n, long before)
{
	size_t i, objects = 0;
	long j;

	for (i = 0; i < (size_t)before; i++) {
		const char *slash;
		char dir[4096];
		int fsynced = 0, dir_synced = 0;

		if (strcmp(l[i].op, "link") || !is_object_tmp(l[i].a))
			continue;
		objects++;
		for (j = 0; j < (long)i; j++)
			if (!strcmp(l[j].op, "fsync") && !strcmp(l[j].a, l[i].a))
				fsynced = 1;
		slash = strrchr(l[i].b, '/');
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - l[i].b), l[i].b);
		for (j = (long)i + 1; j < before; j++)
			if (!strcmp(l[j].op, "fsync") && !strcmp(l[j].a, dir))
				dir_synced = 1;
		if (!fsynced || !dir_synced)
			fprintf(stderr, "object %s: fsynced %d, directory fsynced %d\n", l[i].b,
			        fsynced, dir_synced);
		assert_true(fsynced);
		assert_true(dir_synced);
	}
	assert_true(objects > 0);
}

/*
 * The journal ref moves last: lock file written, fsynced (with the
 * objects' directories), renamed, directory fsynced.
 */
static long journal_commit_point(const logline *l, size_t n)
{
	long lockw = find(l, n, "write", "/refs/sluice/journal.lock", 1);
	long lockf = find(l, n, "fsync", "/refs/sluice/journal.lock", 1);
	long ren = find(l, n, "rename", "/refs/sluice/journal.lock", 1);
	long dirf = -1, i;

	for (i = ren + 1; ren >= 0 && i < (long)n && dirf < 0; i++)
		if (!strcmp(l[i].op, "fsync") && ends_with(l[i].a, "/refs/sluice"))
			dirf = i;
	assert_true(lockw >= 0);
	assert_true(lockw < lockf);
	assert_true(lockf < ren);
	assert_true(ends_with(l[ren].b, "/refs/sluice/journal"));
	assert_true(ren < dirf);
	/*
	 * Three rounds of flushes, not four: the lock file is written before
	 * the staged objects' directories (and objects/) are fsynced, so its
	 * own fsync can share their round (core/stage.c, core/journal.c).
	 */
	assert_true(find(l, n, "fsync", "/objects", 1) > lockw);
	assert_true(find(l, n, "fsync", "/objects", 1) < ren);
	/*
	 * The derived journal index is not written by the action at all (it
	 * was caught up before the run, logged_run): the next command that
	 * reads it indexes this entry (core/journal.c, transact).
	 */
	assert_int_equal(find(l, n, "pwrite", "/journal-index/data.mdb", 0), -1);
	assert_int_equal(find(l, n, "writev", "/journal-index/data.mdb", 0), -1);
	assert_int_equal(find(l, n, "fdatasync", "/journal-index/data.mdb", 0), -1);
	return ren;
}

static void rev_parse(dh_fixture *f, char out[41], const char *what)
{
	tu_run_result r = tu_sh(NULL, "git -C '%s' rev-parse '%s'", f->repo, what);

	assert_int_equal(r.status, 0);
	memcpy(out, r.out, 40);
	out[40] = '\0';
	tu_run_dispose(&r);
}

static void test_order__propose_base(void **state)
{
	char args[8192], version[41], tree[41], entry[41], spec[64], pack[4096];
	long pack_sync, packdir_sync, lmdb_sync, lmdb_meta, vcommit, vtree, jcommit, ren, i;
	logline *l;
	size_t n;
	char *out;

	(void)state;
	dh_fresh(fx, "propose");
	snprintf(args, sizeof(args), "propose base '%s/base2' --onto %s --key alice -m base2",
	         fx->in, fx->v[3]);
	l = logged_run(fx, args, &n, &out);
	dh_last_line(version, out);
	free(out);
	snprintf(spec, sizeof(spec), "%s^{tree}", version);
	rev_parse(fx, tree, spec);
	rev_parse(fx, entry, "refs/sluice/journal");

	/* (1) The chunk pack: written, then fsynced, then its directory. */
	pack_sync = -1;
	for (i = 0; i < (long)n && pack_sync < 0; i++)
		if (!strcmp(l[i].op, "fsync") && strstr(l[i].a, "/sluice/packs/pack-"))
			pack_sync = i;
	assert_true(pack_sync >= 0);
	snprintf(pack, sizeof(pack), "%s", l[pack_sync].a);
	for (i = pack_sync + 1; i < (long)n; i++)
		assert_false(strstr(l[i].op, "write") && !strcmp(l[i].a, pack));
	packdir_sync = find(l, n, "fsync", "/sluice/packs", 0);
	assert_true(pack_sync < packdir_sync);
	/* (2) Then the LMDB commit: data pages fdatasynced, then the meta page. */
	lmdb_sync = find(l, n, "fdatasync", "/sluice/index/data.mdb", 0);
	assert_true(packdir_sync < lmdb_sync);
	lmdb_meta = -1;
	for (i = lmdb_sync + 1; i < (long)n && lmdb_meta < 0; i++)
		if (!strcmp(l[i].op, "pwrite") && ends_with(l[i].a, "/sluice/index/data.mdb"))
			lmdb_meta = i;
	assert_true(lmdb_sync < lmdb_meta);
	for (i = 0; i < lmdb_sync; i++)
		assert_false(ends_with(l[i].a, "/sluice/index/data.mdb") && i < packdir_sync);
	/* (3) Then the version's tree and commit, and the journal entry. */
	vtree = object_named(l, n, tree);
	vcommit = object_named(l, n, version);
	jcommit = object_named(l, n, entry);
	assert_true(lmdb_meta < vtree);
	assert_true(vtree < vcommit);
	assert_true(vcommit < jcommit);
	/* (4) Last, the journal ref; every object durable before it. */
	ren = journal_commit_point(l, n);
	assert_true(jcommit < ren);
	objects_durable_before(l, n, ren);
	fprintf(stderr,
	        "propose base: %zu calls; pack fsync #%ld, packs/ fsync #%ld, LMDB fdatasync "
	        "#%ld and meta #%ld, tree #%ld, version #%ld, journal entry #%ld, ref rename "
	        "#%ld\n",
	        n, pack_sync + 1, packdir_sync + 1, lmdb_sync + 1, lmdb_meta + 1, vtree + 1,
	        vcommit + 1, jcommit + 1, ren + 1);
	free(l);
}

/*
 * aio: 0 the default (a command's first batches of fsyncs run on threads,
 * core/io.c), 1 AIO from the first batch (SLUICE_FSYNC_BATCH=aio), 2 the
 * same with io_setup refused by the shim, so the threads take over.
 */
static void order_of_move(const char *args, const char *name, int aio)
{
	char entry[41];
	long jcommit, ren;
	logline *l;
	size_t n;
	char *out;

	dh_fresh(fx, name);
	if (aio)
		setenv("SLUICE_FSYNC_BATCH", "aio", 1);
	if (aio == 2)
		setenv("SLUICE_SHIM_NOAIO", "1", 1);
	l = logged_run(fx, args, &n, &out);
	unsetenv("SLUICE_FSYNC_BATCH");
	unsetenv("SLUICE_SHIM_NOAIO");
	free(out);
	rev_parse(fx, entry, "refs/sluice/journal");
	jcommit = object_named(l, n, entry);
	ren = journal_commit_point(l, n);
	assert_true(jcommit >= 0);
	assert_true(jcommit < ren);
	objects_durable_before(l, n, ren);
	/* A move touches no chunk pack and no chunk index. */
	assert_int_equal(find(l, n, "fsync", "/sluice/packs", 0), -1);
	assert_int_equal(find(l, n, "fdatasync", "/sluice/index/data.mdb", 0), -1);
	/* The shim logs the io_setup it refused (and only that one). */
	assert_int_equal(find(l, n, "io_setup", "ENOSYS", 0) >= 0, aio == 2);
	/* And each batch it submitted: only where AIO was asked for and given. */
	assert_int_equal(find(l, n, "io_submit", "batch", 0) >= 0, aio == 1);
	free(l);
}

static void test_order__promote(void **state)
{
	char args[256];

	(void)state;
	snprintf(args, sizeof(args), "promote %s --channel prod --key alice", fx->v[2]);
	order_of_move(args, "promote", 0);
}

/* The rollback's batches of fsyncs through Linux AIO, as a long-lived process's are. */
static void test_order__rollback(void **state)
{
	(void)state;
	order_of_move("rollback prod --reason order-test --key alice", "rollback", 1);
}

/*
 * Where Linux AIO is not available (core/io.c falls back to a thread per
 * fsync) the order is the same.
 */
static void test_order__rollback_without_aio(void **state)
{
	(void)state;
	order_of_move("rollback prod --reason order-test --key alice", "rollback-noaio", 2);
}

/* A command's first batches run on threads (core/io.c, AIO_FROM_BATCH). */
static void test_order__rollback_on_threads(void **state)
{
	(void)state;
	order_of_move("rollback prod --reason order-test --key alice", "rollback-threads", 0);
}

/*
 * An index ahead of the journal: a command that indexed an entry whose
 * rename had not reached the disk yet (written by another command a power
 * cut then interrupted) leaves the index one entry ahead of the journal
 * the machine comes back with. Made here by moving the journal ref back
 * after a rollback and its index sync: the next command rebuilds the
 * index, and nothing the lost entry decided (prod's move back, v1
 * withdrawn from it) is left in what sluice answers.
 */
static void test_order__index_ahead_of_journal_is_rebuilt(void **state)
{
	char before[41], args[256];
	dh_state st;
	tu_run_result r;
	json_t *v, *c, *prod = NULL;
	size_t i;

	(void)state;
	dh_fresh(fx, "ahead");
	rev_parse(fx, before, "refs/sluice/journal");
	dh_sl_ok(fx, "rollback prod --reason lost-in-a-power-cut --key alice");
	/*
	 * The rollback left the index behind (the next reader's to catch
	 * up): verify compares it with its replay at the index's own head,
	 * says nothing of the lag, and does not write it.
	 */
	{
		struct stat a, b;
		char mdb[4200];
		snprintf(mdb, sizeof(mdb), "%s/sluice/journal-index/data.mdb", fx->repo);
		assert_int_equal(stat(mdb, &a), 0);
		r = dh_sl(fx, "verify --json");
		assert_int_equal(r.status, 0);
		assert_null(strstr(r.out, "journal index"));
		tu_run_dispose(&r);
		assert_int_equal(stat(mdb, &b), 0);
		assert_true(a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
		            a.st_mtim.tv_nsec == b.st_mtim.tv_nsec && a.st_size == b.st_size);
	}
	dh_read_state(fx, &st);
	assert_string_equal(st.head, fx->v[0]);
	tu_sh_ok(NULL, "git -C '%s' update-ref refs/sluice/journal %s", fx->repo, before);
	/* verify says so of an index ahead of the journal, and passes. */
	r = dh_sl(fx, "verify --json");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "is not an entry of the journal"));
	tu_run_dispose(&r);

	dh_read_state(fx, &st);
	assert_string_equal(st.journal, before);
	assert_string_equal(st.head, fx->v[1]);
	r = dh_sl(fx, "status --json");
	assert_int_equal(r.status, 0);
	v = dh_json(r.out, "status --json");
	json_array_foreach(json_object_get(v, "channels"), i, c)
	{
		if (!strcmp(json_string_value(json_object_get(c, "name")), "prod"))
			prod = c;
	}
	assert_non_null(prod);
	assert_int_equal(json_array_size(json_object_get(prod, "withdrawn")), 0);
	json_decref(v);
	tu_run_dispose(&r);
	dh_sl_ok(fx, "verify");
	/* v1 is prod's head again, not withdrawn: a child of it promotes as usual. */
	snprintf(args, sizeof(args), "promote %s --channel prod --key alice", fx->v[2]);
	dh_sl_ok(fx, args);
}

/* The shim itself: a logged run names every kind of call it interposes. */
static void test_order__shim_sees_libgit2_and_lmdb(void **state)
{
	char args[8192];
	logline *l;
	size_t n;
	char *out;

	(void)state;
	dh_fresh(fx, "kinds");
	snprintf(args, sizeof(args), "propose base '%s/base2' --onto %s --key alice -m base2",
	         fx->in, fx->v[3]);
	l = logged_run(fx, args, &n, &out);
	free(out);
	/* libsluice: pwritev of the pack; LMDB: writev/pwrite/fdatasync; libgit2: write/link. */
	assert_true(find(l, n, "pwritev", ".pack", 0) >= 0);
	assert_true(find(l, n, "fdatasync", "/data.mdb", 0) >= 0);
	assert_true(find(l, n, "pwrite", "/data.mdb", 0) >= 0);
	assert_true(find(l, n, "link", "", 0) >= 0);
	assert_true(find(l, n, "unlink", "", 0) >= 0);
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_order__propose_base),
	        cmocka_unit_test(test_order__promote),
	        cmocka_unit_test(test_order__rollback),
	        cmocka_unit_test(test_order__rollback_without_aio),
	        cmocka_unit_test(test_order__rollback_on_threads),
	        cmocka_unit_test(test_order__index_ahead_of_journal_is_rebuilt),
	        cmocka_unit_test(test_order__shim_sees_libgit2_and_lmdb),
	};

	sluice_global_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
