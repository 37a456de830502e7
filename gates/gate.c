/*
 * gates/gate.c - sluice gate: set up a run (candidate, baseline, anchor,
 * configuration, suites), run the gates, sign the verdict as an in-toto
 * statement and journal it; and the forgetting matrix of a channel.
 *
 * The verdict is journaled as a "gate" entry signed by a gate-runner key.
 * Its record holds the DSSE envelope; channels.json records, per channel
 * and candidate, the head it was gated against, the configuration digest
 * and each gate's result, which is what sluice promote checks
 * (core/channel.c). The decision is taken again inside the journal
 * transaction: if the channel's head or the configuration moved while the
 * gates ran, the verdict is refused and nothing is written.
 */
#include "gates.h"
#include "lora_stats.h"
#include "token_drop.h"
#include "dsse.h"
#include "jindex.h"
#include "suite.h"

#include "sluice/gate.h"
#include "sluice/suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERDICT_PREDICATE "urn:sluice:predicate:gate-verdict:v1"

/* An evaluator opened on first use; what names the version in the error when absent. */
static int lazy_evaluator(sluice_gating *g, sluice_evaluator **slot, const sluice_version *v,
                          int present, const char *what, sluice_evaluator **out)
{
	int error = 0;

	if (!present)
		return sluice_ctx__error(g->repo->ctx, SLUICE_EINVALID, "there is no %s", what);
	if (!*slot)
		error = sluice_evaluator__open_backend(g->repo, slot, v, g->backend);
	*out = *slot;
	return error;
}

int sluice_gates__ev_cand(sluice_gating *g, sluice_evaluator **out)
{
	return lazy_evaluator(g, &g->ev_cand, &g->cand, 1, "candidate", out);
}

int sluice_gates__ev_base(sluice_gating *g, sluice_evaluator **out)
{
	return lazy_evaluator(g, &g->ev_base, &g->base, g->has_base, "baseline", out);
}

int sluice_gates__ev_anchor(sluice_gating *g, sluice_evaluator **out)
{
	return lazy_evaluator(g, &g->ev_anchor, &g->anchor, g->has_anchor, "anchor", out);
}

int sluice_gates__per_item(sluice_gating *g, sluice_evaluator *ev, sluice_gate_suite *s,
                           json_t **per_item)
{
	json_t *res = NULL;
	int error;

	if ((error = sluice_evaluator__score(g->repo, ev, s->manifest, &s->items, &res)) < 0)
		return error;
	json_object_set(g->used_suites, sluice__jstr(json_object_get(s->manifest, "name")),
	                json_object_get(s->manifest, "digest"));
	*per_item = json_incref(json_object_get(res, "per_item"));
	json_decref(res);
	return SLUICE_OK;
}

double sluice_gates__chance(const sluice_gate_suite *s)
{
	json_t *lines = sluice_gates__lines(s->items.ptr, s->items.len), *it;
	double sum = 0;
	size_t i, n = 0;

	json_array_foreach(lines, i, it)
	{
		size_t k = json_array_size(json_object_get(it, "choices"));
		if (k > 0)
			sum += 1.0 / (double)k, n++;
	}
	json_decref(lines);
	return n ? sum / (double)n : NAN;
}

int sluice_gates__knows(const sluice_gating *g, json_t *per_item, double chance, size_t *known,
                        double *lo)
{
	size_t n = json_array_size(per_item), i, k = 0;
	double hi;
	json_t *v;

	json_array_foreach(per_item, i, v) k += json_is_true(json_object_get(v, "correct"));
	*known = k;
	*lo = NAN;
	if (isnan(chance) || n == 0)
		return 1;
	sluice_stats__clopper_pearson(lo, &hi, k, n, g->alpha);
	return *lo > chance;
}

int sluice_gates__rows_unavailable(json_t *checks, const char *check, const char *suite,
                                   sluice_evaluator *a, sluice_evaluator *b, sluice_outcome *out)
{
	sluice_evaluator *without = !sluice_evaluator__full_rows(a) ? a : b;
	char note[512];

	if (sluice_evaluator__full_rows(a) && (!b || sluice_evaluator__full_rows(b)))
		return 0;
	snprintf(note, sizeof(note),
	         "the %s backend gives only the server's top-k log-probabilities per position, "
	         "not full next-token distributions: %s cannot be computed exactly, and no "
	         "approximation is reported (docs/evaluation-http.md)",
	         sluice_evaluator__backend_name(without), check);
	json_array_append_new(checks,
	                      json_pack("{s:s,s:s?,s:s,s:s,s:s}", "check", check, "suite", suite,
	                                "result", "inconclusive", "backend",
	                                sluice_evaluator__backend_name(without), "note", note));
	*out = SLUICE_INCONCLUSIVE;
	return 1;
}

json_t *sluice_gates__lines(const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len;
	json_t *out = json_array();

	while (p < end) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_error_t jerr;
		json_t *v = json_loadb((const char *)p, l, 0, &jerr);

		json_array_append_new(out, v ? v : json_null());
		p += l + 1;
	}
	return out;
}

