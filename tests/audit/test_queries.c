/*
 * tests/audit/test_queries.c - sluice audit log / at / lineage (issue 7,
 * "Queries") on one repository built through the CLI: a base, an adapter
 * and a replay batch declaring source "feedback-A", a memory note and a
 * second adapter declaring nothing, two removals, promotions with
 * approvals under a policy, a rollback, a journaled refusal and gate
 * entries written through the library (signed by the gate-runner key).
 *
 * Every filter's answer is compared with an oracle that walks the journal
 * with libgit2 and applies the filter to each record.json itself (not
 * through the index), and some answers are also pinned by hand.
 */
#include "testutil.h"

#include "jindex.h"
#include "repo.h"
#include "sluice/audit_queries.h"

#include <git2.h>
#include <jansson.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *work;
static char repo[4096], keysenv[4300];
static const char *env[] = {keysenv, NULL};
static char base[41], l1[41], mem[41], rp[41], x1[41], x2[41], l2[41];
static char t_base[32], t_l1[32]; /* when prod moved to base, then to l1 */
static const char *digest_a1 =
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *digest_a2 =
        "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

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

static void propose(char out[41], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void propose(char out[41], const char *fmt, ...)
{
	char args[8192], *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	o = ok("%s", args);
	tu_last_line(out, o);
	free(o);
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

/* Promote with one approval first (the policy asks one for prod). */
static void promote_prod(const char *ver)
{
	free(ok("approve %s --channel prod --key bob", ver));
	free(ok("promote %s --channel prod --key ops", ver));
}

/* The time of the newest journal entry. */
static void newest_time(char out[32])
{
	json_t *v = ok_json("audit log");
	json_t *last = json_array_get(v, json_array_size(v) - 1);

	snprintf(out, 32, "%s", json_string_value(json_object_get(last, "time")));
	json_decref(v);
}

/* Wait for the clock's next second, so the next entry's time differs from the last. */
static void next_second(void)
{
	char now[32], t[32];
	time_t s = time(NULL);
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
	do {
		usleep(50000);
		s = time(NULL);
		gmtime_r(&s, &tm);
		strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	} while (!strcmp(now, t));
}

/* A gate entry written through the library, as sluice gate would journal its results. */
static void gate_entry(const char *candidate, const char *head, const char *results)
{
	sluice_ctx *ctx = NULL;
	sluice_repo *r = NULL;
	sluice_key key = {0};
	sluice_jstate st = {0};
	sluice_jchange ch = {0};
	json_error_t jerr;

	setenv("SLUICE_KEYS", keysenv + strlen("SLUICE_KEYS="), 1);
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&r, ctx, repo), 0);
	assert_int_equal(sluice_repo__signing_key(r, &key, "gr", "gate-runner"), 0);
	assert_int_equal(sluice_journal__read(r, &st), 0);
	ch.record = json_pack("{s:s,s:s,s:s,s:o}", "channel", "prod", "candidate", candidate,
	                      "head", head, "results", json_loads(results, 0, &jerr));
	assert_int_equal(sluice_journal__commit(r, NULL, &key, "gate", &st, &ch), 0);
	sluice_journal__change_dispose(&ch);
	sluice_journal__dispose(&st);
	sluice_key__dispose(&key);
	sluice_repo_free(r);
	sluice_ctx_free(ctx);
}

/*
 * On channel "direct", written through the library: a gate entry leaving a
 * regression verdict in the channel's state, then a promotion recording it
 * (sluice gate and promote would need the shipped model's eval suites; audit
 * at only reads what the journal holds).
 */
static void direct_verdict_and_move(const char *cand)
{
	sluice_ctx *ctx = NULL;
	sluice_repo *r = NULL;
	sluice_key gr = {0}, ops = {0};
	sluice_jstate st = {0};
	sluice_jchange ch = {0};
	json_t *channels;

	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&r, ctx, repo), 0);
	assert_int_equal(sluice_repo__signing_key(r, &gr, "gr", "gate-runner"), 0);
	assert_int_equal(sluice_repo__signing_key(r, &ops, "ops", "operator"), 0);
	assert_int_equal(sluice_journal__read(r, &st), 0);
	channels = json_deep_copy(st.channels);
	json_object_set_new(
	        channels, "direct",
	        json_pack("{s:n,s:{s:{s:s,s:s,s:{s:{s:s,s:s,s:s}}}}}", "head", "verdicts", cand,
	                  "head", "", "config", "cfg", "gates", "regression", "result", "pass",
	                  "statement",
	                  "5555555555555555555555555555555555555555555555555555555555555555",
	                  "time", "2026-01-02T03:04:05Z"));
	ch.record = json_pack("{s:s,s:s,s:s,s:{s:s}}", "channel", "direct", "candidate", cand,
	                      "head", "", "results", "regression", "pass");
	ch.channels_after = channels;
	assert_int_equal(sluice_journal__commit(r, NULL, &gr, "gate", &st, &ch), 0);
	sluice_journal__change_dispose(&ch);
	sluice_journal__dispose(&st);
	assert_int_equal(sluice_journal__read(r, &st), 0);
	memset(&ch, 0, sizeof(ch));
	ch.record = json_pack("{s:s,s:s,s:{s:s},s:[],s:s}", "channel", "direct", "to", cand,
	                      "verdicts", "regression",
	                      "5555555555555555555555555555555555555555555555555555555555555555",
	                      "approvals", "policy", "");
	assert_int_equal(sluice_journal__commit(r, NULL, &ops, "promote", &st, &ch), 0);
	assert_int_equal(sluice_journal__sync_index(r), 0);
	sluice_journal__change_dispose(&ch);
	sluice_journal__dispose(&st);
	sluice_key__dispose(&gr);
	sluice_key__dispose(&ops);
	sluice_repo_free(r);
	sluice_ctx_free(ctx);
}

