/*
 * policies/enforce.c - the rules a promotion must meet, and approvals.
 *
 * A channel's entry in channels.json gains, besides "verdicts" (written
 * by gates/gate.c), "approvals": {candidate: {"head": the channel head the
 * approvals were given against, "keys": {fingerprint: {name, time, seq,
 * statement, policy, accept: [gates]}}}} and "moved_seq" (the journal
 * position of the channel's last move). Every move voids approvals
 * against the old head, and an approval statement names the move it
 * follows, so an old approval cannot be replayed after the channel came
 * back to the same head.
 *
 * Role thresholds (trust.json "thresholds"): under gate-runner N a gate
 * passes with N agreeing verdicts of distinct keys (each key's newest is
 * in the gate's "runners"); under proposer N a version needs N distinct
 * proposer signatures, its proposal's and co-signatures (sluice cosign,
 * trust.json "cosigned").
 *
 * Times compared for expiry are the journal's (docs/roles-and-approvals.md,
 * "Whose clock"): an approval's validity starts at the earlier of the time
 * its signer wrote and the time of the entry that journaled it, so a
 * signer cannot stretch it by post-dating, and an envelope signed long ago
 * and journaled late is as old as its signer said. A statement dated more
 * than 5 minutes ahead is refused as a broken clock.
 */
#include "enforce.h"
#include "dsse.h"
#include "jindex.h"
#include "policy.h"
#include "version.h"

#include "sluice/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APPROVAL_PREDICATE "urn:sluice:predicate:approval:v1"
#define COSIGN_PREDICATE "urn:sluice:predicate:cosign:v1"

/*
 * Now, on the journal's clock (sluice_journal__now): the time the entry this
 * check admits will carry, so an expiry is judged against the same time the
 * journal records, even when this host's clock is behind the newest entry.
 */
static long long now_seconds(const sluice_jstate *st)
{
	char now[32];

	sluice_journal__now(st, now);
	return sluice__utc_seconds(now);
}

/* Whether a registry entry holds any of roles. */
static int holds_any(json_t *entry, json_t *roles)
{
	json_t *r;
	size_t i;

	json_array_foreach(roles, i,
	                   r) if (sluice_trust__has_role(entry, sluice__jstr(r))) return 1;
	return 0;
}

/* The rules for channel under an already parsed policy (NULL: none yet). */
static int rules_under(sluice_repo *repo, const sluice_jstate *st, json_t *policy,
                       const char *channel, json_t **out)
{
	json_t *config = NULL;
	int error;

	if (policy) {
		*out = json_incref(sluice_policy__channel(policy, channel));
		return *out ? SLUICE_OK
		            : sluice_ctx__error(repo->ctx, SLUICE_ECORRUPT,
		                                "the policy has no rules for channel %s", channel);
	}
	/* Before any policy: init's required gates, nothing else asked. */
	if ((error = sluice_journal__config(repo, st, &config, NULL)) < 0)
		return error;
	*out = json_pack("{s:[],s:{s:O,s:{}},s:{s:n},s:{},s:{s:[s],s:i,s:b},s:{s:[],s:i},"
	                 "s:{s:n,s:n},s:{s:[s]}}",
	                 "from", "gates", "required", json_object_get(config, "required_gates"),
	                 "thresholds", "drift_budget", "max_drop", "suites", "approvals", "roles",
	                 "approver", "count", 0, "proposer_counts", 0, "inconclusive", "roles",
	                 "count", 1, "expiry", "approvals", "verdicts", "emergency", "rollback",
	                 "operator");
	json_decref(config);
	return *out ? SLUICE_OK
	            : sluice_ctx__error(repo->ctx, SLUICE_ENOMEM, "cannot build the rules");
}

int sluice_policy__rules(sluice_repo *repo, const sluice_jstate *st, const char *channel,
                         json_t **out, char digest[65])
{
	json_t *policy = NULL;
	int error;

	if ((error = sluice_journal__policy(repo, st, &policy, digest, NULL)) < 0)
		return error;
	error = rules_under(repo, st, policy, channel, out);
	json_decref(policy);
	return error;
}

static void check(json_t *checks, const char *rule, int ok, const char *fmt, ...)
        SLUICE_PRINTF(4, 5);
static void check(json_t *checks, const char *rule, int ok, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(checks,
	                      json_pack("{s:s,s:b,s:s}", "rule", rule, "ok", ok, "detail", buf));
}

/* The fingerprint of the key that signed version to ("" if unknown). */
static void proposer_of(sluice_repo *repo, const sluice_jstate *st, const char *to,
                        char fp[SLUICE_FP_LEN])
{
	const char *name = NULL;
	git_oid id;
	json_t *e;

	fp[0] = 0;
	if (git_oid_fromstr(&id, to) < 0 ||
	    sluice_repo__check_commit_sig_at(repo, &id, st->keys, NULL, 0, &name) < 0 || !name) {
		sluice_ctx_clear_error(repo->ctx);
		return;
	}
	e = json_object_get(st->keys, name);
	snprintf(fp, SLUICE_FP_LEN, "%s", sluice__jstr(json_object_get(e, "fingerprint")));
}

/*
 * How many distinct proposer keys signed version to: the proposal's signer
 * (proposer_fp, "" if unknown) and the co-signers in trust.json's
 * "cosigned", each holding the proposer role now and not revoked before
 * its signature's entry.
 */
static unsigned signed_by_proposers(const sluice_jstate *st, const char *to,
                                    const char *proposer_fp)
{
	json_t *co = json_object_get(json_object_get(st->trust, "cosigned"), to), *e, *k;
	const char *fp, *name = NULL;
	unsigned n = 0;

	k = *proposer_fp ? sluice_trust__by_fp(st->keys, proposer_fp, &name) : NULL;
	n += k && sluice_trust__has_role(k, "proposer");
	json_object_foreach(co, fp, e)
	{
		if (!strcmp(fp, proposer_fp) || !(k = sluice_trust__by_fp(st->keys, fp, &name)))
			continue;
		n += sluice_trust__has_role(k, "proposer") &&
		     sluice_trust__key_standing(
		             NULL, name, k, (uint64_t)json_integer_value(json_object_get(e, "seq")),
		             NULL) == 0;
	}
	return n;
}

