/*
 * tests/fuzz/model_config_fuzzer.c - a llama config.json on arbitrary
 * bytes: JSON, field types, defaults, rope_scaling and the refusals.
 */
#include "internal.h"
#include "../../eval/model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	sluice_model_config c;
	int rc;

	if (!ctx && sluice_ctx_new(&ctx) < 0)
		abort();
	rc = sluice_model__parse_config(ctx, &c, (const char *)data, size, "config.json");
	/* Success yields sizes the forward pass can use; failure a message. */
	if (rc == 0 && (!c.hidden || !c.inter || !c.layers || !c.heads || !c.kv_heads ||
	                c.heads % c.kv_heads || !c.head_dim || c.head_dim % 2 || !c.vocab ||
	                !(c.rms_eps > 0) || !(c.rope_theta > 0) ||
	                (c.rope_llama3 && !(c.rope_high > c.rope_low))))
		abort();
	if (rc < 0 && (rc != SLUICE_EINVALID || c.hidden || !sluice_ctx_errmsg(ctx)[0]))
		abort();
	return 0;
}
