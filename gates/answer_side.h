/*
 * gates/answer_side.h - one model's side of what the poisoning gate's
 * fixed_answer and trigger_answer checks gather over a set of questions,
 * and its form in the result cache (the baseline's side depends on the
 * head and the suites only, so it is computed once per head).
 */
#ifndef SLUICE_GATES_ANSWER_SIDE_H
#define SLUICE_GATES_ANSWER_SIDE_H

#include "internal.h"

#include <jansson.h>
#include <stdint.h>

/* The most top-k answers a check compares. */
#define FIXED_TOP_MAX 32

/*
 * One model's side of what fixed_answer and trigger_answer gather over a
 * set of questions: per token the sum over the questions of its next-token
 * log-probability (bad: 1 where one of them is not finite), per question
 * the model's top k, and with keep each question's text.
 */
typedef struct {
	size_t k, vocab, n, cap;
	double *sum;
	unsigned char *bad;
	uint32_t *top;
	char **texts;
	int keep;
	sluice_ctx *ctx;
} sluice_answer_side;

/* The k largest entries of row (n values; k <= FIXED_TOP_MAX), their indices into top, largest
 * first. */
void sluice_answer__top_k(const float *row, size_t n, size_t k, uint32_t *top);

/*
 * Add one question's row (s->vocab log-probabilities) to s; text is kept
 * (copied) with s->keep. A row_fn for rows_of; SLUICE_ENOMEM on failure.
 */
int sluice_answer_side__add(const char *text, const float *row, void *data);

/* Forget what s gathered (sums zeroed, texts freed), for the next set. */
void sluice_answer_side__reset(sluice_answer_side *s);

/* Free what s holds. */
void sluice_answer_side__free(sluice_answer_side *s);

/*
 * s as the result cache keeps it: {"vocab", "k", "n", "sum": [per token],
 * "bad": [token ids], "top": [n x k token ids]}. NULL when a sum does not
 * fit a JSON number (nothing is cached then).
 */
json_t *sluice_answer_side__json(const sluice_answer_side *s);

/*
 * sluice_answer_side__json's value back into s, which must be reset and
 * have sum and bad allocated for its vocab: 1 when v has that shape for s's
 * vocab and k (every sum a number, every id below vocab, n at least 1),
 * else 0 with s left reset. v is outside bytes (a cache file): anything
 * else is refused.
 */
int sluice_answer_side__from_json(sluice_answer_side *s, json_t *v);

#endif