/* Whether an age in seconds is past a limit (null: never expires). */
static int expired(json_t *limit, const char *time, long long now)
{
	long long t = sluice__utc_seconds(time);

	if (!json_is_integer(limit))
		return 0;
	return t < 0 || now - t > (long long)json_integer_value(limit);
}

/*
 * The approvals of `to` against head that count: for approving (keys
 * holding one of roles) and for accepting gate's inconclusive verdict.
 */
struct tally {
	unsigned approvals, accepts;
	json_t *fps; /* counted approvals */
	char why[512];
};

static void tally(const sluice_jstate *st, json_t *c, json_t *rules, const char *to,
                  const char *head, const char *pdigest, const char *proposer, const char *gate,
                  long long now, struct tally *t)
{
	json_t *a = json_object_get(json_object_get(c, "approvals"), to), *e;
	json_t *ap = json_object_get(rules, "approvals"),
	       *inc = json_object_get(rules, "inconclusive");
	const char *fp;
	size_t skipped_expired = 0, skipped_proposer = 0, skipped_role = 0, skipped_policy = 0;

	t->approvals = t->accepts = 0;
	t->why[0] = 0;
	if (!a || strcmp(sluice__jstr(json_object_get(a, "head")), head))
		return;
	json_object_foreach(json_object_get(a, "keys"), fp, e)
	{
		const char *name = NULL;
		json_t *k = sluice_trust__by_fp(st->keys, fp, &name);
		json_int_t seq = json_integer_value(json_object_get(e, "seq"));

		/* A key revoked after it approved: its approval sits before the revocation. */
		if (!k || sluice_trust__key_standing(NULL, name, k, (uint64_t)seq, NULL) < 0)
			continue;
		if (strcmp(sluice__jstr(json_object_get(e, "policy")), pdigest)) {
			skipped_policy++;
			continue;
		}
		if (expired(json_object_get(json_object_get(rules, "expiry"), "approvals"),
		            sluice__jstr(json_object_get(e, "time")), now)) {
			skipped_expired++;
			continue;
		}
		if (!strcmp(fp, proposer) &&
		    !json_is_true(json_object_get(ap, "proposer_counts"))) {
			skipped_proposer++;
			continue;
		}
		if (holds_any(k, json_object_get(ap, "roles"))) {
			t->approvals++;
			if (t->fps)
				json_array_append_new(t->fps, json_string(fp));
		} else if (!gate) {
			skipped_role++;
		}
		if (gate && sluice__jarray_has(json_object_get(e, "accept"), gate) &&
		    holds_any(k, json_object_get(inc, "roles")))
			t->accepts++;
	}
	snprintf(t->why, sizeof(t->why), "%s%s%s%s",
	         skipped_expired ? "; expired approvals do not count" : "",
	         skipped_proposer ? "; the proposer's own approval does not count" : "",
	         skipped_role ? "; approvals by keys outside the roles do not count" : "",
	         skipped_policy ? "; approvals under another policy version do not count" : "");
}

/*
 * A gate-runner threshold above 1: the gate-runner keys whose verdicts on
 * one gate (gv, the candidate's against this head and configuration) count
 * -- registered, not revoked before their verdict's entry, holding the
 * role now, under this policy, on the pinned suites, not expired -- and
 * whether they agree: the same result on the same suite digests. Returns
 * 1 and *result (theirs; NULL when none counts) and *n when they agree, 0
 * when they disagree (why says how).
 */
static int runners_agree(const sluice_jstate *st, json_t *gv, json_t *rules, const char *pdigest,
                         long long now, const char **result, unsigned *n, char *why, size_t whylen)
{
	json_t *runners = json_object_get(gv, "runners"), *legacy = NULL, *r, *suites = NULL;
	json_t *pins = json_object_get(rules, "suites"), *sv;
	unsigned pass = 0, fail = 0, inc = 0;
	const char *fp, *sname;
	int suites_differ = 0;

	*result = NULL;
	*n = 0;
	/* A verdict journaled before runners were kept: its one runner. */
	if (!json_is_object(runners)) {
		legacy = json_object();
		json_object_set(legacy, sluice__jstr(json_object_get(gv, "runner")), gv);
		runners = legacy;
	}
	json_object_foreach(runners, fp, r)
	{
		const char *name = NULL, *res = sluice__jstr(json_object_get(r, "result"));
		json_t *k = sluice_trust__by_fp(st->keys, fp, &name);
		int pinned = 1;

		if (!k ||
		    sluice_trust__key_standing(
		            NULL, name, k, (uint64_t)json_integer_value(json_object_get(r, "seq")),
		            NULL) < 0 ||
		    !sluice_trust__has_role(k, "gate-runner") ||
		    strcmp(sluice__jstr(json_object_get(r, "policy")), pdigest) ||
		    expired(json_object_get(json_object_get(rules, "expiry"), "verdicts"),
		            sluice__jstr(json_object_get(r, "time")), now))
			continue;
		json_object_foreach(json_object_get(r, "suites"), sname, sv)
		{
			const char *pin = json_string_value(json_object_get(pins, sname));
			pinned &= !pin || !strcmp(pin, sluice__jstr(sv));
		}
		if (!pinned)
			continue;
		if (!suites)
			suites = json_object_get(r, "suites");
		else if (!json_equal(suites, json_object_get(r, "suites")))
			suites_differ = 1;
		pass += !strcmp(res, "pass");
		inc += !strcmp(res, "inconclusive");
		fail += strcmp(res, "pass") && strcmp(res, "inconclusive");
		if (!*result)
			*result = json_string_value(json_object_get(r, "result"));
		(*n)++;
	}
	/* *result points into gv (or legacy, which only borrows gv's strings). */
	json_decref(legacy);
	if ((pass > 0) + (fail > 0) + (inc > 0) > 1 || suites_differ) {
		snprintf(why, whylen, "%u said pass, %u fail, %u inconclusive%s", pass, fail, inc,
		         suites_differ ? ", on different suite digests" : "");
		return 0;
	}
	return 1;
}

