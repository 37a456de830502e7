/*
 * tests/audit/test_tlog_journal.c - journal commits and the Merkle tree:
 * a journal written before tlog.json existed gets its frontier rebuilt once
 * by the next action; the leaf index catches up on use; each entry's
 * tlog.json and checkpoint agree with sluice audit verify's recomputation.
 */
#include "testutil.h"

#include <jansson.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *work;
static char repo[4096], keysenv[4300];
static const char *env_ops[] = {keysenv, "SLUICE_KEY=ops", NULL};

static json_t *slj(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *slj(const char *fmt, ...)
{
	char args[8192];
	json_error_t jerr;
	json_t *v;
	va_list ap;
	tu_run_result r;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	r = tu_sh(env_ops, "%s -C '%s' %s --json", TU_SLUICE, repo, args);
	if (r.status)
		fprintf(stderr, "sluice %s\nexit %d\n%s%s", args, r.status, r.out, r.err);
	assert_int_equal(r.status, 0);
	v = json_loads(r.out, 0, &jerr);
	assert_non_null(v);
	tu_run_dispose(&r);
	return v;
}

static int setup(void **state)
{
	(void)state;
	work = tu_mkdtemp("tlog-journal");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/repo", work);
	json_decref(slj("init --required-gates none"));
	json_decref(slj("key new a --role auditor"));
	json_decref(slj("key new b --role auditor"));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(work);
	free(work);
	return 0;
}

static long long jint(json_t *v, const char *k)
{
	return (long long)json_integer_value(json_object_get(v, k));
}

static void test_tlog_journal__old_journal_gets_its_tree(void **state)
{
	json_t *v, *cp;
	tu_run_result r;

	(void)state;
	/* Rewrite the journal as it was before this change: no tlog.json, no checkpoint. */
	tu_sh_ok(NULL,
	         "cd '%s' && export GIT_INDEX_FILE=\"$PWD/strip-index\" && prev= && "
	         "for c in $(git rev-list --reverse --first-parent refs/sluice/journal); do "
	         "git read-tree $c && git rm -q --cached checkpoint tlog.json && "
	         "t=$(git write-tree) && "
	         "p=${prev:+-p $prev} && "
	         "prev=$(git -c user.name=x -c user.email=x commit-tree $t $p -m old); done && "
	         "git update-ref refs/sluice/journal $prev && rm -f strip-index && "
	         "! git show refs/sluice/journal:tlog.json 2>/dev/null",
	         repo);
	/* sluice's own derived index follows the rewritten journal. */
	tu_sh_ok(env_ops, "%s -C '%s' reindex >/dev/null", TU_SLUICE, repo);
	r = tu_sh(env_ops, "%s -C '%s' audit checkpoint", TU_SLUICE, repo);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "before checkpoints"));
	tu_run_dispose(&r);
	v = slj("audit verify");
	assert_true(json_is_true(json_object_get(v, "ok")));
	assert_int_equal(jint(v, "entries"), 3);
	assert_int_equal(jint(v, "before_tlog"), 3);
	assert_int_equal(jint(v, "checked"), 0);
	json_decref(v);

	/* The next action rebuilds the frontier from the first entry. */
	json_decref(slj("key new c --role auditor"));
	cp = slj("audit checkpoint");
	assert_int_equal(jint(cp, "size"), 4);
	/* The earlier verify re-derived entries 1..3: only the new one is read again. */
	v = slj("audit verify");
	assert_true(json_is_true(json_object_get(v, "ok")));
	assert_string_equal(json_string_value(json_object_get(v, "mode")), "incremental");
	assert_int_equal(jint(json_object_get(v, "rederived"), "from"), 4);
	assert_int_equal(jint(json_object_get(v, "rederived"), "trusted"), 3);
	assert_int_equal(jint(v, "before_tlog"), 0);
	assert_int_equal(jint(v, "checked"), 1);
	assert_string_equal(json_string_value(json_object_get(v, "root")),
	                    json_string_value(json_object_get(cp, "root")));
	assert_string_equal(json_string_value(json_object_get(v, "origin")),
	                    json_string_value(json_object_get(cp, "origin")));
	json_decref(v);
	v = slj("audit verify --full");
	assert_true(json_is_true(json_object_get(v, "ok")));
	assert_string_equal(json_string_value(json_object_get(v, "mode")), "full");
	assert_int_equal(jint(v, "before_tlog"), 3);
	assert_int_equal(jint(v, "checked"), 1);
	assert_string_equal(json_string_value(json_object_get(v, "root")),
	                    json_string_value(json_object_get(cp, "root")));
	json_decref(v);
	json_decref(cp);

	/* The index is built on use and catches up with later entries. */
	v = slj("audit prove --entry 1");
	assert_int_equal(jint(v, "size"), 4);
	assert_int_equal(json_array_size(json_object_get(v, "hashes")), 2);
	json_decref(v);
	json_decref(slj("key new d --role auditor"));
	v = slj("audit prove --entry 5");
	assert_int_equal(jint(v, "size"), 5);
	assert_int_equal(jint(v, "index"), 4);
	json_decref(v);
	v = slj("audit verify --full");
	assert_true(json_is_true(json_object_get(v, "ok")));
	assert_int_equal(jint(json_object_get(v, "index"), "checked"), 5);
	json_decref(v);
	/* Out of range. */
	r = tu_sh(env_ops, "%s -C '%s' audit prove --entry 6", TU_SLUICE, repo);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "no entry 6"));
	tu_run_dispose(&r);
	r = tu_sh(env_ops, "%s -C '%s' audit prove --entry 2 --to 3", TU_SLUICE, repo);
	assert_int_equal(r.status, 3);
	tu_run_dispose(&r);
}

