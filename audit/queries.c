/*
 * audit/queries.c - auditor queries over the journal's derived index:
 * filtered entry lists, what a channel served at an instant, and the
 * lineage of a data source. See sluice/audit_queries.h and
 * docs/audit-queries.md.
 */
#include "entry.h"
#include "jindex.h"
#include "version.h"
#include "sluice/audit_queries.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The actions the journal records (docs/audit-queries.md). */
static const char *const index_names[SLUICE_JX_NFILTERS] = {
        "by_time", "by_actor",  "by_action", "by_channel", "by_version",
        "by_kind", "by_source", "by_gate",   "by_outcome"};

static int in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

static int digits(const char *s, size_t n, int lo, int hi)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= lo && v <= hi ? v : -1;
}

/*
 * A time flag's value into out ("YYYY-MM-DDTHH:MM:SSZ"): the full form, or
 * a date, which stands for its first (end = 0) or last second.
 */
static int parse_time(sluice_ctx *ctx, char out[21], const char *s, const char *flag, int end)
{
	size_t n = strlen(s);

	if ((n == 10 ||
	     (n == 20 && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == 'Z')) &&
	    s[4] == '-' && s[7] == '-' && digits(s, 4, 1, 9999) >= 0 &&
	    digits(s + 5, 2, 1, 12) >= 0 && digits(s + 8, 2, 1, 31) >= 0 &&
	    (n == 10 || (digits(s + 11, 2, 0, 23) >= 0 && digits(s + 14, 2, 0, 59) >= 0 &&
	                 digits(s + 17, 2, 0, 60) >= 0))) {
		if (n == 20)
			memcpy(out, s, 21);
		else
			snprintf(out, 21, "%.10sT%s", s, end ? "23:59:59Z" : "00:00:00Z");
		return SLUICE_OK;
	}
	return sluice_ctx__error(ctx, SLUICE_EINVALID,
	                         "%s '%s': expected YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD", flag, s);
}

/* One filter as an index value: the database and the key value in it. */
typedef struct {
	int which;
	char *value; /* owned */
	const char *until;
} cond;

typedef struct {
	cond c[SLUICE_JX_NFILTERS];
	size_t n;
	char since[21], until[21];
	int has_time;
	const char *gate, *outcome; /* for the per-gate result check */
} plan;

static void plan_dispose(plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->c[i].value);
}

static int add_cond(sluice_ctx *ctx, plan *p, int which, const char *prefix, const char *value)
{
	size_t len = strlen(prefix) + strlen(value) + 1;
	char *v = sluice__malloc(ctx, len);

	if (!v)
		return SLUICE_ENOMEM;
	snprintf(v, len, "%s%s", prefix, value);
	p->c[p->n].which = which;
	p->c[p->n].value = v;
	p->c[p->n].until = NULL;
	p->n++;
	return SLUICE_OK;
}

/* A full version id for --version: 40 hex digits, or a prefix of 7+ that names one object. */
static int resolve_version(sluice_repo *repo, char out[GIT_OID_HEXSZ + 1], const char *v)
{
	size_t n = strlen(v), i;
	git_object *obj = NULL;
	git_oid id;

	for (i = 0; i < n && strchr("0123456789abcdef", v[i]); i++)
		;
	if (i != n || n < 7 || n > GIT_OID_HEXSZ)
		return sluice_ctx__error(
		        repo->ctx, SLUICE_EINVALID,
		        "--version '%s': expected a version id (7 to 40 lower-case "
		        "hex digits)",
		        v);
	if (n == GIT_OID_HEXSZ) {
		memcpy(out, v, n + 1);
		return SLUICE_OK;
	}
	if (git_oid_fromstrn(&id, v, n) < 0 ||
	    git_object_lookup_prefix(&obj, repo->git, &id, n, GIT_OBJECT_COMMIT) < 0)
		return sluice_ctx__error(repo->ctx, SLUICE_EINVALID,
		                         "--version '%s': no single version has this prefix", v);
	git_oid_tostr(out, GIT_OID_HEXSZ + 1, git_object_id(obj));
	git_object_free(obj);
	return SLUICE_OK;
}