int sluice_policy__evaluate(sluice_repo *repo, const sluice_jstate *st, json_t *c,
                            const char *channel, const char *to, const char *head, json_t *checks,
                            json_t *used)
{
	json_t *policy = NULL, *rules = NULL, *config = NULL, *v, *gname, *verdicts = json_object();
	char pdigest[65], cdigest[65], proposer[SLUICE_FP_LEN];
	long long now = now_seconds(st);
	unsigned need_runners = sluice_trust__role_threshold(st, "gate-runner");
	struct tally t = {0};
	size_t i;
	int error;

	/* The policy is parsed once for both the rules and the gate configuration. */
	if ((error = sluice_journal__policy(repo, st, &policy, pdigest, NULL)) < 0 ||
	    (error = rules_under(repo, st, policy, channel, &rules)) < 0 ||
	    (error = sluice_journal__config_under(repo, st, policy, channel, &config, cdigest)) < 0)
		goto done;
	proposer_of(repo, st, to, proposer);
	json_object_set_new(used, "policy", json_string(pdigest));
	json_object_set_new(used, "config", json_string(cdigest));

	/* A proposer threshold: distinct proposer keys that signed the version. */
	{
		unsigned need = sluice_trust__role_threshold(st, "proposer");
		unsigned have = signed_by_proposers(st, to, proposer);
		if (need > 1)
			check(checks, "proposers.threshold", have >= need,
			      "%u of %u proposer keys signed %.12s (its proposal and sluice cosign "
			      "%.12s --key NAME; distinct keys holding the proposer role)",
			      have, need, to, to);
	}

	/* The path: dev -> staging -> prod. */
	if (json_array_size(json_object_get(rules, "from"))) {
		int ok = 0;
		json_array_foreach(json_object_get(rules, "from"), i, v)
		{
			int held = 0, withdrawn = 0;
			if (!json_is_string(v))
				continue;
			if ((error = sluice_jindex__held(repo, &st->head, json_string_value(v), to,
			                                 &held, &withdrawn)) < 0)
				goto done;
			ok |= held && !withdrawn;
		}
		check(checks, "policy.from", ok,
		      ok ? "%.12s was held by a channel it must pass first"
		         : "%.12s must first be held (and not withdrawn) by one of the channels "
		           "the policy names in from",
		      to);
	}

	v = json_object_get(json_object_get(c, "verdicts"), to);
	json_array_foreach(json_object_get(json_object_get(rules, "gates"), "required"), i, gname)
	{
		const char *g = json_string_value(gname);
		json_t *gv = json_object_get(json_object_get(v, "gates"), g), *pins, *sv;
		const char *vhead = sluice__jstr(json_object_get(v, "head")), *res, *sname;
		int pinned_ok = 1;
		char badsuite[256] = "";

		if (!gv) {
			check(checks, "gates.required", 0,
			      "the %s gate has no verdict for %.12s against %s's head %.12s (run "
			      "sluice "
			      "gate %.12s --channel %s)",
			      g, to, channel, *head ? head : "(none)", to, channel);
			continue;
		}
		if (strcmp(vhead, head)) {
			check(checks, "gates.baseline", 0,
			      "the %s verdict was against head %.12s, but the head is now %.12s; "
			      "gate "
			      "it again",
			      g, *vhead ? vhead : "(none)", *head ? head : "(none)");
			continue;
		}
		if (strcmp(sluice__jstr(json_object_get(v, "config")), cdigest)) {
			check(checks, "gates.config", 0,
			      "the %s verdict was under another gate configuration; gate it again",
			      g);
			continue;
		}
		if (strcmp(sluice__jstr(json_object_get(gv, "policy")), pdigest)) {
			check(checks, "gates.policy", 0,
			      "the %s verdict was under another policy version; gate it again", g);
			continue;
		}
		pins = json_object_get(rules, "suites");
		json_object_foreach(json_object_get(gv, "suites"), sname, sv)
		{
			const char *pin = json_string_value(json_object_get(pins, sname));
			if (pin && strcmp(pin, sluice__jstr(sv))) {
				pinned_ok = 0;
				snprintf(badsuite, sizeof(badsuite),
				         "suite %s had digest %.16s, the policy pins %.16s", sname,
				         sluice__jstr(sv), pin);
			}
		}
		if (!pinned_ok) {
			check(checks, "gates.suites", 0,
			      "the %s verdict used a suite the policy does "
			      "not pin: %s",
			      g, badsuite);
			continue;
		}
		if (expired(json_object_get(json_object_get(rules, "expiry"), "verdicts"),
		            sluice__jstr(json_object_get(gv, "time")), now)) {
			check(checks, "gates.expired", 0,
			      "the %s verdict of %s is older than the policy allows; gate it again",
			      g, sluice__jstr(json_object_get(gv, "time")));
			continue;
		}
		res = sluice__jstr(json_object_get(gv, "result"));
		if (need_runners > 1) {
			const char *agreed;
			unsigned n;
			char why[256];
			if (!runners_agree(st, gv, rules, pdigest, now, &agreed, &n, why,
			                   sizeof(why))) {
				check(checks, "gates.runners", 0,
				      "the %s gate is not passed: its gate-runners disagree on "
				      "%.12s "
				      "against %.12s (%s)",
				      g, to, *head ? head : "(none)", why);
				continue;
			}
			if (n < need_runners) {
				check(checks, "gates.runners", 0,
				      "the %s gate has verdicts from %u of %u gate-runner keys "
				      "needed "
				      "(distinct keys, same candidate, baseline and suites; "
				      "another "
				      "runs sluice gate %.12s --channel %s --key NAME)",
				      g, n, need_runners, to, channel);
				continue;
			}
			check(checks, "gates.runners", 1,
			      "%u gate-runner keys agree on the %s gate (%u needed)", n, g,
			      need_runners);
			res = agreed;
		}
		if (!strcmp(res, "pass")) {
			check(checks, "gates.result", 1, "the %s gate passed", g);
			json_object_set(verdicts, g, json_object_get(gv, "statement"));
		} else if (!strcmp(res, "inconclusive")) {
			json_t *inc = json_object_get(rules, "inconclusive");
			json_int_t need = json_integer_value(json_object_get(inc, "count"));
			tally(st, c, rules, to, head, pdigest, proposer, g, now, &t);
			if (!json_array_size(json_object_get(inc, "roles")))
				check(checks, "gates.inconclusive", 0,
				      "the %s gate said inconclusive and the policy lets nobody "
				      "accept "
				      "that (sluice gate %.12s --channel %s shows why)",
				      g, to, channel);
			else
				check(checks, "gates.inconclusive", t.accepts >= (unsigned)need,
				      "the %s gate said inconclusive; %u of %lld keys needed "
				      "accepted "
				      "it%s",
				      g, t.accepts, (long long)need, t.why);
			if (t.accepts >= (unsigned)need)
				json_object_set(verdicts, g, json_object_get(gv, "statement"));
		} else {
			check(checks, "gates.result", 0,
			      "the %s gate said %s (sluice gate %.12s --channel %s shows why)", g,
			      res, to, channel);
		}
	}
	json_object_set(used, "verdicts", verdicts);

	{
		json_int_t need = json_integer_value(
		        json_object_get(json_object_get(rules, "approvals"), "count"));
		t.fps = json_array();
		tally(st, c, rules, to, head, pdigest, proposer, NULL, now, &t);
		if (need > 0)
			check(checks, "approvals.threshold", t.approvals >= (unsigned)need,
			      "%u of %lld approvals needed (distinct keys of the roles the policy "
			      "names, against head %.12s)%s",
			      t.approvals, (long long)need, *head ? head : "(none)", t.why);
		json_object_set_new(used, "approvals", t.fps);
	}
done:
	json_decref(policy);
	json_decref(verdicts);
	json_decref(config);
	json_decref(rules);
	return error;
}

