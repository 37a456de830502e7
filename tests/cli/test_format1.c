/*
 * tests/cli/test_format1.c - a journal written with channels.json format 1
 * (every channel's held and withdrawn lists in every entry; the sluice of
 * commit 8998edb and before) opened by this sluice, which writes format 2
 * and decides moves on what the move records say (core/channel.c).
 *
 * The fixture, tests/resources/journal-format1/repo.tar.gz, was made by
 * make.sh beside it with that older sluice, which also saved what it
 * answered for status and history. Here: verify passes (and with it the
 * check that each format-1 entry's lists match the replayed moves), status
 * and history answer as the older sluice did, the moves it allowed and
 * refused are allowed and refused alike, and the entries written now are
 * format 2, without the lists.
 */
#include "repo.h"
#include "testutil.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *work, dir[4200], repo[4300];
static char keysenv[4400];
static const char *env_ops[] = {keysenv, "SLUICE_KEY=ops", NULL};
static char base[41], a1[41], a2[41], a3[41];

static int setup(void **state)
{
	char path[4400], *text, *line;
	size_t len;
	(void)state;

	work = tu_mkdtemp("format1");
	snprintf(dir, sizeof(dir), "%s/f1", work);
	snprintf(repo, sizeof(repo), "%s/repo", dir);
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", dir);
	tu_sh_ok(NULL, "tar -C '%s' -xzf '%s/journal-format1/repo.tar.gz'", work, SLUICE_RESOURCES);
	snprintf(path, sizeof(path), "%s/versions.txt", dir);
	text = (char *)tu_read(path, &len);
	for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char name[8], id[41];
		if (sscanf(line, "%7s %40s", name, id) != 2)
			continue;
		snprintf(!strcmp(name, "base") ? base
		         : !strcmp(name, "a1") ? a1
		         : !strcmp(name, "a2") ? a2
		                               : a3,
		         41, "%s", id);
	}
	free(text);
	assert_int_equal(strlen(a3), 40);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(work);
	free(work);
	return 0;
}

static json_t *sluice_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *sluice_json(const char *fmt, ...)
{
	va_list ap;
	json_t *out;

	va_start(ap, fmt);
	out = tu_sluice_jsonv(env_ops, repo, fmt, ap);
	va_end(ap);
	return out;
}

static void sluice_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sluice_ok(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	free(tu_sluice_okv(env_ops, repo, fmt, ap));
	va_end(ap);
}