static int setup(void **state)
{
	char path[4200];
	json_t *v;
	(void)state;

	work = tu_mkdtemp("audit-queries");
	snprintf(keysenv, sizeof(keysenv), "SLUICE_KEYS=%s/keys", work);
	snprintf(repo, sizeof(repo), "%s/repo", work);
	tu_sh_ok(NULL, "mkdir -p '%s/in' && cp -r '%s/test-model' '%s/in/base'", work,
	         SLUICE_RESOURCES, work);
	tu_sh_ok(NULL, "%s lora '%s/in/l1' --base '%s/in/base' --seed 5", SLUICE_SYNTH, work, work);
	tu_sh_ok(NULL, "%s lora '%s/in/l2' --base '%s/in/base' --seed 6", SLUICE_SYNTH, work, work);
	snprintf(path, sizeof(path), "%s/in/batch-a.jsonl", work);
	{
		static const char batch[] =
		        "{\"prompt\":\"p\",\"completion\":\"c\",\"source\":\"feedback-A\"}\n";
		tu_write(path, batch, strlen(batch));
	}
	snprintf(path, sizeof(path), "%s/in/note.md", work);
	tu_write(path, "remember this\n", strlen("remember this\n"));
	tu_sh_ok(env, "%s init '%s' --root-key root --required-gates none", TU_SLUICE, repo);
	{
		static const char *const keys[][2] = {{"alice", "proposer"},
		                                      {"dave", "proposer"},
		                                      {"bob", "approver"},
		                                      {"ops", "operator"},
		                                      {"gr", "gate-runner"}};
		for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
			free(ok("key new %s --role %s --signer root", keys[i][0], keys[i][1]));
	}
	snprintf(path, sizeof(path), "%s/policy.yaml", work);
	{
		static const char pol[] = "version: 1\n"
		                          "default:\n"
		                          "  gates: {required: []}\n"
		                          "channels:\n"
		                          "  prod:\n"
		                          "    gates: {required: []}\n"
		                          "    approvals: {roles: [approver], count: 1}\n";
		tu_write(path, pol, strlen(pol));
	}
	v = ok_json("policy set '%s' --signer root", path);
	assert_true(json_is_true(json_object_get(v, "applied")));
	json_decref(v);

	propose(base, "propose base '%s/in/base' -m base --key alice --source web=%s", work,
	        digest_a2);
	propose(l1, "propose lora '%s/in/l1' --onto %s -m l1 --key alice --source feedback-A=%s",
	        work, base, digest_a1);
	propose(mem, "propose memory --onto %s --add '%s/in/note.md' -m note --key dave", l1, work);
	propose(rp,
	        "propose replay '%s/in/batch-a.jsonl' --onto %s -m batch --key alice "
	        "--source feedback-A=%s --source other=%s",
	        work, mem, digest_a2, digest_a1);
	/* A summary with a comma and quotes, for the CSV test. */
	propose(l2,
	        "propose lora '%s/in/l2' --onto %s -m 'l2, \"second\"' --name second --key dave",
	        work, base);

	promote_prod(base);
	newest_time(t_base);
	next_second();
	promote_prod(l1);
	newest_time(t_l1);
	next_second();
	gate_entry(mem, l1, "{\"regression\":\"pass\",\"safety\":\"fail\"}");
	gate_entry(rp, l1, "{\"regression\":\"inconclusive\"}");
	promote_prod(mem);
	promote_prod(rp);
	/* Drop the replay batch, then the adapter: x2 holds nothing from feedback-A. */
	propose(x1, "remove %s --onto prod -m 'drop batch' --key alice", rp);
	promote_prod(x1);
	propose(x2, "remove %s --onto prod -m 'drop adapter' --key alice", l1);
	promote_prod(x2);
	free(ok("rollback prod --reason 'bad removal' --key ops"));
	free(ok("promote %s --channel staging --key ops", l2));
	/* A key without the operator role: refused, and the refusal journaled. */
	{
		tu_run_result r = tu_sh(env, "%s -C '%s' promote %s --channel staging2 --key alice",
		                        TU_SLUICE, repo, l1);
		assert_int_not_equal(r.status, 0);
		tu_run_dispose(&r);
	}
	direct_verdict_and_move(l2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(work);
	free(work);
	return 0;
}

/* ---- the oracle: the journal read with libgit2, filtered record by record ---- */

typedef struct {
	json_t *rec;
	char entry[41];
	json_t *sources; /* a proposal's declared sources, else NULL */
} oentry;

static oentry *journal;
static size_t njournal;

static json_t *blob_json(git_repository *g, git_tree *t, const char *name)
{
	const git_tree_entry *te = git_tree_entry_byname(t, name);
	git_blob *b = NULL;
	json_error_t jerr;
	json_t *v;

	assert_non_null(te);
	assert_int_equal(git_blob_lookup(&b, g, git_tree_entry_id(te)), 0);
	v = json_loadb(git_blob_rawcontent(b), (size_t)git_blob_rawsize(b), 0, &jerr);
	git_blob_free(b);
	assert_non_null(v);
	return v;
}

static void load_journal(void)
{
	git_repository *g = NULL;
	git_reference *ref = NULL;
	git_oid id = {{0}};
	size_t cap = 0;

	if (journal)
		return;
	assert_int_equal(git_repository_open_bare(&g, repo), 0);
	assert_int_equal(git_reference_lookup(&ref, g, "refs/sluice/journal"), 0);
	id = *git_reference_target(ref);
	for (;;) {
		git_commit *c = NULL;
		git_tree *t = NULL;
		oentry e = {0};

		assert_int_equal(git_commit_lookup(&c, g, &id), 0);
		assert_int_equal(git_commit_tree(&t, c), 0);
		e.rec = blob_json(g, t, "record.json");
		git_oid_tostr(e.entry, sizeof(e.entry), &id);
		if (!strcmp(json_string_value(json_object_get(e.rec, "action")), "propose")) {
			git_commit *vc = NULL;
			git_tree *vt = NULL;
			git_oid vid;
			json_t *u;
			assert_int_equal(git_oid_fromstr(&vid, json_string_value(json_object_get(
			                                               e.rec, "version"))),
			                 0);
			assert_int_equal(git_commit_lookup(&vc, g, &vid), 0);
			assert_int_equal(git_commit_tree(&vt, vc), 0);
			u = blob_json(g, vt, "update.json");
			e.sources = json_incref(
			        json_object_get(json_object_get(u, "provenance"), "sources"));
			json_decref(u);
			git_tree_free(vt);
			git_commit_free(vc);
		}
		if (njournal == cap) {
			cap = cap ? cap * 2 : 64;
			journal = realloc(journal, cap * sizeof(*journal));
		}
		journal[njournal++] = e;
		git_tree_free(t);
		if (git_commit_parentcount(c) == 0) {
			git_commit_free(c);
			break;
		}
		id = *git_commit_parent_id(c, 0);
		git_commit_free(c);
	}
	/* Oldest first. */
	for (size_t i = 0; i < njournal / 2; i++) {
		oentry t = journal[i];
		journal[i] = journal[njournal - 1 - i];
		journal[njournal - 1 - i] = t;
	}
	git_reference_free(ref);
	git_repository_free(g);
}

static const char *field(json_t *rec, const char *name)
{
	const char *s = json_string_value(json_object_get(rec, name));
	return s ? s : "";
}

/* Whether a record matches a filter, by the definitions of docs/audit-queries.md. */
static int oracle_match(const oentry *e, const sluice_audit_filter *f)
{
	json_t *rec = e->rec, *res = json_object_get(rec, "results");
	const char *action = field(rec, "action"), *t = field(rec, "time");

	if (f->since && strcmp(t, f->since) < 0)
		return 0;
	if (f->until && strcmp(t, f->until) > 0)
		return 0;
	if (f->actor && strcmp(field(json_object_get(rec, "actor"), "name"), f->actor) &&
	    strcmp(field(json_object_get(rec, "actor"), "fingerprint"), f->actor))
		return 0;
	if (f->action && strcmp(action, f->action))
		return 0;
	if (f->channel && strcmp(field(rec, "channel"), f->channel))
		return 0;
	if (f->version) {
		static const char *const vf[] = {"version",   "to",     "from",
		                                 "candidate", "anchor", "previous"};
		int any = 0;
		for (size_t i = 0; i < 6; i++)
			any |= !strcmp(field(rec, vf[i]), f->version);
		if (!any)
			return 0;
	}
	if (f->kind && (strcmp(action, "propose") || strcmp(field(rec, "kind"), f->kind)))
		return 0;
	if (f->source) {
		int any = 0;
		json_t *s;
		size_t i;
		json_array_foreach(e->sources, i, s)
		{
			char nd[1200];
			snprintf(nd, sizeof(nd), "%s=%s", field(s, "name"), field(s, "digest"));
			any |= !strcmp(strchr(f->source, '=') ? nd : field(s, "name"), f->source);
		}
		if (!any)
			return 0;
	}
	if (f->gate && (strcmp(action, "gate") || !json_object_get(res, f->gate)))
		return 0;
	if (f->outcome) {
		const char *o = f->outcome;
		if (!strcmp(o, "moved")) {
			if (strcmp(action, "promote") && strcmp(action, "rollback") &&
			    strcmp(action, "reset"))
				return 0;
		} else if (!strcmp(o, "refused")) {
			if (strcmp(action, "refuse"))
				return 0;
		} else {
			const char *g;
			json_t *r;
			int any = 0;
			if (strcmp(action, "gate"))
				return 0;
			json_object_foreach(res, g, r) any |= (!f->gate || !strcmp(g, f->gate)) &&
			                                      !strcmp(json_string_value(r), o);
			if (!any)
				return 0;
		}
	}
	return 1;
}

/* The entry ids sluice audit log gives for a filter, through the library. */
static json_t *lib_log(const sluice_audit_filter *f, char index[16])
{
	sluice_ctx *ctx = NULL;
	sluice_repo *r = NULL;
	char *report = NULL;
	json_error_t jerr;
	json_t *v, *ids = json_array(), *e;
	size_t i;

	assert_int_equal(sluice_ctx_new(&ctx), 0);
	assert_int_equal(sluice_repo_open(&r, ctx, repo), 0);
	if (sluice_audit_log(r, f, index, &report) < 0)
		fprintf(stderr, "audit log: %s\n", sluice_ctx_errmsg(ctx));
	assert_non_null(report);
	v = json_loads(report, 0, &jerr);
	assert_non_null(v);
	json_array_foreach(v, i, e) json_array_append(ids, json_object_get(e, "entry"));
	json_decref(v);
	sluice_free(report);
	sluice_repo_free(r);
	sluice_ctx_free(ctx);
	return ids;
}

static json_t *oracle_log(const sluice_audit_filter *f)
{
	json_t *ids = json_array();

	load_journal();
	for (size_t i = 0; i < njournal && (!f->limit || json_array_size(ids) < f->limit); i++)
		if (oracle_match(&journal[i], f))
			json_array_append_new(ids, json_string(journal[i].entry));
	return ids;
}

/* The library's answer equals the oracle's, and is n entries long. */
static void check_filter(const sluice_audit_filter *f, size_t n, const char *index)
{
	char used[16] = "";
	json_t *got = lib_log(f, used), *want = oracle_log(f);

	if (!json_equal(got, want) || json_array_size(got) != n) {
		char *a = json_dumps(got, 0), *b = json_dumps(want, 0);
		fprintf(stderr, "got  %s\nwant %s (%zu)\n", a, b, n);
		free(a);
		free(b);
	}
	assert_true(json_equal(got, want));
	assert_int_equal(json_array_size(got), n);
	if (index)
		assert_string_equal(used, index);
	json_decref(got);
	json_decref(want);
}

static void test_queries__each_filter_returns_exactly_its_entries(void **state)
{
	char src[200];
	(void)state;

	load_journal();
	{
		sluice_audit_filter f = {0};
		check_filter(&f, njournal, "entries");
	}
	{
		sluice_audit_filter f = {.actor = "dave"};
		check_filter(&f, 2, "by_actor"); /* mem and l2 */
	}
	{
		sluice_audit_filter f = {.action = "propose"};
		check_filter(&f, 7, "by_action");
	}
	{
		sluice_audit_filter f = {.channel = "staging"};
		check_filter(&f, 1, "by_channel");
	}
	{
		/*
		 * l1: its proposal, approval, promotion, and the promotion from it to
		 * mem; not the gate entries that name it as their head (baseline).
		 */
		sluice_audit_filter f = {.version = l1};
		check_filter(&f, 4, "by_version");
	}
	{
		sluice_audit_filter f = {.version = x1};
		/* propose, approve, promote, approve (of x2, no), promote x2 (from), rollback (to)
		 */
		check_filter(&f, 5, "by_version");
	}
	{
		sluice_audit_filter f = {.kind = "remove"};
		check_filter(&f, 2, "by_kind");
	}
	{
		sluice_audit_filter f = {.kind = "removal"};
		char used[16];
		json_t *a = lib_log(&f, used);
		assert_int_equal(json_array_size(a), 2);
		json_decref(a);
	}
	{
		sluice_audit_filter f = {.source = "feedback-A"};
		check_filter(&f, 2, "by_source");
	}
	{
		snprintf(src, sizeof(src), "feedback-A=%s", digest_a1);
		sluice_audit_filter f = {.source = src};
		check_filter(&f, 1, "by_source");
	}
	{
		sluice_audit_filter f = {.gate = "safety"};
		check_filter(&f, 1, "by_gate");
	}
	{
		sluice_audit_filter f = {.outcome = "inconclusive"};
		check_filter(&f, 1, "by_outcome");
	}
	{
		sluice_audit_filter f = {.outcome = "refused"};
		check_filter(&f, 1, "by_outcome");
	}
	{
		/* prod: base, l1, mem, rp, x1, x2, then the rollback. */
		sluice_audit_filter f = {.outcome = "moved", .channel = "prod"};
		check_filter(&f, 7, NULL);
	}
	{
		/* The gate entry with regression=pass has safety=fail: not a regression fail. */
		sluice_audit_filter f = {.gate = "regression", .outcome = "fail"};
		check_filter(&f, 0, NULL);
	}
	{
		sluice_audit_filter f = {.gate = "safety", .outcome = "fail"};
		check_filter(&f, 1, NULL);
	}
	{
		sluice_audit_filter f = {.since = t_l1};
		size_t n = 0;
		for (size_t i = 0; i < njournal; i++)
			n += strcmp(field(journal[i].rec, "time"), t_l1) >= 0;
		check_filter(&f, n, "by_time");
	}
	{
		sluice_audit_filter f = {.until = t_base, .action = "promote"};
		check_filter(&f, 1, NULL);
	}
	{
		sluice_audit_filter f = {.since = t_base, .until = t_l1, .actor = "ops"};
		check_filter(&f, 2, NULL);
	}
	{
		sluice_audit_filter f = {.action = "approve", .limit = 3};
		check_filter(&f, 3, "by_action");
	}
}

static void test_queries__actor_by_fingerprint_equals_by_name(void **state)
{
	char fp[128] = "";
	(void)state;

	load_journal();
	for (size_t i = 0; i < njournal; i++)
		if (!strcmp(field(json_object_get(journal[i].rec, "actor"), "name"), "ops"))
			snprintf(fp, sizeof(fp), "%s",
			         field(json_object_get(journal[i].rec, "actor"), "fingerprint"));
	assert_true(strlen(fp) > 10);
	{
		sluice_audit_filter a = {.actor = "ops"}, b = {.actor = fp};
		char u1[16], u2[16];
		json_t *x = lib_log(&a, u1), *y = lib_log(&b, u2);
		assert_true(json_array_size(x) >= 8);
		assert_true(json_equal(x, y));
		json_decref(x);
		json_decref(y);
	}
}

static void test_queries__at_before_between_and_after_moves(void **state)
{
	json_t *v, *a;
	(void)state;

	v = ok_json("audit at prod 2000-01-01");
	assert_true(json_is_null(json_object_get(v, "served")));
	assert_non_null(strstr(json_string_value(json_object_get(v, "note")), "did not exist yet"));
	json_decref(v);

	v = ok_json("audit at prod %s", t_base);
	assert_string_equal(json_string_value(json_object_get(v, "served")), base);
	json_decref(v);

	v = ok_json("audit at prod %s", t_l1);
	assert_string_equal(json_string_value(json_object_get(v, "served")), l1);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(v, "move"), "action")),
	        "promote");
	assert_string_equal(json_string_value(json_object_get(json_object_get(v, "move"), "from")),
	                    base);
	assert_int_equal(strlen(json_string_value(json_object_get(v, "policy"))), 64);
	a = json_array_get(json_object_get(v, "approvals"), 0);
	assert_int_equal(json_array_size(json_object_get(v, "approvals")), 1);
	assert_string_equal(json_string_value(json_object_get(a, "name")), "bob");
	assert_int_equal(strlen(json_string_value(json_object_get(a, "statement"))), 64);
	assert_int_equal(strlen(json_string_value(json_object_get(a, "time"))), 20);
	json_decref(v);

	/* After everything: the rollback returned prod to x1. */
	v = ok_json("audit at prod 2999-01-01T00:00:00Z");
	assert_string_equal(json_string_value(json_object_get(v, "served")), x1);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(v, "move"), "action")),
	        "rollback");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(v, "move"), "reason")),
	        "bad removal");
	json_decref(v);

	/* The verdict the move used: the statement it recorded, the result from the gate's. */
	v = ok_json("audit at direct 2999-01-01");
	assert_string_equal(json_string_value(json_object_get(v, "served")), l2);
	a = json_object_get(json_object_get(v, "verdicts"), "regression");
	assert_string_equal(json_string_value(json_object_get(a, "result")), "pass");
	assert_string_equal(json_string_value(json_object_get(a, "statement")),
	                    "5555555555555555555555555555555555555555555555555555555555555555");
	assert_string_equal(json_string_value(json_object_get(a, "time")), "2026-01-02T03:04:05Z");
	json_decref(v);

	tu_refused(env, repo, 4, "never held a version", "audit at nochannel 2030-01-01");
}