static int build_plan(sluice_repo *repo, plan *p, const sluice_audit_filter *f)
{
	sluice_ctx *ctx = repo->ctx;
	int error = SLUICE_OK;

	memset(p, 0, sizeof(*p));
	if (f->since && (error = parse_time(ctx, p->since, f->since, "--since", 0)) < 0)
		return error;
	if (f->until && (error = parse_time(ctx, p->until, f->until, "--until", 1)) < 0)
		return error;
	if (f->since && f->until && strcmp(p->since, p->until) > 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "--since %s is after --until %s",
		                         p->since, p->until);
	if (f->since || f->until) {
		p->has_time = 1;
		if ((error = add_cond(ctx, p, SLUICE_JX_TIME, "", p->since)) < 0)
			return error;
		p->c[p->n - 1].until = f->until ? p->until : NULL;
	}
	if (f->actor) {
		if (!*f->actor || strlen(f->actor) > 256)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "--actor '%s': expected a key name or a "
			                         "SHA256:... fingerprint",
			                         f->actor);
		error = add_cond(ctx, p, SLUICE_JX_ACTOR,
		                 strncmp(f->actor, "SHA256:", 7) ? "name:" : "fp:", f->actor);
		if (error < 0)
			return error;
	}
	if (f->action) {
		if (!sluice_journal__role_for(f->action))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "--action '%s': not a journal action (propose, "
			                         "promote, rollback, reset, anchor, gate, approve, "
			                         "refuse, init, key.add, key.revoke, root.rotate, "
			                         "root.sign, policy.set, suite.add, purge, hook)",
			                         f->action);
		if ((error = add_cond(ctx, p, SLUICE_JX_ACTION, "", f->action)) < 0)
			return error;
	}
	if (f->channel) {
		if (!sluice_channel__name_ok(f->channel))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "--channel '%s': not a valid channel name",
			                         f->channel);
		if ((error = add_cond(ctx, p, SLUICE_JX_CHANNEL, "", f->channel)) < 0)
			return error;
	}
	if (f->version) {
		char hex[GIT_OID_HEXSZ + 1];
		if ((error = resolve_version(repo, hex, f->version)) < 0 ||
		    (error = add_cond(ctx, p, SLUICE_JX_VERSION, "", hex)) < 0)
			return error;
	}
	if (f->kind) {
		static const char *const kinds[] = {"base",   "lora",   "memory",
		                                    "replay", "remove", NULL};
		const char *k = strcmp(f->kind, "removal") ? f->kind : "remove";
		if (!in_list(kinds, k))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "--kind '%s': expected base, lora, memory, replay or "
			        "remove",
			        f->kind);
		if ((error = add_cond(ctx, p, SLUICE_JX_KIND, "", k)) < 0)
			return error;
	}
	if (f->source) {
		const char *eq = strchr(f->source, '=');
		if (!*f->source || eq == f->source || (eq && !eq[1]) || strlen(f->source) > 1024)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "--source '%s': expected NAME or NAME=DIGEST",
			                         f->source);
		if ((error = add_cond(ctx, p, SLUICE_JX_SOURCE, eq ? "nd:" : "n:", f->source)) < 0)
			return error;
	}
	if (f->gate) {
		if (!sluice_gates__is_gate(f->gate))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "--gate '%s': expected regression, safety or "
			                         "poisoning",
			                         f->gate);
		if ((error = add_cond(ctx, p, SLUICE_JX_GATE, "", f->gate)) < 0)
			return error;
		p->gate = f->gate;
	}
	if (f->outcome) {
		static const char *const outcomes[] = {"pass",    "fail",  "inconclusive",
		                                       "refused", "moved", NULL};
		if (!in_list(outcomes, f->outcome))
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "--outcome '%s': expected pass, fail, inconclusive, "
			        "refused or moved",
			        f->outcome);
		if ((error = add_cond(ctx, p, SLUICE_JX_OUTCOME, "", f->outcome)) < 0)
			return error;
		p->outcome = f->outcome;
	}
	return SLUICE_OK;
}

/* ---- scanning ------------------------------------------------------------ */

struct counter {
	size_t n, cap;
};

static int count_cb(void *data, uint64_t seq)
{
	struct counter *c = data;

	(void)seq;
	return ++c->n >= c->cap;
}

/*
 * The condition with the fewest entries. Counting each fully would cost
 * as much as the largest, so they are counted in rounds with a growing cap
 * until one ends under it: at most (conditions x 8 x smallest) steps.
 */
static int pick(sluice_jindex_read *r, plan *p, size_t *best)
{
	size_t cap = 64;
	int error;

	*best = 0;
	if (p->n < 2)
		return SLUICE_OK;
	for (;;) {
		size_t min = SIZE_MAX;
		for (size_t i = 0; i < p->n; i++) {
			struct counter c = {0, cap};
			if ((error = sluice_jindex__scan(r, p->c[i].which, p->c[i].value,
			                                 p->c[i].until, count_cb, &c)) < 0)
				return error;
			if (c.n < cap && c.n < min) {
				min = c.n;
				*best = i;
			}
		}
		if (min != SIZE_MAX)
			return SLUICE_OK;
		cap = cap > SIZE_MAX / 8 ? SIZE_MAX : cap * 8;
	}
}

struct seqs {
	sluice_ctx *ctx;
	uint64_t *v;
	size_t n, cap, limit; /* limit: stop after this many (0: all) */
	int err;
};

