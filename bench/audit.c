/*
 * bench/audit.c - the cost of the audit query indexes: how long a journal
 * of N entries takes to generate and index, what one append costs at that
 * size (the signed commit, the ref's compare-and-swap with fsync, and the
 * index catching up, as sluice_journal__transact does them), and the
 * latency of each indexed query of sluice audit log / at / lineage with a
 * small result.
 *
 * usage: audit WORKDIR [--entries N] [--appends N] [--runs N] [--reuse 1]
 *        (defaults: 1000000 entries, 2000 measured appends, 200 runs a query;
 *        --reuse 1: only the queries, on WORKDIR's journal kept by a run with
 *        the same --entries)
 *
 * Generation writes entries with sluice_journal__commit, each a real
 * signed entry on top of the last: proposals (a version commit each, with
 * update.json declaring sources and a state.json whose adapter stack and
 * replay buffer grow and are trimmed by removals), gate results,
 * approvals, promotions, rollbacks, anchors and refusals, by 20 keys over
 * 100 channels. A few values are made rare on purpose (one key, one
 * channel, one source, the poisoning gate, base proposals, refusals,
 * anchors) so each filter has a query with a small answer. For speed,
 * generation keeps git objects in memory (libgit2's mempack) and writes
 * them out as a pack every 50,000 entries, with ref fsync off; the index
 * is caught up every 10,000 entries. The measured appends afterwards run
 * on a freshly opened repository: loose objects and the fsynced ref, as
 * in life.
 *
 * It uses libsluice's private headers (core/) to write entries directly.
 */
#include "jindex.h"
#include "repo.h"
#include "sluice/audit_queries.h"

#include <git2/sys/mempack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NKEYS 20
#define NCHAN 100
#define NSRC 2000
#define FLUSH_EVERY 50000
#define SYNC_EVERY 10000

static void die(const char *what, sluice_ctx *ctx)
{
	fprintf(stderr, "audit bench: %s: %s\n", what, ctx ? sluice_ctx_errmsg(ctx) : "");
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp_d);
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void hex64(char out[65])
{
	for (int i = 0; i < 64; i += 16)
		snprintf(out + i, 17, "%016llx", (unsigned long long)rnd());
}

/* A lineage of versions: the last one and its state (adapters and batches trimmed to 8). */
typedef struct {
	char tip[41];
	json_t *state;
	char recent[4][41]; /* versions gates, approvals and promotions name */
	int nrecent;
	char head[41];
} chan;

typedef struct {
	sluice_repo *repo;
	sluice_ctx *ctx;
	git_odb_backend *mempack;
	sluice_key keys[NKEYS + 2]; /* 20 actors, rare-auditor, root */
	sluice_jstate st;
	chan ch[NCHAN + 1]; /* the last one is "rare-channel" */
	uint64_t n;
	char mid_version[41], mid_time[32], rare_version[41], rare_source_nd[200];
	double *commit_ms;
	size_t ncommit;
	int want_base, want_source, want_poison; /* rare values, taken by the next fit */
} gen;

static const char *chan_name(int i, char buf[32])
{
	if (i == NCHAN)
		snprintf(buf, 32, "rare-channel");
	else
		snprintf(buf, 32, "ch%03d", i);
	return buf;
}

static json_t *file_entry(const char *path)
{
	char d[65];

	hex64(d);
	return json_pack("{s:s,s:i,s:s,s:s}", "path", path, "size", 1000, "blake2b", d, "storage",
	                 "blob");
}

static int write_json_blob(gen *g, git_oid *out, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	int error = git_blob_create_from_buffer(out, g->repo->git, s, strlen(s));

	free(s);
	return error;
}