static int has_version(json_t *arr, const char *key, const char *ver)
{
	json_t *e;
	size_t i;

	json_array_foreach(arr, i, e) if (!strcmp(field(e, key), ver)) return 1;
	return 0;
}

static void test_queries__lineage_follows_descendants_until_removed(void **state)
{
	json_t *v, *vers, *heads, *e;
	size_t i, open = 0;
	(void)state;

	v = ok_json("audit lineage --source feedback-A");
	vers = json_object_get(v, "versions");
	/* l1 and rp declare it; mem and x1 still hold l1's adapter; x2 removed it. */
	assert_int_equal(json_array_size(vers), 4);
	assert_true(has_version(vers, "version", l1));
	assert_true(has_version(vers, "version", mem));
	assert_true(has_version(vers, "version", rp));
	assert_true(has_version(vers, "version", x1));
	assert_false(has_version(vers, "version", x2));
	assert_false(has_version(vers, "version", base));
	assert_false(has_version(vers, "version", l2));
	json_array_foreach(vers, i, e)
	{
		int declared = !strcmp(field(e, "version"), l1) || !strcmp(field(e, "version"), rp);
		assert_int_equal(json_is_true(json_object_get(e, "declared")), declared);
	}
	assert_true(has_version(json_object_get(v, "dropped_by"), "version", x2));
	/* prod's heads: l1, mem, rp, x1, then x1 again after the rollback (still the head). */
	heads = json_object_get(v, "heads");
	assert_int_equal(json_array_size(heads), 5);
	json_array_foreach(heads, i, e)
	{
		assert_string_equal(field(e, "channel"), "prod");
		open += json_is_null(json_object_get(e, "to_time"));
	}
	assert_int_equal(open, 1);
	assert_string_equal(field(json_array_get(heads, 0), "version"), l1);
	assert_string_equal(field(json_array_get(heads, 0), "from_time"), t_l1);
	assert_string_equal(field(json_array_get(heads, 4), "version"), x1);
	json_decref(v);

	/* By name=digest: the replay batch declared another digest, but holds l1's adapter. */
	v = ok_json("audit lineage --source feedback-A=%s", digest_a1);
	assert_int_equal(json_array_size(json_object_get(v, "versions")), 4);
	json_decref(v);
	v = ok_json("audit lineage --source other");
	vers = json_object_get(v, "versions");
	/* rp's batch: x1 dropped it. */
	assert_int_equal(json_array_size(vers), 1);
	assert_true(has_version(vers, "version", rp));
	assert_true(has_version(json_object_get(v, "dropped_by"), "version", x1));
	json_decref(v);
	v = ok_json("audit lineage --source nobody");
	assert_int_equal(json_array_size(json_object_get(v, "versions")), 0);
	assert_int_equal(json_array_size(json_object_get(v, "heads")), 0);
	json_decref(v);
}