void sluice_policy__prune(json_t *c)
{
	const char *head = sluice__jstr(json_object_get(c, "head")), *cand;
	json_t *a = json_object_get(c, "approvals"), *e;
	void *tmp;

	json_object_foreach_safe(a, tmp, cand,
	                         e) if (strcmp(sluice__jstr(json_object_get(e, "head")), head))
	        json_object_del(a, cand);
}

/* ---- sluice policy check ---------------------------------------------------- */

int sluice_policy_check(sluice_repo *repo, const char *ref, const char *channel, char **report)
{
	sluice_jstate st;
	sluice_version v = {0};
	json_t *checks = json_array(), *used = json_object(), *c, *e;
	char to[GIT_OID_HEXSZ + 1];
	const char *head;
	size_t i;
	int error, allowed = 1;

	if ((error = sluice_journal__read(repo, &st)) < 0)
		goto out;
	c = json_object_get(st.channels, channel);
	head = json_string_value(json_object_get(c, "head"));
	if ((error = sluice_version__load(repo, &v, ref)) < 0)
		goto done;
	git_oid_tostr(to, sizeof(to), &v.id);
	if ((error = sluice_policy__evaluate(repo, &st, c, channel, to, head ? head : "", checks,
	                                     used)) < 0)
		goto done;
	json_array_foreach(checks, i, e) allowed &= json_is_true(json_object_get(e, "ok"));
	error = sluice_repo__report(repo->ctx, report,
	                            json_pack("{s:s,s:s,s:s?,s:O,s:b,s:O}", "channel", channel,
	                                      "candidate", to, "head", head, "policy",
	                                      json_object_get(used, "policy"), "allowed", allowed,
	                                      "checks", checks));
done:
	sluice_version__dispose(&v);
	sluice_journal__dispose(&st);
out:
	json_decref(checks);
	json_decref(used);
	return error;
}

/* ---- approvals ------------------------------------------------------------- */

struct approval {
	const sluice_key *key; /* signs the entry (and, for sluice approve, the statement) */
	const char *ref, *channel, *reason;
	const char *const *accept;
	size_t naccept;
	json_t *envelope;     /* submitted: the parsed envelope JSON, else built here */
	const char *out_path; /* write the envelope instead of journaling */
	char candidate[80];   /* a version id; briefly, in submit, the channel named inside */
	char statement[65];
};