static int seqs_cb(void *data, uint64_t seq)
{
	struct seqs *s = data;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		void *p = cap > SIZE_MAX / sizeof(*s->v)
		                  ? NULL
		                  : sluice__realloc(s->ctx, s->v, cap * sizeof(*s->v));
		if (!p)
			return SLUICE_ENOMEM;
		s->v = p;
		s->cap = cap;
	}
	s->v[s->n++] = seq;
	return s->limit && s->n >= s->limit;
}

static int cmp_seq(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static const char *const version_fields[] = {"version", "to",       "from", "candidate",
                                             "anchor",  "previous", NULL};

/* A one-line account of what the entry did. */
static int summarise(sluice_ctx *ctx, sluice_buf *b, json_t *rec, const char *action)
{
#define F(name) sluice__jstr(json_object_get(rec, name))
	if (!strcmp(action, "propose"))
		return sluice_buf__printf(ctx, b, "%s: %s", F("kind"), F("summary"));
	if (sluice_journal__is_move(action)) {
		int error = sluice_buf__printf(ctx, b, "%.12s -> %.12s",
		                               *F("from") ? F("from") : "(none)", F("to"));
		if (!error && *F("reason"))
			error = sluice_buf__printf(ctx, b, " (%s)", F("reason"));
		return error;
	}
	if (!strcmp(action, "anchor"))
		return sluice_buf__printf(ctx, b, "anchor %.12s (%s)", F("anchor"), F("reason"));
	if (!strcmp(action, "gate")) {
		const char *g;
		json_t *res;
		int error = sluice_buf__printf(ctx, b, "%.12s:", F("candidate"));
		json_object_foreach(json_object_get(rec, "results"), g, res)
		{
			if (!error)
				error = sluice_buf__printf(ctx, b, " %s=%s", g, sluice__jstr(res));
		}
		return error;
	}
	if (!strcmp(action, "approve"))
		return sluice_buf__printf(ctx, b, "%s approves %.12s", F("approver"),
		                          F("candidate"));
	if (!strcmp(action, "purge")) {
		/* A tombstone: which update, what it removed, why. */
		json_t *f;
		size_t i, n = json_array_size(json_object_get(rec, "purged"));
		int error = sluice_buf__printf(ctx, b, "purged %.12s:", F("version"));
		json_array_foreach(json_object_get(rec, "purged"), i, f)
		{
			if (!error && i < 3)
				error = sluice_buf__printf(
				        ctx, b, " %s", sluice__jstr(json_object_get(f, "path")));
		}
		if (!error && n > 3)
			error = sluice_buf__printf(ctx, b, " and %zu more", n - 3);
		if (!error)
			error = sluice_buf__printf(ctx, b, " (%s)", F("reason"));
		return error;
	}
	if (!strcmp(action, "refuse"))
		return sluice_buf__printf(ctx, b, "%s refused (%s): %s", F("attempted"), F("rule"),
		                          F("message"));
	if (!strcmp(action, "hook")) {
		/* A delivery attempt (hooks/): which hook, which move, what the server said. */
		json_int_t status = json_integer_value(json_object_get(rec, "status"));
		int error = sluice_buf__printf(
		        ctx, b, "%s %s move %lld: %s", F("hook"), F("type"),
		        (long long)json_integer_value(json_object_get(rec, "move")),
		        json_is_true(json_object_get(rec, "ok")) ? "acknowledged" : "failed");
		if (!error && status)
			error = sluice_buf__printf(ctx, b, " (HTTP %lld)", (long long)status);
		if (!error && *F("error"))
			error = sluice_buf__printf(ctx, b, ": %s", F("error"));
		return error;
	}
	if (*F("name"))
		return sluice_buf__printf(ctx, b, "%s", F("name"));
	return sluice_buf__puts(ctx, b, "");
#undef F
}

int sluice_audit__entry_json(sluice_ctx *ctx, json_t **out, uint64_t seq, const git_oid *id,
                             json_t *rec)
{
	const char *action = sluice__jstr(json_object_get(rec, "action")), *ver = NULL;
	json_t *actor = json_object_get(rec, "actor"), *e;
	char hex[GIT_OID_HEXSZ + 1];
	sluice_buf sum = {0};
	int error;

	for (size_t i = 0; version_fields[i] && !ver; i++)
		if (json_is_string(json_object_get(rec, version_fields[i])))
			ver = json_string_value(json_object_get(rec, version_fields[i]));
	if ((error = summarise(ctx, &sum, rec, action)) < 0 ||
	    (error = sluice_buf__cstr(ctx, &sum)) < 0)
		goto done;
	git_oid_tostr(hex, sizeof(hex), id);
	e = json_pack("{s:I,s:s,s:O,s:s,s:O,s:O,s:O,s:s?,s:s}", "seq", (json_int_t)seq, "entry",
	              hex, "time", json_object_get(rec, "time"), "action", action, "actor",
	              json_object_get(actor, "name"), "fingerprint",
	              json_object_get(actor, "fingerprint"), "channel",
	              json_is_string(json_object_get(rec, "channel"))
	                      ? json_object_get(rec, "channel")
	                      : json_null(),
	              "version", ver, "summary", (const char *)sum.ptr);
	if (!e) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "journal entry %llu lacks its time or actor",
		                          (unsigned long long)seq);
		goto done;
	}
	if (!ver)
		json_object_set_new(e, "version", json_null());
	*out = e;
