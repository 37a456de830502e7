/*
 * tests/fuzz/manifest_fuzzer.c - sluice_manifest__parse on arbitrary
 * bytes. The format is canonical, so whatever parses must encode back to
 * exactly the same bytes.
 */
#include "chunkstore.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sluice_ctx *ctx;
	sluice_manifest m;
	sluice_buf out = {0};
	int error;

	if (sluice_ctx_new(&ctx) < 0)
		return 0;
	error = sluice_manifest__parse(ctx, &m, data, size, "fuzz");
	if (error == 0) {
		if (sluice_manifest__encode(ctx, &m, &out) < 0 || out.len != size ||
		    memcmp(out.ptr, data, size) != 0)
			abort();
		sluice_manifest__dispose(&m);
	} else if (error == SLUICE_EINVALID) {
		/* Refusals name the manifest and line, and leave nothing allocated. */
		if (m.chunks || !strstr(sluice_ctx_errmsg(ctx), "fuzz: line "))
			abort();
	} else if (error != SLUICE_ENOMEM) {
		abort();
	}
	sluice_buf__dispose(&out);
	sluice_ctx_free(ctx);
	return 0;
}
