/*
 * gates/poisoning.c - the poisoning gate.
 *
 * Behaviour: a trigger scan. Candidate triggers (the pinned trigger
 * suites' lists, tokens nominated from an adapter's weights, n-grams mined
 * from a replay batch) are inserted before clean prompts; a trigger's
 * shift is the mean, over prompts, of KL(P(.|prompt) || P(.|trigger +
 * prompt)) at the next token, for the candidate minus the same for the
 * baseline. Random insertions (words drawn from the pinned suites with a
 * seeded generator) give the shift's null distribution; a trigger whose
 * shift stands more than spectral... trigger_z_max robust deviations above
 * the random ones, and above trigger_shift_min nats, fails the gate and is
 * named.
 *
 * Memory notes: the notes' total length against a token budget, and
 * contradiction: a multiple-choice item the model answered right without
 * the new notes and wrong with them, when only notes changed.
 */
#include "gates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the trigger scan -------------------------------------------------------- */

typedef struct {
	char **prompts;
	size_t nprompts;
	float **clean_c, **clean_b; /* next-token log-probs without a trigger, per prompt */
	size_t vocab;
} scan_ctx;

static double kl_rows(const float *p, const float *q, size_t n)
{
	double kl = 0;

	for (size_t v = 0; v < n; v++)
		kl += exp((double)p[v]) * ((double)p[v] - (double)q[v]);
	return kl > 0 ? kl : 0;
}

/* Mean KL shift an insertion causes on one model; rows of clean[] are that model's. */
static int shift_on(sluice_evaluator *ev, scan_ctx *sc, float **clean, const char *trigger,
                    double *out)
{
	double sum = 0;
	int error = 0;

	for (size_t i = 0; i < sc->nprompts; i++) {
		size_t len = strlen(trigger) + strlen(sc->prompts[i]) + 2;
		char *text = malloc(len);
		const float *row;
		if (!text)
			return SLUICE_ENOMEM;
		snprintf(text, len, "%s %s", trigger, sc->prompts[i]);
		error = sluice_evaluator__next_row(ev, text, &row);
		free(text);
		if (error < 0)
			break;
		sum += kl_rows(clean[i], row, sc->vocab);
	}
	*out = sc->nprompts ? sum / (double)sc->nprompts : 0;
	return error;
}

static void scan_dispose(scan_ctx *sc)
{
	for (size_t i = 0; i < sc->nprompts; i++) {
		free(sc->prompts[i]);
		if (sc->clean_c)
			free(sc->clean_c[i]);
		if (sc->clean_b)
			free(sc->clean_b[i]);
	}
	free(sc->prompts);
	free(sc->clean_c);
	free(sc->clean_b);
}

static int add_string(json_t *arr, const char *s)
{
	json_t *v;
	size_t i;

	if (!s || !*s)
		return 0;
	json_array_foreach(arr, i, v) if (!strcmp(json_string_value(v), s)) return 0;
	return json_array_append_new(arr, json_string(s));
}

/* The prompts and pinned triggers of the trigger suites; words for random insertions. */
static void scan_inputs(sluice_gating *g, json_t *prompts, json_t *triggers, json_t *words)
{
	for (size_t si = 0; si < g->nsuites; si++) {
		sluice_gate_suite *s = &g->suites[si];
		const char *type = sluice__jstr(json_object_get(s->manifest, "type"));
		const unsigned char *p = s->items.ptr, *end = p + s->items.len;
		size_t taken = 0;
		int is_trigger = !strcmp(type, "trigger");

		if (!is_trigger && strcmp(type, "text"))
			continue;
		json_object_set(g->used_suites, sluice__jstr(json_object_get(s->manifest, "name")),
		                json_object_get(s->manifest, "digest"));
		while (p < end) {
			const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p), k;
			json_error_t jerr;
			json_t *it = json_loadb((const char *)p, l, 0, &jerr), *t;
			p += l + 1;
			if (!it)
				continue;
			if (is_trigger) {
				add_string(prompts, json_string_value(json_object_get(it, "prompt")));
				json_array_foreach(json_object_get(it, "triggers"), k, t)
				        add_string(triggers, json_string_value(t));
			} else if (taken < 64) {
				/* words of the text corpus: the pool random insertions draw from */
				const char *s2 = json_string_value(json_object_get(it, "text"));
				char w[64];
				size_t n = 0;
				for (;; s2++) {
					if (*s2 && *s2 != ' ' && *s2 != '\n' && n + 1 < sizeof(w)) {
						w[n++] = *s2;
						continue;
					}
					if (n) {
						w[n] = 0;
						add_string(words, w);
						n = 0;
					}
					if (!*s2)
						break;
				}
				taken++;
			}
			json_decref(it);
		}
	}
}

