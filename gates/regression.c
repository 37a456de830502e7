/*
 * gates/regression.c - the regression gate: catastrophic forgetting.
 *
 * Per multiple-choice suite, the paired change in accuracy against the
 * baseline (item by item) and against the channel's anchor (the drift
 * budget, so a chain of small drops that each pass alone is caught); gain
 * on the update's declared target suite; KL drift on the pinned text
 * corpus; and, for replay batches, the records that would teach answers
 * contradicting a pinned multiple-choice suite. docs/gates.md gives every
 * formula and default limit.
 */
#include "gates.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Count items right-then-wrong (worse) and wrong-then-right (better). */
static int paired_counts(sluice_ctx *ctx, json_t *before, json_t *after, const char *field,
                         int want, size_t *worse, size_t *better, size_t *n)
{
	*worse = *better = 0;
	*n = json_array_size(before);
	if (json_array_size(after) != *n)
		return sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                         "per-item results of different lengths (%zu, %zu)", *n,
		                         json_array_size(after));
	for (size_t i = 0; i < *n; i++) {
		int b = json_is_true(json_object_get(json_array_get(before, i), field)) == want;
		int a = json_is_true(json_object_get(json_array_get(after, i), field)) == want;
		*worse += b && !a;
		*better += !b && a;
	}
	return SLUICE_OK;
}

static double accuracy(json_t *per_item)
{
	size_t k = 0, n = json_array_size(per_item), i;
	json_t *v;

	json_array_foreach(per_item, i, v) k += json_is_true(json_object_get(v, "correct"));
	return n ? (double)k / (double)n : NAN;
}

/*
 * A paired accuracy check of `after` against `before`; NaN limit: gain (lo >
 * 0). A forgetting check (a limit) is judged only when `before` knows the
 * suite: its Clopper-Pearson lower end lies above `chance`. A model at chance
 * has nothing to forget there, and its right answers are guesses that any
 * small change reshuffles (the test model on facts-new before an adapter
 * teaches them: near-tied choices flip both ways), so judging them would make
 * every small update inconclusive without measuring any loss. Such a check
 * reports its figures and passes, marked "judged": false.
 */
static sluice_outcome paired_check(sluice_gating *g, json_t *checks, const char *name,
                                   const char *suite, json_t *before, json_t *after, double limit,
                                   double chance, double *est_out, int *err)
{
	size_t worse, better, n, known;
	double est, lo, hi, klo;
	json_t *c;
	sluice_outcome o;

	if ((*err = paired_counts(g->repo->ctx, before, after, "correct", 1, &worse, &better, &n)) <
	    0)
		return SLUICE_INCONCLUSIVE;
	sluice_stats__paired_change(&est, &lo, &hi, worse, better, n, g->alpha);
	c = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:f,s:o}", "check", name, "suite", suite, "figure",
	              "paired change in acc", "n", (json_int_t)n, "worse", (json_int_t)worse,
	              "better", (json_int_t)better, "mcnemar_p",
	              sluice_stats__mcnemar_p(worse, better), "items_to_decide",
	              sluice_gates__items_to_decide(g, worse, better, n, limit, 1));
	*est_out = est;
	if (!isnan(limit) && !sluice_gates__knows(g, before, chance, &known, &klo)) {
		char note[320];
		snprintf(note, sizeof(note),
		         "reported, not judged: the model compared with scores %zu/%zu, not above "
		         "chance (%.3f; Clopper-Pearson lower end %.3f), so it has nothing here to "
		         "forget",
		         known, n, chance, klo);
		json_object_set_new(c, "estimate", json_real(est));
		json_object_set_new(c, "paired_interval", json_pack("[f,f]", lo, hi));
		json_object_set_new(c, "limit", json_real(limit));
		json_object_set_new(c, "chance", json_real(chance));
		json_object_set_new(c, "judged", json_false());
		json_object_set_new(c, "result", json_string("pass"));
		json_object_set_new(c, "note", json_string(note));
		json_array_append_new(checks, c);
		*est_out = NAN;
		return SLUICE_PASS;
	}
	if (isnan(limit)) {
		/* Gain must be shown: a lower end above zero; anything else teaches nothing
		 * measurable. */
		o = lo > 0 ? SLUICE_PASS : SLUICE_INCONCLUSIVE;
		json_object_set_new(c, "estimate", json_real(est));
		json_object_set_new(c, "interval", json_pack("[f,f]", lo, hi));
		json_object_set_new(c, "limit", json_real(0));
		json_object_set_new(c, "rule", json_string("above"));
		json_object_set_new(c, "result", json_string(sluice_stats__outcome_name(o)));
		json_array_append_new(checks, c);
		return o;
	}
	return sluice_gates__check(checks, c, est, lo, hi, limit, 1);
}

/* ---- KL drift ---------------------------------------------------------------- */

struct drift {
	double *sum;   /* per text: summed KL */
	size_t *count; /* per text: positions */
	double **kl;   /* per text: each position's KL */
	size_t ntexts;
	double q; /* for the quantile statistic */
};

static double drift_mean(const size_t *idx, size_t n, void *data)
{
	struct drift *d = data;
	double s = 0, c = 0;

	for (size_t k = 0; k < n; k++)
		s += d->sum[idx[k]], c += (double)d->count[idx[k]];
	return c > 0 ? s / c : 0;
}

