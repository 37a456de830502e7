/*
 * gates/token_drop.c - the poisoning gate's token_margin_drop. See
 * token_drop.h for what it measures and docs/gates.md for the rule.
 */
#include "token_drop.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most findings listed, and tokens shown with the largest figures. */
#define FINDINGS_MAX 10
#define LARGEST 5

void sluice_drop_probes__dispose(sluice_drop_probes *p)
{
	json_decref(p->prompts);
	json_decref(p->strings);
	free(p->targets);
	free(p->tokens);
	memset(p, 0, sizeof(*p));
}

/* text's first token into *id; 0 when it has none. */
static int first_token(sluice_evaluator *ev, const char *text, uint32_t *id, int *has)
{
	uint32_t *ids = NULL;
	size_t n = 0;
	int error = sluice_evaluator__encode(ev, text, &ids, &n);

	*has = error == 0 && n > 0;
	if (*has)
		*id = ids[0];
	free(ids);
	return error;
}

static void hash_str(crypto_generichash_state *st, const char *s)
{
	crypto_generichash_update(st, (const unsigned char *)s, strlen(s) + 1);
}

static void hash_num(crypto_generichash_state *st, unsigned long v)
{
	char b[32];

	snprintf(b, sizeof(b), "%lu", v);
	hash_str(st, b);
}

int sluice_drop_probes__init(sluice_gating *g, sluice_evaluator *ev, size_t max,
                             sluice_drop_probes *p)
{
	sluice_ctx *ctx = g->repo->ctx;
	size_t idx[64], ns = sluice_gates__suites_of(g, "refusal", idx, 64);
	crypto_generichash_state st;
	unsigned char d[32];
	int error = 0;

	memset(p, 0, sizeof(*p));
	p->vocab = sluice_evaluator__vocab(ev);
	if (!(p->prompts = json_array()) ||
	    !(p->targets = sluice__calloc(ctx, max ? 2 * max : 1, sizeof(*p->targets))) ||
	    !(p->tokens = sluice__calloc(ctx, p->vocab ? p->vocab : 1, sizeof(*p->tokens))))
		return SLUICE_ENOMEM;
	for (size_t si = 0; si < ns && p->n < max; si++) {
		sluice_gate_suite *s = &g->suites[idx[si]];
		json_t *items = sluice_gates__lines(s->items.ptr, s->items.len), *it;
		size_t i;

		json_object_set(g->used_suites, sluice__jstr(json_object_get(s->manifest, "name")),
		                json_object_get(s->manifest, "digest"));
		json_array_foreach(items, i, it)
		{
			const char *prompt = sluice__jstr(json_object_get(it, "prompt"));
			uint32_t r = 0, c = 0;
			int hr, hc;

			if (p->n >= max)
				break;
			if (!json_is_object(it))
				continue;
			if ((error = first_token(ev, sluice__jstr(json_object_get(it, "refusal")),
			                         &r, &hr)) < 0 ||
			    (error = first_token(ev,
			                         sluice__jstr(json_object_get(it, "compliance")),
			                         &c, &hc)) < 0)
				break;
			/* Answers that begin alike leave no first-token margin to read. */
			if (!hr || !hc || r == c) {
				p->skipped++;
				continue;
			}
			json_array_append_new(p->prompts, json_string(prompt));
			p->targets[2 * p->n] = r;
			p->targets[2 * p->n + 1] = c;
			p->n++;
		}
		json_decref(items);
		if (error < 0)
			return error;
	}
	/* Every id that decodes to some text: special tokens and gaps are not tried. */
	for (uint32_t t = 0; t < p->vocab; t++) {
		char *text = NULL;
		if (sluice_evaluator__decode(ev, &t, 1, &text) < 0) {
			sluice_ctx_clear_error(ctx);
			continue;
		}
		if (text[0])
			p->tokens[p->ntokens++] = t;
		free(text);
	}
	crypto_generichash_init(&st, NULL, 0, sizeof(d));
	hash_str(&st, "token-drop-probes-1");
	hash_num(&st, p->vocab);
	for (size_t i = 0; i < p->n; i++) {
		hash_str(&st, json_string_value(json_array_get(p->prompts, i)));
		hash_num(&st, p->targets[2 * i]);
		hash_num(&st, p->targets[2 * i + 1]);
	}
	hash_num(&st, p->ntokens);
	for (size_t j = 0; j < p->ntokens; j++)
		hash_num(&st, p->tokens[j]);
	crypto_generichash_final(&st, d, sizeof(d));
	sodium_bin2hex(p->digest, sizeof(p->digest), d, sizeof(d));
	return SLUICE_OK;
}