/* One entry through sluice_journal__commit, timed; the state moves on. */
static void commit(gen *g, const sluice_key *key, const char *action, sluice_jchange *ch)
{
	git_oid id;
	double t0 = now_ms();

	if (sluice_journal__commit(g->repo, &id, key, action, &g->st, ch) < 0)
		die(action, g->ctx);
	if (g->commit_ms)
		g->commit_ms[g->ncommit++] = now_ms() - t0;
	g->st.head = id;
	g->st.exists = 1;
	g->st.seq++;
	if (ch->keys_after) {
		json_decref(g->st.keys);
		g->st.keys = json_incref(ch->keys_after);
	}
	sluice_journal__change_dispose(ch);
}

static void propose(gen *g, int c, const sluice_key *key)
{
	chan *k = &g->ch[c];
	json_t *state = k->state ? json_deep_copy(k->state)
	                         : json_pack("{s:i,s:n,s:[],s:[],s:[]}", "format", 1, "base",
	                                     "adapters", "memory", "replay");
	json_t *details = json_object(), *sources = json_array(), *update;
	json_t *adapters = json_object_get(state, "adapters"),
	       *replay = json_object_get(state, "replay");
	const char *kind;
	char name[64], path[128], d[65], vhex[41], shex[41];
	uint64_t r = rnd() % 1000;
	git_oid ublob, sblob, tree, vid;
	git_treebuilder *tb = NULL;
	git_signature *sig = NULL;
	git_tree *t = NULL;
	git_commit *parent = NULL;
	sluice_jchange chg = {0};

	snprintf(name, sizeof(name), "u%llu", (unsigned long long)g->n);
	if (!k->state || g->want_base) {
		g->want_base = !k->state && g->want_base;
		/* A base: rare, so --kind base has a small answer. */
		kind = "base";
		json_object_set_new(
		        state, "base",
		        json_pack("{s:[o]}", "files", file_entry("base/model.safetensors")));
		json_object_set_new(state, "adapters", json_array());
	} else if (json_array_size(adapters) >= 8 || json_array_size(replay) >= 8) {
		/* A removal of the oldest component keeps states small. */
		json_t *from = json_array_size(adapters) >= 8 ? adapters : replay;
		kind = "remove";
		json_object_set(details, "removed",
		                json_object_get(json_array_get(from, 0), "name"));
		json_array_remove(from, 0);
	} else if (r < 550) {
		kind = "lora";
		snprintf(path, sizeof(path), "adapters/%s/adapter_model.safetensors", name);
		json_array_append_new(adapters, json_pack("{s:s,s:f,s:[o]}", "name", name, "scale",
		                                          1.0, "files", file_entry(path)));
		json_object_set_new(details, "adapter", json_string(name));
	} else if (r < 850) {
		kind = "replay";
		snprintf(path, sizeof(path), "replay/%s.jsonl", name);
		json_array_append_new(replay, json_pack("{s:s,s:i,s:o}", "name", name, "count", 10,
		                                        "file", file_entry(path)));
		json_object_set_new(details, "batch", json_string(name));
	} else {
		kind = "memory";
		json_object_set_new(state, "memory",
		                    json_pack("[{s:s,s:o}]", "name", "notes.md", "file",
		                              file_entry("memory/notes.md")));
		json_object_set_new(details, "edits",
		                    json_pack("[{s:s,s:s}]", "op", "replace", "name", "notes.md"));
	}
	if (strcmp(kind, "remove") && rnd() % 10 < 7) {
		char src[32];
		hex64(d);
		snprintf(src, sizeof(src), "src-%04d", (int)(rnd() % NSRC));
		json_array_append_new(sources,
		                      json_pack("{s:s,s:s+}", "name", src, "digest", "sha256:", d));
	}
	/* The rare source: five versions over the run, each followed by descendants. */
	if (g->want_source && !strcmp(kind, "lora")) {
		json_array_append_new(sources,
		                      json_pack("{s:s,s:s}", "name", "gdpr-subject-42", "digest",
		                                "sha256:4242424242424242424242424242424242424242"
		                                "424242424242424242424242"));
		snprintf(g->rare_source_nd, sizeof(g->rare_source_nd), "gdpr-subject-42=%s",
		         "sha256:4242424242424242424242424242424242424242424242424242424242424242");
	}
	update = json_pack("{s:i,s:s,s:s,s:{s:s,s:s},s:{s:o,s:s},s:o,s:s?}", "format", 1, "kind",
	                   kind, "summary", name, "proposer", "name", key->name, "fingerprint", "-",
	                   "provenance", "sources", sources, "declared_by", "proposer", "details",
	                   details, "parent", k->state ? k->tip : NULL);
	if (write_json_blob(g, &ublob, update) < 0 || write_json_blob(g, &sblob, state) < 0 ||
	    git_treebuilder_new(&tb, g->repo->git, NULL) < 0 ||
	    git_treebuilder_insert(NULL, tb, "update.json", &ublob, GIT_FILEMODE_BLOB) < 0 ||
	    git_treebuilder_insert(NULL, tb, "state.json", &sblob, GIT_FILEMODE_BLOB) < 0 ||
	    git_treebuilder_write(&tree, tb) < 0 || git_tree_lookup(&t, g->repo->git, &tree) < 0 ||
	    git_signature_new(&sig, key->name, "bench", 1700000000, 0) < 0)
		die("writing a version", NULL);
	if (k->state) {
		git_oid pid;
		git_oid_fromstr(&pid, k->tip);
		if (git_commit_lookup(&parent, g->repo->git, &pid) < 0)
			die("parent version", NULL);
	}
	if (git_commit_create(&vid, g->repo->git, NULL, sig, sig, NULL, name, t, parent ? 1 : 0,
	                      (const git_commit **)&parent) < 0)
		die("version commit", NULL);
	git_oid_tostr(vhex, sizeof(vhex), &vid);
	git_oid_tostr(shex, sizeof(shex), &sblob);
	chg.record =
	        json_pack("{s:s,s:s?,s:s,s:s,s:s}", "version", vhex, "parent",
	                  k->state ? k->tip : NULL, "kind", kind, "state", shex, "summary", name);
	chg.extra_parent = vid;
	chg.has_extra = 1;
	commit(g, key, "propose", &chg);
	if (g->want_source && !strcmp(kind, "lora") && !(g->want_source = 0))
		snprintf(g->rare_version, sizeof(g->rare_version), "%s", vhex);
	snprintf(k->tip, sizeof(k->tip), "%s", vhex);
	json_decref(k->state);
	k->state = state;
	memmove(k->recent[1], k->recent[0], sizeof(k->recent[0]) * 3);
	snprintf(k->recent[0], sizeof(k->recent[0]), "%s", vhex);
	if (k->nrecent < 4)
		k->nrecent++;
	json_decref(update);
	git_commit_free(parent);
	git_signature_free(sig);
	git_tree_free(t);
	git_treebuilder_free(tb);
}