done:
	sluice_buf__dispose(&sum);
	return error;
}

/* Whether entry seq (record rec) meets every condition but skip. */
static int matches(sluice_jindex_read *r, plan *p, size_t skip, uint64_t seq, json_t *rec, int *ok)
{
	int error, found;

	*ok = 0;
	for (size_t i = 0; i < p->n; i++) {
		if (i == skip)
			continue;
		if (p->c[i].which == SLUICE_JX_TIME) {
			const char *t = sluice__jstr(json_object_get(rec, "time"));
			if ((*p->since && strcmp(t, p->since) < 0) ||
			    (*p->until && strcmp(t, p->until) > 0))
				return SLUICE_OK;
			continue;
		}
		if ((error = sluice_jindex__has(r, p->c[i].which, p->c[i].value, seq, &found)) < 0)
			return error;
		if (!found)
			return SLUICE_OK;
	}
	/* With both, the gate's own result is the outcome asked for. */
	if (p->gate && p->outcome &&
	    !strcmp(sluice__jstr(json_object_get(rec, "action")), "gate") &&
	    strcmp(sluice__jstr(json_object_get(json_object_get(rec, "results"), p->gate)),
	           p->outcome))
		return SLUICE_OK;
	*ok = 1;
	return SLUICE_OK;
}

/* What the scan of the chosen index feeds: each seq checked and, if it matches, listed. */
struct emit {
	sluice_ctx *ctx;
	sluice_jindex_read *r;
	plan *p;
	size_t skip, limit, found;
	json_t *arr;
};

static int emit_cb(void *data, uint64_t seq)
{
	struct emit *em = data;
	json_t *rec = NULL, *e = NULL;
	git_oid id;
	int ok, error;

	if ((error = sluice_jindex__entry(em->r, seq, &id, &rec)) < 0)
		return error;
	if ((error = matches(em->r, em->p, em->skip, seq, rec, &ok)) == 0 && ok &&
	    (error = sluice_audit__entry_json(em->ctx, &e, seq, &id, rec)) == 0) {
		json_array_append_new(em->arr, e);
		em->found++;
	}
	json_decref(rec);
	if (error < 0)
		return error;
	/* Journal order: the first limit matches are the answer, the rest is not read. */
	return em->limit && em->found >= em->limit;
}

int sluice_audit_log(sluice_repo *repo, const sluice_audit_filter *filter, char index[16],
                     char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_jindex_read *r = NULL;
	struct seqs s = {ctx, NULL, 0, 0, 0, 0};
	struct emit em = {ctx, NULL, NULL, SIZE_MAX, filter->limit, 0, json_array()};
	size_t best = 0;
	plan p;
	int error;

	if ((error = build_plan(repo, &p, filter)) < 0 ||
	    (error = sluice_jindex__read_begin(repo, &r)) < 0 || (error = pick(r, &p, &best)) < 0)
		goto done;
	em.r = r;
	em.p = &p;
	if (p.n)
		em.skip = best;
	if (index)
		snprintf(index, 16, "%s", p.n ? index_names[p.c[best].which] : "entries");
	if (p.n == 0) {
		error = sluice_jindex__scan(r, SLUICE_JX_ALL, NULL, NULL, emit_cb, &em);
	} else if (p.c[best].which != SLUICE_JX_TIME) {
		error = sluice_jindex__scan(r, p.c[best].which, p.c[best].value, p.c[best].until,
		                            emit_cb, &em);
	} else {
		/* A time range is in time order: its seqs are sorted into journal order first. */
		if ((error = sluice_jindex__scan(r, SLUICE_JX_TIME, p.c[best].value,
		                                 p.c[best].until, seqs_cb, &s)) < 0)
			goto done;
		if (s.n)
			qsort(s.v, s.n, sizeof(*s.v), cmp_seq);
		for (size_t i = 0; i < s.n && error == 0; i++)
			error = emit_cb(&em, s.v[i]);
		if (error > 0)
			error = 0;
	}
	if (error < 0)
		goto done;
	error = sluice_repo__report(ctx, report, em.arr);
	em.arr = NULL;
done:
	sluice_jindex__read_end(r);
	free(s.v);
	plan_dispose(&p);
	json_decref(em.arr);
	return error;
}