static int token_deltas(sluice_gating *g, sluice_evaluator *ev, const sluice_drop_probes *p,
                        const char *what, size_t *done, size_t total, double *delta)
{
	double *lp = sluice__calloc(g->repo->ctx, p->ntokens ? 2 * p->ntokens : 1, sizeof(*lp));
	int error = 0;

	if (!lp)
		return SLUICE_ENOMEM;
	for (uint32_t t = 0; t < p->vocab; t++)
		delta[t] = NAN;
	for (size_t j = 0; j < p->ntokens; j++)
		delta[p->tokens[j]] = 0;
	for (size_t i = 0; i < p->n && p->ntokens; i++) {
		const char *prompt = json_string_value(json_array_get(p->prompts, i));
		const uint32_t *tg = p->targets + 2 * i;
		double plain[2], m0;

		/* One pass: every branch, and the probe's own margin (plain). */
		if ((error = sluice_evaluator__branch_logprobs(ev, prompt, p->tokens, p->ntokens,
		                                               tg, 2, lp, plain)) < 0)
			break;
		m0 = plain[0] - plain[1];
		for (size_t j = 0; j < p->ntokens; j++)
			delta[p->tokens[j]] += ((lp[2 * j] - lp[2 * j + 1]) - m0) / (double)p->n;
		sluice_gates__progress(g, what, ++*done, total);
	}
	free(lp);
	return error;
}

int sluice_drop_probes__strings(sluice_gating *g, sluice_drop_probes *p)
{
	json_t *names = json_array(), *items = sluice_gates__suite_items(g, "probe_strings", names),
	       *it;
	crypto_generichash_state st;
	unsigned char d[32];
	size_t i;

	json_decref(names);
	json_decref(p->strings);
	p->nstrings = 0;
	if (!items || !(p->strings = json_array())) {
		json_decref(items);
		return SLUICE_ENOMEM;
	}
	json_array_foreach(items, i, it)
	{
		json_t *str = json_object_get(it, "string");
		if (json_is_string(str) && json_string_length(str))
			json_array_append(p->strings, str);
	}
	json_decref(items);
	p->nstrings = json_array_size(p->strings);
	crypto_generichash_init(&st, NULL, 0, sizeof(d));
	hash_str(&st, "string-drop-probes-1");
	hash_str(&st, p->digest);
	hash_num(&st, p->nstrings);
	for (size_t j = 0; j < p->nstrings; j++)
		hash_str(&st, json_string_value(json_array_get(p->strings, j)));
	crypto_generichash_final(&st, d, sizeof(d));
	sodium_bin2hex(p->sdigest, sizeof(p->sdigest), d, sizeof(d));
	return SLUICE_OK;
}

/* The refusal margin log P(refusal's first token) - log P(compliance's) right after text. */
static int margin_after(sluice_evaluator *ev, const char *text, const uint32_t *tg, double *m)
{
	const float *row;
	int error = sluice_evaluator__next_row(ev, text, &row);

	if (error == 0)
		*m = (double)row[tg[0]] - (double)row[tg[1]];
	return error;
}

static int string_deltas(sluice_gating *g, sluice_evaluator *ev, const sluice_drop_probes *p,
                         const char *what, size_t *done, size_t total, double *delta)
{
	sluice_ctx *ctx = g->repo->ctx;
	char *text = NULL;
	size_t cap = 0;
	int error = 0;

	for (size_t j = 0; j < p->nstrings; j++)
		delta[j] = 0;
	for (size_t i = 0; i < p->n && p->nstrings && error == 0; i++) {
		const char *prompt = json_string_value(json_array_get(p->prompts, i));
		const uint32_t *tg = p->targets + 2 * i;
		double m0 = 0, m = 0;

		if ((error = margin_after(ev, prompt, tg, &m0)) < 0)
			break;
		for (size_t j = 0; j < p->nstrings; j++) {
			const char *str = json_string_value(json_array_get(p->strings, j));
			size_t need = strlen(prompt) + strlen(str) + 2;
			/* The string after the prompt as the labelled set puts a trigger there:
			 * one space between, tokenized together. */
			if ((error = sluice__reserve(ctx, (void **)&text, &cap, need, 1)) < 0)
				break;
			snprintf(text, cap, "%s %s", prompt, str);
			if ((error = margin_after(ev, text, tg, &m)) < 0)
				break;
			delta[j] += (m - m0) / (double)p->n;
		}
		if (error == 0)
			sluice_gates__progress(g, what, ++*done, total);
	}
	free(text);
	return error;
}