static void test_queries__csv_quotes_fields(void **state)
{
	char *o, line[512];
	(void)state;

	o = ok("audit log --kind lora --actor dave --csv");
	assert_non_null(
	        strstr(o, "seq,entry,time,action,actor,fingerprint,channel,version,summary\r\n"));
	snprintf(line, sizeof(line), ",%s,\"lora: l2, \"\"second\"\"\"\r\n", l2);
	assert_non_null(strstr(o, line));
	/* Exactly a header and one record. */
	{
		size_t crlf = 0;
		for (const char *p = o; (p = strstr(p, "\r\n")); p += 2)
			crlf++;
		assert_int_equal(crlf, 2);
	}
	free(o);
}

static void test_queries__bad_values_name_the_flag(void **state)
{
	(void)state;
	tu_refused(env, repo, 4, "--since '2026-13-01'", "audit log --since 2026-13-01");
	tu_refused(env, repo, 4, "--until '2026-01-01T25:00:00Z'",
	           "audit log --until 2026-01-01T25:00:00Z");
	tu_refused(env, repo, 4, "--since 2026-02-01T00:00:00Z is after --until",
	           "audit log --since 2026-02-01 --until 2026-01-01");
	tu_refused(env, repo, 4, "--action 'bogus'", "audit log --action bogus");
	tu_refused(env, repo, 4, "--kind 'weights'", "audit log --kind weights");
	tu_refused(env, repo, 4, "--outcome 'maybe'", "audit log --outcome maybe");
	tu_refused(env, repo, 4, "--gate 'speed'", "audit log --gate speed");
	tu_refused(env, repo, 4, "--channel '..'", "audit log --channel ..");
	tu_refused(env, repo, 4, "--version 'xyz'", "audit log --version xyz");
	tu_refused(env, repo, 4, "--version '0000000'", "audit log --version 0000000");
	tu_refused(env, repo, 4, "--source '=x'", "audit log --source =x");
	tu_refused(env, repo, 3, "--limit '0'", "audit log --limit 0");
	tu_refused(env, repo, 3, "--limit 'ten'", "audit log --limit ten");
	tu_refused(env, repo, 4, "TIME 'yesterday'", "audit at prod yesterday");
	tu_refused(env, repo, 4, "--source 'a='", "audit lineage --source a=");
	tu_refused(env, repo, 3, "--source", "audit lineage");
}

