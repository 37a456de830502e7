/*
 * tests/fuzz/gate_config_fuzzer.c - the gate configuration overrides
 * (sluice init --gate-config FILE) on arbitrary bytes: every accepted
 * input leaves a configuration whose thresholds are finite numbers of the
 * default's sign; every refused one leaves a message.
 */
#include "internal.h"
#include "repo.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	json_t *config = NULL, *defaults = NULL, *g, *v;
	const char *k, *k2;
	char *text = malloc(size + 1);
	int rc;

	if (!text || (!ctx && sluice_ctx_new(&ctx) < 0))
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	if (sluice_gates__default_config(ctx, &config, NULL, 0, 0) < 0 ||
	    sluice_gates__default_config(ctx, &defaults, NULL, 0, 0) < 0)
		abort();
	rc = sluice_gates__merge_config(ctx, config, text, "fuzz.json");
	if (rc < 0 && !sluice_ctx_errmsg(ctx)[0])
		abort();
	json_object_foreach(config, k, g)
	{
		if (!json_is_object(g))
			continue;
		json_object_foreach(g, k2, v)
		{
			double d = json_number_value(
			        json_object_get(json_object_get(defaults, k), k2));
			if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
			    (json_number_value(v) < 0) != (d < 0))
				abort();
		}
	}
	json_decref(config);
	json_decref(defaults);
	free(text);
	return 0;
}