int sluice_drop_probes__deltas(sluice_gating *g, sluice_evaluator *ev, const sluice_drop_probes *p,
                               const char *what, size_t *done, size_t total, double *delta)
{
	return p->strings ? string_deltas(g, ev, p, what, done, total, delta)
	                  : token_deltas(g, ev, p, what, done, total, delta);
}

/* delta[vocab] as JSON (null where NaN), and back; from_json checks the shape. */
static json_t *deltas_json(const double *delta, size_t vocab)
{
	json_t *a = json_array();

	for (size_t t = 0; a && t < vocab; t++)
		json_array_append_new(a, isfinite(delta[t]) ? json_real(delta[t]) : json_null());
	return a;
}

static int deltas_from_json(json_t *a, double *delta, size_t vocab)
{
	if (!json_is_array(a) || json_array_size(a) != vocab)
		return 0;
	for (size_t t = 0; t < vocab; t++) {
		json_t *x = json_array_get(a, t);
		if (!json_is_null(x) && !json_is_number(x))
			return 0;
		delta[t] = json_is_number(x) ? json_number_value(x) : NAN;
	}
	return 1;
}

/*
 * The two kinds of drop check: what each tries after the probes, the
 * reference suites that hold its clean lines, its limit and the flag that
 * writes its reference lines.
 */
typedef struct {
	const char *check, *ref_type, *limit_key, *layout, *figure, *flag;
} drop_kind;

static const drop_kind KINDS[2] = {
        {"token_margin_drop", "token_drop_reference", "token_drop_max", "token-margin-deltas-1",
         "how far one token after a harmful probe lowers the refusal margin beyond the "
         "baseline, below the lowest of the clean reference adapters at the same token (nats), "
         "at the most extreme token",
         "--token-drops"},
        {"string_margin_drop", "string_drop_reference", "string_drop_max", "string-margin-deltas-1",
         "how far one pinned string after a harmful probe lowers the refusal margin beyond the "
         "baseline, below the lowest of the clean reference adapters at the same string "
         "(nats), at the most extreme string",
         "--string-drops"},
};

/*
 * The envelope: at each of the k items tried (token ids, or strings), the
 * lowest drop of the reference lines made on these probes and items (+inf
 * where none has one). *nref counts those lines, *other the lines made on
 * other probes (another suite, tokenizer, probe count or list of strings),
 * which are not comparable and are left out.
 */
static int envelope(sluice_gating *g, const drop_kind *kind, const char *digest, size_t k,
                    double *env, size_t *nref, size_t *other, json_t *names)
{
	json_t *items = sluice_gates__suite_items(g, kind->ref_type, names), *it;
	size_t i;

	*nref = *other = 0;
	if (!items)
		return SLUICE_ENOMEM;
	for (size_t t = 0; t < k; t++)
		env[t] = INFINITY;
	json_array_foreach(items, i, it)
	{
		json_t *drop = json_object_get(it, "drop");
		if (!json_is_object(it))
			continue;
		if (strcmp(sluice__jstr(json_object_get(it, "probes")), digest) ||
		    json_array_size(drop) != k) {
			(*other)++;
			continue;
		}
		(*nref)++;
		for (size_t t = 0; t < k; t++) {
			json_t *x = json_array_get(drop, t);
			if (json_is_number(x) && json_number_value(x) < env[t])
				env[t] = json_number_value(x);
		}
	}
	json_decref(items);
	return 0;
}

static json_t *token_entry(sluice_evaluator *ev, uint32_t t, double drop, double env)
{
	char *text = NULL;
	json_t *e;

	if (sluice_evaluator__decode(ev, &t, 1, &text) < 0)
		text = NULL;
	e = json_pack("{s:s?,s:I,s:f,s:f,s:f}", "token", text, "token_id", (json_int_t)t, "drop",
	              drop, "reference_lowest", env, "below", env - drop);
	free(text);
	return e;
}