static void test_queries__rebuilt_index_gives_identical_answers(void **state)
{
	static const char *const queries[] = {
	        "audit log --json",
	        "audit log --actor alice --json",
	        "audit log --version %s --json",
	        "audit log --source feedback-A --json",
	        "audit log --outcome moved --channel prod --json",
	        "audit log --gate regression --json",
	        "audit lineage --source feedback-A --json",
	        "audit at prod 2999-01-01 --json",
	};
	char *before[8], *after[8];
	uint64_t n = 0;
	(void)state;

	for (size_t i = 0; i < 8; i++)
		before[i] = ok(queries[i], l1);
	/* Rebuild from the journal, then delete the index altogether (opened again on first use).
	 */
	{
		sluice_ctx *ctx = NULL;
		sluice_repo *r = NULL;
		assert_int_equal(sluice_ctx_new(&ctx), 0);
		assert_int_equal(sluice_repo_open(&r, ctx, repo), 0);
		assert_int_equal(sluice_jindex__rebuild(r, &n), 0);
		load_journal();
		assert_int_equal(n, njournal);
		sluice_repo_free(r);
		sluice_ctx_free(ctx);
	}
	for (size_t i = 0; i < 8; i++) {
		after[i] = ok(queries[i], l1);
		assert_string_equal(before[i], after[i]);
		free(after[i]);
	}
	tu_sh_ok(NULL, "rm -rf '%s/sluice/journal-index'", repo);
	for (size_t i = 0; i < 8; i++) {
		after[i] = ok(queries[i], l1);
		assert_string_equal(before[i], after[i]);
		free(after[i]);
		free(before[i]);
	}
}