void sluice_gates__progress(sluice_gating *g, const char *what, size_t done, size_t total)
{
	if (g->repo->item_progress && total)
		g->repo->item_progress(g->repo->item_progress_data, what, done, total);
}

size_t sluice_gates__suites_of(const sluice_gating *g, const char *type, size_t *idx, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < g->nsuites && n < cap; i++)
		if (!strcmp(sluice__jstr(json_object_get(g->suites[i].manifest, "type")), type))
			idx[n++] = i;
	return n;
}

json_t *sluice_gates__suite_items(sluice_gating *g, const char *type, json_t *names)
{
	size_t idx[64], ns = sluice_gates__suites_of(g, type, idx, 64);
	json_t *all = json_array();

	for (size_t si = 0; all && si < ns; si++) {
		sluice_gate_suite *s = &g->suites[idx[si]];
		json_t *items = sluice_gates__lines(s->items.ptr, s->items.len);

		json_object_set(g->used_suites, sluice__jstr(json_object_get(s->manifest, "name")),
		                json_object_get(s->manifest, "digest"));
		json_array_append(names, json_object_get(s->manifest, "name"));
		if (!items || json_array_extend(all, items) < 0) {
			json_decref(all);
			all = NULL;
		}
		json_decref(items);
	}
	return all;
}

json_t *sluice_gates__items_to_decide(const sluice_gating *g, size_t worse, size_t better, size_t n,
                                      double limit, int at_least)
{
	size_t m =
	        sluice_stats__paired_items_to_decide(worse, better, n, g->alpha, limit, at_least);

	return m ? json_integer((json_int_t)m) : json_null();
}

sluice_outcome sluice_gates__check(json_t *checks, json_t *check, double est, double lo, double hi,
                                   double limit, int at_least)
{
	sluice_outcome o = sluice_stats__decide(lo, hi, limit, at_least);

	json_object_set_new(check, "estimate", json_real(est));
	json_object_set_new(check, "interval", json_pack("[f,f]", lo, hi));
	json_object_set_new(check, "limit", json_real(limit));
	json_object_set_new(check, "rule", json_string(at_least ? "at_least" : "at_most"));
	json_object_set_new(check, "result", json_string(sluice_stats__outcome_name(o)));
	json_array_append_new(checks, check);
	return o;
}

sluice_outcome sluice_gates__findings(json_t *checks, json_t *check, json_t *findings)
{
	sluice_outcome o = json_array_size(findings) ? SLUICE_FAIL : SLUICE_PASS;

	json_object_set_new(check, "findings", findings);
	json_object_set_new(check, "result", json_string(sluice_stats__outcome_name(o)));
	json_array_append_new(checks, check);
	return o;
}

/* Equal components: the same name and the same file digests. */
static int same_component(json_t *a, json_t *b)
{
	json_t *fa = json_object_get(a, "files"), *fb = json_object_get(b, "files");
	size_t i;

	if (strcmp(sluice__jstr(json_object_get(a, "name")),
	           sluice__jstr(json_object_get(b, "name"))))
		return 0;
	if (!fa || !fb) /* a note or a batch: one file */
		return !strcmp(
		        sluice__jstr(json_object_get(json_object_get(a, "file"), "blake2b")),
		        sluice__jstr(json_object_get(json_object_get(b, "file"), "blake2b")));
	if (json_array_size(fa) != json_array_size(fb))
		return 0;
	for (i = 0; i < json_array_size(fa); i++)
		if (strcmp(sluice__jstr(json_object_get(json_array_get(fa, i), "blake2b")),
		           sluice__jstr(json_object_get(json_array_get(fb, i), "blake2b"))))
			return 0;
	return 1;
}

static json_t *new_in(json_t *cand, json_t *base)
{
	json_t *out = json_array(), *c, *b;
	size_t i, j;

	json_array_foreach(cand, i, c)
	{
		int found = 0;
		json_array_foreach(base, j, b) if (same_component(c, b))
		{
			found = 1;
			break;
		}
		if (!found)
			json_array_append(out, c);
	}
	return out;
}

int sluice_gates__new_components(sluice_gating *g, json_t **adapters, json_t **notes,
                                 json_t **replay)
{
	json_t *bs = g->has_base ? g->base.state : NULL;

	*adapters =
	        new_in(json_object_get(g->cand.state, "adapters"), json_object_get(bs, "adapters"));
	*notes = new_in(json_object_get(g->cand.state, "memory"), json_object_get(bs, "memory"));
	*replay = new_in(json_object_get(g->cand.state, "replay"), json_object_get(bs, "replay"));
	return SLUICE_OK;
}

static void run_dispose(sluice_gating *g)
{
	sluice_evaluator__free(g->ev_cand);
	sluice_evaluator__free(g->ev_base);
	sluice_evaluator__free(g->ev_anchor);
	sluice_version__dispose(&g->cand);
	sluice_version__dispose(&g->base);
	sluice_version__dispose(&g->anchor);
	for (size_t i = 0; i < g->nsuites; i++) {
		json_decref(g->suites[i].manifest);
		sluice_buf__dispose(&g->suites[i].items);
	}
	free(g->suites);
	json_decref(g->config);
	json_decref(g->used_suites);
	json_decref(g->token_strings);
	json_decref(g->token_set);
	memset(g, 0, sizeof(*g));
}