static double drift_quantile(const size_t *idx, size_t n, void *data)
{
	struct drift *d = data;
	size_t total = 0, k, j, at = 0;
	double *all, q;

	for (k = 0; k < n; k++)
		total += d->count[idx[k]];
	if (!total || !(all = malloc(total * sizeof(*all))))
		return NAN;
	for (k = 0; k < n; k++)
		for (j = 0; j < d->count[idx[k]]; j++)
			all[at++] = d->kl[idx[k]][j];
	q = sluice_stats__quantile(all, total, d->q);
	free(all);
	return q;
}

static void drift_dispose(struct drift *d)
{
	for (size_t i = 0; d->kl && i < d->ntexts; i++)
		free(d->kl[i]);
	free(d->kl);
	free(d->sum);
	free(d->count);
}

/* The two-bucket KL below; a and b are the token's log-probabilities under P and Q. */
static double binary_kl(double a, double b)
{
	double p, one_p, one_q, t1, t2 = 0, kl;

	/* The parser lets values round up to 1e-4 above 0: they mean probability 1. */
	a = a < 0 ? a : 0;
	b = b < 0 ? b : 0;
	p = exp(a);
	one_p = -expm1(a);
	one_q = -expm1(b);
	t1 = p * (a - b);
	/*
	 * (1-p) log((1-p)/(1-q)) tends to +infinity as q -> 1: leaving it out
	 * when 1-q rounds to 0 only lowers the bound.
	 */
	if (one_p > 0 && one_q > 0)
		t2 = one_p * (log(one_p) - log(one_q));
	kl = t1 + t2;
	return kl > 0 ? kl : 0; /* >= 0 exactly; below only by rounding */
}

/*
 * Each token text that exactly one id decodes to, as {text: id}, and each
 * id's text (texts[id], NULL when not such a text): how a server's top-k
 * list, keyed by token text, maps back to ids without ambiguity.
 */
static int unique_texts(sluice_evaluator *ev, json_t **map, char ***texts, size_t *n)
{
	uint32_t vocab = sluice_evaluator__vocab(ev);
	json_t *m = json_object(), *seen = json_object();
	char **t = calloc(vocab ? vocab : 1, sizeof(*t));
	int error = SLUICE_OK;

	if (!t)
		error = SLUICE_ENOMEM;
	for (uint32_t id = 0; error == 0 && id < vocab; id++) {
		char *s = NULL;
		if ((error = sluice_evaluator__token_text(ev, id, &s)) < 0)
			break;
		if (*s && sluice__utf8_valid((const unsigned char *)s, strlen(s))) {
			if (json_object_get(seen, s))
				json_object_del(m, s);
			else
				json_object_set_new(m, s, json_integer(id));
			json_object_set_new(seen, s, json_true());
			t[id] = s;
		} else {
			free(s);
		}
	}
	for (uint32_t id = 0; t && id < vocab; id++)
		if (t[id] && !json_object_get(m, t[id])) {
			free(t[id]);
			t[id] = NULL;
		}
	json_decref(seen);
	if (error < 0) {
		for (uint32_t id = 0; t && id < vocab; id++)
			free(t[id]);
		free(t);
		json_decref(m);
		return error;
	}
	*map = m;
	*texts = t;
	*n = vocab;
	return SLUICE_OK;
}

/*
 * The top-k refinement of binary_kl at one position, or -1 when it does
 * not apply. Buckets: the text's token x, every token whose text is in
 * both servers' top-k lists and decodes from exactly one id (so its
 * probability is known under both models), and the rest. The lists must
 * hold x's own text with x's exact log-probability, or they are not
 * trusted to be keyed the way this tokenizer decodes.
 */
static double topk_kl(double a, double b, uint32_t x, json_t *db, json_t *dc, json_t *map,
                      char **texts, size_t ntexts)
{
	double sp, sq, kl, pr, qr;
	const char *key;
	json_t *v;

	if (!json_is_object(db) || !json_is_object(dc) || x >= ntexts || !texts[x])
		return -1;
	if (!json_is_number(json_object_get(db, texts[x])) ||
	    !json_is_number(json_object_get(dc, texts[x])) ||
	    fabs(json_number_value(json_object_get(db, texts[x])) - a) > 1e-6 ||
	    fabs(json_number_value(json_object_get(dc, texts[x])) - b) > 1e-6)
		return -1;
	a = a < 0 ? a : 0;
	b = b < 0 ? b : 0;
	sp = exp(a);
	sq = exp(b);
	kl = sp * (a - b);
	json_object_foreach(db, key, v)
	{
		json_t *w = json_object_get(dc, key);
		double pa, qa, pv, qv;
		if (!strcmp(key, texts[x]) || !w || !json_object_get(map, key))
			continue;
		pa = json_number_value(v) < 0 ? json_number_value(v) : 0;
		qa = json_number_value(w) < 0 ? json_number_value(w) : 0;
		pv = exp(pa);
		qv = exp(qa);
		/*
		 * vLLM floors log-probabilities at -9999: a floored q is larger
		 * than the truth, which only lowers p log(p/q).
		 */
		if (pv > 0)
			kl += pv * (pa - qa);
		sp += pv;
		sq += qv;
	}
	pr = 1 - sp;
	qr = 1 - sq;
	/* As in binary_kl: a rest term tending to +infinity is left out. */
	if (pr > 0 && qr > 0)
		kl += pr * (log(pr) - log(qr));
	return kl > 0 ? kl : 0;
}