/* ---- lineage from the index's lineage records ------------------------------ */

/* The sources whose lineage the tests below compare, as CLI arguments. */
static const char *const lineage_sources[] = {"feedback-A", "feedback-A=" /* + digest_a1 */,
                                              "other", "nobody"};
#define NLINEAGE 4

static char *lineage_json(size_t i)
{
	return i == 1 ? ok("audit lineage --source feedback-A=%s --json", digest_a1)
	              : ok("audit lineage --source %s --json", lineage_sources[i]);
}

/*
 * Each lineage query answers exactly as it did in before[]; with release,
 * before[] is freed (its last comparison).
 */
static void assert_lineage_unchanged(char *before[NLINEAGE], int release)
{
	for (size_t i = 0; i < NLINEAGE; i++) {
		char *after = lineage_json(i);
		assert_string_equal(before[i], after);
		free(after);
		if (release)
			free(before[i]);
	}
}

/*
 * The journal index opened directly with LMDB, as a damaged or older index
 * would be found on disk (no sluice process is running: the CLI ran and
 * exited). meta and lineage are its databases of those names.
 */
typedef struct {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta, lineage;
} rawix;

static void rawix_open(rawix *x)
{
	char dir[4200];

	snprintf(dir, sizeof(dir), "%s/sluice/journal-index", repo);
	assert_int_equal(mdb_env_create(&x->env), 0);
	assert_int_equal(mdb_env_set_maxdbs(x->env, 24), 0);
	assert_int_equal(mdb_env_set_mapsize(x->env, (size_t)8 << 30), 0);
	assert_int_equal(mdb_env_open(x->env, dir, MDB_NOTLS, 0644), 0);
	assert_int_equal(mdb_txn_begin(x->env, NULL, 0, &x->txn), 0);
	assert_int_equal(mdb_dbi_open(x->txn, "meta", 0, &x->meta), 0);
	assert_int_equal(mdb_dbi_open(x->txn, "lineage", 0, &x->lineage), 0);
}