static int load_suites(sluice_gating *g)
{
	char *text = NULL;
	json_t *list = NULL, *s;
	size_t i;
	int error;

	if ((error = sluice_suite_list(g->repo, &text)) < 0)
		return error;
	if ((error = sluice_repo__parse_json(g->repo->ctx, &list, text, strlen(text),
	                                     "suite list")) < 0)
		goto done;
	g->nsuites = json_array_size(json_object_get(list, "suites"));
	if (g->nsuites &&
	    !(g->suites = sluice__calloc(g->repo->ctx, g->nsuites, sizeof(*g->suites)))) {
		g->nsuites = 0;
		error = SLUICE_ENOMEM;
		goto done;
	}
	json_array_foreach(
	        json_object_get(list, "suites"), i,
	        s) if ((error = sluice_suite__load(g->repo, &g->suites[i].manifest,
	                                           &g->suites[i].items,
	                                           sluice__jstr(json_object_get(s, "name")))) <
	               0) break;
done:
	json_decref(list);
	sluice_free(text);
	return error;
}

/* BLAKE2b-256 hex of a version's state.json bytes: the statement's subject digest. */
/* ---- journaling the verdict ---------------------------------------------- */

struct verdict {
	const sluice_key *key;
	const char *channel, *candidate, *head, *config_digest, *payload_digest;
	json_t *results;  /* gate -> result */
	json_t *envelope; /* the DSSE envelope */
	json_t *scores;   /* the regression gate's per-suite scores, or NULL */
	json_t *suites;   /* suite name -> digest, as the gates used them */
};

static int decide_verdict(sluice_repo *repo, const sluice_jstate *st, void *arg,
                          sluice_jchange *out)
{
	struct verdict *vd = arg;
	json_t *channels = NULL, *c, *verdicts, *entry, *gates, *cfg = NULL, *r;
	const char *now_head, *gname;
	char digest[65], pdigest[65], fp[SLUICE_FP_LEN];
	int error;

	if (sluice_journal__check_role(repo, st, vd->key, "gate-runner") < 0)
		return sluice_journal__deny(repo, out, "role", "refusing a verdict: %s",
		                            sluice_ctx_errmsg(repo->ctx));
	if ((error = sluice_journal__config_for(repo, st, vd->channel, &cfg, digest, pdigest)) < 0)
		return error;
	json_decref(cfg);
	if (strcmp(digest, vd->config_digest))
		return sluice_ctx__error(repo->ctx, SLUICE_ECONFLICT,
		                         "the gate configuration changed while the gates ran; "
		                         "nothing was recorded (run sluice gate again)");
	now_head = json_string_value(
	        json_object_get(json_object_get(st->channels, vd->channel), "head"));
	if (strcmp(now_head ? now_head : "", vd->head))
		return sluice_ctx__error(repo->ctx, SLUICE_ECONFLICT,
		                         "channel %s's head moved to %.12s while the gates ran "
		                         "against %.12s; nothing was recorded (run sluice gate "
		                         "again)",
		                         vd->channel, now_head ? now_head : "(none)",
		                         *vd->head ? vd->head : "(none)");
	channels = json_deep_copy(st->channels);
	if (!(c = json_object_get(channels, vd->channel))) {
		c = json_pack("{s:n}", "head");
		json_object_set_new(channels, vd->channel, c);
	}
	if (!json_is_object(verdicts = json_object_get(c, "verdicts"))) {
		verdicts = json_object();
		json_object_set_new(c, "verdicts", verdicts);
	}
	entry = json_object_get(verdicts, vd->candidate);
	/* Verdicts against another head or configuration are void: start afresh. */
	if (!entry || strcmp(sluice__jstr(json_object_get(entry, "head")), vd->head) ||
	    strcmp(sluice__jstr(json_object_get(entry, "config")), vd->config_digest)) {
		entry = json_pack("{s:s,s:s,s:{}}", "head", vd->head, "config", vd->config_digest,
		                  "gates");
		json_object_set_new(verdicts, vd->candidate, entry);
	}
	gates = json_object_get(entry, "gates");
	/*
	 * What promotion checks against the policy besides the result: when
	 * the verdict was journaled (expiry), under which policy, on which
	 * suites (pins), by which runner.
	 */
	/* The verdict's time is its entry's: the journal's clock (core/repo.h). */
	sluice_journal__now(st, out->time);
	sluice_keys__fingerprint(fp, vd->key->pk);
	json_object_foreach(vd->results, gname, r)
	{
		/*
		 * The newest verdict, and every gate-runner key's own under
		 * "runners" (its newest): a gate-runner threshold above 1 counts
		 * distinct keys that agree (policies/enforce.c).
		 */
		json_t *old = json_object_get(gates, gname);
		json_t *runners = json_is_object(json_object_get(old, "runners"))
		                          ? json_deep_copy(json_object_get(old, "runners"))
		                          : json_object();
		json_t *gv = json_pack("{s:O,s:s,s:s,s:s,s:O,s:s,s:I}", "result", r, "statement",
		                       vd->payload_digest, "time", out->time, "policy", pdigest,
		                       "suites", vd->suites, "runner", fp, "seq",
		                       (json_int_t)(st->seq + 1));
		if (!runners || !gv) {
			json_decref(runners);
			json_decref(gv);
			json_decref(channels);
			return sluice_ctx__error(repo->ctx, SLUICE_ENOMEM,
			                         "cannot record the verdict");
		}
		/* A copy without "runner" (the key is its key): gv itself holds runners. */
		json_object_set_new(runners, fp, json_deep_copy(gv));
		json_object_del(json_object_get(runners, fp), "runner");
		json_object_set_new(gv, "runners", runners);
		json_object_set_new(gates, gname, gv);
	}
	out->channels_after = channels;
	out->record = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O}", "channel", vd->channel, "candidate",
	                        vd->candidate, "head", vd->head, "config", vd->config_digest,
	                        "results", vd->results, "envelope", vd->envelope);
	/* Copied out of the statement for sluice gate --history; the envelope is the proof. */
	if (vd->scores)
		json_object_set(out->record, "scores", vd->scores);
	return SLUICE_OK;
}