/* Sign a statement approving a->candidate against the state st; *out is the envelope JSON. */
static int sign_approval(sluice_repo *repo, const sluice_jstate *st, struct approval *a,
                         const char *head, json_int_t epoch, const char *pdigest, json_t **out)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_version v = {0};
	sluice_buf stmt = {0}, env = {0};
	json_t *pred, *acc = json_array();
	char sdig[65], name[128], now[32], *ptext = NULL;
	json_error_t jerr;
	int error;

	for (size_t i = 0; i < a->naccept; i++)
		json_array_append_new(acc, json_string(a->accept[i]));
	sluice_journal__now(st, now); /* the clock approvals' expiry is judged on */
	pred = json_pack("{s:s,s:s,s:s?,s:I,s:s,s:o,s:s?,s:s}", "channel", a->channel, "candidate",
	                 a->candidate, "baseline", *head ? head : NULL, "epoch", epoch, "policy",
	                 pdigest, "accept_inconclusive", acc, "reason", a->reason, "time", now);
	if (!pred || !(ptext = json_dumps(pred, JSON_COMPACT | JSON_SORT_KEYS))) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build the approval");
		goto done;
	}
	snprintf(name, sizeof(name), "sluice:version/%s", a->candidate);
	{
		sluice_subject subj = {name, NULL, sdig};
		if ((error = sluice_version__load(repo, &v, a->candidate)) < 0 ||
		    (error = sluice_version__state_digest(repo, &v, sdig)) < 0 ||
		    (error = sluice_statement__build(ctx, &stmt, &subj, 1, APPROVAL_PREDICATE,
		                                     ptext)) < 0 ||
		    (error = sluice_dsse__sign(ctx, &env, a->key, SLUICE_INTOTO_PAYLOAD_TYPE,
		                               stmt.ptr, stmt.len)) < 0)
			goto done;
	}
	if (!(*out = json_loadb((const char *)env.ptr, env.len, 0, &jerr)))
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot read the envelope");
done:
	free(ptext);
	json_decref(pred);
	sluice_buf__dispose(&stmt);
	sluice_buf__dispose(&env);
	sluice_version__dispose(&v);
	return error;
}

/*
 * Open an approval envelope: the registered key whose signature verifies
 * (*signer_fp) and the statement's predicate (new reference) and subject
 * digest. Refused (EDENIED / EINVALID) if nothing verifies or the
 * statement is not an approval.
 */
static int open_approval(sluice_repo *repo, json_t *registry, json_t *envelope, char *signer_fp,
                         json_t **pred, char sdig[65])
{
	sluice_ctx *ctx = repo->ctx;
	sluice_dsse_envelope e = {0};
	char *text = json_dumps(envelope, JSON_COMPACT), *ptype = NULL;
	json_t *stmt = NULL, *k;
	json_error_t jerr;
	const char *name;
	int error;

	*pred = NULL;
	if (!text)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot encode the envelope");
	if ((error = sluice_dsse__parse(ctx, &e, text, strlen(text))) < 0)
		goto done;
	error = sluice_ctx__error(ctx, SLUICE_EDENIED,
	                          "the approval is not signed by a key registered here");
	json_object_foreach(registry, name, k)
	{
		unsigned char pk[32];
		const char *pub = sluice__jstr(json_object_get(k, "public_key"));
		if (sluice_keys__parse_openssh_pub(ctx, pk, pub, strlen(pub)) < 0 ||
		    sluice_dsse__verify(ctx, &e, pk) < 0)
			continue;
		snprintf(signer_fp, SLUICE_FP_LEN, "%s",
		         sluice__jstr(json_object_get(k, "fingerprint")));
		error = SLUICE_OK;
		break;
	}
	if (error < 0)
		goto done;
	sluice_ctx_clear_error(ctx);
	if ((error = sluice_statement__check(ctx, e.payload, e.payload_len, &ptype)) < 0)
		goto done;
	if (strcmp(e.payload_type, SLUICE_INTOTO_PAYLOAD_TYPE) ||
	    strcmp(ptype, APPROVAL_PREDICATE)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "the envelope is not an approval");
		goto done;
	}
	if (!(stmt = json_loadb((const char *)e.payload, e.payload_len, 0, &jerr))) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "the approval's statement: %s",
		                          jerr.text);
		goto done;
	}
	*pred = json_incref(json_object_get(stmt, "predicate"));
	snprintf(sdig, 65, "%s",
	         sluice__jstr(json_object_get(
	                 json_object_get(json_array_get(json_object_get(stmt, "subject"), 0),
	                                 "digest"),
	                 "blake2b256")));
done:
	json_decref(stmt);
	free(ptype);
	free(text);
	sluice_dsse__dispose(&e);
	return error;
}

