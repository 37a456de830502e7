/*
 * tests/fuzz/suite_items_fuzzer.c - the suite item checker. The first
 * input byte picks the item type; the rest are the JSONL bytes.
 */
#include "../../eval/suite.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static int init;
	sluice_ctx *ctx;
	size_t count = 0;
	int error;

	if (!init) {
		sluice_global_init();
		init = 1;
	}
	if (size < 1 || sluice_ctx_new(&ctx) < 0)
		return 0;
	error = sluice_suite__check_items(ctx, &count,
	                                  sluice_suite__types[data[0] % sluice_suite__ntypes],
	                                  data + 1, size - 1, "fuzz");
	/* A refusal names what was wrong; an acceptance counted at least one item. */
	if ((error == 0 && count == 0) ||
	    (error < 0 && (error != SLUICE_EINVALID || !strstr(sluice_ctx_errmsg(ctx), "fuzz"))))
		abort();
	sluice_ctx_free(ctx);
	return 0;
}
