/*
 * tests/audit/test_purge.c - erasure (issue 7): sluice purge and sluice gc.
 *
 * One repository: a base, an adapter on it, a replay batch R on the
 * adapter (over 1 MiB, so it is chunked; its last records carry a
 * distinctive text), a memory note M on R (a git blob with a distinctive
 * text), and a kept replay batch K on the adapter whose records share R's
 * first megabyte, so K and R share chunks. The git objects are packed with
 * `git repack` first, so the purge must rewrite a git packfile too.
 *
 * After purging R and M: neither distinctive text occurs in any file under
 * the repository (raw bytes: chunk packs, LMDB, git files) nor in any
 * decompressed git object; base, adapter and K check out byte-identical;
 * sluice verify passes with "purged" notes; checkout of R names the
 * tombstone; the tombstone is a DSSE tombstone statement.
 */
#include "testutil.h"

#include "chunkstore.h"
#include "repo.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_REPLAY "ZEBRA-REPLAY-SECRET-7731"
#define SECRET_NOTE "QUOKKA-NOTE-SECRET-4410"

static char *work;
static char repo[4096], keysenv[4300];
static const char *env[] = {keysenv, NULL};
static char base[41], lora[41], rbatch[41], note[41], kept[41];
static char base_sum[65], lora_sum[65], kept_sum[65];

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

static json_t *ok_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *ok_json(const char *fmt, ...)
{
	va_list ap;
	json_t *v;

	va_start(ap, fmt);
	v = tu_sluice_jsonv(env, repo, fmt, ap);
	va_end(ap);
	return v;
}