/*
 * KL drift without full rows (the http backend): a lower bound. At each
 * position both next-token distributions are coarse-grained to two
 * buckets, {the text's own token, every other token}; the KL divergence
 * of a coarse-graining is at most the true one (the data-processing
 * inequality), so
 *   p log(p/q) + (1-p) log((1-p)/(1-q)) <= KL(P_base || P_cand)
 * with p and q the token's probabilities, which the server gives exactly
 * (token_logprobs). Where both answers' top-k lists can be mapped back to
 * ids (topk_kl), the tokens in both lists get buckets of their own: a
 * finer coarse-graining, so a bound at least as high and still below the
 * truth. The mean bound over positions, with the bootstrap
 * interval over texts, fails the check when the whole interval is above
 * the limit (the true drift is larger still); otherwise the check is
 * inconclusive, since a lower bound cannot show that drift is small.
 */
static int drift_bound(sluice_gating *g, json_t *checks, sluice_gate_suite *s, sluice_evaluator *eb,
                       sluice_evaluator *ec, sluice_outcome *out)
{
	sluice_ctx *ctx = g->repo->ctx;
	const char *name = sluice__jstr(json_object_get(s->manifest, "name"));
	double limit = sluice_gates__threshold(g->config, "regression", "kl_mean_max");
	json_t *lines = sluice_gates__lines(s->items.ptr, s->items.len), *it, *c;
	const char **texts = NULL, **ctxs = NULL;
	double **lb = NULL, **lc = NULL, total = 0, lo, hi;
	uint32_t **ib = NULL, **ic = NULL;
	json_t **tb = NULL, **tc = NULL, *map = NULL;
	char **idtext = NULL;
	size_t *nb = NULL, *nc = NULL, m = 0, li, positions = 0, cap = json_array_size(lines) + 1,
	       ntexts = 0, refined = 0;
	struct drift d = {0};
	sluice_outcome o;
	int error = SLUICE_OK;

	texts = calloc(cap, sizeof(*texts));
	ctxs = calloc(cap, sizeof(*ctxs));
	lb = calloc(cap, sizeof(*lb));
	lc = calloc(cap, sizeof(*lc));
	ib = calloc(cap, sizeof(*ib));
	ic = calloc(cap, sizeof(*ic));
	nb = calloc(cap, sizeof(*nb));
	nc = calloc(cap, sizeof(*nc));
	tb = calloc(cap, sizeof(*tb));
	tc = calloc(cap, sizeof(*tc));
	d.sum = calloc(cap, sizeof(*d.sum));
	d.count = calloc(cap, sizeof(*d.count));
	if (!texts || !ctxs || !lb || !lc || !ib || !ic || !nb || !nc || !tb || !tc || !d.sum ||
	    !d.count) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
		goto done;
	}
	json_array_foreach(lines, li, it) if (json_is_object(it))
	{
		ctxs[m] = "";
		texts[m++] = sluice__jstr(json_object_get(it, "text"));
	}
	if ((error = sluice_evaluator__token_logprobs_batch(eb, m, ctxs, texts, lb, ib, nb, tb)) <
	            0 ||
	    (error = sluice_evaluator__token_logprobs_batch(ec, m, ctxs, texts, lc, ic, nc, tc)) <
	            0 ||
	    (error = unique_texts(ec, &map, &idtext, &ntexts)) < 0)
		goto done;
	for (size_t k = 0; k < m; k++) {
		/* Aligned at the end, as drift_check does (notes change whether token 0 is scored).
		 */
		size_t n = nb[k] < nc[k] ? nb[k] : nc[k], ob = nb[k] - n, oc = nc[k] - n;
		if (memcmp(ib[k] + ob, ic[k] + oc, n * sizeof(uint32_t))) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "suite %s: the two models tokenize a text "
			                          "differently; drift is not defined",
			                          name);
			goto done;
		}
		for (size_t t = 0; t < n; t++) {
			double kl = topk_kl(lb[k][ob + t], lc[k][oc + t], ib[k][ob + t],
			                    json_array_get(tb[k], ob + t),
			                    json_array_get(tc[k], oc + t), map, idtext, ntexts);
			refined += kl >= 0;
			d.sum[k] += kl >= 0 ? kl : binary_kl(lb[k][ob + t], lc[k][oc + t]);
		}
		d.count[k] = n;
		positions += n;
		total += d.sum[k];
	}
	d.ntexts = m;
	if (positions == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "suite %s has no scored positions",
		                          name);
		goto done;
	}
	if (sluice_stats__bootstrap(&lo, &hi, d.ntexts, drift_mean, &d, 2000, g->seed, g->alpha) <
	    0) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
		goto done;
	}
	o = sluice_stats__decide(lo, hi, limit, 0);
	c = json_pack(
	        "{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:f,s:[f,f],s:f,s:s,s:s,s:s}", "check",
	        "kl_drift", "suite", name, "figure",
	        "lower bound of the mean KL(baseline || candidate), nats per position: "
	        "each position's next-token distributions coarse-grained to {the text's "
	        "token, each token in both top-k lists, every other token}",
	        "bound", "lower", "backend", sluice_evaluator__backend_name(ec), "texts",
	        (json_int_t)d.ntexts, "positions", (json_int_t)positions, "positions_with_topk",
	        (json_int_t)refined, "estimate", total / (double)positions, "interval", lo, hi,
	        "limit", limit, "rule", "at_most", "result",
	        sluice_stats__outcome_name(o == SLUICE_FAIL ? SLUICE_FAIL : SLUICE_INCONCLUSIVE),
	        "note",
	        o == SLUICE_FAIL ? "the http backend has no full next-token distributions; even "
	                           "this lower bound of the drift is above the limit"
	                         : "the http backend has no full next-token distributions: a lower "
	                           "bound of the drift cannot show that it is within the limit "
	                           "(docs/evaluation-http.md)");
	json_array_append_new(checks, c);
	*out = o == SLUICE_FAIL ? SLUICE_FAIL : SLUICE_INCONCLUSIVE;
	json_object_set(g->used_suites, name, json_object_get(s->manifest, "digest"));