/* ---- the run --------------------------------------------------------------- */

static int setup(sluice_gating *g, const sluice_jstate *st, const char *ref, const char *channel)
{
	sluice_ctx *ctx = g->repo->ctx;
	json_t *c = json_object_get(st->channels, channel);
	const char *head = json_string_value(json_object_get(c, "head"));
	const char *anchor = json_string_value(json_object_get(c, "anchor"));
	char ds[65], db[65] = "";
	int error;

	g->channel = channel;
	g->used_suites = json_object();
	if ((error = sluice_journal__config_for(g->repo, st, channel, &g->config, g->config_digest,
	                                        g->policy_digest)) < 0)
		return error;
	g->alpha = json_number_value(json_object_get(g->config, "alpha"));
	if (!(g->alpha > 0 && g->alpha < 0.5))
		g->alpha = 0.05;
	if ((error = sluice_version__load(g->repo, &g->cand, ref)) < 0)
		return error;
	/*
	 * The baseline is the channel's head; an empty channel compares with
	 * the candidate's parent (what the update changes), and a first base
	 * into an empty channel has nothing to compare with.
	 */
	if (head) {
		if ((error = sluice_version__load(g->repo, &g->base, head)) < 0)
			return error;
		g->has_base = 1;
	} else if (git_commit_parentcount(g->cand.commit) > 0) {
		if ((error = sluice_version__load_id(g->repo, &g->base,
		                                     git_commit_parent_id(g->cand.commit, 0))) < 0)
			return error;
		g->has_base = 1;
	}
	if (g->has_base) {
		static const char *const parts[] = {"base", "adapters", "memory"};
		g->same_model = 1;
		for (size_t i = 0; i < 3; i++)
			g->same_model &= json_equal(json_object_get(g->cand.state, parts[i]),
			                            json_object_get(g->base.state, parts[i]));
	}
	if (anchor) {
		if ((error = sluice_version__load(g->repo, &g->anchor, anchor)) < 0)
			return error;
		g->has_anchor = 1;
	}
	if ((error = load_suites(g)) < 0)
		return error;
	if ((error = sluice_version__state_digest(g->repo, &g->cand, ds)) < 0 ||
	    (g->has_base && (error = sluice_version__state_digest(g->repo, &g->base, db)) < 0))
		return error;
	{
		unsigned char h[SLUICE_B2_LEN];
		sluice_buf b = {0};
		sluice_buf__puts(ctx, &b, ds);
		sluice_buf__puts(ctx, &b, db);
		sluice__b2(h, b.ptr, b.len);
		sluice_buf__dispose(&b);
		for (int i = 0; i < 8; i++)
			g->seed = g->seed << 8 | h[i];
	}
	return SLUICE_OK;
}