static void propose(char out[41], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void propose(char out[41], const char *fmt, ...)
{
	char args[8192], *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	o = ok("%s --key al", args);
	tu_last_line(out, o);
	free(o);
}

/* A replay batch: `shared` common records, then `tail` records naming tag. */
static void write_batch(const char *path, int shared, int tail, const char *tag)
{
	FILE *f = fopen(path, "w");
	int i;

	assert_non_null(f);
	for (i = 0; i < shared; i++)
		fprintf(f,
		        "{\"prompt\":\"common question %d about rivers and lakes\","
		        "\"completion\":\"common answer %d, long enough to fill a chunk or two "
		        "of the content-defined chunker\",\"source\":\"s%d\"}\n",
		        i, i * 7, i % 13);
	for (i = 0; i < tail; i++)
		fprintf(f, "{\"prompt\":\"tail %d\",\"completion\":\"%s %d\",\"source\":\"t\"}\n",
		        i, tag, i);
	fclose(f);
}

static void checkout_sum(const char *ref, const char *name, char out[65])
{
	char dir[4200];

	snprintf(dir, sizeof(dir), "%s/co-%s", work, name);
	tu_sh_ok(NULL, "rm -rf '%s'", dir);
	free(ok("checkout %s '%s'", ref, dir));
	tu_tree_digest(dir, out);
}

/* How often text occurs: raw in every file under the repository, and in every git object. */
static int occurrences(const char *text)
{
	tu_run_result raw, obj;
	int n;

	raw = tu_sh(NULL, "grep -rlaF '%s' '%s' | wc -l", text, repo);
	obj = tu_sh(NULL,
	            "git --git-dir='%s' cat-file --batch-all-objects --batch | grep -caF '%s'",
	            repo, text);
	assert_int_equal(raw.status, 0);
	n = atoi(raw.out) + atoi(obj.out);
	tu_run_dispose(&raw);
	tu_run_dispose(&obj);
	return n;
}

static int setup(void **state)
{
	char path[4200];
	(void)state;

	if (sluice_global_init() < 0)
		return -1;
	work = tu_mkdtemp("purge");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/repo", work);
	tu_sh_ok(NULL, "mkdir -p '%s/in' && cp -r '%s/test-model' '%s/in/base'", work,
	         SLUICE_RESOURCES, work);
	tu_sh_ok(env, "%s init '%s' --root-key r1", TU_SLUICE, repo);
	free(ok("key new al --role proposer --signer r1"));
	free(ok("key new ops --role operator --signer r1"));
	propose(base, "propose base '%s/in/base' -m base", work);
	tu_sh_ok(NULL, "%s lora '%s/in/l1' --base '%s/in/base' --seed 5", SLUICE_SYNTH, work, work);
	propose(lora, "propose lora '%s/in/l1' --onto %s -m l1", work, base);
	/* ~1.6 MiB: chunked; R and K share the first 12000 records. */
	snprintf(path, sizeof(path), "%s/in/r.jsonl", work);
	write_batch(path, 12000, 50, SECRET_REPLAY);
	propose(rbatch, "propose replay '%s' --onto %s -m r", path, lora);
	snprintf(path, sizeof(path), "%s/in/k.jsonl", work);
	write_batch(path, 12000, 50, "kept tail");
	propose(kept, "propose replay '%s' --onto %s -m k", path, lora);
	snprintf(path, sizeof(path), "%s/in/secret.md", work);
	tu_write(path, "remember: " SECRET_NOTE "\n", strlen("remember: " SECRET_NOTE "\n"));
	propose(note, "propose memory --onto %s --add '%s' -m note", rbatch, path);
	checkout_sum(base, "base", base_sum);
	checkout_sum(lora, "lora", lora_sum);
	checkout_sum(kept, "kept", kept_sum);
	/* Packed git objects: the purge must rewrite a git packfile, not only loose files. */
	tu_sh_ok(NULL, "git --git-dir='%s' repack -a -d -q && git --git-dir='%s' prune-packed",
	         repo, repo);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_sh_ok(NULL, "rm -rf '%s'", work);
	free(work);
	sluice_global_shutdown();
	return 0;
}

static void test_purge__non_operator_is_refused_and_journaled(void **state)
{
	char args[256];
	(void)state;

	snprintf(args, sizeof(args), "purge %s --reason 'asked' --key al", rbatch);
	tu_refused_journaled(env, repo, 1, "operator", "role", args);
	assert_true(occurrences(SECRET_REPLAY) > 0);
}

static void test_purge__content_is_gone_other_versions_intact(void **state)
{
	json_t *v, *e;
	char sum[65], dir[4200];
	tu_run_result r;
	(void)state;

	/* The texts are there before, so their absence afterwards means something. */
	assert_true(occurrences(SECRET_REPLAY) > 0);
	assert_true(occurrences(SECRET_NOTE) > 0);

	v = ok_json("purge %s --reason 'data subject request 17' --key ops", rbatch);
	assert_int_equal(json_array_size(json_object_get(v, "purged")), 1);
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(json_object_get(v, "purged"), 0), "path")),
	                    "replay/r.jsonl");
	/* Some of R's chunks are its own (removed); the shared ones are not listed. */
	assert_true(json_array_size(json_object_get(v, "chunks")) > 0);
	assert_true(json_integer_value(json_object_get(v, "chunks_removed")) > 0);
	json_decref(v);

	v = ok_json("purge %s --reason 'the note too' --key ops", note);
	e = json_array_get(json_object_get(v, "purged"), 0);
	assert_string_equal(json_string_value(json_object_get(e, "path")), "memory/secret.md");
	assert_int_equal(json_array_size(json_object_get(v, "purged")), 1);
	assert_true(json_integer_value(json_object_get(v, "blobs_removed")) >= 1);
	json_decref(v);

	assert_int_equal(occurrences(SECRET_REPLAY), 0);
	assert_int_equal(occurrences(SECRET_NOTE), 0);

	/* Kept versions, K included (it shares chunks with R), are byte-identical. */
	checkout_sum(base, "base", sum);
	assert_string_equal(sum, base_sum);
	checkout_sum(lora, "lora", sum);
	assert_string_equal(sum, lora_sum);
	checkout_sum(kept, "kept", sum);
	assert_string_equal(sum, kept_sum);

	/* verify: purged content is a note naming the tombstone, not a problem. */
	v = ok_json("%s", "verify");
	assert_true(json_is_true(json_object_get(v, "ok")));
	{
		char *notes = json_dumps(json_object_get(v, "notes"), 0);
		assert_non_null(strstr(notes, "replay/r.jsonl purged (tombstone entry #"));
		assert_non_null(strstr(notes, "memory/secret.md purged (tombstone entry #"));
		free(notes);
	}
	json_decref(v);

	/* Checkout of a purged file names the tombstone. */
	snprintf(dir, sizeof(dir), "%s/co-purged", work);
	r = tu_sh(env, "%s -C '%s' checkout %s '%s'", TU_SLUICE, repo, rbatch, dir);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "replay/r.jsonl was purged (tombstone entry #"));
	tu_run_dispose(&r);

	/* The journal entry holds a DSSE tombstone statement about R's state.json. */
	r = tu_sh(env, "git --git-dir='%s' show refs/sluice/journal:record.json", repo);
	assert_int_equal(r.status, 0);
	{
		json_error_t jerr;
		json_t *rec = json_loads(r.out, 0, &jerr),
		       *env_ = json_object_get(rec, "tombstone");
		assert_string_equal(json_string_value(json_object_get(rec, "action")), "purge");
		assert_string_equal(json_string_value(json_object_get(env_, "payloadType")),
		                    "application/vnd.in-toto+json");
		assert_int_equal(json_array_size(json_object_get(env_, "signatures")), 1);
		json_decref(rec);
	}
	tu_run_dispose(&r);

	/* Purging again journals nothing and finds nothing left to delete. */
	v = ok_json("purge %s --reason 'again' --key ops", rbatch);
	assert_true(json_is_true(json_object_get(v, "already")));
	assert_int_equal(json_integer_value(json_object_get(v, "chunks_removed")), 0);
	json_decref(v);

	/* gc after the purge: nothing more to free. */
	v = ok_json("%s", "gc");
	assert_int_equal(json_integer_value(json_object_get(v, "records_removed")), 0);
	json_decref(v);
}