done:
	for (size_t k = 0; k < m; k++) {
		free(lb[k]);
		free(lc[k]);
		free(ib[k]);
		free(ic[k]);
		json_decref(tb[k]);
		json_decref(tc[k]);
	}
	for (size_t id = 0; idtext && id < ntexts; id++)
		free(idtext[id]);
	free(idtext);
	json_decref(map);
	free(tb);
	free(tc);
	free(texts);
	free(ctxs);
	free(lb);
	free(lc);
	free(ib);
	free(ic);
	free(nb);
	free(nc);
	free(d.sum);
	free(d.count);
	json_decref(lines);
	return error;
}

/*
 * KL(baseline || candidate) at every scored position of every text item,
 * and the share of positions where both models' most likely next token
 * agree.
 */
static int drift_check(sluice_gating *g, json_t *checks, sluice_gate_suite *s, sluice_outcome *out)
{
	sluice_ctx *ctx = g->repo->ctx;
	sluice_evaluator *eb, *ec;
	struct drift d = {0};
	size_t positions = 0, agree = 0, vocab, li;
	double total = 0, lo, hi, qlo, qhi, *all = NULL;
	const char *name = sluice__jstr(json_object_get(s->manifest, "name"));
	json_t *c, *lines = NULL, *it;
	int error;

	if ((error = sluice_gates__ev_base(g, &eb)) < 0 ||
	    (error = sluice_gates__ev_cand(g, &ec)) < 0)
		return error;
	if (!sluice_evaluator__full_rows(eb) || !sluice_evaluator__full_rows(ec))
		return drift_bound(g, checks, s, eb, ec, out);
	vocab = sluice_evaluator__vocab(ec);
	if (sluice_evaluator__vocab(eb) != vocab) {
		c = json_pack("{s:s,s:s,s:s,s:s}", "check", "kl_drift", "suite", name, "result",
		              "inconclusive", "note",
		              "the models' vocabularies differ: drift is not defined");
		json_array_append_new(checks, c);
		*out = SLUICE_INCONCLUSIVE;
		return SLUICE_OK;
	}
	lines = sluice_gates__lines(s->items.ptr, s->items.len);
	json_array_foreach(lines, li, it)
	{
		const float *rb, *rc;
		const uint32_t *tb, *tc;
		size_t nb, nc, k = d.ntexts;

		if (!json_is_object(it))
			continue;
		error = sluice_evaluator__cont_rows(
		        eb, "", sluice__jstr(json_object_get(it, "text")), &rb, &tb, &nb);
		if (error == 0)
			error = sluice_evaluator__cont_rows(
			        ec, "", sluice__jstr(json_object_get(it, "text")), &rc, &tc, &nc);
		if (error < 0)
			goto done;
		/*
		 * Notes in one model's context and not the other's change whether
		 * the text's first token is scored (docs/evaluation.md): compare
		 * the positions both score, aligned at the end.
		 */
		if (nb > nc) {
			rb += (nb - nc) * vocab;
			tb += nb - nc;
			nb = nc;
		} else if (nc > nb) {
			rc += (nc - nb) * vocab;
			tc += nc - nb;
		}
		if (memcmp(tb, tc, nb * sizeof(*tb))) {
			error = sluice_ctx__error(ctx, SLUICE_EINVALID,
			                          "suite %s: the two models tokenize a text "
			                          "differently; drift is not defined",
			                          name);
			goto done;
		}
		{
			double *ns = realloc(d.sum, (k + 1) * sizeof(*ns));
			size_t *nct;
			double **nk;
			if (ns)
				d.sum = ns;
			nct = realloc(d.count, (k + 1) * sizeof(*nct));
			if (nct)
				d.count = nct;
			nk = realloc(d.kl, (k + 1) * sizeof(*nk));
			if (nk)
				d.kl = nk;
			if (!ns || !nct || !nk ||
			    !(d.kl[k] = calloc(nb ? nb : 1, sizeof(double)))) {
				error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
				goto done;
			}
			d.ntexts = k + 1;
		}
		d.sum[k] = 0;
		d.count[k] = nb;
		for (size_t t = 0; t < nb; t++) {
			const float *a = rb + t * vocab, *b = rc + t * vocab;
			double kl = 0;
			size_t ab = 0, ac = 0;
			/* KL(P_base || P_cand) = sum_v p_b(v) (log p_b(v) - log p_c(v)); rows are
			 * log-probs. */
			for (size_t v = 0; v < vocab; v++) {
				kl += exp((double)a[v]) * ((double)a[v] - (double)b[v]);
				if (a[v] > a[ab])
					ab = v;
				if (b[v] > b[ac])
					ac = v;
			}
			kl = kl < 0 ? 0 : kl; /* rounding below zero */
			d.kl[k][t] = kl;
			d.sum[k] += kl;
			agree += ab == ac;
		}
		positions += nb;
		total += d.sum[k];
	}
	if (positions == 0) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID, "suite %s has no scored positions",
		                          name);
		goto done;
	}
	if (sluice_stats__bootstrap(&lo, &hi, d.ntexts, drift_mean, &d, 2000, g->seed, g->alpha) <
	    0) {
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
		goto done;
	}
	c = json_pack("{s:s,s:s,s:s,s:I,s:I,s:f}", "check", "kl_drift", "suite", name, "figure",
	              "mean KL(baseline || candidate), nats per position", "texts",
	              (json_int_t)d.ntexts, "positions", (json_int_t)positions, "top1_agreement",
	              (double)agree / (double)positions);
	/*
	 * A high percentile is reported only when the corpus has at least 20
	 * positions expected beyond it, with a bootstrap interval over texts.
	 */
	if (!(all = malloc(positions * sizeof(*all)))) {
		json_decref(c);
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
		goto done;
	}
	{
		static const double qs[] = {0.95, 0.99};
		for (size_t qi = 0; qi < 2; qi++) {
			size_t at = 0;
			char key[16];
			if ((double)positions * (1 - qs[qi]) < 20)
				continue;
			for (size_t k = 0; k < d.ntexts; k++)
				for (size_t t = 0; t < d.count[k]; t++)
					all[at++] = d.kl[k][t];
			d.q = qs[qi];
			snprintf(key, sizeof(key), "p%02d", (int)(qs[qi] * 100 + 0.5));
			sluice_stats__bootstrap(&qlo, &qhi, d.ntexts, drift_quantile, &d, 500,
			                        g->seed + qi + 1, g->alpha);
			json_object_set_new(
			        c, key,
			        json_pack("{s:f,s:[f,f]}", "estimate",
			                  sluice_stats__quantile(all, positions, qs[qi]),
			                  "interval", qlo, qhi));
		}
	}
	*out = sluice_gates__check(checks, c, total / (double)positions, lo, hi,
	                           sluice_gates__threshold(g->config, "regression", "kl_mean_max"),
	                           0);
	json_object_set(g->used_suites, name, json_object_get(s->manifest, "digest"));