static void flush_mempack(gen *g)
{
	git_buf pack = {0};
	git_odb *odb = NULL;
	git_odb_writepack *wp = NULL;
	git_indexer_progress stats = {0};

	if (git_repository_odb(&odb, g->repo->git) < 0 ||
	    git_mempack_dump(&pack, g->repo->git, g->mempack) < 0 ||
	    git_odb_write_pack(&wp, odb, NULL, NULL) < 0 ||
	    wp->append(wp, pack.ptr, pack.size, &stats) < 0 || wp->commit(wp, &stats) < 0)
		die("writing a pack", NULL);
	wp->free(wp);
	git_buf_dispose(&pack);
	git_mempack_reset(g->mempack);
	git_odb_free(odb);
}

/* One generated entry of the mix. */
static void one(gen *g)
{
	uint64_t r = rnd() % 1000;
	int c = (int)(rnd() % NCHAN);
	const sluice_key *key = &g->keys[rnd() % NKEYS];
	chan *k;
	char cn[32];
	sluice_jchange chg = {0};

	g->n++;
	/* The rare values, a handful each over the run. */
	if (g->n % 100000 == 500)
		g->want_base = g->want_poison = 1;
	if (g->n % 200000 == 100000)
		g->want_source = 1;
	if (g->n % 100000 == 777)
		key = &g->keys[NKEYS];
	if (g->n % 100000 >= 3 && g->n % 100000 < 10)
		c = NCHAN;
	k = &g->ch[c];
	if (!k->state || r < 200) {
		propose(g, c, key);
		return;
	}
	chan_name(c, cn);
	if (r < 400) {
		const char *res[] = {"pass", "pass", "pass", "fail", "inconclusive"};
		json_t *results = json_object();
		json_object_set_new(results, "regression", json_string(res[rnd() % 5]));
		json_object_set_new(results, "safety", json_string(res[rnd() % 4]));
		if (g->want_poison) {
			json_object_set_new(results, "poisoning", json_string("fail"));
			g->want_poison = 0;
		}
		chg.record = json_pack("{s:s,s:s,s:s,s:o}", "channel", cn, "candidate",
		                       k->recent[rnd() % (unsigned)k->nrecent], "head",
		                       *k->head ? k->head : k->tip, "results", results);
		commit(g, key, "gate", &chg);
	} else if (r < 600) {
		chg.record =
		        json_pack("{s:s,s:s,s:s}", "channel", cn, "candidate",
		                  k->recent[rnd() % (unsigned)k->nrecent], "approver", key->name);
		commit(g, key, "approve", &chg);
	} else if (r < 900 || g->n % 100000 == 1234 || g->n % 100000 == 4321) {
		/* Anchors and refusals are rare (two per 100,000 each); the rest promote. */
		const char *to = k->recent[rnd() % (unsigned)k->nrecent];
		if (g->n % 100000 == 1234) {
			chg.record = json_pack("{s:s,s:s,s:s,s:s}", "attempted", "promote", "rule",
			                       "approvals.threshold", "message", "0 of 1 approvals",
			                       "channel", cn);
			commit(g, key, "refuse", &chg);
			return;
		}
		if (g->n % 100000 == 4321) {
			chg.record = json_pack("{s:s,s:s,s:s}", "channel", cn, "anchor", to,
			                       "reason", "bench");
			commit(g, key, "anchor", &chg);
			return;
		}
		chg.record = json_pack("{s:s,s:s?,s:s,s:{},s:[s]}", "channel", cn, "from",
		                       *k->head ? k->head : NULL, "to", to, "verdicts", "approvals",
		                       "SHA256:bench");
		commit(g, key, "promote", &chg);
		memmove(k->head, to, sizeof(k->head));
	} else if (*k->head && k->nrecent > 1) {
		const char *to = strcmp(k->recent[1], k->head) ? k->recent[1] : k->recent[0];
		chg.record = json_pack("{s:s,s:s,s:s,s:s,s:s}", "channel", cn, "from", k->head,
		                       "to", to, "reason", "bench", "withdrawn", k->head);
		commit(g, key, "rollback", &chg);
		memmove(k->head, to, sizeof(k->head));
	} else {
		propose(g, c, key);
	}
}