static void rawix_close(rawix *x)
{
	assert_int_equal(mdb_txn_commit(x->txn), 0);
	mdb_env_close(x->env);
}

static size_t rawix_count(rawix *x, MDB_dbi dbi)
{
	MDB_stat st;
	assert_int_equal(mdb_stat(x->txn, dbi, &st), 0);
	return st.ms_entries;
}

static size_t proposals_in_journal(void)
{
	size_t n = 0;
	load_journal();
	for (size_t i = 0; i < njournal; i++)
		n += !strcmp(json_string_value(json_object_get(journal[i].rec, "action")),
		             "propose");
	return n;
}

/* Deleted and rebuilt (sluice reindex), the index gives the same lineage, byte for byte. */
static void test_queries__lineage_same_after_deleting_and_rebuilding(void **state)
{
	char *before[NLINEAGE], *o;
	rawix x;
	(void)state;

	for (size_t i = 0; i < NLINEAGE; i++)
		before[i] = lineage_json(i);
	tu_sh_ok(NULL, "rm -rf '%s/sluice/journal-index'", repo);
	o = ok("reindex --json");
	free(o);
	/* Every proposed version has its record: the answers below come from the index. */
	rawix_open(&x);
	assert_int_equal(rawix_count(&x, x.lineage), proposals_in_journal());
	rawix_close(&x);
	assert_lineage_unchanged(before, 1);
}

/*
 * Lineage reads the index, not git: a lineage record altered in place shows
 * in the answer. And a version with no record (its objects did not load when
 * it was indexed) is read from git, to the same answer.
 */
static void test_queries__lineage_reads_the_index_records(void **state)
{
	char *before[NLINEAGE];
	git_oid id;
	json_t *v, *e;
	size_t i, seen = 0;
	rawix x;
	(void)state;

	for (i = 0; i < NLINEAGE; i++)
		before[i] = lineage_json(i);
	rawix_open(&x);
	assert_int_equal(git_oid_fromstr(&id, l1), 0);
	{
		MDB_val k = {20, id.id}, val;
		unsigned char *copy, *p;
		assert_int_equal(mdb_get(x.txn, x.lineage, &k, &val), 0);
		copy = malloc(val.mv_size);
		memcpy(copy, val.mv_data, val.mv_size);
		/* The kind in the record's metadata: "lora" becomes "LORA" (same length). */
		for (p = NULL, i = 0; !p && i + 13 <= val.mv_size; i++)
			if (!memcmp(copy + i, "\"kind\":\"lora\"", 13))
				p = copy + i;
		assert_non_null(p);
		memcpy(p + 8, "LORA", 4);
		val.mv_data = copy;
		assert_int_equal(mdb_put(x.txn, x.lineage, &k, &val, 0), 0);
		free(copy);
	}
	rawix_close(&x);
	v = ok_json("audit lineage --source feedback-A");
	json_array_foreach(json_object_get(v, "versions"), i, e)
	{
		if (strcmp(field(e, "version"), l1))
			continue;
		assert_string_equal(field(e, "kind"), "LORA");
		seen++;
	}
	assert_int_equal(seen, 1);
	json_decref(v);

	/* No records at all: every version is loaded from git, to the same bytes. */
	rawix_open(&x);
	assert_int_equal(mdb_drop(x.txn, x.lineage, 0), 0);
	rawix_close(&x);
	assert_lineage_unchanged(before, 0);
	/* sluice reindex writes them again. */
	free(ok("reindex"));
	rawix_open(&x);
	assert_int_equal(rawix_count(&x, x.lineage), proposals_in_journal());
	rawix_close(&x);
	assert_lineage_unchanged(before, 1);
}

/*
 * An index written in the layout before lineage records (format
 * "sluice-jindex-3") is rebuilt when opened, not read: here it holds a
 * record no current reader understands, which a reader that trusted it
 * would fail on.
 */
