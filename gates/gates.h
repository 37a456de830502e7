/*
 * gates/gates.h - what the three gates share: the run (candidate,
 * baseline, anchor, configuration, suites, evaluators) and the shape of a
 * check in a gate's report.
 *
 * A check is a JSON object:
 *   {"check": name, "suite"?: name, "result": "pass"|"fail"|"inconclusive",
 *    "estimate": x, "interval": [lo, hi], "limit": v, "rule": "at_least"|"at_most",
 *    ...figures}
 * for a statistical check (decided by sluice_stats__decide), or
 *   {"check": name, "result": ..., "findings": [...], ...figures}
 * for a check that looks for concrete findings (a record that contradicts
 * a pinned answer, a secret): pass when there are none, fail otherwise.
 * A gate's result is the worst of its checks; a gate with nothing to check
 * says so in a "note" and passes only when that is the honest answer
 * (docs/gates.md lists those cases).
 */
#ifndef SLUICE_GATES_GATES_H
#define SLUICE_GATES_GATES_H

#include "engine.h"
#include "repo.h"
#include "stats.h"
#include "version.h"

#include <jansson.h>
#include <math.h>

/*
 * Bounds on configured work, whatever a configuration says (the ranges of
 * gates/config.c refuse more at configuration time): the random strings a
 * trigger scan's null may draw at one length and position, and the probes
 * token_margin_drop reads (each one forward pass per vocabulary token).
 */
#define SCAN_DRAWS_MAX 4096
#define PROBES_MAX 4096

/* config[gate][name] as a number, NaN when absent. */
double sluice_gates__threshold(json_t *config, const char *gate, const char *name);

/* A pinned suite as the gates use it. */
typedef struct {
	json_t *manifest; /* name, type, digest, count, ... */
	sluice_buf items;
} sluice_gate_suite;

typedef struct {
	sluice_repo *repo;
	json_t *config; /* the configuration in effect */
	char config_digest[65];
	char policy_digest[65]; /* the policy in effect ("" for none) */
	double alpha;
	const char *channel;
	sluice_version cand, base, anchor;
	int has_base, has_anchor;
	int same_model; /* has_base, and base, adapter stack and notes equal: the served model */
	sluice_backend backend;                          /* what the evaluators run on */
	sluice_evaluator *ev_cand, *ev_base, *ev_anchor; /* opened on first use */
	sluice_gate_suite *suites;                       /* every pinned suite */
	size_t nsuites;
	json_t *used_suites;   /* name -> digest: what the verdict binds */
	json_t *token_strings; /* every token's text as the scan inserts it, on first use */
	json_t *token_set;     /* the same strings as an object's keys, for lookups */
	uint64_t seed;         /* for bootstraps: from the compared states' digests */
} sluice_gating;

/* Evaluators, opened on first use (the base's and anchor's only when present). */
/*
 * A check that needs full next-token distributions, on an evaluator
 * without them (the http backend): appended as inconclusive with a note
 * naming the backend; returns 1 then, 0 when both evaluators have rows.
 */
int sluice_gates__rows_unavailable(json_t *checks, const char *check, const char *suite,
                                   sluice_evaluator *a, sluice_evaluator *b, sluice_outcome *out);

int sluice_gates__ev_cand(sluice_gating *g, sluice_evaluator **out);
int sluice_gates__ev_base(sluice_gating *g, sluice_evaluator **out);
int sluice_gates__ev_anchor(sluice_gating *g, sluice_evaluator **out);

/*
 * A suite's per-item results on one evaluator (through the result cache),
 * recording the suite in used_suites. *per_item is a new reference.
 */
int sluice_gates__per_item(sluice_gating *g, sluice_evaluator *ev, sluice_gate_suite *s,
                           json_t **per_item);

/*
 * The accuracy a model guessing uniformly among each item's choices expects
 * on a multiple-choice suite (the mean of 1/choices); NaN when no item has
 * choices.
 */
double sluice_gates__chance(const sluice_gate_suite *s);

/*
 * Whether the model that gave per_item knows the suite: the Clopper-Pearson
 * lower end (at g->alpha) of its accuracy lies above chance. Its right answers
 * otherwise are guesses that any small change reshuffles, so a check of what
 * it would lose measures nothing there (docs/gates.md, "Nothing to forget").
 * *known: its right answers; *lo: that lower end (NaN with a NaN chance, which
 * counts as knowing).
 */