static int decide_approve(sluice_repo *repo, const sluice_jstate *st, void *arg,
                          sluice_jchange *out)
{
	struct approval *a = arg;
	sluice_ctx *ctx = repo->ctx;
	json_t *rules = NULL, *channels = NULL, *c, *pred = NULL, *k, *env = NULL, *acc, *entry;
	const char *head, *kname = NULL, *want_head;
	char pdigest[65], proposer[SLUICE_FP_LEN], fp[SLUICE_FP_LEN], sdig[65], wantdig[65];
	char start[32] = "";
	unsigned char h[SLUICE_B2_LEN];
	json_int_t epoch;
	sluice_version v = {0};
	size_t i;
	int error, found = 0;

	/* The entry's time: every time below is compared with, or stored as, this one. */
	sluice_journal__now(st, out->time);
	if (sluice_journal__check_role(repo, st, a->key, NULL) < 0)
		return sluice_journal__deny(repo, out, "role", "refusing an approval: %s",
		                            sluice_ctx_errmsg(ctx));
	c = json_object_get(st->channels, a->channel);
	head = json_string_value(json_object_get(c, "head"));
	if (!head)
		head = "";
	epoch = json_integer_value(json_object_get(c, "moved_seq"));
	if ((error = sluice_policy__rules(repo, st, a->channel, &rules, pdigest)) < 0)
		return error;

	if (a->envelope) {
		/* Signed elsewhere: its binding must be to exactly this state. */
		if ((error = open_approval(repo, st->keys, a->envelope, fp, &pred, sdig)) < 0)
			goto done;
		snprintf(a->candidate, sizeof(a->candidate), "%s",
		         sluice__jstr(json_object_get(pred, "candidate")));
		want_head = json_string_value(json_object_get(pred, "baseline"));
		out->refusal = json_pack("{s:s,s:s}", "channel",
		                         sluice__jstr(json_object_get(pred, "channel")),
		                         "candidate", a->candidate);
		if (strcmp(sluice__jstr(json_object_get(pred, "channel")), a->channel) ||
		    strcmp(want_head ? want_head : "", head) ||
		    json_integer_value(json_object_get(pred, "epoch")) != epoch ||
		    strcmp(sluice__jstr(json_object_get(pred, "policy")), pdigest)) {
			error = sluice_journal__deny(
			        repo, out, "approvals.replayed",
			        "refusing an approval of %.12s for %s: it was given against head "
			        "%.12s after move #%lld under policy %.12s, but %s is now at %.12s "
			        "after move #%lld under policy %.12s",
			        a->candidate, sluice__jstr(json_object_get(pred, "channel")),
			        want_head ? want_head : "(none)",
			        (long long)json_integer_value(json_object_get(pred, "epoch")),
			        sluice__jstr(json_object_get(pred, "policy")), a->channel,
			        *head ? head : "(none)", (long long)epoch, pdigest);
			goto done;
		}
		{
			const char *signed_at = sluice__jstr(json_object_get(pred, "time"));
			long long t = sluice__utc_seconds(signed_at);
			long long now = sluice__utc_seconds(out->time);
			/* Valid from the earlier of the signer's time and this entry's. */
			snprintf(start, sizeof(start), "%s",
			         t >= 0 && strcmp(signed_at, out->time) < 0 ? signed_at
			                                                    : out->time);
			if (t < 0 || t > now + 300 ||
			    expired(json_object_get(json_object_get(rules, "expiry"), "approvals"),
			            start, now)) {
				error = sluice_journal__deny(
				        repo, out, "approvals.expired",
				        "refusing an approval of %.12s for %s dated %s: %s",
				        a->candidate, a->channel,
				        sluice__jstr(json_object_get(pred, "time")),
				        t > now + 300 ? "it is dated in the future"
				                      : "it is older than the policy lets "
				                        "approvals live");
				goto done;
			}
		}
		env = json_incref(a->envelope);
	} else {
		sluice_keys__fingerprint(fp, a->key->pk);
	}
	/* The candidate must be a version this journal proposed. */
	if ((error = sluice_version__load(repo, &v, a->envelope ? a->candidate : a->ref)) < 0)
		goto done;
	git_oid_tostr(a->candidate, sizeof(a->candidate), &v.id);
	if ((error = sluice_jindex__has_version(repo, &v.id, &found)) < 0)
		goto done;
	if (!found) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%.12s was never proposed in this repository's journal",
		                          a->candidate);
		goto done;
	}
	if (a->envelope) {
		if ((error = sluice_version__state_digest(repo, &v, wantdig)) < 0)
			goto done;
		if (strcmp(wantdig, sdig)) {
			error = sluice_journal__deny(repo, out, "approvals.binding",
			                             "refusing an approval: its subject is not the "
			                             "state of %.12s",
			                             a->candidate);
			goto done;
		}
	}
	json_decref(out->refusal);
	out->refusal = json_pack("{s:s,s:s}", "channel", a->channel, "candidate", a->candidate);
	k = sluice_trust__by_fp(st->keys, fp, &kname);
	{
		if (!k || sluice_trust__key_standing(ctx, kname, k, UINT64_MAX, out->time) < 0) {
			error = sluice_journal__deny(repo, out, "role", "refusing an approval: %s",
			                             k ? sluice_ctx_errmsg(ctx)
			                               : "its key is not registered");
			goto done;
		}
	}
	acc = a->envelope ? json_object_get(pred, "accept_inconclusive") : NULL;
	if (a->envelope && !json_is_array(acc)) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "the approval has no accept_inconclusive list");
		goto done;
	}
	{
		int approver =
		        holds_any(k, json_object_get(json_object_get(rules, "approvals"), "roles"));
		int accepter = holds_any(
		        k, json_object_get(json_object_get(rules, "inconclusive"), "roles"));
		size_t naccept = a->envelope ? json_array_size(acc) : a->naccept;
		if (!approver && !(naccept && accepter)) {
			error = sluice_journal__deny(
			        repo, out, "approvals.role",
			        "refusing %s's approval of %.12s for %s: the policy counts "
			        "approvals "
			        "only from keys with the role(s) %s",
			        kname, a->candidate, a->channel,
			        sluice__jstr(json_array_get(
			                json_object_get(json_object_get(rules, "approvals"),
			                                "roles"),
			                0)));
			goto done;
		}
		if (naccept && !accepter) {
			error = sluice_journal__deny(repo, out, "inconclusive.role",
			                             "refusing %s's acceptance of an inconclusive "
			                             "verdict: the policy does not let its roles "
			                             "accept one",
			                             kname);
			goto done;
		}
	}
	proposer_of(repo, st, a->candidate, proposer);
	if (!strcmp(proposer, fp) &&
	    !json_is_true(
	            json_object_get(json_object_get(rules, "approvals"), "proposer_counts"))) {
		error = sluice_journal__deny(repo, out, "approvals.proposer",
		                             "refusing %s's approval of %.12s: %s proposed it, and "
		                             "the policy for %s does not count a proposer's own "
		                             "approval",
		                             kname, a->candidate, kname, a->channel);
		goto done;
	}
	if (!a->envelope && (error = sign_approval(repo, st, a, head, epoch, pdigest, &env)) < 0)
		goto done;
	if (a->out_path) {
		/* Signed for submission elsewhere: nothing is journaled here. */
		char *text = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
		error = text ? sluice_io__write_file_atomic(ctx, a->out_path, text, strlen(text),
		                                            0644)
		             : sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot encode the envelope");
		free(text);
		if (error == 0)
			error = SLUICE_EEXISTS; /* not an error for the caller: see sluice_approve
			                         */
		goto done;
	}
	{
		char *text = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot encode the envelope");
			goto done;
		}
		sluice__b2(h, text, strlen(text));
		sluice__hex(a->statement, h, SLUICE_B2_LEN);
		free(text);
	}
	if (!a->envelope) {
		acc = json_array();
		for (i = 0; i < a->naccept; i++)
			json_array_append_new(acc, json_string(a->accept[i]));
	} else {
		json_incref(acc);
	}
	channels = json_deep_copy(st->channels);
	if (!(c = json_object_get(channels, a->channel))) {
		c = json_pack("{s:n}", "head");
		json_object_set_new(channels, a->channel, c);
	}
	if (!json_is_object(json_object_get(c, "approvals")))
		json_object_set_new(c, "approvals", json_object());
	entry = json_object_get(json_object_get(c, "approvals"), a->candidate);
	if (!entry || strcmp(sluice__jstr(json_object_get(entry, "head")), head)) {
		entry = json_pack("{s:s,s:{}}", "head", head, "keys");
		json_object_set_new(json_object_get(c, "approvals"), a->candidate, entry);
	}
	/*
	 * "time" is when validity starts (the earlier of the signer's time and
	 * this entry's), "signed" the time the signer wrote.
	 */
	json_object_set_new(
	        json_object_get(entry, "keys"), fp,
	        json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:O}", "name", kname, "time",
	                  a->envelope ? start : out->time, "signed",
	                  a->envelope ? sluice__jstr(json_object_get(pred, "time")) : out->time,
	                  "seq", (json_int_t)(st->seq + 1), "statement", a->statement, "policy",
	                  pdigest, "accept", acc));
	out->channels_after = channels;
	out->record =
	        json_pack("{s:s,s:s,s:s?,s:s,s:s,s:O,s:O}", "channel", a->channel, "candidate",
	                  a->candidate, "head", *head ? head : NULL, "approver", kname, "policy",
	                  pdigest, "accept_inconclusive", acc, "envelope", env);
	json_decref(acc);
	error = out->record ? SLUICE_OK
	                    : sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build the record");