/* A purged update reads as what it is in sluice log, show and audit log: its tombstone. */
static void test_purge__log_and_show_render_the_tombstone(void **state)
{
	json_t *v, *t, *vs, *e;
	char *text;
	size_t i, purged = 0;
	(void)state;

	v = ok_json("show %s", rbatch);
	t = json_object_get(v, "tombstones");
	assert_int_equal(json_array_size(t), 1);
	t = json_array_get(t, 0);
	assert_string_equal(json_string_value(json_object_get(t, "version")), rbatch);
	assert_string_equal(json_string_value(json_object_get(t, "reason")),
	                    "data subject request 17");
	assert_string_equal(json_string_value(json_object_get(t, "actor")), "ops");
	assert_true(json_integer_value(json_object_get(t, "seq")) > 0);
	assert_int_equal(strlen(json_string_value(json_object_get(t, "entry"))), 40);
	assert_true(json_is_true(json_object_get(t, "signed")));
	assert_true(json_integer_value(json_object_get(t, "chunks")) > 0);
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(json_object_get(t, "purged"), 0), "path")),
	                    "replay/r.jsonl");
	json_decref(v);
	/* A version nobody purged has none, though it shares chunks with one. */
	v = ok_json("show %s", kept);
	assert_int_equal(json_array_size(json_object_get(v, "tombstones")), 0);
	json_decref(v);

	v = ok_json("%s", "log");
	vs = json_object_get(v, "versions");
	json_array_foreach(vs, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "version"));
		size_t n = json_array_size(json_object_get(e, "tombstones"));
		assert_true(json_is_array(json_object_get(e, "tombstones")));
		if (!strcmp(id, rbatch) || !strcmp(id, note))
			assert_int_equal(n, 1);
		else
			assert_int_equal(n, 0);
		purged += n;
	}
	assert_int_equal(purged, 2);
	json_decref(v);

	text = ok("%s", "log");
	assert_non_null(strstr(text, "[PURGED]"));
	assert_non_null(strstr(text, "data subject request 17"));
	assert_non_null(strstr(text, "removed replay/r.jsonl"));
	assert_non_null(strstr(text, "removed memory/secret.md"));
	free(text);
	text = ok("show %s", rbatch);
	assert_non_null(strstr(text, "PURGED"));
	assert_non_null(strstr(text, "by ops"));
	assert_non_null(strstr(text, "removed replay/r.jsonl"));
	free(text);
	text = ok("show %s", lora);
	assert_null(strstr(text, "PURGED"));
	free(text);

	/* audit log says what the purge entry did, not an empty summary. */
	v = ok_json("%s", "audit log --action purge");
	assert_int_equal(json_array_size(v), 2);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(v, 0), "summary")),
	                       "replay/r.jsonl (data subject request 17)"));
	json_decref(v);
}