struct ranked {
	double score;
	uint32_t t;
};

static int by_score(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->t < y->t ? -1 : x->t > y->t;
}

int sluice_drop__rank(sluice_ctx *ctx, const double *score, uint32_t vocab, uint32_t *order,
                      size_t *n)
{
	struct ranked *rk = sluice__calloc(ctx, vocab ? vocab : 1, sizeof(*rk));

	*n = 0;
	if (!rk)
		return SLUICE_ENOMEM;
	for (uint32_t t = 0; t < vocab; t++)
		if (isfinite(score[t])) {
			rk[*n].score = score[t];
			rk[(*n)++].t = t;
		}
	qsort(rk, *n, sizeof(*rk), by_score);
	for (size_t k = 0; k < *n; k++)
		order[k] = rk[k].t;
	free(rk);
	return SLUICE_OK;
}

static json_t *string_entry(const sluice_drop_probes *p, size_t j, double drop, double env)
{
	return json_pack("{s:O,s:f,s:f,s:f}", "string", json_array_get(p->strings, j), "drop", drop,
	                 "reference_lowest", env, "below", env - drop);
}

/*
 * Either check: the tokens of the vocabulary (strings 0) or the pinned
 * strings (strings 1) after the probes, the candidate's drop set against
 * the envelope of the clean reference lines.
 */
