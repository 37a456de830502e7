/*
 * tests/fuzz/answer_side_fuzzer.c - the baseline's side of fixed_answer and
 * trigger_answer as the result cache keeps it (gates/answer_side.h), on
 * arbitrary bytes: whatever a damaged cache file holds is either refused,
 * leaving the side empty, or read whole with every token id inside the
 * vocabulary and every sum a finite number; a value the side wrote is
 * read back exactly.
 */
#include "answer_side.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { VOCAB = 16, K = 2 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static double sum[VOCAB];
	static unsigned char bad[VOCAB];
	sluice_answer_side s = {.k = K, .vocab = VOCAB, .sum = sum, .bad = bad};
	json_error_t jerr;
	json_t *v = json_loadb((const char *)data, size, 0, &jerr), *again;

	memset(sum, 0, sizeof(sum));
	memset(bad, 0, sizeof(bad));
	if (!v)
		return 0;
	if (!sluice_answer_side__from_json(&s, v)) {
		if (s.n != 0)
			abort();
		json_decref(v);
		free(s.top);
		return 0;
	}
	if (s.n == 0 || !s.top)
		abort();
	for (size_t i = 0; i < s.n * K; i++)
		if (s.top[i] >= VOCAB)
			abort();
	for (size_t t = 0; t < VOCAB; t++)
		if (!isfinite(sum[t]) || bad[t] > 1)
			abort();
	/* What was read, written again, reads back to the same side. */
	again = sluice_answer_side__json(&s);
	if (!again)
		abort();
	{
		double sum2[VOCAB] = {0};
		unsigned char bad2[VOCAB] = {0};
		sluice_answer_side s2 = {.k = K, .vocab = VOCAB, .sum = sum2, .bad = bad2};
		if (!sluice_answer_side__from_json(&s2, again) || s2.n != s.n ||
		    memcmp(s2.top, s.top, s.n * K * sizeof(*s.top)) || memcmp(bad2, bad, VOCAB))
			abort();
		for (size_t t = 0; t < VOCAB; t++)
			if (!bad[t] && sum2[t] != sum[t])
				abort();
		free(s2.top);
	}
	json_decref(again);
	json_decref(v);
	free(s.top);
	return 0;
}
