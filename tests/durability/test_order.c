/*
 * tests/durability/test_order.c - the order of writes, fsyncs and renames
 * that makes an acknowledged action survive a power cut, read from the
 * shim's log of the real system calls (sluice's, libgit2's and LMDB's):
 * chunk pack, then its directory, then the LMDB commit, then the git
 * objects (bytes and directory fsynced; a journal entry's in one round with
 * the journal ref's lock file), then the lock renamed over the ref and its
 * directory fsynced. Derived
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

/* An unnamed staged object file: REPO/objects/xx/#INODE. */
static int is_staged_unnamed(const char *path)
{
	const char *o = strstr(path, "/objects/");

	return o && strlen(o) > 12 && o[11] == '/' && o[12] == '#';
}

/*
 * A loose object's file before it has its name: libgit2's temporary
 * (objects/tmp_object_git2_*), or libsluice's staged journal objects, an
 * unnamed file (objects/xx/#INODE, as the shim logs O_TMPFILE files) or
 * where there is none a temporary (objects/xx/tmp_object_sluice_*).
 */
static int is_object_tmp(const char *path)
{
	return strstr(path, "/objects/tmp_object_git2_") || strstr(path, "/tmp_object_sluice_") ||
	       is_staged_unnamed(path);
}

/* Whether call i writes to path (write, pwrite, writev). */
static int writes_to(const logline *l, size_t i, const char *path)
{
	return strstr(l[i].op, "write") && !strcmp(l[i].a, path);
}

/*
 * Every loose object named before `before` (linked, or renamed over a
 * corrupt leftover, from a temporary file) has its bytes fsynced after
 * their last write and its directory fsynced after the name was made, both
 * before `before`. libgit2 with GIT_OPT_ENABLE_FSYNC_GITDIR fsyncs the
 * bytes before the link; core/stage.c names a journal entry's objects
 * first and fsyncs bytes, names and the journal ref's lock file in one
 * round - either order is durable, as long as the round ends before the
 * journal ref names the objects.
 */