done:
	free(all);
	drift_dispose(&d);
	json_decref(lines);
	return error;
}

/* ---- what a replay batch would teach ------------------------------------------- */

/* Lower-cased words of s (letters and digits), as a JSON array of strings. */
static json_t *words(const char *s)
{
	json_t *out = json_array();
	char w[128];
	size_t n = 0;

	for (;; s++) {
		if (*s && (isalnum((unsigned char)*s) || (unsigned char)*s >= 0x80)) {
			if (n + 1 < sizeof(w))
				w[n++] = (char)tolower((unsigned char)*s);
			continue;
		}
		if (n) {
			w[n] = 0;
			json_array_append_new(out, json_string(w));
			n = 0;
		}
		if (!*s)
			break;
	}
	return out;
}

/*
 * Words that frame a question rather than say what it asks: the question
 * words, auxiliaries, articles and the commonest prepositions, and the
 * "Q:"/"A:" markers. A statement of a fact ("Citalria keeps a pet") and
 * the question asking it ("Q: What pet does Citalria keep? A:") share
 * their content words, not these, so coverage leaves them out. IDF alone
 * does not: a question word can be as rare as a relation word ("when" in
 * every founding question and nowhere else).
 */
static int framing_word(const char *w)
{
	static const char *const list[] = {"q",   "a",    "an",    "the",   "what", "when", "where",
	                                   "who", "whom", "whose", "which", "why",  "how",  "is",
	                                   "are", "was",  "were",  "be",    "do",   "does", "did",
	                                   "has", "have", "had",   "of",    "in",   "on",   "at",
	                                   "to",  "for",  "by",    "from",  "with"};

	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
		if (!strcmp(w, list[i]))
			return 1;
	return 0;
}

/* 1 when a and b are the same word up to one final "s" ("keeps", "keep"). */
static int same_stem(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 3 && a[la - 1] == 's')
		la--;
	if (lb > 3 && b[lb - 1] == 's')
		lb--;
	return la == lb && !strncmp(a, b, la);
}

static int has_stem(json_t *ws, const char *w)
{
	json_t *v;
	size_t i;

	json_array_foreach(ws, i, v) if (same_stem(json_string_value(v), w)) return 1;
	return 0;
}