static json_t *saved(const char *file)
{
	char path[4300];
	json_error_t err;
	json_t *v;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	v = json_load_file(path, 0, &err);
	assert_non_null(v);
	return v;
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* status's channels as "name head w1,w2,..." lines (withdrawn sorted: a set). */
static char *status_lines(json_t *status)
{
	static char out[8192];
	json_t *c;
	size_t i, off = 0;

	out[0] = 0;
	json_array_foreach(json_object_get(status, "channels"), i, c)
	{
		json_t *w = json_object_get(c, "withdrawn"), *e;
		const char *ids[64];
		size_t n = 0, j;
		json_array_foreach(w, j, e) if (n < 64) ids[n++] = json_string_value(e);
		qsort(ids, n, sizeof(*ids), by_string);
		off += (size_t)snprintf(out + off, sizeof(out) - off, "%s %s",
		                        json_string_value(json_object_get(c, "name")),
		                        json_string_value(json_object_get(c, "head")));
		for (j = 0; j < n; j++)
			off += (size_t)snprintf(out + off, sizeof(out) - off, "%s%s", j ? "," : " ",
			                        ids[j]);
		off += (size_t)snprintf(out + off, sizeof(out) - off, "\n");
	}
	return out;
}

/* The newest journal entry's channels.json, as written. */
static json_t *channels_doc(void)
{
	tu_run_result r = tu_sh(NULL, "git -C '%s' show refs/sluice/journal:channels.json", repo);
	json_error_t err;
	json_t *v;

	assert_int_equal(r.status, 0);
	v = json_loads(r.out, 0, &err);
	assert_non_null(v);
	tu_run_dispose(&r);
	return v;
}

/* What the format-1 sluice answered is what this one answers, lists and all. */
static void test_format1__read_as_the_older_sluice_answered(void **state)
{
	json_t *now, *then, *doc;
	const char *ch[] = {"staging", "prod"};
	(void)state;

	doc = channels_doc();
	assert_int_equal(json_integer_value(json_object_get(doc, "format")), 1);
	assert_non_null(
	        json_object_get(json_object_get(json_object_get(doc, "channels"), "prod"), "held"));
	json_decref(doc);

	now = sluice_json("verify");
	assert_true(json_is_true(json_object_get(now, "ok")));
	json_decref(now);

	now = sluice_json("status");
	then = saved("status.json");
	assert_string_equal(status_lines(now), status_lines(then));
	json_decref(now);
	json_decref(then);
	for (size_t i = 0; i < 2; i++) {
		char file[64];
		snprintf(file, sizeof(file), "history-%s.json", ch[i]);
		now = sluice_json("history %s", ch[i]);
		then = saved(file);
		assert_true(
		        json_equal(json_object_get(now, "moves"), json_object_get(then, "moves")));
		json_decref(now);
		json_decref(then);
	}
}

/*
 * The rules hold on the format-1 facts: a1 stays withdrawn from prod, a2
 * was never prod's (no anchor there), a default rollback returns to what
 * held[n-2] named; then the entries written are format 2, without lists,
 * and verify and a rebuilt index agree.
 */
static void test_format1__moves_decide_on_the_records(void **state)
{
	char args[256];
	json_t *st, *doc;
	(void)state;

	snprintf(args, sizeof(args), "promote %s --channel prod", a1);
	tu_refused(env_ops, repo, 1, "--override-withdrawn", args);
	snprintf(args, sizeof(args), "anchor prod %s --reason test", a2);
	tu_refused(env_ops, repo, 4, "never held", args);
	snprintf(args, sizeof(args), "rollback prod --to %s --reason test", a3);
	tu_refused(env_ops, repo, 4, "never held", args);

	/* prod held base, a1, base: the default rollback undoes the last one. */
	sluice_ok("rollback prod --reason 'undo the rollback'");
	st = sluice_json("status");
	assert_non_null(strstr(status_lines(st), "prod "));
	{
		char want[128];
		snprintf(want, sizeof(want), "prod %s %s\n", a1, base);
		assert_non_null(strstr(status_lines(st), want));
	}
	json_decref(st);

	/* staging: a3 was withdrawn by a rollback, a2 was promoted back with an override. */
	snprintf(args, sizeof(args), "promote %s --channel staging", a3);
	tu_refused(env_ops, repo, 1, "--override-withdrawn", args);
	sluice_ok("promote %s --channel staging", a2);
	sluice_ok("rollback staging --to %s --reason 'back to a1'", a1);
	sluice_ok("anchor staging %s --reason 'held before'", a3);

	doc = channels_doc();
	assert_int_equal(json_integer_value(json_object_get(doc, "format")), 2);
	{
		json_t *c = json_object_get(json_object_get(doc, "channels"), "staging");
		assert_null(json_object_get(c, "held"));
		assert_null(json_object_get(c, "withdrawn"));
		assert_string_equal(json_string_value(json_object_get(c, "head")), a1);
		assert_string_equal(json_string_value(json_object_get(c, "previous")), a2);
		assert_string_equal(json_string_value(json_object_get(c, "anchor")), a3);
	}
	json_decref(doc);

	st = sluice_json("verify");
	assert_true(json_is_true(json_object_get(st, "ok")));
	json_decref(st);
	{
		char before[8192];
		st = sluice_json("status");
		snprintf(before, sizeof(before), "%s", status_lines(st));
		json_decref(st);
		/* staging withdrew a3 (format 1) and now a2 (format 2). */
		{
			const char *lo = strcmp(a2, a3) < 0 ? a2 : a3, *hi = lo == a2 ? a3 : a2;
			snprintf(args, sizeof(args), "staging %s %s,%s\n", a1, lo, hi);
			assert_non_null(strstr(before, args));
		}
		sluice_ok("reindex");
		st = sluice_json("status");
		assert_string_equal(status_lines(st), before);
		json_decref(st);
	}
}

/* Whether verify's notes mention needle. */
static int verify_notes(const char *needle)
{
	json_t *v = sluice_json("verify"), *n;
	size_t i;
	int found = 0;

	assert_true(json_is_true(json_object_get(v, "ok")));
	json_array_foreach(json_object_get(v, "notes"), i, n) found |=
	        strstr(json_string_value(n), needle) != NULL;
	json_decref(v);
	return found;
}

/*
 * Moves are decided on the index's held and withdrawn: verify compares them
 * with its replay of the moves. Emptied here behind sluice's back (raw
 * LMDB), the index would let a3 back into staging without an override;
 * verify says so, and reindex rebuilds it.
 */
static void test_format1__verify_checks_the_index_facts(void **state)
{
	const char *msg = "differs from the journal's moves";
	char path[4400];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	(void)state;

	assert_false(verify_notes(msg));
	snprintf(path, sizeof(path), "%s/sluice/journal-index", repo);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 24), 0);
	assert_int_equal(mdb_env_set_mapsize(env, (size_t)8 << 30), 0);
	assert_int_equal(mdb_env_open(env, path, MDB_NOTLS, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "withdrawn", 0, &dbi), 0);
	assert_int_equal(mdb_drop(txn, dbi, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_true(verify_notes(msg));
	sluice_ok("reindex");
	assert_false(verify_notes(msg));
}

/*
 * verify replays the rules a move is decided on: a promotion of a version
 * withdrawn from the channel, journaled without an override (here by
 * committing a record directly, as no sluice command would), is a problem.
 */
static void test_format1__verify_replays_the_move_rules(void **state)
{
	sluice_ctx *ctx = NULL;
	sluice_repo *r = NULL;
	sluice_key ops = {0};
	sluice_jstate st = {0};
	sluice_jchange ch = {0};
	tu_run_result v;
	(void)state;

	setenv("SLUICE_KEYS", strchr(keysenv, '=') + 1, 1);
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	if (sluice_repo_open(&r, ctx, repo) < 0 ||
	    sluice_repo__signing_key(r, &ops, "ops", "operator") < 0)
		fail_msg("%s", sluice_ctx_errmsg(ctx));
	assert_int_equal(sluice_journal__read(r, &st), 0);
	ch.channels_after = json_deep_copy(st.channels);
	json_object_set_new(json_object_get(ch.channels_after, "staging"), "head", json_string(a3));
	ch.record = json_pack("{s:s,s:s,s:s}", "channel", "staging", "from", a1, "to", a3);
	assert_int_equal(sluice_journal__commit(r, NULL, &ops, "promote", &st, &ch), 0);
	sluice_journal__change_dispose(&ch);
	sluice_journal__dispose(&st);
	sluice_key__dispose(&ops);
	sluice_repo_free(r);
	sluice_ctx_free(ctx);

	v = tu_sh(NULL, "%s -C '%s' verify", TU_SLUICE, repo);
	assert_int_equal(v.status, 1);
	assert_non_null(strstr(v.out, "which a rollback withdrew from it, with no override"));
	tu_run_dispose(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_format1__read_as_the_older_sluice_answered),
	        cmocka_unit_test(test_format1__moves_decide_on_the_records),
	        cmocka_unit_test(test_format1__verify_checks_the_index_facts),
	        cmocka_unit_test(test_format1__verify_replays_the_move_rules),
	};
	sluice_global_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