int sluice_gates__knows(const sluice_gating *g, json_t *per_item, double chance, size_t *known,
                        double *lo);

/*
 * A check's own long loop, for a person watching: done of total units of
 * the check named what, through the repository's item progress (a bar on
 * a terminal, nothing otherwise; done == total ends the line). The
 * behavioural scans run thousands of forward passes: on a large model
 * that is hours, and the suites' own bars say nothing of it.
 */
void sluice_gates__progress(sluice_gating *g, const char *what, size_t done, size_t total);

/* Suites of a type, in name order: s[i] for i in the returned indices. */
size_t sluice_gates__suites_of(const sluice_gating *g, const char *type, size_t *idx, size_t cap);

/*
 * Every item of the pinned suites of a type (a reference population), in
 * suite name order, as one array of parsed lines (null for a blank line);
 * each suite is recorded as used and its name appended to names. New
 * reference, NULL when out of memory.
 */
json_t *sluice_gates__suite_items(sluice_gating *g, const char *type, json_t *names);

/*
 * A paired check's items_to_decide (sluice_stats__paired_items_to_decide
 * at g->alpha): the suite size at which its rates would be decided, as a
 * new JSON integer, or null when none would (or the limit is NaN).
 */
json_t *sluice_gates__items_to_decide(const sluice_gating *g, size_t worse, size_t better, size_t n,
                                      double limit, int at_least);

/* A statistical check decided by the rule; returns the outcome and appends the check. */
sluice_outcome sluice_gates__check(json_t *checks, json_t *check, double est, double lo, double hi,
                                   double limit, int at_least);

/* A findings check: pass when findings is empty. Steals check and findings. */
sluice_outcome sluice_gates__findings(json_t *checks, json_t *check, json_t *findings);

/*
 * State components the candidate has and the baseline does not: adapters
 * (by name and file digests), memory notes (by name and digest), replay
 * batches (by name). Arrays of the candidate state's entries (new
 * references); with no baseline, everything in the candidate.
 */
int sluice_gates__new_components(sluice_gating *g, json_t **adapters, json_t **notes,
                                 json_t **replay);

/*
 * The lines of a JSONL buffer (a suite's items, a replay batch), parsed:
 * element i is line i + 1's value, or null where the line is not JSON (a
 * blank line; pinned suites and batches were checked when they were
 * stored). New reference.
 */
json_t *sluice_gates__lines(const unsigned char *p, size_t len);

/* A component file of the candidate's state (its checkout), whole, into out. */
int sluice_gates__read_component(sluice_gating *g, json_t *file, sluice_buf *out);

/*
 * The behavioural trigger scan (gates/poisoning.c): the pinned triggers
 * plus extra (strings nominated from weights or mined from a batch);
 * adds_notes, whether the candidate adds memory notes.
 */
int sluice_gates__trigger_scan(sluice_gating *g, int adds_notes, json_t *checks, json_t *extra,
                               sluice_outcome *out);

/*
 * The pinned triggers' rise on every trigger-suite prompt at every
 * position, of ec (an adapter on top of eb) against eb, for a
 * trigger_rise_reference line (gates/poisoning.c, rise_envelope). *out is
 * {"scan": hex digest of the prompts and triggers, "rise": [trigger]
 * [position: prefix, suffix, after_first_word][prompt] of number, or null
 * where the prompt is not counted, "triggers": [...], "prompts": n,
 * "largest": the five largest rises, each {trigger, position, prompt,
 * rise}}. SLUICE_EINVALID when no trigger suite with prompts and triggers
 * is pinned.
 *
 * With tokens, the same for every vocabulary token's string (as a token
 * nominated from the weights is inserted) instead of the pinned lists,
 * before the prompt and after its first word only, for a
 * token_rise_reference line (token_envelope): "triggers" the strings,
 * "rise" the cells of at least "floor" nats, each [string, position index
 * (0 or 2), prompt index, rise].
 */
int sluice_gates__trigger_rises(sluice_gating *g, sluice_evaluator *ec, sluice_evaluator *eb,
                                int tokens, json_t **out);

/* Each gate fills gate (an object) with "result", "checks" and figures. */
int sluice_gates__regression(sluice_gating *g, json_t *gate, sluice_outcome *result);
int sluice_gates__safety(sluice_gating *g, json_t *gate, sluice_outcome *result);
int sluice_gates__poisoning(sluice_gating *g, json_t *gate, sluice_outcome *result);

#endif