/*
 * An item as replay_contradictions reads it, made once per suite: its
 * question's content words (framing words left out, each word once) with
 * their inverse document frequency over the suite's contexts (log(N / df)),
 * and its choices' words. Template words shared by every context weigh
 * nothing; the entity a question is about weighs most. Until 2026-12-03
 * framing words counted and words matched exactly, so a statement of a pet
 * or a founding year covered too little of its question
 * (docs/bench-gates.md, the sixth round).
 */
typedef struct {
	json_t *terms;   /* content words of the context; NULL: not an item */
	double *weight;  /* each term's IDF */
	double total;    /* their sum */
	json_t *choices; /* each choice's words */
	size_t longest;  /* words in the longest choice */
} item_terms;

static int item_terms_init(sluice_ctx *ctx, item_terms *t, json_t *it, json_t *df, size_t ncontexts)
{
	json_t *ctxw, *v, *ch;
	size_t i, k;

	memset(t, 0, sizeof(*t));
	if (!json_is_object(it))
		return SLUICE_OK;
	ctxw = words(sluice__jstr(json_object_get(it, "context")));
	t->terms = json_array();
	t->choices = json_array();
	if (!ctxw || !t->terms || !t->choices ||
	    !(t->weight = sluice__calloc(ctx, json_array_size(ctxw) + 1, sizeof(double)))) {
		json_decref(ctxw);
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
	}
	json_array_foreach(ctxw, i, v)
	{
		const char *w = json_string_value(v);
		double idf =
		        log((double)ncontexts / (double)json_integer_value(json_object_get(df, w)));
		int dup = 0;
		for (size_t j = 0; j < i; j++)
			dup |= !strcmp(json_string_value(json_array_get(ctxw, j)), w);
		if (dup || idf <= 0 || framing_word(w))
			continue;
		t->weight[json_array_size(t->terms)] = idf;
		t->total += idf;
		json_array_append(t->terms, v);
	}
	json_decref(ctxw);
	json_array_foreach(json_object_get(it, "choices"), k, ch)
	{
		json_t *ww = words(sluice__jstr(ch));
		if (json_array_size(ww) > t->longest)
			t->longest = json_array_size(ww);
		json_array_append_new(t->choices, ww);
	}
	return SLUICE_OK;
}

static void item_terms_dispose(item_terms *t)
{
	json_decref(t->terms);
	json_decref(t->choices);
	free(t->weight);
}

/*
 * How much of an item's distinctive question a record covers: the share of
 * the question's weighted content words that the record's words hold, up
 * to a final "s".
 */
static double coverage(const item_terms *t, json_t *recw)
{
	double hit = 0;
	json_t *v;
	size_t i;

	json_array_foreach(t->terms, i, v)
	{
		if (has_stem(recw, json_string_value(v)))
			hit += t->weight[i];
	}
	return t->total > 0 ? hit / t->total : 0;
}

/* Each word's number of contexts, over a suite's parsed items. */
static json_t *context_df(json_t *items, size_t *ncontexts)
{
	json_t *df = json_object(), *it, *w, *v;
	size_t i, k;

	*ncontexts = 0;
	json_array_foreach(items, i, it)
	{
		if (!json_is_object(it))
			continue;
		w = words(sluice__jstr(json_object_get(it, "context")));
		json_array_foreach(w, k, v)
		{
			int dup = 0;
			for (size_t j = 0; j < k; j++)
				dup |= !strcmp(json_string_value(json_array_get(w, j)),
				               json_string_value(v));
			if (!dup)
				json_object_set_new(
				        df, json_string_value(v),
				        json_integer(json_integer_value(json_object_get(
				                             df, json_string_value(v))) +
				                     1));
		}
		(*ncontexts)++;
		json_decref(w);
	}
	return df;
}

/* 1 when every word of phrase occurs in ws, in order and adjacent. */
static int contains_phrase(json_t *ws, json_t *phrase)
{
	size_t n = json_array_size(ws), m = json_array_size(phrase);

	if (m == 0 || m > n)
		return 0;
	for (size_t i = 0; i + m <= n; i++) {
		size_t j = 0;
		while (j < m && !strcmp(json_string_value(json_array_get(ws, i + j)),
		                        json_string_value(json_array_get(phrase, j))))
			j++;
		if (j == m)
			return 1;
	}
	return 0;
}

/* A finding of replay_contradictions: record ri of batch teaches `teaches` against item it. */
static json_t *contradiction(const char *batch, size_t ri, const sluice_gate_suite *s, json_t *it,
                             const char *teaches)
{
	size_t gold = (size_t)json_integer_value(json_object_get(it, "gold"));

	return json_pack("{s:s,s:I,s:s,s:O?,s:s,s:s}", "batch", batch, "line", (json_int_t)ri + 1,
	                 "suite", sluice__jstr(json_object_get(s->manifest, "name")), "item",
	                 json_object_get(it, "id"), "teaches", teaches, "pinned_answer",
	                 sluice__jstr(json_array_get(json_object_get(it, "choices"), gold)));
}

/*
 * A record contradicts a multiple-choice item when it is about the item's
 * question (its prompt and completion cover at least 0.6 of the context's
 * IDF-weighted content words, coverage()) and its completion states a
 * wrong choice and not the gold one; or when it asks or states the item's
 * question itself (its prompt alone covers 0.9) and its completion is an
 * answer (no longer than the item's longest choice and two words more)
 * that is not the gold one: a poisoner need not pick its wrong answer from
 * the suite's choices.
 */