typedef struct {
	const char *name;
	sluice_audit_filter f;
	int kind; /* 0 log, 1 at, 2 lineage */
	const char *a, *b;
} query;

static void run_query(gen *g, const query *q, size_t runs)
{
	double *ms = calloc(runs, sizeof(double));
	size_t count = 0;
	char index[16] = "";

	for (size_t i = 0; i < runs; i++) {
		char *report = NULL;
		int error;
		double t0 = now_ms();
		if (q->kind == 0)
			error = sluice_audit_log(g->repo, &q->f, index, &report);
		else if (q->kind == 1)
			error = sluice_audit_at(g->repo, q->a, q->b, &report);
		else
			error = sluice_audit_lineage(g->repo, q->a, &report);
		ms[i] = now_ms() - t0;
		if (error < 0) {
			printf("  %-44s error: %s\n", q->name, sluice_ctx_errmsg(g->ctx));
			free(ms);
			return;
		}
		if (i == 0) {
			json_error_t jerr;
			json_t *v = json_loads(report, 0, &jerr);
			count = json_is_array(v) ? json_array_size(v)
			        : q->kind == 2   ? json_array_size(json_object_get(v, "versions"))
			                         : 1;
			json_decref(v);
		}
		sluice_free(report);
	}
	/*
	 * The first run reads the index pages it needs from disk when they are
	 * not cached (a fresh process on a reused journal, or pages pushed out by
	 * other work): reported on its own, and the percentiles are those of the
	 * runs after it.
	 */
	printf("  %-44s %-11s %7zu %9.3f %9.3f %9.3f\n", q->name, q->kind ? "-" : index, count,
	       ms[0], runs > 1 ? pct(ms + 1, runs - 1, 0.5) : ms[0],
	       runs > 1 ? pct(ms + 1, runs - 1, 0.99) : ms[0]);
	free(ms);
}