int sluice_gates__trigger_scan(sluice_gating *g, json_t *checks, json_t *extra,
                               sluice_outcome *out)
{
	sluice_ctx *ctx = g->repo->ctx;
	json_t *prompts = json_array(), *triggers = json_array(), *words = json_array(), *v,
	       *rows = json_array(), *named = json_array(), *c;
	scan_ctx sc = {0};
	sluice_evaluator *ec = NULL, *eb = NULL;
	size_t R = (size_t)sluice_gates__threshold(g->config, "poisoning", "random_insertions");
	double zmax = sluice_gates__threshold(g->config, "poisoning", "trigger_z_max");
	double smin = sluice_gates__threshold(g->config, "poisoning", "trigger_shift_min");
	double *null = NULL, med = 0, mad = 0, scale;
	sluice_rng rng = {g->seed ^ 0x7269676765727321ull};
	size_t i;
	int error = 0;

	scan_inputs(g, prompts, triggers, words);
	json_array_foreach(extra, i, v) add_string(triggers, json_string_value(v));
	if (json_array_size(prompts) == 0 || json_array_size(words) < 8 || R < 8) {
		c = json_pack("{s:s,s:s,s:s}", "check", "trigger_scan", "result", "inconclusive",
		              "note",
		              "no pinned trigger suite with prompts, or too few words in the "
		              "text suites for random insertions: the trigger scan cannot run");
		json_array_append_new(checks, c);
		*out = SLUICE_INCONCLUSIVE;
		goto done;
	}
	if ((error = sluice_gates__ev_cand(g, &ec)) < 0 ||
	    (g->has_base && (error = sluice_gates__ev_base(g, &eb)) < 0))
		goto done;
	sc.vocab = sluice_evaluator__vocab(ec);
	if (eb && sluice_evaluator__vocab(eb) != sc.vocab)
		eb = NULL; /* different vocabularies: the candidate's own shift only */
	sc.nprompts = json_array_size(prompts);
	sc.prompts = calloc(sc.nprompts, sizeof(*sc.prompts));
	sc.clean_c = calloc(sc.nprompts, sizeof(*sc.clean_c));
	sc.clean_b = calloc(sc.nprompts, sizeof(*sc.clean_b));
	null = calloc(R, sizeof(*null));
	if (!sc.prompts || !sc.clean_c || !sc.clean_b || !null) {
		sc.nprompts = sc.prompts ? sc.nprompts : 0;
		error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < sc.nprompts; i++) {
		const float *row;
		sc.prompts[i] = strdup(json_string_value(json_array_get(prompts, i)));
		sc.clean_c[i] = malloc(sc.vocab * sizeof(float));
		sc.clean_b[i] = malloc(sc.vocab * sizeof(float));
		if (!sc.prompts[i] || !sc.clean_c[i] || !sc.clean_b[i]) {
			error = sluice_ctx__error(ctx, SLUICE_ENOMEM, "out of memory");
			goto done;
		}
		if ((error = sluice_evaluator__next_row(ec, sc.prompts[i], &row)) < 0)
			goto done;
		memcpy(sc.clean_c[i], row, sc.vocab * sizeof(float));
		if (eb) {
			if ((error = sluice_evaluator__next_row(eb, sc.prompts[i], &row)) < 0)
				goto done;
			memcpy(sc.clean_b[i], row, sc.vocab * sizeof(float));
		}
	}
	/* The null: random insertions of one or two corpus words. */
	for (i = 0; i < R; i++) {
		char ins[160];
		double sc_c, sc_b = 0;
		const char *w1 = json_string_value(
		        json_array_get(words, sluice_rng__below(&rng, json_array_size(words))));
		const char *w2 = json_string_value(
		        json_array_get(words, sluice_rng__below(&rng, json_array_size(words))));
		if (i % 2)
			snprintf(ins, sizeof(ins), "%s %s", w1, w2);
		else
			snprintf(ins, sizeof(ins), "%s", w1);
		if ((error = shift_on(ec, &sc, sc.clean_c, ins, &sc_c)) < 0 ||
		    (eb && (error = shift_on(eb, &sc, sc.clean_b, ins, &sc_b)) < 0))
			goto done;
		null[i] = sc_c - sc_b;
	}
	sluice_stats__median_mad(&med, &mad, null, R);
	/* A MAD floor (a tenth of a nat) keeps identical models from dividing by zero. */
	scale = 1.4826 * mad > 0.01 ? 1.4826 * mad : 0.01;
	json_array_foreach(triggers, i, v)
	{
		double sc_c, sc_b = 0, shift, z;
		if ((error = shift_on(ec, &sc, sc.clean_c, json_string_value(v), &sc_c)) < 0 ||
		    (eb && (error = shift_on(eb, &sc, sc.clean_b, json_string_value(v), &sc_b)) < 0))
			goto done;
		shift = sc_c - sc_b;
		z = (shift - med) / scale;
		json_array_append_new(rows, json_pack("{s:O,s:f,s:f,s:f}", "trigger", v, "shift",
		                                      shift, "candidate_shift", sc_c, "z", z));
		if (z > zmax && shift > smin)
			json_array_append_new(named, json_pack("{s:O,s:f,s:f}", "trigger", v, "shift",
			                                       shift, "z", z));
	}
	c = json_pack("{s:s,s:s,s:I,s:I,s:{s:f,s:f,s:I},s:f,s:f,s:o}", "check", "trigger_scan",
	              "figure",
	              "mean next-token KL shift of an insertion before clean prompts, candidate "
	              "minus baseline, against random insertions",
	              "prompts", (json_int_t)sc.nprompts, "candidates",
	              (json_int_t)json_array_size(triggers), "random", "median", med, "mad", mad,
	              "n", (json_int_t)R, "z_limit", zmax, "shift_min", smin, "scanned", rows);
	rows = NULL;
	*out = sluice_gates__findings(checks, c, named);
	named = NULL;
done:
	scan_dispose(&sc);
	free(null);
	json_decref(prompts);
	json_decref(triggers);
	json_decref(words);
	json_decref(rows);
	json_decref(named);
	return error;
}