static int contradictions(sluice_gating *g, const char *batch, const unsigned char *buf, size_t len,
                          json_t *findings)
{
	size_t mc[64], nmc = sluice_gates__suites_of(g, "multiple_choice", mc, 64), ri, qi, k;
	json_t *records = sluice_gates__lines(buf, len), *rec, *it, *ww;
	int error = SLUICE_OK;

	for (size_t si = 0; si < nmc && error == SLUICE_OK; si++) {
		sluice_gate_suite *s = &g->suites[mc[si]];
		json_t *items = sluice_gates__lines(s->items.ptr, s->items.len);
		size_t ncontexts, nitems = json_array_size(items);
		json_t *df = context_df(items, &ncontexts);
		item_terms *terms = sluice__calloc(g->repo->ctx, nitems + 1, sizeof(*terms));

		if (!terms)
			error = SLUICE_ENOMEM;
		for (qi = 0; terms && qi < nitems && error == SLUICE_OK; qi++)
			error = item_terms_init(g->repo->ctx, &terms[qi], json_array_get(items, qi),
			                        df, ncontexts);
		json_object_set(g->used_suites, sluice__jstr(json_object_get(s->manifest, "name")),
		                json_object_get(s->manifest, "digest"));
		json_array_foreach(records, ri, rec)
		{
			json_t *pw, *qw, *cw;
			if (error < 0 || !json_is_object(rec))
				continue;
			qw = words(sluice__jstr(json_object_get(rec, "prompt")));
			cw = words(sluice__jstr(json_object_get(rec, "completion")));
			pw = json_copy(qw);
			json_array_extend(pw, cw);
			json_array_foreach(items, qi, it)
			{
				const item_terms *t = &terms[qi];
				size_t gold;
				int states_gold, found = 0;
				if (!t->terms || coverage(t, pw) < 0.6)
					continue;
				gold = (size_t)json_integer_value(json_object_get(it, "gold"));
				states_gold = contains_phrase(cw, json_array_get(t->choices, gold));
				json_array_foreach(t->choices, k, ww)
				{
					if (k != gold && !states_gold && contains_phrase(cw, ww)) {
						json_array_append_new(
						        findings,
						        contradiction(
						                batch, ri, s, it,
						                sluice__jstr(json_array_get(
						                        json_object_get(it,
						                                        "choices"),
						                        k))));
						found = 1;
					}
				}
				/* Another answer than the suite's choices, to the item's own
				 * question. */
				if (!found && !states_gold && json_array_size(cw) > 0 &&
				    json_array_size(cw) <= t->longest + 2 && coverage(t, qw) >= 0.9)
					json_array_append_new(
					        findings,
					        contradiction(batch, ri, s, it,
					                      sluice__jstr(json_object_get(
					                              rec, "completion"))));
			}
			json_decref(pw);
			json_decref(qw);
			json_decref(cw);
		}
		for (qi = 0; terms && qi < nitems; qi++)
			item_terms_dispose(&terms[qi]);
		free(terms);
		json_decref(df);
		json_decref(items);
	}
	json_decref(records);
	return error;
}

int sluice_gates__read_component(sluice_gating *g, json_t *file, sluice_buf *out)
{
	sluice_evaluator *ev;
	char path[8192];
	unsigned char *data = NULL;
	size_t len;
	int error;

	if ((error = sluice_gates__ev_cand(g, &ev)) < 0)
		return error;
	snprintf(path, sizeof(path), "%s/%s", sluice_evaluator__dir(ev),
	         sluice__jstr(json_object_get(file, "path")));
	if ((error = sluice_io__read_file(g->repo->ctx, &data, &len, path, (size_t)1 << 30)) < 0)
		return error;
	out->len = 0;
	error = sluice_buf__put(g->repo->ctx, out, data, len);
	free(data);
	return error;
}