/* ---- audit at ------------------------------------------------------------ */

int sluice_audit_at(sluice_repo *repo, const char *channel, const char *time, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_jindex_read *r = NULL;
	json_t *mv = NULL, *before = NULL, *out = NULL, *first = NULL;
	git_commit *entry = NULL;
	char when[21], hex[GIT_OID_HEXSZ + 1];
	const char *to, *g;
	json_t *c, *approvals, *verdicts, *v;
	uint64_t seq, first_seq;
	git_oid id;
	size_t i;
	int error;

	if (!channel || !sluice_channel__name_ok(channel))
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "'%s' is not a valid channel name",
		                         channel ? channel : "");
	if ((error = parse_time(ctx, when, time, "TIME", 0)) < 0 ||
	    (error = sluice_jindex__read_begin(repo, &r)) < 0 ||
	    (error = sluice_jindex__move_at(r, channel, when, &seq, &first_seq)) < 0)
		goto done;
	if (!first_seq) {
		error = sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
		                          "channel %s has never held a version", channel);
		goto done;
	}
	if (!seq) {
		if ((error = sluice_jindex__entry(r, first_seq, NULL, &first)) < 0)
			goto done;
		error = sluice_repo__report(
		        ctx, report,
		        json_pack("{s:s,s:s,s:n,s:{s:O,s:O,s:O},s:s+}", "channel", channel, "time",
		                  when, "served", "first_move", "seq",
		                  json_object_get(first, "seq"), "time",
		                  json_object_get(first, "time"), "to",
		                  json_object_get(first, "to"), "note",
		                  "the channel did not exist yet: its first version came at ",
		                  sluice__jstr(json_object_get(first, "time"))));
		goto done;
	}
	if ((error = sluice_jindex__entry(r, seq, &id, &mv)) < 0)
		goto done;
	if ((error = git_commit_lookup(&entry, repo->git, &id)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot read journal entry");
		goto done;
	}
	/* The verdicts and approvals the move used, as they stood just before it. */
	if (git_commit_parentcount(entry) > 0 &&
	    (error = sluice_journal__channels_at(repo, &before, git_commit_parent_id(entry, 0))) <
	            0)
		goto done;
	to = sluice__jstr(json_object_get(mv, "to"));
	c = json_object_get(before, channel);
	git_oid_tostr(hex, sizeof(hex), &id);
	approvals = json_array();
	verdicts = json_object();
	json_array_foreach(json_object_get(mv, "approvals"), i, v)
	{
		json_t *a = json_object_get(
		        json_object_get(json_object_get(json_object_get(c, "approvals"), to),
		                        "keys"),
		        sluice__jstr(v));
		json_array_append_new(
		        approvals,
		        json_pack("{s:O,s:O,s:O,s:O,s:O}", "key", v, "name",
		                  a ? json_object_get(a, "name") : json_null(), "time",
		                  a ? json_object_get(a, "time") : json_null(), "seq",
		                  a ? json_object_get(a, "seq") : json_null(), "statement",
		                  a ? json_object_get(a, "statement") : json_null()));
	}
	json_object_foreach(json_object_get(mv, "verdicts"), g, v)
	{
		json_t *gv = json_object_get(
		        json_object_get(json_object_get(json_object_get(c, "verdicts"), to),
		                        "gates"),
		        g);
		json_object_set_new(verdicts, g,
		                    json_pack("{s:O,s:O,s:O}", "statement", v, "result",
		                              gv ? json_object_get(gv, "result") : json_null(),
		                              "time",
		                              gv ? json_object_get(gv, "time") : json_null()));
	}
#define OR_NULL(k) (json_object_get(mv, k) ? json_object_get(mv, k) : json_null())
	out = json_pack("{s:s,s:s,s:O,s:{s:O,s:s,s:O,s:O,s:O,s:O,s:O,s:O},s:o,s:o,s:O,s:O}",
	                "channel", channel, "time", when, "served", json_object_get(mv, "to"),
	                "move", "seq", json_object_get(mv, "seq"), "entry", hex, "action",
	                json_object_get(mv, "action"), "time", json_object_get(mv, "time"), "actor",
	                json_object_get(json_object_get(mv, "actor"), "name"), "from",
	                OR_NULL("from"), "to", json_object_get(mv, "to"), "reason",
	                OR_NULL("reason"), "approvals", approvals, "verdicts", verdicts, "policy",
	                OR_NULL("policy"), "config", OR_NULL("config"));
#undef OR_NULL
	if (!out) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "journal entry %s: a move record without its fields",
		                          hex);
		goto done;
	}
	error = sluice_repo__report(ctx, report, out);