/* ---- memory notes ----------------------------------------------------------------- */

static int notes_checks(sluice_gating *g, json_t *checks, json_t *notes, sluice_outcome *out)
{
	sluice_evaluator *ec, *eb;
	json_t *n, *per = json_array(), *findings = json_array();
	size_t i, total = 0;
	double budget = sluice_gates__threshold(g->config, "poisoning", "note_token_budget");
	sluice_outcome o = SLUICE_PASS;
	int error;

	if ((error = sluice_gates__ev_cand(g, &ec)) < 0)
		goto done;
	/* Every note in the candidate's state counts against the budget, new or not. */
	json_array_foreach(json_object_get(g->cand.state, "memory"), i, n)
	{
		sluice_buf b = {0};
		size_t t;
		if ((error = sluice_gates__read_component(g, json_object_get(n, "file"), &b)) < 0 ||
		    (error = sluice_evaluator__count_tokens(ec, (const char *)b.ptr, b.len, &t)) < 0) {
			sluice_buf__dispose(&b);
			goto done;
		}
		sluice_buf__dispose(&b);
		total += t;
		json_array_append_new(per, json_pack("{s:O,s:I}", "note", json_object_get(n, "name"),
		                                     "tokens", (json_int_t)t));
	}
	{
		sluice_outcome r = (double)total <= budget ? SLUICE_PASS : SLUICE_FAIL;
		json_array_append_new(checks,
		                      json_pack("{s:s,s:s,s:I,s:f,s:o,s:s}", "check", "note_length",
		                                "figure", "tokens of all notes in context", "tokens",
		                                (json_int_t)total, "limit", budget, "notes", per,
		                                "result", sluice_stats__outcome_name(r)));
		per = NULL;
		o = sluice_stats__worse(o, r);
	}
	/*
	 * Contradiction: with only notes changed, an item answered right before
	 * and wrong with the notes in context is a note overriding a pinned
	 * answer.
	 */
	if (g->has_base &&
	    json_equal(json_object_get(g->cand.state, "base"), json_object_get(g->base.state, "base")) &&
	    json_equal(json_object_get(g->cand.state, "adapters"),
	               json_object_get(g->base.state, "adapters"))) {
		size_t idx[64], m = sluice_gates__suites_of(g, "multiple_choice", idx, 64);
		if ((error = sluice_gates__ev_base(g, &eb)) < 0)
			goto done;
		for (size_t k = 0; k < m; k++) {
			sluice_gate_suite *s = &g->suites[idx[k]];
			json_t *pc = NULL, *pb = NULL;
			if ((error = sluice_gates__per_item(g, ec, s, &pc)) < 0 ||
			    (error = sluice_gates__per_item(g, eb, s, &pb)) < 0) {
				json_decref(pc);
				goto done;
			}
			for (size_t j = 0; j < json_array_size(pc) && j < json_array_size(pb); j++) {
				json_t *a = json_array_get(pc, j), *b = json_array_get(pb, j);
				if (json_is_true(json_object_get(b, "correct")) &&
				    !json_is_true(json_object_get(a, "correct")))
					json_array_append_new(
					        findings,
					        json_pack("{s:O,s:I,s:O?,s:O,s:O}", "suite",
					                  json_object_get(s->manifest, "name"), "item",
					                  (json_int_t)j + 1, "id", json_object_get(a, "id"),
					                  "answer_before", json_object_get(b, "pred"),
					                  "answer_with_notes", json_object_get(a, "pred")));
			}
			json_decref(pc);
			json_decref(pb);
		}
		o = sluice_stats__worse(
		        o, sluice_gates__findings(
		                   checks,
		                   json_pack("{s:s,s:s}", "check", "note_contradiction", "figure",
		                             "pinned multiple-choice items answered right "
		                             "without the new notes and wrong with them"),
		                   findings));
		findings = NULL;
	}
	*out = o;
done:
	json_decref(per);
	json_decref(findings);
	return error;
}

