/*
 * tests/fuzz/completion_response_fuzzer.c - the http backend's parser of a
 * /v1/completions answer (sluice_http__parse_completion) on arbitrary
 * bytes. An input may start with a line "M K" (the prompt's length and
 * max_tokens); otherwise M is 1 + size % 8 and K is 0.
 */
#include "internal.h"
#include "../../eval/http.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	const uint8_t *nl = memchr(data, '\n', size < 16 ? size : 16);
	size_t m = 1 + size % 8, skip = 0;
	int k = 0, rc;
	double *out = (double *)&k; /* must be reset to NULL or a new array */

	if (!ctx && sluice_ctx_new(&ctx) < 0)
		abort();
	if (nl) {
		char head[17];
		unsigned mm, kk;
		memcpy(head, data, (size_t)(nl - data));
		head[nl - data] = '\0';
		if (sscanf(head, "%u %u", &mm, &kk) == 2 && mm >= 1 && mm <= 4096 && kk <= 1) {
			m = mm;
			k = (int)kk;
			skip = (size_t)(nl - data) + 1;
		}
	}
	sluice_ctx_clear_error(ctx);
	rc = sluice_http__parse_completion(ctx, &out, (const char *)data + skip, size - skip, m, k,
	                                   "fuzz");
	if (rc == 0) {
		/* Success: one value per prompt token, the first undefined, the rest
		 * log-probabilities. */
		if (!out || !isnan(out[0]))
			abort();
		for (size_t i = 1; i < m; i++)
			if (!isfinite(out[i]) || out[i] > 1e-4)
				abort();
		free(out);
	} else if (out || (rc != SLUICE_EINVALID && rc != SLUICE_ENOMEM) ||
	           !sluice_ctx_errmsg(ctx)[0]) {
		abort();
	}
	return 0;
}