static void objects_durable_before(const logline *l, size_t n, long before)
{
	size_t i, objects = 0;
	long j, lastw;

	for (i = 0; i < (size_t)before; i++) {
		const char *slash;
		char dir[4096];
		int fsynced = 0, dir_synced = 0;

		if ((strcmp(l[i].op, "link") && strcmp(l[i].op, "rename")) ||
		    !is_object_tmp(l[i].a))
			continue;
		objects++;
		lastw = -1;
		for (j = 0; j < (long)i; j++)
			if (writes_to(l, (size_t)j, l[i].a))
				lastw = j;
		assert_true(lastw >= 0);
		for (j = lastw + 1; j < before; j++)
			if (!strcmp(l[j].op, "fsync") &&
			    (!strcmp(l[j].a, l[i].a) || !strcmp(l[j].a, l[i].b)))
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
 * Every object of the journal entry (its commit, tree and blobs) was
 * fsynced before `before`: by its name, or by the temporary file that got
 * the name. A document the entry leaves as the entry before it had it (an
 * unchanged keys.json) was durable before that entry's commit point, and
 * the entry names its blob again without writing or fsyncing it
 * (core/journal.c, sluice_jstate's docs): it must not appear in the log.
 */
static void entry_durable_before(dh_fixture *f, const char *entry, const logline *l, size_t n,
                                 long before)
{
	tu_run_result r = tu_sh(NULL,
	                        "cd '%s' && { echo %s; git rev-parse %s^{tree}; "
	                        "git ls-tree -r %s | cut -d' ' -f3 | cut -f1; }",
	                        f->repo, entry, entry, entry);
	/* The documents the entry leaves as the entry before it had them. */
	tu_run_result parent = tu_sh(NULL,
	                             "cd '%s' && for d in keys.json config.json trust.json; do "
	                             "b=$(git rev-parse -q --verify %s:$d) && "
	                             "test \"$b\" = \"$(git rev-parse -q --verify %s^:$d)\" && "
	                             "echo $b; done; true",
	                             f->repo, entry, entry);
	char *line, *save = NULL;
	size_t count = 0, reused = 0;

	assert_int_equal(r.status, 0);
	assert_int_equal(parent.status, 0);
	for (line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char suffix[64];
		long i, named = -1, synced = -1, touched = -1;

		if (strlen(line) != 40)
			continue;
		snprintf(suffix, sizeof(suffix), "objects/%.2s/%s", line, line + 2);
		for (i = 0; i < before; i++) {
			if ((!strcmp(l[i].op, "link") || !strcmp(l[i].op, "rename")) &&
			    ends_with(l[i].b, suffix))
				named = i;
			if (!strcmp(l[i].op, "fsync") &&
			    (ends_with(l[i].a, suffix) ||
			     (named >= 0 && !strcmp(l[i].a, l[named].a))))
				synced = i;
			if (ends_with(l[i].a, suffix) || ends_with(l[i].b, suffix))
				touched = i;
		}
		if (strstr(parent.out, line)) {
			if (touched >= 0)
				fprintf(stderr,
				        "journal document %s, unchanged from the entry "
				        "before: written or fsynced again\n",
				        line);
			assert_int_equal(touched, -1);
			reused++;
			continue;
		}
		if (synced < 0)
			fprintf(stderr, "journal object %s: not fsynced before the commit point\n",
			        line);
		assert_true(synced >= 0);
		count++;
	}
	/* The commit, the tree, record.json, channels.json, tlog.json and checkpoint. */
	assert_true(count >= 6);
	/* At least keys.json, unchanged by every action these tests log. */
	assert_true(reused >= 1);
	tu_run_dispose(&r);
	tu_run_dispose(&parent);
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
	 * Two rounds of flushes, as for a bare ref update: the lock file is
	 * written before the staged objects are fsynced, and its own fsync
	 * shares their round with their directories and objects/ (core/stage.c,
	 * core/journal.c); then the rename and refs/sluice/.
	 */
	{
		/*
		 * The round's first fsync: the first of an object file after the
		 * first staged object got its name (the shim logs an unnamed
		 * file as objects/xx/#INODE even after it is linked).
		 */
		long first = -1, linked = -1;
		for (i = 0; i < ren && linked < 0; i++)
			if (!strcmp(l[i].op, "link") &&
			    (strstr(l[i].a, "/tmp_object_sluice_") || is_staged_unnamed(l[i].a)))
				linked = i;
		assert_true(linked >= 0);
		for (i = linked; i < ren && first < 0; i++)
			if (!strcmp(l[i].op, "fsync") && strstr(l[i].a, "/objects/"))
				first = i;
		assert_true(first >= 0);
		assert_true(lockw < first);
		/* Every name made before the round, so nothing waits for a second one. */
		for (i = first; i < ren; i++)
			assert_false((!strcmp(l[i].op, "link") || !strcmp(l[i].op, "rename")) &&
			             strstr(l[i].b, "/objects/"));
	}
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
	entry_durable_before(fx, entry, l, n, ren);
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
	entry_durable_before(fx, entry, l, n, ren);
	{
		/*
		 * The staged objects come from unnamed files; where the shim
		 * refused O_TMPFILE, from temporary names, each removed after
		 * the round.
		 */
		int notmp = getenv("SLUICE_SHIM_NOTMPFILE") != NULL ||
		            getenv("SLUICE_SHIM_NOPROC") != NULL;
		size_t unnamed = 0, named = 0, removed = 0;

		for (size_t i = 0; i < n; i++) {
			if (!strcmp(l[i].op, "link") && is_staged_unnamed(l[i].a))
				unnamed++;
			if (!strcmp(l[i].op, "link") && strstr(l[i].a, "/tmp_object_sluice_"))
				named++;
			if (!strcmp(l[i].op, "unlink") && strstr(l[i].a, "/tmp_object_sluice_"))
				removed++;
		}
		/* record.json, channels.json, tlog.json, checkpoint, the tree and the commit. */
		assert_true((notmp ? named : unnamed) >= 6);
		assert_int_equal(notmp ? unnamed : named, 0);
		assert_int_equal(removed, named);
	}
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

/* On a file system without unnamed files (the shim refuses O_TMPFILE): temporary names. */
static void test_order__rollback_without_tmpfile(void **state)
{
	(void)state;
	setenv("SLUICE_SHIM_NOTMPFILE", "1", 1);
	order_of_move("rollback prod --reason order-test --key alice", "rollback-notmpfile", 0);
	unsetenv("SLUICE_SHIM_NOTMPFILE");
}

/*
 * Without /proc to link an unnamed file from (the shim hides /proc/self/fd):
 * the first object's file is dropped, and it and the rest come from
 * temporary names.
 */
static void test_order__rollback_without_proc(void **state)
{
	(void)state;
	setenv("SLUICE_SHIM_NOPROC", "1", 1);
	order_of_move("rollback prod --reason order-test --key alice", "rollback-noproc", 0);
	unsetenv("SLUICE_SHIM_NOPROC");
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
/*
 * A power cut inside the one round of core/stage.c can leave a loose object
 * whose name reached the disk and whose bytes did not. Nothing refers to
 * it; but libgit2 skips writing an object that exists, so the next entry
 * that holds the same bytes (here a channels.json, which has no time in
 * it) must not name the leftover. The leftover is planted as an empty file
 * and as bytes that are not zlib, each in a fresh copy: the promote
 * succeeds, its entry's channels.json reads back whole, and git fsck and
 * sluice verify pass; verify noted the leftover before, and not after.
 */
static void test_order__corrupt_leftover_is_written_again(void **state)
{
	static const char *const leftovers[] = {"", "not a zlib stream"};
	char args[256], blob[41], want[4096], path[4300];
	tu_run_result r;

	(void)state;
	snprintf(args, sizeof(args), "promote %s --channel prod --key alice", fx->v[2]);
	dh_fresh(fx, "leftover-probe");
	dh_sl_ok(fx, args);
	rev_parse(fx, blob, "refs/sluice/journal:channels.json");
	r = tu_sh(NULL, "git -C '%s' cat-file blob %s", fx->repo, blob);
	assert_int_equal(r.status, 0);
	snprintf(want, sizeof(want), "%s", r.out);
	tu_run_dispose(&r);
	/* New with this promote: the fixture holds no such object. */
	r = tu_sh(NULL, "git -C '%s' cat-file -e %s", fx->pristine, blob);
	assert_int_not_equal(r.status, 0);
	tu_run_dispose(&r);
	for (size_t t = 0; t < sizeof(leftovers) / sizeof(*leftovers); t++) {
		char got[41];

		dh_fresh(fx, t ? "leftover-garbage" : "leftover-empty");
		snprintf(path, sizeof(path), "%s/objects/%.2s/%s", fx->repo, blob, blob + 2);
		tu_sh_ok(NULL,
		         "mkdir -p \"$(dirname '%s')\" && printf '%s' > '%s' && chmod 444 '%s'",
		         path, leftovers[t], path, path);
		/* verify names the leftover in a note, and still passes. */
		r = dh_sl(fx, "verify --json");
		assert_int_equal(r.status, 0);
		assert_non_null(strstr(r.out, blob + 2));
		assert_non_null(strstr(r.out, t ? "not a zlib stream" : "(empty)"));
		tu_run_dispose(&r);
		dh_sl_ok(fx, args);
		rev_parse(fx, got, "refs/sluice/journal:channels.json");
		assert_string_equal(got, blob);
		r = tu_sh(NULL, "git -C '%s' cat-file blob %s", fx->repo, blob);
		assert_int_equal(r.status, 0);
		assert_string_equal(r.out, want);
		tu_run_dispose(&r);
		r = tu_sh(NULL, "git -C '%s' fsck --full --no-dangling 2>&1", fx->repo);
		if (r.status != 0)
			fprintf(stderr, "git fsck: %s\n", r.out);
		assert_int_equal(r.status, 0);
		tu_run_dispose(&r);
		r = dh_sl(fx, "verify --json");
		assert_int_equal(r.status, 0);
		assert_null(strstr(r.out, "without its bytes"));
		tu_run_dispose(&r);
	}
}

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
	        cmocka_unit_test(test_order__rollback_without_tmpfile),
	        cmocka_unit_test(test_order__rollback_without_proc),
	        cmocka_unit_test(test_order__corrupt_leftover_is_written_again),
	        cmocka_unit_test(test_order__index_ahead_of_journal_is_rebuilt),
	        cmocka_unit_test(test_order__shim_sees_libgit2_and_lmdb),
	};

	sluice_global_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
