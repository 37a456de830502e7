/*
 * tests/fuzz/peft_config_fuzzer.c - adapter_config.json parsing on
 * arbitrary bytes: JSON, field types, refusals and the target_modules
 * regular expression (compiled with the bounds peft.c puts on it).
 */
#include "internal.h"
#include "peft.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	sluice_peft_adapter a;
	int rc;

	if (!ctx && sluice_ctx_new(&ctx) < 0)
		abort();
	rc = sluice_peft__parse_config(ctx, &a, (const char *)data, size, "adapter_config.json");
	/* Success yields LORA; failure leaves a zeroed adapter and a message. */
	if (rc == 0 && (!a.peft_type || strcmp(a.peft_type, "LORA") != 0 || a.r == 0))
		abort();
	if (rc < 0 && (a.peft_type || a.base_model || !sluice_ctx_errmsg(ctx)[0]))
		abort();
	sluice_peft__dispose(&a);
	return 0;
}