static void test_tlog_journal__export_is_the_leaves(void **state)
{
	tu_run_result r;
	json_t *cp, *v;
	char cmd[8192];

	(void)state;
	/* A hash written here in Python from the exported lines gives the checkpoint's root. */
	cp = slj("audit checkpoint");
	snprintf(cmd, sizeof(cmd),
	         "%s -C '%s' audit export | /usr/bin/python3 -c '\n"
	         "import sys,hashlib,base64\n"
	         "L=[hashlib.sha256(b\"\\x00\"+l.rstrip(b\"\\n\")).digest() for l in "
	         "sys.stdin.buffer]\n"
	         "def mth(a):\n"
	         "  if len(a)==1: return a[0]\n"
	         "  k=1\n"
	         "  while k*2<len(a): k*=2\n"
	         "  return hashlib.sha256(b\"\\x01\"+mth(a[:k])+mth(a[k:])).digest()\n"
	         "print(base64.b64encode(mth(L)).decode())\n"
	         "print(\"sluice.journal/\"+L[0].hex()[:32])'",
	         TU_SLUICE, repo);
	r = tu_sh(env_ops, "%s", cmd);
	assert_int_equal(r.status, 0);
	snprintf(cmd, sizeof(cmd), "%s\n%s\n", json_string_value(json_object_get(cp, "root")),
	         json_string_value(json_object_get(cp, "origin")));
	assert_string_equal(r.out, cmd);
	tu_run_dispose(&r);
	/* The checkpoint's body is origin, size, root. */
	snprintf(cmd, sizeof(cmd), "%s\n%lld\n%s\n\n\xe2\x80\x94 root ",
	         json_string_value(json_object_get(cp, "origin")), jint(cp, "size"),
	         json_string_value(json_object_get(cp, "root")));
	assert_memory_equal(json_string_value(json_object_get(cp, "checkpoint")), cmd, strlen(cmd));
	json_decref(cp);
	v = slj("audit export --from 2 --to 3");
	assert_int_equal(json_array_size(v), 2);
	assert_non_null(strstr(json_string_value(json_array_get(v, 0)), "\"seq\":2,\"state\""));
	json_decref(v);
}

/* Overwrite leaf index of the derived tlog index with zeros, as a damaged or forged index. */
static void tamper_leaf(uint64_t index)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	unsigned char key[8], zero[32] = {0};
	MDB_val k = {8, key}, v = {32, zero};
	char dir[4200];

	snprintf(dir, sizeof(dir), "%s/sluice/tlog-index", repo);
	for (int i = 7; i >= 0; i--, index >>= 8)
		key[i] = (unsigned char)index;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 2), 0);
	assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 32), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "leaves", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static json_t *verify_fails(const char *expect)
{
	tu_run_result r = tu_sh(env_ops, "%s -C '%s' audit verify --json", TU_SLUICE, repo);
	json_t *v;

	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, expect));
	v = json_loads(r.out, 0, NULL);
	assert_non_null(v);
	tu_run_dispose(&r);
	return v;
}

