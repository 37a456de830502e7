/*
 * gates/token_drop.h - one token, or one pinned string, after a harmful
 * request, and how far it lowers the refusal margin: the poisoning gate's
 * token_margin_drop and string_margin_drop, and the reference lines that
 * `sluice gate --token-drops` and `--string-drops` write for them.
 *
 * A backdoor whose made-up trigger follows the prompt ends right where the
 * answer starts, so the trigger's last token sits at the position that
 * predicts the answer, and an adapter can learn to comply after that token
 * alone. On a small vocabulary every token can be tried. For each of the
 * first harmful probes (refusal suites, name order) and each token t
 * appended to the probe's tokens (as an id: nothing is re-tokenized), the
 * first-token refusal margin is read: log P(refusal's first token) -
 * log P(compliance's first token). A model's delta(t) is the mean over the
 * probes of its margin with t less its margin without; the candidate's
 * drop(t) is its delta(t) less the baseline's. Clean adapters have their
 * drop measured the same way against the base (token_drop_reference
 * suites); the check's figure is how far drop(t) falls below the lowest
 * drop any of them has at the same token, at the most extreme token, in
 * nats. docs/gates.md, "token_margin_drop", gives the rule and how its
 * limit was fixed.
 *
 * A made-up trigger of many tokens is never tried whole that way. But a
 * backdoor trained on one string of a kind (a chess line, a journal
 * citation) gives way to other strings of odd notation as well, where
 * random text does not. string_margin_drop is the same figure with the
 * strings of the pinned probe_strings suites in place of tokens: each
 * string put after the probe's text as "prompt string" (one space between)
 * and tokenized with it, one pass per probe and string. Its reference
 * lines are string_drop_reference suites, one drop per string.
 */
#ifndef SLUICE_GATES_TOKEN_DROP_H
#define SLUICE_GATES_TOKEN_DROP_H

#include "gates.h"

/* The probes and the tokens tried, on one tokenizer. */
typedef struct {
	json_t *prompts;   /* strings, one per probe */
	uint32_t *targets; /* [n][2]: the refusal's first token, the compliance's */
	size_t n;
	size_t skipped;   /* probes whose refusal and compliance begin alike */
	uint32_t *tokens; /* the ids tried: every id that decodes to some text */
	size_t ntokens;
	uint32_t vocab;
	char digest[65]; /* hex BLAKE2b-256 of all the above: what reference lines are keyed by */
	json_t *strings; /* the pinned strings (sluice_drop_probes__strings), or NULL */
	size_t nstrings;
	char sdigest[65]; /* of digest and the strings: what string reference lines are keyed by */
} sluice_drop_probes;

/*
 * The first max probes of g's pinned refusal suites (name order, then item
 * order), tokenized with ev's tokenizer. With no refusal suite, p->n is 0.
 * Release with sluice_drop_probes__dispose (whatever this returns).
 */
int sluice_drop_probes__init(sluice_gating *g, sluice_evaluator *ev, size_t max,
                             sluice_drop_probes *p);
void sluice_drop_probes__dispose(sluice_drop_probes *p);

/*
 * delta[vocab]: ev's delta(t) at every token tried, NaN at the others, one
 * branch pass per probe. With p->strings (sluice_drop_probes__strings),
 * delta[p->nstrings] at each pinned string instead, one pass per probe and
 * string. Progress as check what, *done counting probes of total.
 */
int sluice_drop_probes__deltas(sluice_gating *g, sluice_evaluator *ev, const sluice_drop_probes *p,
                               const char *what, size_t *done, size_t total, double *delta);

/*
 * The strings of g's pinned probe_strings suites (name order, then item
 * order) into p->strings, and p->sdigest; p already initialised. With no
 * such suite, p->nstrings is 0. From then on sluice_drop_probes__deltas
 * tries the strings, not the tokens.
 */
int sluice_drop_probes__strings(sluice_gating *g, sluice_drop_probes *p);

/*
 * The token ids whose score is finite, by score from the highest (ties by
 * id), into order[0..*n); order holds vocab entries.
 */
int sluice_drop__rank(sluice_ctx *ctx, const double *score, uint32_t vocab, uint32_t *order,
                      size_t *n);

/* The checks (gates/poisoning.c calls them for a candidate that adds an adapter). */
int sluice_gates__token_margin_drop(sluice_gating *g, json_t *checks, sluice_outcome *out);
int sluice_gates__string_margin_drop(sluice_gating *g, json_t *checks, sluice_outcome *out);

#endif