done:
	sluice_version__dispose(&v);
	json_decref(env);
	json_decref(pred);
	json_decref(rules);
	return error;
}

static int approval_report(sluice_repo *repo, struct approval *a, const git_oid *entry,
                           char **report)
{
	char hex[GIT_OID_HEXSZ + 1] = "";

	if (entry)
		git_oid_tostr(hex, sizeof(hex), entry);
	return sluice_repo__report(repo->ctx, report,
	                           json_pack("{s:s,s:s,s:s?,s:s?,s:s?}", "channel", a->channel,
	                                     "candidate", a->candidate, "entry", entry ? hex : NULL,
	                                     "statement", entry ? a->statement : NULL, "envelope",
	                                     a->out_path));
}

int sluice_approve(sluice_repo *repo, const char *ref, const char *channel, const char *keyname,
                   const char *const *accept, size_t naccept, const char *reason,
                   const char *out_path, char **report)
{
	struct approval a = {0};
	sluice_key key = {0};
	git_oid entry;
	int error;

	for (size_t i = 0; i < naccept; i++)
		if (!sluice_gates__is_gate(accept[i]))
			return sluice_ctx__error(
			        repo->ctx, SLUICE_EINVALID,
			        "unknown gate '%s' (regression, safety, poisoning)", accept[i]);
	if ((error = sluice_repo__signing_key(repo, &key, keyname, NULL)) < 0)
		return error;
	a = (struct approval){&key, ref, channel, reason, accept, naccept, NULL, out_path, "", ""};
	if (out_path) {
		/* Decide against the current state without journaling anything. */
		sluice_jstate st;
		sluice_jchange ch;
		memset(&ch, 0, sizeof(ch));
		if ((error = sluice_journal__read(repo, &st)) == 0) {
			error = decide_approve(repo, &st, &a, &ch);
			sluice_journal__dispose(&st);
		}
		sluice_journal__change_dispose(&ch);
		if (error == SLUICE_EEXISTS)
			error = approval_report(repo, &a, NULL, report);
	} else if ((error = sluice_journal__transact(repo, &entry, &key, "approve", decide_approve,
	                                             &a)) == 0) {
		error = approval_report(repo, &a, &entry, report);
	}
	sluice_key__dispose(&key);
	return error;
}

int sluice_approve_submit(sluice_repo *repo, const char *envelope_path, const char *keyname,
                          char **report)
{
	struct approval a = {0};
	sluice_key key = {0};
	unsigned char *data = NULL;
	size_t len = 0;
	json_t *env = NULL, *pred;
	json_error_t jerr;
	git_oid entry;
	int error;

	if ((error = sluice_io__read_file(repo->ctx, &data, &len, envelope_path, 1u << 20)) < 0)
		return error;
	if (!(env = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr))) {
		error = sluice_ctx__error(repo->ctx, SLUICE_EINVALID, "%s:%d:%d: %s", envelope_path,
		                          jerr.line, jerr.column, jerr.text);
		goto done;
	}
	{
		/* The channel named inside is only where to look; the binding is checked in decide.
		 */
		json_t *reg = NULL;
		char fp[SLUICE_FP_LEN], sd[65];
		if ((error = sluice_journal__keys(repo, &reg)) < 0)
			goto done;
		error = open_approval(repo, reg, env, fp, &pred, sd);
		json_decref(reg);
		if (error < 0)
			goto done;
		snprintf(a.candidate, sizeof(a.candidate), "%s",
		         sluice__jstr(json_object_get(pred, "channel")));
		json_decref(pred);
	}
	if ((error = sluice_repo__signing_key(repo, &key, keyname, NULL)) < 0)
		goto done;
	{
		char channel[sizeof(a.candidate)];
		snprintf(channel, sizeof(channel), "%s", a.candidate);
		a = (struct approval){&key, NULL, channel, NULL, NULL, 0, env, NULL, "", ""};
		if ((error = sluice_journal__transact(repo, &entry, &key, "approve", decide_approve,
		                                      &a)) == 0)
			error = approval_report(repo, &a, &entry, report);
	}
done:
	sluice_key__dispose(&key);
	json_decref(env);
	free(data);
	return error;
}

/* ---- sluice cosign ------------------------------------------------------------ */