static void test_purge__gc_frees_unreachable_chunks_once(void **state)
{
	sluice_ctx *ctx = NULL;
	sluice_chunkstore *cs = NULL;
	char sdir[4200], before[65], after[65];
	static const char orphan[] = "a chunk no version refers to";
	unsigned char id[32];
	json_t *v;
	(void)state;

	/* Chunks written without a proposal: what an interrupted propose leaves. */
	snprintf(sdir, sizeof(sdir), "%s/sluice", repo);
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_chunkstore__open(&cs, ctx, sdir), 0);
	sluice__b2(id, orphan, sizeof(orphan));
	assert_int_equal(sluice_chunkstore__put(cs, id, orphan, sizeof(orphan), NULL), 0);
	assert_int_equal(sluice_chunkstore__commit(cs), 0);
	assert_int_equal(sluice_chunkstore__has(cs, id), 1);
	sluice_chunkstore__free(cs);

	v = ok_json("%s", "gc --dry-run");
	assert_true(json_is_true(json_object_get(v, "dry_run")));
	assert_int_equal(json_integer_value(json_object_get(v, "records_removed")), 1);
	json_decref(v);

	v = ok_json("%s", "gc");
	assert_int_equal(json_integer_value(json_object_get(v, "records_removed")), 1);
	assert_true(json_integer_value(json_object_get(v, "bytes_freed")) >=
	            (json_int_t)sizeof(orphan));
	json_decref(v);
	assert_int_equal(sluice_chunkstore__open(&cs, ctx, sdir), 0);
	assert_int_equal(sluice_chunkstore__has(cs, id), 0);
	sluice_chunkstore__free(cs);
	sluice_ctx_free(ctx);

	/* A second run changes nothing. */
	tu_tree_digest(repo, before);
	v = ok_json("%s", "gc");
	assert_int_equal(json_integer_value(json_object_get(v, "records_removed")), 0);
	assert_int_equal(json_integer_value(json_object_get(v, "packs_rewritten")), 0);
	json_decref(v);
	tu_tree_digest(repo, after);
	assert_string_equal(before, after);

	free(ok("verify"));
	checkout_sum(kept, "kept", after);
	assert_string_equal(after, kept_sum);
}

/* ---- the sweep under injected faults ------------------------------------- */

struct fault {
	int countdown; /* fail the n-th write or fsync; 0: never */
	int fired;
};

static int fault_hook(void *data, sluice_fault_op op, const char *what)
{
	struct fault *f = data;
	(void)what;
	if (op == SLUICE_FAULT_ALLOC || f->countdown <= 0)
		return 0;
	if (--f->countdown == 0) {
		f->fired = 1;
		return 1;
	}
	return 0;
}

static void count_problem(void *data, const char *text)
{
	if (strncmp(text, "note: ", 6)) {
		fprintf(stderr, "chunk store problem: %s\n", text);
		(*(int *)data)++;
	}
}

static int drop_first(void *data, const unsigned char id[32])
{
	return memcmp(id, data, 32) == 0;
}

/*
 * Fail the 1st, 2nd, ... write or fsync of a sweep that drops chunk A and
 * keeps B (same pack): after every failure the store verifies clean and
 * both chunks still read (the old pack stands until the index has moved,
 * and after that the new pack holds B); the first sweep that runs to the
 * end leaves B only.
 */
static void test_purge__sweep_fault_at_every_step_leaves_store_whole(void **state)
{
	static const char a[] = "chunk A: to be dropped", b[] = "chunk B: to be kept";
	unsigned char ida[32], idb[32];
	char *dir = tu_mkdtemp("sweep");
	sluice_ctx *ctx = NULL;
	sluice_chunkstore *cs = NULL;
	sluice_sweep_stats st;
	sluice_buf buf = {0};
	struct fault f = {0, 0};
	int n, error = -1, problems;
	(void)state;

	sluice__b2(ida, a, sizeof(a));
	sluice__b2(idb, b, sizeof(b));
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_chunkstore__open(&cs, ctx, dir), 0);
	assert_int_equal(sluice_chunkstore__put(cs, ida, a, sizeof(a), NULL), 0);
	assert_int_equal(sluice_chunkstore__put(cs, idb, b, sizeof(b), NULL), 0);
	assert_int_equal(sluice_chunkstore__commit(cs), 0);
	sluice_ctx_set_fault_hook(ctx, fault_hook, &f);
	for (n = 1; n < 50; n++) {
		f.countdown = n;
		f.fired = 0;
		error = sluice_chunkstore__sweep(cs, drop_first, ida, 0, &st, NULL, NULL);
		f.countdown = 0;
		if (!f.fired)
			break;
		/* A fault may land after the commit point; then the sweep is done. */
		problems = 0;
		assert_int_equal(sluice_chunkstore__verify(cs, count_problem, &problems), 0);
		assert_int_equal(problems, 0);
		assert_int_equal(sluice_chunkstore__get(cs, idb, &buf), 0);
		assert_memory_equal(buf.ptr, b, sizeof(b));
		if (sluice_chunkstore__has(cs, ida) == 1) {
			assert_int_equal(sluice_chunkstore__get(cs, ida, &buf), 0);
			assert_memory_equal(buf.ptr, a, sizeof(a));
		}
	}
	assert_true(n > 3); /* faults were injected at several steps */
	assert_int_equal(error, 0);
	/* Whatever the faults left, one more sweep finishes: A gone, B whole. */
	assert_int_equal(sluice_chunkstore__sweep(cs, drop_first, ida, 0, &st, NULL, NULL), 0);
	assert_int_equal(sluice_chunkstore__has(cs, ida), 0);
	assert_int_equal(sluice_chunkstore__get(cs, idb, &buf), 0);
	problems = 0;
	assert_int_equal(sluice_chunkstore__verify(cs, count_problem, &problems), 0);
	sluice_chunkstore__free(cs);
	/* No pack file holds A's bytes any more. */
	{
		tu_run_result r = tu_sh(NULL, "grep -rlaF 'chunk A: to be' '%s' | wc -l", dir);
		assert_int_equal(atoi(r.out), 0);
		tu_run_dispose(&r);
	}
	sluice_buf__dispose(&buf);
	sluice_ctx_free(ctx);
	tu_rmtree(dir);
	free(dir);
}