int sluice_gates__regression(sluice_gating *g, json_t *gate, sluice_outcome *result)
{
	json_t *checks = json_object_get(gate, "checks"), *adapters = NULL, *notes = NULL,
	       *replay = NULL, *b;
	const char *target = json_string_value(json_object_get(g->cand.update, "target_suite"));
	double max_drop = sluice_gates__threshold(g->config, "regression", "max_drop");
	double anchor_drop = sluice_gates__threshold(g->config, "regression", "anchor_max_drop");
	double gain = NAN, forgetting = NAN;
	size_t idx[64], n, i;
	sluice_outcome o = SLUICE_PASS;
	int error = 0, anchor_differs;

	if (!g->has_base) {
		sluice_evaluator *ec;
		json_t *scores = json_object();
		json_object_set_new(gate, "note",
		                    json_string("no baseline: the channel is empty and the "
		                                "candidate has no parent, so nothing can "
		                                "regress"));
		json_object_set_new(gate, "scores", scores);
		/* Its scores still start the channel's forgetting matrix. */
		n = sluice_gates__suites_of(g, "multiple_choice", idx, 64);
		for (i = 0; i < n; i++) {
			json_t *pc = NULL;
			if ((error = sluice_gates__ev_cand(g, &ec)) < 0 ||
			    (error = sluice_gates__per_item(g, ec, &g->suites[idx[i]], &pc)) < 0)
				return error;
			json_object_set_new(
			        scores,
			        sluice__jstr(json_object_get(g->suites[idx[i]].manifest, "name")),
			        json_pack("{s:f}", "candidate", accuracy(pc)));
			json_decref(pc);
		}
		*result = SLUICE_PASS;
		return SLUICE_OK;
	}
	anchor_differs = g->has_anchor && !git_oid_equal(&g->anchor.id, &g->base.id);
	if (g->same_model) {
		json_object_set_new(gate, "note",
		                    json_string("the served model (base, adapters, notes) is the "
		                                "baseline's; the model checks are skipped"));
	} else {
		sluice_evaluator *ec, *eb, *ea = NULL;
		json_t *scores;
		if ((error = sluice_gates__ev_cand(g, &ec)) < 0 ||
		    (error = sluice_gates__ev_base(g, &eb)) < 0 ||
		    (anchor_differs && (error = sluice_gates__ev_anchor(g, &ea)) < 0))
			return error;
		n = sluice_gates__suites_of(g, "multiple_choice", idx, 64);
		json_object_set_new(gate, "scores", scores = json_object());
		for (i = 0; i < n; i++) {
			sluice_gate_suite *s = &g->suites[idx[i]];
			const char *name = sluice__jstr(json_object_get(s->manifest, "name"));
			json_t *pc = NULL, *pb = NULL, *pa = NULL;
			int is_target = target && !strcmp(target, name);
			double est, est_a;

			if ((error = sluice_gates__per_item(g, ec, s, &pc)) < 0 ||
			    (error = sluice_gates__per_item(g, eb, s, &pb)) < 0 ||
			    (ea && (error = sluice_gates__per_item(g, ea, s, &pa)) < 0)) {
				json_decref(pc);
				json_decref(pb);
				return error;
			}
			json_object_set_new(scores, name,
			                    json_pack("{s:f,s:f}", "candidate", accuracy(pc),
			                              "baseline", accuracy(pb)));
			double chance = sluice_gates__chance(s);
			o = sluice_stats__worse(
			        o, paired_check(g, checks, is_target ? "gain" : "retention", name,
			                        pb, pc, is_target ? NAN : -max_drop, chance, &est,
			                        &error));
			if (error == 0 && is_target)
				gain = est;
			else if (error == 0 && !isnan(est))
				forgetting =
				        isnan(forgetting) || -est > forgetting ? -est : forgetting;
			if (error == 0 && pa && !is_target)
				o = sluice_stats__worse(o, paired_check(g, checks, "anchor_budget",
				                                        name, pa, pc, -anchor_drop,
				                                        chance, &est_a, &error));
			json_decref(pc);
			json_decref(pb);
			json_decref(pa);
			if (error < 0)
				return error;
		}
		if (target && isnan(gain))
			json_object_set_new(gate, "target_note",
			                    json_pack("{s:s,s:s}", "target_suite", target, "note",
			                              "not a pinned multiple-choice suite: gain "
			                              "is not measured"));
		n = sluice_gates__suites_of(g, "text", idx, 64);
		for (i = 0; i < n; i++) {
			sluice_outcome d = SLUICE_INCONCLUSIVE;
			if ((error = drift_check(g, checks, &g->suites[idx[i]], &d)) < 0)
				return error;
			o = sluice_stats__worse(o, d);
		}
		json_object_set_new(
		        gate, "gain_forgetting",
		        json_pack("{s:s?,s:o,s:o,s:o}", "target_suite", target, "gain",
		                  isnan(gain) ? json_null() : json_real(gain), "forgetting",
		                  isnan(forgetting) ? json_null() : json_real(forgetting), "ratio",
		                  isnan(gain) || isnan(forgetting) || forgetting <= 0
		                          ? json_null()
		                          : json_real(gain / forgetting)));
		if (!isnan(forgetting) && forgetting <= 0)
			json_object_set_new(json_object_get(gate, "gain_forgetting"), "ratio_note",
			                    json_string("no forgetting: the ratio is unbounded"));
	}
	sluice_gates__new_components(g, &adapters, &notes, &replay);
	json_array_foreach(replay, i, b)
	{
		sluice_buf buf = {0};
		json_t *findings = json_array();
		const char *bname = sluice__jstr(json_object_get(b, "name"));
		if ((error = sluice_gates__read_component(g, json_object_get(b, "file"), &buf)) <
		            0 ||
		    (error = contradictions(g, bname, buf.ptr, buf.len, findings)) < 0) {
			json_decref(findings);
			sluice_buf__dispose(&buf);
			break;
		}
		sluice_buf__dispose(&buf);
		o = sluice_stats__worse(
		        o, sluice_gates__findings(
		                   checks,
		                   json_pack("{s:s,s:s,s:s}", "check", "replay_contradictions",
		                             "batch", bname, "figure",
		                             "records whose completion states a wrong answer "
		                             "to a pinned multiple-choice item"),
		                   findings));
	}
	json_decref(adapters);
	json_decref(notes);
	json_decref(replay);
	*result = o;
	return error;
}