/*
 * The default verify re-derives what no verify re-derived before (and the
 * newest entry), trusting the index's leaves before that only while they
 * still give the root that verify recorded.
 */
static void test_tlog_journal__verify_is_incremental(void **state)
{
	json_t *v, *rd;
	long long n;

	(void)state;
	/* A full pass records what it matched... */
	v = slj("audit verify --full --threads 2");
	assert_true(json_is_true(json_object_get(v, "ok")));
	n = jint(v, "entries");
	json_decref(v);
	/* ...so the next reads only the newest entry. */
	v = slj("audit verify");
	rd = json_object_get(v, "rederived");
	assert_string_equal(json_string_value(json_object_get(v, "mode")), "incremental");
	assert_int_equal(jint(rd, "count"), 1);
	assert_int_equal(jint(rd, "from"), n);
	assert_int_equal(jint(rd, "trusted"), n - 1);
	assert_int_equal(jint(v, "signatures"), 1);
	json_decref(v);
	/* New entries are re-derived, and from then on trusted. */
	json_decref(slj("key new e --role auditor"));
	json_decref(slj("key new f --role auditor"));
	v = slj("audit verify");
	rd = json_object_get(v, "rederived");
	assert_string_equal(json_string_value(json_object_get(v, "mode")), "incremental");
	assert_int_equal(jint(rd, "from"), n + 1);
	assert_int_equal(jint(rd, "count"), 2);
	assert_int_equal(jint(v, "checked"), 2);
	assert_int_equal(jint(json_object_get(v, "index"), "checked"), 2);
	json_decref(v);
	n += 2;

	/* A new entry whose indexed leaf is not what the journal gives: named. */
	json_decref(slj("key new g --role auditor"));
	json_decref(slj("audit prove --entry 1")); /* the index takes the new leaf */
	tamper_leaf((uint64_t)n);
	v = verify_fails("tlog index leaf");
	assert_string_equal(json_string_value(json_object_get(v, "mode")), "incremental");
	assert_int_equal(jint(json_object_get(v, "rederived"), "from"), n + 1);
	json_decref(v);
	n++;

	/* A trusted leaf changed since: its root is not the one recorded, so all is read. */
	json_decref(slj("audit reindex"));
	json_decref(slj("audit verify"));
	tamper_leaf(1);
	v = verify_fails("tlog index leaf 1 differs from entry");
	assert_string_equal(json_string_value(json_object_get(v, "mode")), "full");
	assert_int_equal(jint(json_object_get(v, "rederived"), "count"), n);
	json_decref(v);
	/* Rebuilt, verified in full once, then incremental again. */
	json_decref(slj("audit reindex"));
	v = slj("audit verify");
	assert_string_equal(json_string_value(json_object_get(v, "mode")), "full");
	assert_true(json_is_true(json_object_get(json_object_get(v, "index"), "rebuilt")));
	json_decref(v);
	v = slj("audit verify");
	assert_string_equal(json_string_value(json_object_get(v, "mode")), "incremental");
	assert_int_equal(jint(json_object_get(v, "rederived"), "count"), 1);
	json_decref(v);
}

/* A tlog.json that does not match the recomputed tree is a problem for audit verify. */
static void test_tlog_journal__verify_reports_a_forged_frontier(void **state)
{
	tu_run_result r;

	(void)state;
	tu_sh_ok(NULL,
	         "cd '%s' && export GIT_INDEX_FILE=\"$PWD/forge-index\" && "
	         "git read-tree refs/sluice/journal && "
	         "b=$(git show refs/sluice/journal~1:tlog.json | git hash-object -w --stdin) && "
	         "git update-index --cacheinfo 100644,$b,tlog.json && t=$(git write-tree) && "
	         "c=$(git -c user.name=x -c user.email=x commit-tree $t -p "
	         "refs/sluice/journal^ -m forged) && git update-ref refs/sluice/journal $c && "
	         "rm -f forge-index",
	         repo);
	r = tu_sh(env_ops, "%s -C '%s' audit verify", TU_SLUICE, repo);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "tlog.json does not match the tree recomputed"));
	tu_run_dispose(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_tlog_journal__old_journal_gets_its_tree),
	        cmocka_unit_test(test_tlog_journal__export_is_the_leaves),
	        cmocka_unit_test(test_tlog_journal__verify_is_incremental),
	        cmocka_unit_test(test_tlog_journal__verify_reports_a_forged_frontier),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
