/*
 * bench/tlog.c - what the provable log costs (docs/audit-tlog.md): the
 * time of a journal commit with its tlog.json and signed checkpoint, the
 * share of it spent on the tree (sluice_tlog__journal_add, timed alone on
 * the head's tree), and `sluice audit verify` over the whole journal.
 *
 * usage: tlog WORKDIR N   (SLUICE_KEYS must name a keys directory)
 *
 * The entries are "bench" actions through sluice_journal__transact that
 * change no state: the journal's commit path exactly, without the cost of
 * any one action's decision. Uses libsluice's private headers, like tests.
 */
#include "repo.h"
#include "tlog.h"
#include "sluice/audit_tlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int decide(sluice_repo *repo, const sluice_jstate *st, void *arg, sluice_jchange *out)
{
	(void)repo;
	(void)st;
	out->record = json_pack("{s:I}", "note", (json_int_t) * (uint64_t *)arg);
	return out->record ? 0 : SLUICE_ENOMEM;
}

static void die(sluice_ctx *ctx, const char *what)
{
	fprintf(stderr, "bench-tlog: %s: %s\n", what, sluice_ctx_errmsg(ctx));
	exit(1);
}

int main(int argc, char **argv)
{
	sluice_ctx *ctx = NULL;
	sluice_repo *repo = NULL;
	sluice_key key;
	sluice_jstate st;
	char path[4096], *report = NULL;
	uint64_t n, i;
	double t0, t1, tadd = 0;
	int reps = 200;

	if (argc != 3 || !(n = strtoull(argv[2], NULL, 10))) {
		fprintf(stderr, "usage: tlog WORKDIR N\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/repo", argv[1]);
	if (sluice_global_init() < 0 || sluice_ctx_new(&ctx) < 0)
		return 1;
	if (sluice_repo_init(&repo, ctx, path, NULL, 0, NULL, NULL) < 0)
		die(ctx, "init");
	if (sluice_keys__load(ctx, &key, "root") < 0)
		die(ctx, "loading the root key");

	t0 = now();
	for (i = 1; i < n; i++) {
		if (sluice_journal__transact(repo, NULL, &key, "bench", decide, &i) < 0)
			die(ctx, "commit");
		if (i % 1000 == 0)
			fprintf(stderr, "%llu entries\n", (unsigned long long)i + 1);
	}
	t1 = now();
	printf("entries: %llu\n", (unsigned long long)n);
	printf("journal commit (transact, tree and checkpoint included): %.3f ms each\n",
	       (t1 - t0) * 1e3 / (double)(n - 1));

	/*
	 * The tree's share: journal_add alone on the head's tree, as the next
	 * commit would; each rep's record differs, so its blobs are new objects
	 * written (and fsynced) as in a real commit.
	 */
	if (sluice_journal__read(repo, &st) < 0)
		die(ctx, "read");
	for (int r = 0; r < reps; r++) {
		git_treebuilder *tb = NULL;
		git_commit *c = NULL;
		git_tree *t = NULL;
		json_t *rec = json_pack("{s:s,s:I,s:i}", "action", "bench", "seq",
		                        (json_int_t)(st.seq + 1), "rep", r);
		char *text = json_dumps(rec, JSON_INDENT(1) | JSON_SORT_KEYS);
		git_oid blob;
		double a;

		if (git_commit_lookup(&c, repo->git, &st.head) < 0 || git_commit_tree(&t, c) < 0 ||
		    git_treebuilder_new(&tb, repo->git, t) < 0 ||
		    git_blob_create_from_buffer(&blob, repo->git, text, strlen(text)) < 0 ||
		    git_treebuilder_insert(NULL, tb, "record.json", &blob, GIT_FILEMODE_BLOB) < 0)
			die(ctx, "git");
		a = now();
		if (sluice_tlog__journal_add(repo, tb, &st, &key, st.keys) < 0)
			die(ctx, "journal_add");
		tadd += now() - a;
		git_treebuilder_free(tb);
		git_tree_free(t);
		git_commit_free(c);
		json_decref(rec);
		free(text);
	}
	printf("of which the tree (encode, frontier, sign, tlog.json, checkpoint): %.3f ms\n",
	       tadd * 1e3 / reps);
	sluice_journal__dispose(&st);

	t0 = now();
	if (sluice_audit_verify(repo, SLUICE_AUDIT_VERIFY_FULL, &report) < 0)
		die(ctx, "audit verify");
	t1 = now();
	printf("audit verify (in-process, index not yet built): %.3f s\n", t1 - t0);
	sluice_free(report);
	report = NULL;
	t0 = now();
	if (sluice_audit_reindex(repo, &report) < 0)
		die(ctx, "reindex");
	t1 = now();
	printf("audit reindex: %.3f s\n", t1 - t0);
	sluice_free(report);
	sluice_key__dispose(&key);
	sluice_repo_free(repo);
	sluice_ctx_free(ctx);
	return 0;
}