done:
	git_commit_free(entry);
	sluice_jindex__read_end(r);
	json_decref(mv);
	json_decref(first);
	json_decref(before);
	return error;
}

/* ---- lineage ------------------------------------------------------------- */

/*
 * Lineage reads each version's lineage record from the journal index (its
 * update's kind, summary and parent; its state's components, each with a
 * digest of its files; the components its update brought), never git: see
 * sluice_jindex_vinfo. A descendant still contains the source's influence
 * while it holds one of the components the declaring update brought, byte
 * for byte (equal file entries, so equal digests).
 */

/* A list of components, borrowed from the records struct walk holds. */
typedef struct {
	const sluice_jindex_comp **v;
	size_t n, cap;
} comp_list;

static int comps_add(sluice_ctx *ctx, comp_list *l, const sluice_jindex_comp *c)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		void *p = cap > SIZE_MAX / sizeof(*l->v)
		                  ? NULL
		                  : sluice__realloc(ctx, l->v, cap * sizeof(*l->v));
		if (!p)
			return SLUICE_ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = c;
	return SLUICE_OK;
}

/* The components of held_from that version still holds, unchanged, into out. */
static int still_held(sluice_ctx *ctx, comp_list *out, const sluice_jindex_vinfo *version,
                      const comp_list *held_from)
{
	int error;

	for (size_t i = 0; i < held_from->n; i++) {
		const sluice_jindex_comp *c = held_from->v[i];
		for (size_t j = 0; j < version->ncomps; j++) {
			const sluice_jindex_comp *e = &version->comps[j];
			if (e->section != c->section ||
			    (c->section != SLUICE_JX_BASE && strcmp(e->name, c->name)) ||
			    memcmp(e->digest, c->digest, sizeof(e->digest)))
				continue;
			if ((error = comps_add(ctx, out, c)) < 0)
				return error;
		}
	}
	return SLUICE_OK;
}

static json_t *component_names(const comp_list *comps)
{
	json_t *out = json_array();

	for (size_t i = 0; i < comps->n; i++) {
		const sluice_jindex_comp *c = comps->v[i];
		json_array_append_new(
		        out,
		        c->section == SLUICE_JX_BASE
		                ? json_string("base")
		                : json_sprintf("%s/%s", sluice_jindex__section_name(c->section),
		                               c->name));
	}
	return out;
}

struct walk {
	sluice_repo *repo;
	sluice_jindex_read *r;
	json_t *versions; /* version hex -> {kind, summary, origin, contains, seq} */
	json_t *dropped;  /* version hex -> {kind, dropped_from} */
	json_t *loaded;   /* version hex -> its index in info: each record read once */
	sluice_jindex_vinfo **info;
	size_t ninfo, capinfo;
};

/*
 * A version's lineage record (owned by w). The walks from several declared
 * versions meet the same descendants; each is read once. A version the
 * index has no record for (its update.json or state.json did not load when
 * it was indexed) is loaded from git here, which fails with the message
 * that says why.
 */
static int load_version(struct walk *w, const char *hex, const sluice_jindex_vinfo **out)
{
	json_t *got = json_object_get(w->loaded, hex);
	sluice_jindex_vinfo *vi;
	sluice_version v = {0};
	git_oid id;
	int found, error;

	if (got) {
		*out = w->info[json_integer_value(got)];
		return SLUICE_OK;
	}
	if (git_oid_fromstr(&id, hex) < 0)
		return sluice_ctx__error(w->repo->ctx, SLUICE_ECORRUPT,
		                         "journal index: '%s' is not a version id", hex);
	if (w->ninfo == w->capinfo) {
		size_t cap = w->capinfo ? w->capinfo * 2 : 64;
		void *p = cap > SIZE_MAX / sizeof(*w->info)
		                  ? NULL
		                  : sluice__realloc(w->repo->ctx, w->info, cap * sizeof(*w->info));
		if (!p)
			return SLUICE_ENOMEM;
		w->info = p;
		w->capinfo = cap;
	}
	if (!(vi = sluice__calloc(w->repo->ctx, 1, sizeof(*vi))))
		return SLUICE_ENOMEM;
	if ((error = sluice_jindex__vinfo(w->r, vi, &id, &found)) == 0 && !found &&
	    (error = sluice_version__load_id(w->repo, &v, &id)) == 0) {
		error = sluice_jindex__vinfo_of(w->repo->ctx, vi, v.update, v.state);
		sluice_version__dispose(&v);
	}
	if (error < 0) {
		free(vi);
		return error;
	}
	w->info[w->ninfo] = vi;
	if (json_object_set_new(w->loaded, hex, json_integer((json_int_t)w->ninfo++)) < 0)
		return sluice_ctx__error(w->repo->ctx, SLUICE_ENOMEM, "out of memory");
	*out = vi;
	return SLUICE_OK;
}