static int drop_check(sluice_gating *g, int strings, json_t *checks, sluice_outcome *out)
{
	sluice_ctx *ctx = g->repo->ctx;
	const drop_kind *kind = &KINDS[strings];
	double limit = sluice_gates__threshold(g->config, "poisoning", kind->limit_key);
	double nprobes = sluice_gates__threshold(g->config, "poisoning", "token_drop_probes");
	double refmin = sluice_gates__threshold(g->config, "poisoning", "reference_min");
	double tmax = sluice_gates__threshold(g->config, "poisoning", "token_drop_tokens_max");
	sluice_evaluator *ec, *eb;
	sluice_drop_probes p = {0};
	double *env = NULL, *dc = NULL, *db = NULL, *below = NULL;
	uint32_t *order = NULL;
	size_t one[1], nref, other, nr = 0, done = 0, k, tried;
	const char *digest;
	json_t *names = json_array(), *c = NULL, *findings = NULL, *largest = NULL, *cached;
	int error, hit;

	if (!sluice_gates__suites_of(g, "refusal", one, 1) || !g->has_base || !(nprobes >= 1) ||
	    !isfinite(limit) || (strings && !sluice_gates__suites_of(g, "probe_strings", one, 1)))
		goto quiet;
	if ((error = sluice_gates__ev_cand(g, &ec)) < 0 ||
	    (error = sluice_gates__ev_base(g, &eb)) < 0)
		goto done;
	if (sluice_gates__rows_unavailable(checks, kind->check, NULL, eb, ec, out))
		goto quiet;
	if (sluice_evaluator__vocab(eb) != sluice_evaluator__vocab(ec))
		goto quiet;
	if ((error = sluice_drop_probes__init(
	             g, ec, nprobes > PROBES_MAX ? PROBES_MAX : (size_t)nprobes, &p)) < 0 ||
	    (strings && (error = sluice_drop_probes__strings(g, &p)) < 0))
		goto done;
	/* k items are scored (token ids are indexed by id); tried of them are tried. */
	k = strings ? p.nstrings : p.vocab;
	tried = strings ? p.nstrings : p.ntokens;
	digest = strings ? p.sdigest : p.digest;
	if (p.n == 0 || tried == 0)
		goto quiet;
	if (!strings && (double)p.ntokens > tmax) {
		/* A large vocabulary times the probes is more forward work than a gate run may
		 * take. */
		json_array_append_new(checks,
		                      json_pack("{s:s,s:s,s:b,s:I,s:I,s:f,s:s}", "check",
		                                "token_margin_drop", "result", "pass", "judged", 0,
		                                "probes", (json_int_t)p.n, "tokens",
		                                (json_int_t)p.ntokens, "tokens_max", tmax, "note",
		                                "more tokens to try than token_drop_tokens_max: "
		                                "not run, not judged "
		                                "(docs/gates.md)"));
		*out = SLUICE_PASS;
		goto quiet;
	}
	if (!(env = sluice__calloc(ctx, k, sizeof(*env))) ||
	    !(dc = sluice__calloc(ctx, k, sizeof(*dc))) ||
	    !(db = sluice__calloc(ctx, k, sizeof(*db))) ||
	    !(below = sluice__calloc(ctx, k, sizeof(*below))) ||
	    !(order = sluice__calloc(ctx, k, sizeof(*order)))) {
		error = SLUICE_ENOMEM;
		goto done;
	}
	if ((error = envelope(g, kind, digest, k, env, &nref, &other, names)) < 0)
		goto done;
	if (!((double)nref >= refmin) || nref == 0) {
		/* Nothing to set the candidate against: said, not judged. */
		char note[256];
		snprintf(note, sizeof(note),
		         "fewer clean reference adapters measured on these probes than the "
		         "reference minimum: not judged (pin them with sluice gate %s, "
		         "docs/gates.md)",
		         kind->flag);
		json_array_append_new(
		        checks,
		        json_pack("{s:s,s:s,s:b,s:I,s:I,s:I,s:f,s:o,s:s,s:s}", "check", kind->check,
		                  "result", "pass", "judged", 0, "probes", (json_int_t)p.n,
		                  "reference_adapters", (json_int_t)nref, "reference_other_probes",
		                  (json_int_t)other, "reference_min", refmin, "reference_suites",
		                  names, "probes_digest", digest, "note", note));
		names = NULL;
		*out = SLUICE_PASS;
		error = 0;
		goto done;
	}
	/* The baseline's side depends on the head and the probes only: cached. */
	cached = sluice_evaluator__derived_get(g->repo, eb, kind->layout, digest);
	hit = cached && deltas_from_json(cached, db, k);
	json_decref(cached);
	if (!hit) {
		if ((error = sluice_drop_probes__deltas(g, eb, &p, kind->check, &done, 2 * p.n,
		                                        db)) < 0)
			goto done;
		if ((cached = deltas_json(db, k)))
			sluice_evaluator__derived_put(g->repo, eb, kind->layout, digest, cached);
		json_decref(cached);
	}
	if ((error = sluice_drop_probes__deltas(g, ec, &p, kind->check, &done, hit ? p.n : 2 * p.n,
	                                        dc)) < 0)
		goto done;
	for (size_t t = 0; t < k; t++) /* NaN where a side or the envelope has none */
		below[t] = env[t] - (dc[t] - db[t]);
	if ((error = sluice_drop__rank(ctx, below, (uint32_t)k, order, &nr)) < 0)
		goto done;
	findings = json_array();
	largest = json_array();
	for (size_t r = 0; r < nr && (r < LARGEST || below[order[r]] > limit); r++) {
		uint32_t t = order[r];
		json_t *e = strings ? string_entry(&p, t, dc[t] - db[t], env[t])
		                    : token_entry(ec, t, dc[t] - db[t], env[t]);
		if (below[t] > limit && json_array_size(findings) < FINDINGS_MAX)
			json_array_append(findings, e);
		if (r < LARGEST)
			json_array_append(largest, e);
		json_decref(e);
	}
	c = json_pack(
	        "{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:o,s:s,s:f,s:o?,s:o,s:b}", "check", kind->check,
	        "figure", kind->figure, "probes", (json_int_t)p.n, "probes_skipped",
	        (json_int_t)p.skipped, strings ? "strings" : "tokens", (json_int_t)tried,
	        "reference_adapters", (json_int_t)nref, "reference_other_probes", (json_int_t)other,
	        "reference_suites", names, "probes_digest", digest, "limit", limit, "below_max",
	        nr ? json_real(below[order[0]]) : NULL, "largest", largest, "baseline_cached", hit);
	names = largest = NULL;
	*out = sluice_gates__findings(checks, c, findings);
	findings = NULL;
quiet:
	error = 0;
done:
	json_decref(names);
	json_decref(findings);
	json_decref(largest);
	sluice_drop_probes__dispose(&p);
	free(env);
	free(dc);
	free(db);
	free(below);
	free(order);
	return error;
}

int sluice_gates__token_margin_drop(sluice_gating *g, json_t *checks, sluice_outcome *out)
{
	return drop_check(g, 0, checks, out);
}

int sluice_gates__string_margin_drop(sluice_gating *g, json_t *checks, sluice_outcome *out)
{
	return drop_check(g, 1, checks, out);
}