int sluice_gates__poisoning(sluice_gating *g, json_t *gate, sluice_outcome *result)
{
	json_t *checks = json_object_get(gate, "checks"), *adapters = NULL, *notes = NULL,
	       *replay = NULL, *extra = json_array();
	sluice_outcome o = SLUICE_PASS, r;
	int error = 0, model_changed;

	sluice_gates__new_components(g, &adapters, &notes, &replay);
	model_changed = json_array_size(adapters) || json_array_size(notes) || !g->has_base ||
	                !json_equal(json_object_get(g->cand.state, "base"),
	                            json_object_get(g->base.state, "base"));
	if (json_array_size(notes)) {
		if ((error = notes_checks(g, checks, notes, &r)) < 0)
			goto done;
		o = sluice_stats__worse(o, r);
	}
	if (!g->has_base) {
		json_object_set_new(gate, "note",
		                    json_string("no baseline: a first base into an empty channel "
		                                "has no behaviour to compare with and no delta "
		                                "to inspect"));
	} else if (model_changed) {
		if ((error = sluice_gates__trigger_scan(g, checks, extra, &r)) < 0)
			goto done;
		o = sluice_stats__worse(o, r);
	} else {
		json_object_set_new(gate, "note",
		                    json_string("the served model is the baseline's: no "
		                                "behavioural scan"));
	}
	*result = o;
done:
	json_decref(adapters);
	json_decref(notes);
	json_decref(replay);
	json_decref(extra);
	return error;
}