/* The work list of walk_from: a version and the components it still holds. */
typedef struct {
	char hex[GIT_OID_HEXSZ + 1];
	comp_list held;
} walk_item;

/*
 * Walk the descendants of a declared version (id, which brought comps),
 * recording each that still holds one of them. Iterative, with a work list
 * (a stack, newest first): a lineage may be as long as the repository's
 * history, deeper than a stack of calls should go.
 */
static int walk_from(struct walk *w, const git_oid *id, const comp_list *comps, const char *origin)
{
	sluice_ctx *ctx = w->repo->ctx;
	walk_item *todo = NULL, item = {{0}, {0}};
	size_t ntodo = 0, cap = 0;
	json_t *kids = json_array();
	int error = SLUICE_OK;

#define PUSH(hexstr, list)                                                                         \
	do {                                                                                       \
		if (ntodo == cap) {                                                                \
			size_t c2 = cap ? cap * 2 : 16;                                            \
			void *p = c2 > SIZE_MAX / sizeof(*todo)                                    \
			                  ? NULL                                                   \
			                  : sluice__realloc(ctx, todo, c2 * sizeof(*todo));        \
			if (!p) {                                                                  \
				free((list).v);                                                    \
				error = SLUICE_ENOMEM;                                             \
				goto done;                                                         \
			}                                                                          \
			todo = p;                                                                  \
			cap = c2;                                                                  \
		}                                                                                  \
		snprintf(todo[ntodo].hex, sizeof(todo[ntodo].hex), "%s", (hexstr));                \
		todo[ntodo++].held = (list);                                                       \
	} while (0)

	{
		comp_list first = {0};
		char hex[GIT_OID_HEXSZ + 1];
		for (size_t i = 0; i < comps->n; i++)
			if ((error = comps_add(ctx, &first, comps->v[i])) < 0) {
				free(first.v);
				goto done;
			}
		git_oid_tostr(hex, sizeof(hex), id);
		PUSH(hex, first);
	}
	while (ntodo) {
		const char *phex;
		git_oid pid;
		json_t *k;
		size_t i;

		free(item.held.v);
		item = todo[--ntodo];
		phex = item.hex;
		json_array_clear(kids);
		if (git_oid_fromstr(&pid, phex) < 0 ||
		    (error = sluice_jindex__children(w->r, &pid, kids)) < 0)
			goto done;
		json_array_foreach(kids, i, k)
		{
			const sluice_jindex_vinfo *vi = NULL;
			comp_list held = {0};
			const char *khex = sluice__jstr(k);
			json_t *prev, *meta;

			if ((error = load_version(w, khex, &vi)) < 0 ||
			    (error = still_held(ctx, &held, vi, &item.held)) < 0) {
				free(held.v);
				goto done;
			}
			meta = vi->meta;
			if (!held.n) {
				if (!json_object_get(w->versions, khex))
					json_object_set_new(w->dropped, khex,
					                    json_pack("{s:O,s:s,s:o}", "kind",
					                              json_object_get(meta, "kind"),
					                              "parent", phex, "dropped",
					                              component_names(&item.held)));
				free(held.v);
				continue;
			}
			prev = json_object_get(w->versions, khex);
			if (!prev) {
				json_object_set_new(
				        w->versions, khex,
				        json_pack("{s:s,s:O,s:O,s:s,s:[s],s:o,s:b}", "version",
				                  khex, "kind", json_object_get(meta, "kind"),
				                  "summary", json_object_get(meta, "summary"),
				                  "parent", phex, "origins", origin, "contains",
				                  component_names(&held), "declared", 0));
			} else if (!sluice__jarray_has(json_object_get(prev, "origins"), origin)) {
				json_array_append_new(json_object_get(prev, "origins"),
				                      json_string(origin));
			}
			json_object_del(w->dropped, khex);
			PUSH(khex, held);
		}
	}
#undef PUSH
done:
	free(item.held.v);
	while (ntodo)
		free(todo[--ntodo].held.v);
	free(todo);
	json_decref(kids);
	return error;
}

struct heads {
	const char *version;
	json_t *out;
};

/* A move to h->version opens an interval, closed by the channel's next move. */
static int heads_cb(void *data, const sluice_jindex_move *m)
{
	struct heads *h = data;

	json_array_append_new(
	        h->out,
	        json_pack("{s:s,s:s,s:O,s:I,s:O,s:o}", "channel", m->channel, "version", h->version,
	                  "from_time", m->time, "from_seq", (json_int_t)m->seq, "to_time",
	                  m->next_seq ? m->next_time : json_null(), "to_seq",
	                  m->next_seq ? json_integer((json_int_t)m->next_seq) : json_null()));
	return SLUICE_OK;
}