static void test_queries__old_format_index_is_rebuilt(void **state)
{
	char *before[NLINEAGE];
	git_oid id;
	rawix x;
	(void)state;

	for (size_t i = 0; i < NLINEAGE; i++)
		before[i] = lineage_json(i);
	rawix_open(&x);
	{
		MDB_val fk = {6, (void *)"format"}, fv = {15, (void *)"sluice-jindex-3"};
		MDB_val k = {20, id.id}, bad = {7, (void *)"\x09garbage"};
		assert_int_equal(mdb_put(x.txn, x.meta, &fk, &fv, 0), 0);
		assert_int_equal(git_oid_fromstr(&id, l1), 0);
		assert_int_equal(mdb_put(x.txn, x.lineage, &k, &bad, 0), 0);
	}
	rawix_close(&x);
	assert_lineage_unchanged(before, 1);
	rawix_open(&x);
	{
		MDB_val fk = {6, (void *)"format"}, fv, k = {20, id.id}, val;
		assert_int_equal(mdb_get(x.txn, x.meta, &fk, &fv), 0);
		assert_int_equal(fv.mv_size, 15);
		assert_memory_equal(fv.mv_data, "sluice-jindex-5", 15);
		assert_int_equal(mdb_get(x.txn, x.lineage, &k, &val), 0);
		assert_true(val.mv_size > 7);
	}
	assert_int_equal(rawix_count(&x, x.lineage), proposals_in_journal());
	rawix_close(&x);
	/* The same garbage under the current format is reported, with what to do. */
	rawix_open(&x);
	{
		MDB_val k = {20, id.id}, bad = {7, (void *)"\x09garbage"};
		assert_int_equal(mdb_put(x.txn, x.lineage, &k, &bad, 0), 0);
	}
	rawix_close(&x);
	tu_refused(env, repo, 1, "run sluice reindex", "audit lineage --source feedback-A");
	free(ok("reindex"));
}

/*
 * The record of a version an action proposes is written by the next
 * command's sync of the index (an action leaves the index to the next
 * reader), with no reindex.
 */
static void test_queries__new_proposal_gets_its_record(void **state)
{
	char nv[41];
	git_oid id;
	sluice_jindex_vinfo vi;
	sluice_ctx *ctx = NULL;
	json_t *v, *e;
	rawix x;
	int adapters = 0;
	(void)state;

	propose(nv,
	        "propose memory --onto %s --add '%s/in/note.md' -m note2 --key dave "
	        "--source feedback-B=%s",
	        l2, work, digest_a1);
	free(ok("status"));
	assert_int_equal(git_oid_fromstr(&id, nv), 0);
	assert_int_equal(sluice_ctx_new(&ctx), 0);
	rawix_open(&x);
	{
		MDB_val k = {20, id.id}, val;
		assert_int_equal(mdb_get(x.txn, x.lineage, &k, &val), 0);
		assert_int_equal(sluice_jindex__vinfo_parse(ctx, &vi, val.mv_data, val.mv_size), 0);
	}
	rawix_close(&x);
	assert_string_equal(json_string_value(json_object_get(vi.meta, "kind")), "memory");
	assert_string_equal(json_string_value(json_object_get(vi.meta, "parent")), l2);
	assert_string_equal(json_string_value(json_object_get(vi.meta, "summary")), "note2");
	/* It brought its note; its state also holds l2's adapter and the base. */
	assert_int_equal(vi.nbrought, 1);
	assert_int_equal(vi.brought[0].section, SLUICE_JX_MEMORY);
	for (size_t i = 0; i < vi.ncomps; i++)
		adapters += vi.comps[i].section == SLUICE_JX_ADAPTERS &&
		            !strcmp(vi.comps[i].name, "second");
	assert_int_equal(adapters, 1);
	assert_int_equal(vi.comps[0].section, SLUICE_JX_BASE);
	v = ok_json("audit lineage --source feedback-B");
	assert_int_equal(json_array_size(json_object_get(v, "versions")), 1);
	e = json_array_get(json_object_get(v, "versions"), 0);
	assert_string_equal(field(e, "version"), nv);
	assert_true(json_is_true(json_object_get(e, "declared")));
	assert_int_equal(json_array_size(json_object_get(e, "contains")), 1);
	assert_int_equal(
	        strncmp(json_string_value(json_array_get(json_object_get(e, "contains"), 0)),
	                "memory/", 7),
	        0);
	json_decref(v);
	sluice_jindex__vinfo_dispose(&vi);
	sluice_ctx_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_queries__each_filter_returns_exactly_its_entries),
	        cmocka_unit_test(test_queries__actor_by_fingerprint_equals_by_name),
	        cmocka_unit_test(test_queries__at_before_between_and_after_moves),
	        cmocka_unit_test(test_queries__lineage_follows_descendants_until_removed),
	        cmocka_unit_test(test_queries__csv_quotes_fields),
	        cmocka_unit_test(test_queries__bad_values_name_the_flag),
	        cmocka_unit_test(test_queries__rebuilt_index_gives_identical_answers),
	        cmocka_unit_test(test_queries__lineage_same_after_deleting_and_rebuilding),
	        cmocka_unit_test(test_queries__lineage_reads_the_index_records),
	        cmocka_unit_test(test_queries__old_format_index_is_rebuilt),
	        cmocka_unit_test(test_queries__new_proposal_gets_its_record),
	};
	sluice_global_init();
	return cmocka_run_group_tests(tests, setup, teardown);
}