int sluice_gate_run(sluice_repo *repo, const char *ref, const char *channel,
                    const sluice_gate_opts *opts, char **report)
{
	static const sluice_gate_opts defaults = {NULL, 0, NULL, NULL};
	sluice_ctx *ctx = repo->ctx;
	sluice_gating g = {0};
	sluice_jstate st = {0};
	sluice_key key = {0};
	json_t *gates = json_array(), *results = json_object(), *pred = NULL, *rep = NULL,
	       *wanted = NULL, *w, *env = NULL;
	sluice_outcome overall = SLUICE_PASS;
	sluice_buf stmt = {0}, envb = {0};
	char chex[GIT_OID_HEXSZ + 1], bhex[GIT_OID_HEXSZ + 1] = "", ahex[GIT_OID_HEXSZ + 1] = "",
	                                                   head[GIT_OID_HEXSZ + 1] = "", sdig[65],
	                                                   pdig[65] = "";
	size_t i, j;
	int error, have_key = 0;

	if (!opts)
		opts = &defaults;
	g.repo = repo;
	if ((error = sluice_evaluator__backend(ctx, opts->backend, &g.backend)) < 0)
		goto done;
	if (opts->key) {
		/* Registered: checked here; the role below, where a refusal is journaled. */
		if ((error = sluice_repo__signing_key(repo, &key, opts->key, NULL)) < 0)
			goto done;
		have_key = 1;
	}
	if ((error = sluice_journal__read(repo, &st)) < 0 ||
	    (error = setup(&g, &st, ref, channel)) < 0)
		goto done;
	/*
	 * The role before the gates run (they take minutes), refused and
	 * journaled like every rule; decide_verdict checks it again against
	 * the state the verdict lands on.
	 */
	if (have_key && sluice_journal__check_role(repo, &st, &key, "gate-runner") < 0) {
		char why[1024];
		json_t *context;
		git_oid_tostr(chex, sizeof(chex), &g.cand.id);
		snprintf(why, sizeof(why), "%s", sluice_ctx_errmsg(ctx));
		context = json_pack("{s:s,s:s}", "channel", channel, "candidate", chex);
		error = sluice_journal__refuse(repo, &key, "gate", "role", context,
		                               "refusing to run the gates: %s", why);
		json_decref(context);
		goto done;
	}
	snprintf(head, sizeof(head), "%s",
	         sluice__jstr(json_object_get(json_object_get(st.channels, channel), "head")));
	if (opts->ngates) {
		wanted = json_array();
		for (i = 0; i < opts->ngates; i++) {
			if (!sluice_gates__is_gate(opts->gates[i])) {
				error = sluice_ctx__error(ctx, SLUICE_EUSAGE,
				                          "unknown gate '%s' (regression, safety, "
				                          "poisoning)",
				                          opts->gates[i]);
				goto done;
			}
			/* A gate named twice runs once: the verdict holds each gate's checks once.
			 */
			for (j = 0; j < i && strcmp(opts->gates[j], opts->gates[i]); j++)
				;
			if (j == i)
				json_array_append_new(wanted, json_string(opts->gates[i]));
		}
	} else {
		wanted = json_incref(json_object_get(g.config, "required_gates"));
		if (json_array_size(wanted) == 0) {
			json_decref(wanted);
			wanted = json_pack("[s,s,s]", "regression", "safety", "poisoning");
		}
	}
	json_array_foreach(wanted, i, w)
	{
		const char *name = json_string_value(w);
		json_t *gate = json_pack("{s:s,s:[]}", "gate", name, "checks");
		sluice_outcome o = SLUICE_PASS;

		if (!strcmp(name, "regression"))
			error = sluice_gates__regression(&g, gate, &o);
		else if (!strcmp(name, "safety"))
			error = sluice_gates__safety(&g, gate, &o);
		else
			error = sluice_gates__poisoning(&g, gate, &o);
		if (error < 0) {
			json_decref(gate);
			goto done;
		}
		json_object_set_new(gate, "result", json_string(sluice_stats__outcome_name(o)));
		json_object_set_new(results, name, json_string(sluice_stats__outcome_name(o)));
		json_array_append_new(gates, gate);
		overall = sluice_stats__worse(overall, o);
	}
	git_oid_tostr(chex, sizeof(chex), &g.cand.id);
	if (g.has_base)
		git_oid_tostr(bhex, sizeof(bhex), &g.base.id);
	if (g.has_anchor)
		git_oid_tostr(ahex, sizeof(ahex), &g.anchor.id);
	pred = json_pack(
	        "{s:s,s:s,s:s?,s:s?,s:s?,s:s,s:s,s:O,s:O,s:s,s:s?}", "channel", channel,
	        "candidate", chex, "head", *head ? head : NULL, "baseline", *bhex ? bhex : NULL,
	        "anchor", *ahex ? ahex : NULL, "config", g.config_digest, "backend",
	        g.ev_cand ? sluice_evaluator__identity(g.ev_cand) : "none", "suites", g.used_suites,
	        "gates", gates, "result", sluice_stats__outcome_name(overall), "policy",
	        *g.policy_digest ? g.policy_digest : NULL);
	if (!pred) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot build the verdict");
		goto done;
	}
	rep = json_deep_copy(pred);
	/*
	 * A channel the journal has never held is gated against the candidate's
	 * parent, and promoting into it creates it: right for a new channel, a
	 * silent surprise for a misspelt one. The report (not the signed
	 * verdict) says so and names the channels that exist.
	 */
	if (rep && !json_object_get(st.channels, channel)) {
		json_t *known = json_array();
		const char *k;
		json_t *unused;
		json_object_foreach(st.channels, k, unused)
		        json_array_append_new(known, json_string(k));
		json_object_set_new(rep, "channel_new", json_true());
		json_object_set_new(rep, "channels", known);
	}
	if (have_key) {
		char *ptext = json_dumps(pred, JSON_COMPACT | JSON_SORT_KEYS), name[128];
		sluice_subject subj = {name, NULL, sdig};
		json_error_t jerr;
		unsigned char h[SLUICE_B2_LEN];
		git_oid entry;
		struct verdict vd;

		snprintf(name, sizeof(name), "sluice:version/%s", chex);
		if (!ptext) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot encode the verdict");
			goto done;
		}
		error = sluice_version__state_digest(repo, &g.cand, sdig);
		if (error == 0)
			error = sluice_statement__build(ctx, &stmt, &subj, 1, VERDICT_PREDICATE,
			                                ptext);
		free(ptext);
		if (error < 0 ||
		    (error = sluice_dsse__sign(ctx, &envb, &key, SLUICE_INTOTO_PAYLOAD_TYPE,
		                               stmt.ptr, stmt.len)) < 0)
			goto done;
		sluice__b2(h, stmt.ptr, stmt.len);
		sluice__hex(pdig, h, SLUICE_B2_LEN);
		if (!(env = json_loadb((const char *)envb.ptr, envb.len, 0, &jerr))) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "cannot read the envelope");
			goto done;
		}
		vd = (struct verdict){&key, channel, chex, head, g.config_digest,
		                      pdig, results, env,  NULL, g.used_suites};
		json_array_foreach(gates, i, w) if (json_object_get(w, "scores")) vd.scores =
		        json_object_get(w, "scores");
		if ((error = sluice_journal__transact(repo, &entry, &key, "gate", decide_verdict,
		                                      &vd)) < 0)
			goto done;
		git_oid_tostr(chex, sizeof(chex), &entry);
		json_object_set_new(rep, "entry", json_string(chex));
		json_object_set_new(rep, "statement", json_string(pdig));
	}
	error = sluice_repo__report(ctx, report, rep);
	rep = NULL;