/* ---- a forged purged set ------------------------------------------------- */

struct forge {
	const char *action;
	int remove; /* 1: drop an existing purged entry; 0: add one */
};

static int decide_forge(sluice_repo *r, const sluice_jstate *st, void *arg, sluice_jchange *out)
{
	struct forge *fg = arg;
	json_t *trust = json_deep_copy(st->trust), *purged = json_object_get(trust, "purged");
	(void)r;

	assert_non_null(purged);
	if (fg->remove) {
		void *it = json_object_iter(purged);
		assert_non_null(it);
		json_object_del(purged, json_object_iter_key(it));
	} else {
		json_object_set_new(purged,
		                    "00000000000000000000000000000000000000000000000000000000"
		                    "00000000",
		                    json_pack("{s:i}", "seq", 1));
	}
	out->trust_after = trust;
	out->record = json_pack("{s:s}", "note", "forged by the test");
	return 0;
}

/* verify's report after one hand-written journal entry (signed by ops, an operator). */
static char *verify_after_forge(const char *action, int remove)
{
	sluice_ctx *ctx = NULL;
	sluice_repo *r = NULL;
	sluice_key key;
	struct forge fg = {action, remove};
	char *report = NULL, kdir[4200];

	snprintf(kdir, sizeof(kdir), "%s/keys", work);
	setenv("SLUICE_KEYS", kdir, 1);
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	if (sluice_repo_open(&r, ctx, repo) < 0 || sluice_keys__load(ctx, &key, "ops") < 0)
		fail_msg("%s", sluice_ctx_errmsg(ctx));
	assert_int_equal(sluice_journal__transact(r, NULL, &key, action, decide_forge, &fg), 0);
	sluice_key__dispose(&key);
	assert_int_not_equal(sluice_repo_verify(r, &report), 0);
	sluice_repo_free(r);
	sluice_ctx_free(ctx);
	return report;
}

/* Runs last: it leaves the journal with entries verify rejects. */
static void test_purge__verify_rejects_a_forged_purged_set(void **state)
{
	char *rep;
	(void)state;

	/* An operator's anchor entry that adds a digest to the purged set. */
	rep = verify_after_forge("anchor", 0);
	assert_non_null(strstr(rep, "changes the purged set, which only purge entries may"));
	free(rep);
	/* A purge entry that takes a digest out of it (and carries no tombstone). */
	rep = verify_after_forge("purge", 1);
	assert_non_null(strstr(rep, "a purge takes content out of the purged set"));
	assert_non_null(strstr(rep, "tombstone"));
	free(rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_purge__non_operator_is_refused_and_journaled),
	        cmocka_unit_test(test_purge__content_is_gone_other_versions_intact),
	        cmocka_unit_test(test_purge__log_and_show_render_the_tombstone),
	        cmocka_unit_test(test_purge__gc_frees_unreachable_chunks_once),
	        cmocka_unit_test(test_purge__sweep_fault_at_every_step_leaves_store_whole),
	        cmocka_unit_test(test_purge__verify_rejects_a_forged_purged_set),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