int main(int argc, char **argv)
{
	gen g;
	const char *work;
	char path[4096], keysdir[4200];
	size_t entries = 1000000, appends = 2000, runs = 200, reuse = 0;
	double t0, tgen, tindex = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: audit WORKDIR [--entries N] [--appends N] [--runs N] "
		                "[--reuse 1]\n");
		return 2;
	}
	work = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		size_t v = strtoull(argv[i + 1], NULL, 10);
		if (!strcmp(argv[i], "--entries"))
			entries = v;
		else if (!strcmp(argv[i], "--appends"))
			appends = v;
		else if (!strcmp(argv[i], "--runs"))
			runs = v;
		else if (!strcmp(argv[i], "--reuse"))
			reuse = v;
	}
	memset(&g, 0, sizeof(g));
	snprintf(keysdir, sizeof(keysdir), "%s/keys", work);
	setenv("SLUICE_KEYS", keysdir, 1);
	snprintf(path, sizeof(path), "%s/repo", work);
	if (sluice_global_init() < 0 || sluice_ctx_new(&g.ctx) < 0)
		die("init", NULL);
	if (reuse) {
		/*
		 * --reuse 1: only the queries, on a journal an earlier run kept
		 * (KEEP=1). The mid-run time is entry entries/2's; the mid-run
		 * version the one ch007 served then; the source=DIGEST query,
		 * whose digest only generation knew, is left out.
		 */
		sluice_jindex_read *r = NULL;
		json_t *rec = NULL, *at = NULL;
		char *report = NULL;
		git_oid head;

		if (sluice_repo_open(&g.repo, g.ctx, path) < 0 || sluice_jindex__sync(g.repo) < 0 ||
		    sluice_jindex__head(g.repo, &head, &g.st.seq) < 0 ||
		    sluice_jindex__read_begin(g.repo, &r) < 0 ||
		    sluice_jindex__entry(r, entries / 2, NULL, &rec) < 0)
			die("reopening the kept journal", g.ctx);
		sluice_jindex__read_end(r);
		snprintf(g.mid_time, sizeof(g.mid_time), "%s",
		         json_string_value(json_object_get(rec, "time")));
		json_decref(rec);
		if (sluice_audit_at(g.repo, "ch007", g.mid_time, &report) < 0 ||
		    !(at = json_loads(report, 0, NULL)))
			die("audit at", g.ctx);
		snprintf(g.mid_version, sizeof(g.mid_version), "%s",
		         json_string_value(json_object_get(at, "served")));
		json_decref(at);
		sluice_free(report);
		goto queries;
	}
	/* libgit2's ref and object backends read this when a repository is opened. */
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0);
	{
		const char *root[] = {"root"};
		sluice_init_opts o;
		json_t *reg;
		sluice_jchange chg = {0};
		static const char *const roles[] = {"proposer", "approver", "operator",
		                                    "gate-runner"};
		memset(&o, 0, sizeof(o));
		o.gates_set = 1; /* and none required */
		if (sluice_keys__generate(g.ctx, &g.keys[NKEYS + 1], "root") < 0 ||
		    sluice_repo_init(&g.repo, g.ctx, path, root, 1, &o, NULL) < 0)
			die("creating the repository", g.ctx);
		if (sluice_journal__read(g.repo, &g.st) < 0)
			die("reading the journal", g.ctx);
		reg = json_deep_copy(g.st.keys);
		for (int i = 0; i <= NKEYS; i++) {
			char name[32];
			json_t *e = NULL;
			if (i == NKEYS)
				snprintf(name, sizeof(name), "rare-auditor");
			else
				snprintf(name, sizeof(name), "actor%02d", i);
			if (sluice_keys__generate(g.ctx, &g.keys[i], name) < 0 ||
			    sluice_repo__key_entry(g.ctx, &e, &g.keys[i], roles, 4) < 0)
				die("a key", g.ctx);
			json_object_set_new(reg, name, e);
		}
		/* One entry registers the bench's keys (the signatures are checked by verify, not
		 * here). */
		chg.record = json_pack("{s:s}", "name", "bench keys");
		chg.keys_after = reg;
		commit(&g, &g.keys[NKEYS + 1], "key.add", &chg);
	}
	/* Generation: objects in memory (ref updates without fsync: set before opening). */
	{
		git_odb *odb = NULL;
		if (git_mempack_new(&g.mempack) < 0 || git_repository_odb(&odb, g.repo->git) < 0 ||
		    git_odb_add_backend(odb, g.mempack, 1000) < 0)
			die("mempack", NULL);
		git_odb_free(odb);
	}
	g.commit_ms = calloc(entries + appends + 16, sizeof(double));
	t0 = now_ms();
	while (g.st.seq < entries) {
		one(&g);
		if (g.st.seq % SYNC_EVERY == 0) {
			double s = now_ms();
			if (sluice_jindex__sync(g.repo) < 0)
				die("index", g.ctx);
			tindex += now_ms() - s;
		}
		if (g.st.seq % FLUSH_EVERY == 0)
			flush_mempack(&g);
		if (g.st.seq == entries / 2) {
			json_t *v = NULL;
			if (sluice_journal__record(g.repo, &v, &g.st.head) < 0)
				die("record", g.ctx);
			snprintf(g.mid_time, sizeof(g.mid_time), "%s",
			         json_string_value(json_object_get(v, "time")));
			json_decref(v);
			snprintf(g.mid_version, sizeof(g.mid_version), "%s", g.ch[7].recent[0]);
		}
		if (g.st.seq % 100000 == 0)
			fprintf(stderr, "  %llu entries, %.0f s\n", (unsigned long long)g.st.seq,
			        (now_ms() - t0) / 1e3);
	}
	{
		double s = now_ms();
		if (sluice_jindex__sync(g.repo) < 0)
			die("index", g.ctx);
		tindex += now_ms() - s;
	}
	flush_mempack(&g);
	tgen = now_ms() - t0;
	printf("== generation\n");
	printf("  entries: %llu (by %d keys over %d channels)\n", (unsigned long long)g.st.seq,
	       NKEYS + 1, NCHAN + 1);
	printf("  generated and indexed in %.1f s (%.1f us/entry); of which index catch-up %.1f s "
	       "(%.1f us/entry)\n",
	       tgen / 1e3, tgen * 1e3 / (double)entries, tindex / 1e3,
	       tindex * 1e3 / (double)entries);
	printf("  commit alone (in-memory objects, no fsync): median %.3f ms, p99 %.3f ms\n",
	       pct(g.commit_ms, g.ncommit, 0.5), pct(g.commit_ms, g.ncommit, 0.99));

	/* A fresh handle without the mempack: loose objects and fsynced refs, as in life. */
	{
		double *ms = calloc(appends, sizeof(double));
		sluice_jstate keep = g.st;
		sluice_repo_free(g.repo);
		git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
		if (sluice_repo_open(&g.repo, g.ctx, path) < 0)
			die("reopening", g.ctx);
		g.st = keep;
		g.commit_ms = NULL;
		for (size_t i = 0; i < appends; i++) {
			double s = now_ms();
			one(&g);
			if (sluice_journal__sync_index(g.repo) < 0)
				die("index", g.ctx);
			ms[i] = now_ms() - s;
		}
		printf("== append at %llu entries (signed commit + fsynced ref CAS + index), %zu "
		       "appends\n",
		       (unsigned long long)g.st.seq, appends);
		printf("  median %.3f ms, p99 %.3f ms\n", pct(ms, appends, 0.5),
		       pct(ms, appends, 0.99));
		free(ms);
	}