struct cosign {
	const sluice_key *key;
	const char *ref;
	char version[GIT_OID_HEXSZ + 1];
	char statement[65];
	unsigned have, need;
};

static int decide_cosign(sluice_repo *repo, const sluice_jstate *st, void *arg, sluice_jchange *out)
{
	struct cosign *cs = arg;
	sluice_ctx *ctx = repo->ctx;
	sluice_version v = {0};
	sluice_buf stmt = {0}, envb = {0};
	json_t *pred = NULL, *env = NULL, *co;
	char fp[SLUICE_FP_LEN], proposer[SLUICE_FP_LEN], sdig[65], name[128], *ptext = NULL;
	unsigned char h[SLUICE_B2_LEN];
	json_error_t jerr;
	int error, found = 0;

	sluice_journal__now(st, out->time);
	if ((error = sluice_version__load(repo, &v, cs->ref)) < 0)
		return error;
	git_oid_tostr(cs->version, sizeof(cs->version), &v.id);
	if ((error = sluice_jindex__has_version(repo, &v.id, &found)) < 0)
		goto done;
	if (!found) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%.12s was never proposed in this repository's journal",
		                          cs->version);
		goto done;
	}
	out->refusal = json_pack("{s:s}", "version", cs->version);
	if (sluice_journal__check_role(repo, st, cs->key, "proposer") < 0) {
		error = sluice_journal__deny(repo, out, "role",
		                             "refusing a co-signature of %.12s: %s", cs->version,
		                             sluice_ctx_errmsg(ctx));
		goto done;
	}
	sluice_keys__fingerprint(fp, cs->key->pk);
	proposer_of(repo, st, cs->version, proposer);
	if (!strcmp(fp, proposer)) {
		error = sluice_journal__deny(repo, out, "cosign.proposer",
		                             "refusing %s's co-signature of %.12s: it proposed it, "
		                             "and its signature already counts once",
		                             cs->key->name, cs->version);
		goto done;
	}
	if (json_object_get(json_object_get(json_object_get(st->trust, "cosigned"), cs->version),
	                    fp)) {
		error = sluice_ctx__error(ctx, SLUICE_EEXISTS,
		                          "key %s already co-signed %.12s; each key counts once",
		                          cs->key->name, cs->version);
		goto done;
	}
	/* The statement: the spine's format (in-toto in DSSE), subject the version's state. */
	pred = json_pack("{s:s,s:s}", "version", cs->version, "time", out->time);
	snprintf(name, sizeof(name), "sluice:version/%s", cs->version);
	{
		sluice_subject subj = {name, NULL, sdig};
		if (!pred || !(ptext = json_dumps(pred, JSON_COMPACT | JSON_SORT_KEYS))) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build the statement");
			goto done;
		}
		if ((error = sluice_version__state_digest(repo, &v, sdig)) < 0 ||
		    (error = sluice_statement__build(ctx, &stmt, &subj, 1, COSIGN_PREDICATE,
		                                     ptext)) < 0 ||
		    (error = sluice_dsse__sign(ctx, &envb, cs->key, SLUICE_INTOTO_PAYLOAD_TYPE,
		                               stmt.ptr, stmt.len)) < 0)
			goto done;
	}
	if (!(env = json_loadb((const char *)envb.ptr, envb.len, 0, &jerr))) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot read the envelope");
		goto done;
	}
	sluice__b2(h, stmt.ptr, stmt.len);
	sluice__hex(cs->statement, h, SLUICE_B2_LEN);
	out->trust_after = json_deep_copy(st->trust);
	if (!json_is_object(json_object_get(out->trust_after, "cosigned")))
		json_object_set_new(out->trust_after, "cosigned", json_object());
	co = json_object_get(json_object_get(out->trust_after, "cosigned"), cs->version);
	if (!co) {
		co = json_object();
		json_object_set_new(json_object_get(out->trust_after, "cosigned"), cs->version, co);
	}
	json_object_set_new(co, fp,
	                    json_pack("{s:s,s:I,s:s,s:s}", "name", cs->key->name, "seq",
	                              (json_int_t)(st->seq + 1), "time", out->time, "statement",
	                              cs->statement));
	out->record = json_pack("{s:s,s:s,s:O}", "version", cs->version, "statement", cs->statement,
	                        "envelope", env);
	{
		/* What the count will be once this entry lands. */
		sluice_jstate after = *st;
		after.trust = out->trust_after;
		cs->have = signed_by_proposers(&after, cs->version, proposer);
		cs->need = sluice_trust__role_threshold(st, "proposer");
	}
	error = out->record ? SLUICE_OK
	                    : sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build the record");
done:
	free(ptext);
	json_decref(pred);
	json_decref(env);
	sluice_buf__dispose(&stmt);
	sluice_buf__dispose(&envb);
	sluice_version__dispose(&v);
	return error;
}

int sluice_cosign(sluice_repo *repo, const char *ref, const char *keyname, char **report)
{
	struct cosign cs = {0};
	sluice_key key = {0};
	git_oid entry;
	char hex[GIT_OID_HEXSZ + 1];
	int error;

	/* Registered: checked here; the role in decide, where a refusal is journaled. */
	if ((error = sluice_repo__signing_key(repo, &key, keyname, NULL)) < 0)
		return error;
	cs.key = &key;
	cs.ref = ref;
	if ((error = sluice_journal__transact(repo, &entry, &key, "cosign", decide_cosign, &cs)) ==
	    0) {
		git_oid_tostr(hex, sizeof(hex), &entry);
		error = sluice_repo__report(repo->ctx, report,
		                            json_pack("{s:s,s:s,s:s,s:{s:i,s:i}}", "version",
		                                      cs.version, "entry", hex, "statement",
		                                      cs.statement, "signatures", "have", cs.have,
		                                      "need", cs.need));
	}
	sluice_key__dispose(&key);
	return error;
}