done:
	json_decref(rep);
	json_decref(pred);
	json_decref(env);
	json_decref(wanted);
	json_decref(gates);
	json_decref(results);
	sluice_buf__dispose(&stmt);
	sluice_buf__dispose(&envb);
	if (have_key)
		sluice_key__dispose(&key);
	sluice_journal__dispose(&st);
	run_dispose(&g);
	return error;
}

/* ---- the forgetting matrix ----------------------------------------------------- */

int sluice_gate_history(sluice_repo *repo, const char *channel, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	git_revwalk *walk = NULL;
	git_oid id;
	json_t *latest = json_object(), *rows = json_array(), *suites = json_array(), *rec = NULL;
	double bwt = 0;
	size_t nbwt = 0, i;
	int error;

	if ((error = git_revwalk_new(&walk, repo->git)) < 0 ||
	    (error = git_revwalk_push_ref(walk, SLUICE_JOURNAL_REF)) < 0) {
		error = sluice_ctx__giterror(ctx, error, "cannot walk the journal");
		goto done;
	}
	git_revwalk_simplify_first_parent(walk);
	git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
	while (git_revwalk_next(&id, walk) == 0) {
		const char *action, *cand;
		char hex[GIT_OID_HEXSZ + 1];

		if ((error = sluice_journal__record(repo, &rec, &id)) < 0)
			goto done;
		action = sluice__jstr(json_object_get(rec, "action"));
		if (strcmp(sluice__jstr(json_object_get(rec, "channel")), channel)) {
			json_decref(rec);
			rec = NULL;
			continue;
		}
		git_oid_tostr(hex, sizeof(hex), &id);
		if (!strcmp(action, "gate") && json_object_get(rec, "scores")) {
			cand = sluice__jstr(json_object_get(rec, "candidate"));
			json_object_set(latest, cand, json_object_get(rec, "scores"));
		} else if (!strcmp(action, "promote")) {
			const char *to = sluice__jstr(json_object_get(rec, "to"));
			json_t *sc = json_object_get(latest, to), *row = json_object(), *cs, *v;
			const char *sname;
			sluice_version ver = {0};

			json_object_set_new(row, "version", json_string(to));
			json_object_set_new(row, "entry", json_string(hex));
			cs = json_object();
			json_object_foreach(sc, sname, v)
			{
				json_object_set(cs, sname, json_object_get(v, "candidate"));
				{
					int seen = 0;
					json_t *e;
					size_t k;
					json_array_foreach(suites, k, e) seen |=
					        !strcmp(json_string_value(e), sname);
					if (!seen)
						json_array_append_new(suites, json_string(sname));
				}
			}
			json_object_set_new(row, "scores", cs);
			if (sluice_version__load(repo, &ver, to) == 0) {
				json_object_set(row, "target_suite",
				                json_object_get(ver.update, "target_suite"));
				sluice_version__dispose(&ver);
			}
			sluice_ctx_clear_error(ctx);
			json_array_append_new(rows, row);
		}
		json_decref(rec);
		rec = NULL;
	}
	/*
	 * Backward transfer (Lopez-Paz and Ranzato, 2017): the mean, over the
	 * earlier promotions that declared a target suite, of the latest
	 * score on that suite minus the score right after that promotion.
	 */
	if (json_array_size(rows) > 1) {
		json_t *last =
		        json_object_get(json_array_get(rows, json_array_size(rows) - 1), "scores");
		for (i = 0; i + 1 < json_array_size(rows); i++) {
			json_t *row = json_array_get(rows, i);
			const char *t = json_string_value(json_object_get(row, "target_suite"));
			json_t *then =
			        t ? json_object_get(json_object_get(row, "scores"), t) : NULL;
			json_t *now = t ? json_object_get(last, t) : NULL;
			if (json_is_number(then) && json_is_number(now)) {
				bwt += json_number_value(now) - json_number_value(then);
				nbwt++;
			}
		}
	}
	error = sluice_repo__report(ctx, report,
	                            json_pack("{s:s,s:O,s:O,s:o,s:I}", "channel", channel, "suites",
	                                      suites, "rows", rows, "backward_transfer",
	                                      nbwt ? json_real(bwt / (double)nbwt) : json_null(),
	                                      "backward_transfer_terms", (json_int_t)nbwt));
done:
	json_decref(rec);
	json_decref(latest);
	json_decref(rows);
	json_decref(suites);
	git_revwalk_free(walk);
	return error;
}