queries : {
	char t1[32], t2[32], ndv[200];
	query qs[] = {
	        {"--actor rare-auditor", {.actor = "rare-auditor"}, 0, NULL, NULL},
	        {"--action anchor", {.action = "anchor"}, 0, NULL, NULL},
	        {"--channel rare-channel", {.channel = "rare-channel"}, 0, NULL, NULL},
	        {"--version V (mid-run)", {.version = g.mid_version}, 0, NULL, NULL},
	        {"--kind base", {.kind = "base"}, 0, NULL, NULL},
	        {"--source gdpr-subject-42", {.source = "gdpr-subject-42"}, 0, NULL, NULL},
	        {"--source gdpr-subject-42=DIGEST", {.source = ndv}, 0, NULL, NULL},
	        {"--gate poisoning", {.gate = "poisoning"}, 0, NULL, NULL},
	        {"--outcome refused", {.outcome = "refused"}, 0, NULL, NULL},
	        {"--since T --until T (one second) --limit 10",
	         {.since = t1, .until = t2, .limit = 10},
	         0,
	         NULL,
	         NULL},
	        {"--actor actor05 --limit 10", {.actor = "actor05", .limit = 10}, 0, NULL, NULL},
	        {"--actor actor05 --channel rare-channel",
	         {.actor = "actor05", .channel = "rare-channel"},
	         0,
	         NULL,
	         NULL},
	        {"--gate safety --outcome fail --channel ch042 --limit 10",
	         {.gate = "safety", .outcome = "fail", .channel = "ch042", .limit = 10},
	         0,
	         NULL,
	         NULL},
	        {"audit at rare-channel T", {0}, 1, "rare-channel", t2},
	        {"audit at ch007 T", {0}, 1, "ch007", t2},
	        {"audit lineage --source gdpr-subject-42", {0}, 2, "gdpr-subject-42", NULL},
	};
	snprintf(t1, sizeof(t1), "%s", g.mid_time);
	snprintf(t2, sizeof(t2), "%s", g.mid_time);
	snprintf(ndv, sizeof(ndv), "%s", g.rare_source_nd);
	printf("== queries at %llu entries, %zu runs each (library calls, JSON report "
	       "included; p50 and p99 over the runs after the first)\n",
	       (unsigned long long)g.st.seq, runs);
	printf("  %-44s %-11s %7s %9s %9s %9s\n", "query", "index", "results", "first ms", "p50 ms",
	       "p99 ms");
	for (size_t i = 0; i < sizeof(qs) / sizeof(*qs); i++) {
		if (qs[i].kind == 0 && qs[i].f.source && !*qs[i].f.source)
			continue;
		run_query(&g, &qs[i], runs);
	}
}
	{
		char cmd[8400];
		snprintf(cmd, sizeof(cmd),
		         "du -sh '%s/sluice/journal-index' '%s/objects' | sed 's/^/  /'", path,
		         path);
		printf("== sizes\n");
		fflush(stdout);
		if (system(cmd) != 0)
			fprintf(stderr, "du failed\n");
	}
	sluice_journal__dispose(&g.st);
	for (int i = 0; i < NCHAN + 1; i++)
		json_decref(g.ch[i].state);
	for (int i = 0; i < NKEYS + 2; i++)
		sluice_key__dispose(&g.keys[i]);
	sluice_repo_free(g.repo);
	sluice_ctx_free(g.ctx);
	return 0;
}
