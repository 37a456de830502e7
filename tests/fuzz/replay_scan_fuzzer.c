/*
 * tests/fuzz/replay_scan_fuzzer.c - the poisoning gate's data-only scans on
 * outside bytes. The first input byte picks the mode; the rest is
 *   0: a replay batch alone,
 *   1: a replay batch scanned against itself as the replay buffer and a
 *      small corpus (so the background counting runs),
 *   2: a memory note.
 * A refusal must be SLUICE_EINVALID naming "fuzz"; an acceptance must have
 * the documented shape.
 */
#include "../../gates/scan.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_shape(json_t *res, size_t nchecks)
{
	json_t *checks = json_object_get(res, "checks"), *c;
	size_t i;

	if (json_array_size(checks) != nchecks)
		abort();
	json_array_foreach(checks, i, c)
	{
		if (!json_is_string(json_object_get(c, "check")) ||
		    !json_is_boolean(json_object_get(c, "flagged")) ||
		    !json_is_object(json_object_get(c, "figures")) ||
		    !json_is_object(json_object_get(c, "thresholds")) ||
		    !json_is_array(json_object_get(c, "findings")))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const char *const corpus[] = {"the quick brown fox", "jumps over the lazy dog"};
	static int init;
	const unsigned char *body = data + 1;
	size_t len = size - 1;
	sluice_ctx *ctx;
	json_t *res = NULL;
	int mode, error;

	if (!init) {
		sluice_global_init();
		init = 1;
	}
	if (size < 1 || sluice_ctx_new(&ctx) < 0)
		return 0;
	mode = data[0] % 3;
	if (mode == 2) {
		error = sluice_scan__note(ctx, &res, (const char *)body, len, "fuzz", len / 4,
		                          NULL);
	} else {
		const unsigned char *buf[1] = {body};

		error = sluice_scan__replay(ctx, &res, body, len, "fuzz", buf, &len, mode, corpus,
		                            mode ? 2 : 0, NULL);
	}
	if (error < 0) {
		if (error != SLUICE_EINVALID || !strstr(sluice_ctx_errmsg(ctx), "fuzz") || res)
			abort();
	} else {
		check_shape(res, mode == 2 ? 5 : 4);
		if (mode != 2 && json_integer_value(json_object_get(res, "records")) < 1)
			abort();
	}
	json_decref(res);
	sluice_ctx_free(ctx);
	return 0;
}