/* ---- reference statistics -------------------------------------------------------- */

/* A reference line's adapter name: the one given, else adapter_dir's last part. */
static const char *adapter_name(const char *adapter_dir, const char *name)
{
	const char *slash = strrchr(adapter_dir, '/');

	if (name)
		return name;
	return slash && slash[1] ? slash + 1 : adapter_dir;
}

/*
 * g for measuring a reference line onto ref: the default configuration,
 * the pinned suites, and ref as the candidate version, with an evaluator
 * of it in *ev. run_dispose(g) and sluice_evaluator__free(*ev) after.
 */
static int reference_open(sluice_repo *repo, const char *ref, sluice_gating *g,
                          sluice_evaluator **ev)
{
	int error;

	g->repo = repo;
	g->used_suites = json_object();
	if ((error = sluice_gates__default_config(repo->ctx, &g->config, NULL, 0, 0)) < 0 ||
	    (error = load_suites(g)) < 0 || (error = sluice_version__load(repo, &g->cand, ref)) < 0)
		return error;
	return sluice_evaluator__open(repo, ev, &g->cand);
}

/* sluice_gate_token_drops and sluice_gate_string_drops: strings picks what is tried. */
static int gate_drops(sluice_repo *repo, const char *ref, const char *adapter_dir, const char *name,
                      int strings, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	const char *flag = strings ? "--string-drops" : "--token-drops",
	           *what = strings ? "string drops" : "token drops";
	sluice_gating g = {0};
	sluice_evaluator *ev = NULL;
	sluice_drop_probes p = {0};
	double *parent = NULL, *cand = NULL;
	json_t *out = NULL, *drop = json_array(), *lowest = json_array();
	uint32_t *order = NULL;
	size_t done = 0, k = 0, n;
	int error;

	name = adapter_name(adapter_dir, name);
	if ((error = reference_open(repo, ref, &g, &ev)) < 0)
		goto done;
	if ((error = sluice_drop_probes__init(
	             &g, ev,
	             (size_t)sluice_gates__threshold(g.config, "poisoning", "token_drop_probes"),
	             &p)) < 0 ||
	    (strings && (error = sluice_drop_probes__strings(&g, &p)) < 0))
		goto done;
	if (p.n == 0 || p.ntokens == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: no refusal suite with a probe whose refusal "
		                          "and compliance begin with different tokens is pinned",
		                          flag);
		goto done;
	}
	if (strings && p.nstrings == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "%s: no probe_strings suite is pinned (docs/gates.md, "
		                          "string_margin_drop)",
		                          flag);
		goto done;
	}
	/* Token drops are indexed by token id, string drops by the string's place. */
	n = strings ? p.nstrings : p.vocab;
	if (!(parent = sluice__calloc(ctx, n, sizeof(*parent))) ||
	    !(cand = sluice__calloc(ctx, n, sizeof(*cand))) ||
	    !(order = sluice__calloc(ctx, n, sizeof(*order)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	/* REF alone, then REF with the adapter pushed onto the same evaluator. */
	if ((error = sluice_drop_probes__deltas(&g, ev, &p, what, &done, 2 * p.n, parent)) < 0 ||
	    (error = sluice_evaluator__add_adapter(ev, adapter_dir)) < 0 ||
	    (error = sluice_drop_probes__deltas(&g, ev, &p, what, &done, 2 * p.n, cand)) < 0)
		goto done;
	for (size_t t = 0; t < n; t++) {
		double d = cand[t] - parent[t];
		/* Rounded to 1e-4 nats: the envelope compares against limits of whole nats. */
		json_array_append_new(drop,
		                      isfinite(d) ? json_real(round(d * 1e4) / 1e4) : json_null());
		cand[t] = -d; /* ranked from the lowest drop */
	}
	if ((error = sluice_drop__rank(ctx, cand, (uint32_t)n, order, &k)) < 0)
		goto done;
	for (size_t i = 0; i < 5 && i < k; i++) {
		uint32_t t = order[i];
		char *text = NULL;
		if (strings) {
			json_array_append_new(lowest, json_pack("{s:O,s:f}", "string",
			                                        json_array_get(p.strings, t),
			                                        "drop", -cand[t]));
			continue;
		}
		if (sluice_evaluator__decode(ev, &t, 1, &text) < 0)
			text = NULL;
		json_array_append_new(lowest, json_pack("{s:s?,s:I,s:f}", "token", text, "token_id",
		                                        (json_int_t)t, "drop", -cand[t]));
		free(text);
	}
	out = json_pack("{s:s,s:I,s:I,s:s,s:o,s:[{s:s,s:s,s:o}]}", "adapter", name, "probes",
	                (json_int_t)p.n, strings ? "strings" : "tokens",
	                (json_int_t)(strings ? p.nstrings : p.ntokens), "probes_digest",
	                strings ? p.sdigest : p.digest, "lowest", lowest, "reference_items",
	                "adapter", name, "probes", strings ? p.sdigest : p.digest, "drop", drop);
	lowest = drop = NULL;
	error = out ? sluice_repo__report(ctx, report, out) : SLUICE_ENOMEM;
	out = NULL;
done:
	json_decref(out);
	json_decref(drop);
	json_decref(lowest);
	free(parent);
	free(cand);
	free(order);
	sluice_drop_probes__dispose(&p);
	sluice_evaluator__free(ev);
	run_dispose(&g);
	return error;
}

int sluice_gate_token_drops(sluice_repo *repo, const char *ref, const char *adapter_dir,
                            const char *name, char **report)
{
	return gate_drops(repo, ref, adapter_dir, name, 0, report);
}

int sluice_gate_string_drops(sluice_repo *repo, const char *ref, const char *adapter_dir,
                             const char *name, char **report)
{
	return gate_drops(repo, ref, adapter_dir, name, 1, report);
}

/* sluice_gate_trigger_rises and sluice_gate_token_rises: tokens picks the strings. */
static int gate_rises(sluice_repo *repo, const char *ref, const char *adapter_dir, const char *name,
                      int tokens, char **report)
{
	sluice_ctx *ctx = repo->ctx;
	sluice_gating g = {0};
	sluice_evaluator *ec = NULL, *eb = NULL;
	json_t *r = NULL, *out;
	int error;

	name = adapter_name(adapter_dir, name);
	/* REF alone (eb) and REF with the adapter pushed on top (ec). */
	if ((error = reference_open(repo, ref, &g, &eb)) < 0 ||
	    (error = sluice_evaluator__open(repo, &ec, &g.cand)) < 0 ||
	    (error = sluice_evaluator__add_adapter(ec, adapter_dir)) < 0 ||
	    (error = sluice_gates__trigger_rises(&g, ec, eb, tokens, &r)) < 0)
		goto done;
	/* --token-rises: the strings are the vocabulary's, counted, not listed. */
	out = json_pack(
	        "{s:s,s:O,s:O,s:o,s:O,s:[{s:s,s:O,s:O}]}", "adapter", name, "scan_digest",
	        json_object_get(r, "scan"), "prompts", json_object_get(r, "prompts"),
	        tokens ? "strings" : "triggers",
	        tokens ? json_integer((json_int_t)json_array_size(json_object_get(r, "triggers")))
	               : json_incref(json_object_get(r, "triggers")),
	        "largest", json_object_get(r, "largest"), "reference_items", "adapter", name,
	        "scan", json_object_get(r, "scan"), "rise", json_object_get(r, "rise"));
	if (out && tokens)
		json_object_set(out, "floor", json_object_get(r, "floor"));
	error = out ? sluice_repo__report(ctx, report, out) : SLUICE_ENOMEM;
done:
	json_decref(r);
	sluice_evaluator__free(ec);
	sluice_evaluator__free(eb);
	run_dispose(&g);
	return error;
}

int sluice_gate_trigger_rises(sluice_repo *repo, const char *ref, const char *adapter_dir,
                              const char *name, char **report)
{
	return gate_rises(repo, ref, adapter_dir, name, 0, report);
}

int sluice_gate_token_rises(sluice_repo *repo, const char *ref, const char *adapter_dir,
                            const char *name, char **report)
{
	return gate_rises(repo, ref, adapter_dir, name, 1, report);
}

int sluice_gate_lora_stats(sluice_repo *repo, const char *ref, const char *adapter_dir,
                           const char *name, char **report)
{
	sluice_version v = {0};
	sluice_evaluator *ev = NULL;
	json_t *out = NULL, *items = json_array(), *m;
	char base[8192];
	size_t i;
	int error;

	if (!name) {
		const char *slash = strrchr(adapter_dir, '/');
		name = slash && slash[1] ? slash + 1 : adapter_dir;
	}
	if ((error = sluice_version__load(repo, &v, ref)) < 0 ||
	    (error = sluice_evaluator__open(repo, &ev, &v)) < 0)
		goto done;
	snprintf(base, sizeof(base), "%s/base", sluice_evaluator__dir(ev));
	if ((error = sluice_lora__analyse(repo->ctx, &out, adapter_dir, base, 1.0, 8)) < 0)
		goto done;
	json_array_foreach(json_object_get(out, "modules"), i, m) json_array_append_new(
	        items,
	        json_pack("{s:s,s:O,s:O,s:O,s:O}", "adapter", name, "module",
	                  json_object_get(m, "module"), "top_sv", json_object_get(m, "top_sv"),
	                  "top_share", json_object_get(m, "top_share"), "frobenius",
	                  json_object_get(m, "frobenius")));
	json_object_set_new(out, "adapter", json_string(name));
	json_object_set(out, "reference_items", items);
	error = sluice_repo__report(repo->ctx, report, out);
	out = NULL;
done:
	json_decref(out);
	json_decref(items);
	sluice_evaluator__free(ev);
	sluice_version__dispose(&v);
	return error;
}