static int cmp_head(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "from_seq")),
	           y = json_integer_value(json_object_get(*(json_t *const *)b, "from_seq"));
	return x < y ? -1 : x > y;
}

int sluice_audit_lineage(sluice_repo *repo, const char *source, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	struct walk w = {repo, NULL, json_object(), json_object(), json_object(), NULL, 0, 0};
	struct seqs s = {ctx, NULL, 0, 0, 0, 0};
	struct heads h = {NULL, json_array()};
	json_t *list = NULL, *v, *dl = NULL;
	const char *eq, *k;
	char *value = NULL;
	size_t len, i;
	int error;

	eq = source ? strchr(source, '=') : NULL;
	if (!source || !*source || eq == source || (eq && !eq[1]) || strlen(source) > 1024) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "--source '%s': expected NAME or NAME=DIGEST",
		                          source ? source : "");
		goto done;
	}
	len = strlen(source) + 4;
	if (!(value = sluice__malloc(ctx, len))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	snprintf(value, len, "%s%s", eq ? "nd:" : "n:", source);
	if ((error = sluice_jindex__read_begin(repo, &w.r)) < 0 ||
	    (error = sluice_jindex__scan(w.r, SLUICE_JX_SOURCE, value, NULL, seqs_cb, &s)) < 0)
		goto done;
	/* First the versions whose own provenance names the source. */
	for (i = 0; i < s.n; i++) {
		const sluice_jindex_vinfo *vi = NULL;
		json_t *rec = NULL;
		comp_list comps = {0};
		git_oid id;
		const char *hex;

		if ((error = sluice_jindex__entry(w.r, s.v[i], NULL, &rec)) < 0)
			goto done;
		hex = sluice__jstr(json_object_get(rec, "version"));
		if (git_oid_fromstr(&id, hex) < 0 || (error = load_version(&w, hex, &vi)) < 0) {
			if (error == 0)
				error = sluice_ctx__error(
				        ctx, SLUICE_ECORRUPT,
				        "journal entry %llu: proposal without a version",
				        (unsigned long long)s.v[i]);
			json_decref(rec);
			goto done;
		}
		for (size_t j = 0; j < vi->nbrought && error == 0; j++)
			error = comps_add(ctx, &comps, &vi->brought[j]);
		if (error == 0) {
			json_object_set_new(
			        w.versions, hex,
			        json_pack("{s:s,s:O,s:O,s:O,s:[s],s:o,s:b,s:I}", "version", hex,
			                  "kind", json_object_get(vi->meta, "kind"), "summary",
			                  json_object_get(vi->meta, "summary"), "parent",
			                  json_object_get(vi->meta, "parent"), "origins", hex,
			                  "contains", component_names(&comps), "declared", 1,
			                  "proposed_seq", (json_int_t)s.v[i]));
			error = walk_from(&w, &id, &comps, hex);
		}
		free(comps.v);
		json_decref(rec);
		if (error < 0)
			goto done;
	}
	/*
	 * Then every interval a channel's head was one of them: the moves to
	 * each version (moves_to), each closed by its channel's next move.
	 */
	json_object_foreach(w.versions, k, v)
	{
		h.version = k;
		if ((error = sluice_jindex__moves_to(w.r, k, heads_cb, &h)) < 0)
			goto done;
	}
	{
		size_t nh = json_array_size(h.out);
		json_t **hv = nh ? sluice__calloc(ctx, nh, sizeof(*hv)) : NULL, *sorted;
		if (nh && !hv) {
			error = SLUICE_ENOMEM;
			goto done;
		}
		for (i = 0; i < nh; i++)
			hv[i] = json_array_get(h.out, i);
		if (nh)
			qsort(hv, nh, sizeof(*hv), cmp_head);
		sorted = json_array();
		for (i = 0; i < nh; i++)
			json_array_append(sorted, hv[i]);
		free(hv);
		json_decref(h.out);
		h.out = sorted;
	}
	list = json_array();
	json_object_foreach(w.versions, k, v) json_array_append(list, v);
	dl = json_array();
	json_object_foreach(w.dropped, k, v)
	{
		json_object_set_new(v, "version", json_string(k));
		json_array_append(dl, v);
	}
	error = sluice_repo__report(ctx, report,
	                            json_pack("{s:s,s:o,s:O,s:o}", "source", source, "versions",
	                                      list, "heads", h.out, "dropped_by", dl));
	list = dl = NULL;
done:
	sluice_jindex__read_end(w.r);
	json_decref(w.versions);
	json_decref(w.dropped);
	json_decref(w.loaded);
	for (i = 0; i < w.ninfo; i++) {
		sluice_jindex__vinfo_dispose(w.info[i]);
		free(w.info[i]);
	}
	free(w.info);
	json_decref(h.out);
	json_decref(list);
	json_decref(dl);
	free(s.v);
	free(value);
	return error;
}
