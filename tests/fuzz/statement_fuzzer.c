/*
 * tests/fuzz/statement_fuzzer.c - DSSE envelope parsing and in-toto
 * Statement checking on arbitrary bytes. An envelope that parses is also
 * verified (against the key with seed 0x07 * 32, which signed the valid
 * seeds) and its payload checked as a statement; the input itself is
 * checked as a bare statement too, so the statement checker gets mutations
 * that need not survive base64.
 */
#include "dsse.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	static unsigned char pk[32];
	sluice_dsse_envelope e;
	char *ptype = NULL;

	if (!ctx) {
		unsigned char seed[32], sk[64];
		if (sluice_global_init() < 0 || sluice_ctx_new(&ctx) < 0)
			abort();
		memset(seed, 7, sizeof(seed));
		crypto_sign_seed_keypair(pk, sk, seed);
	}
	if (sluice_dsse__parse(ctx, &e, (const char *)data, size) == 0) {
		if (e.payload_type == NULL || e.nsigs == 0 || e.sigs == NULL)
			abort();
		(void)sluice_dsse__verify(ctx, &e, pk);
		if (sluice_statement__check(ctx, e.payload, e.payload_len, &ptype) == 0 && !ptype)
			abort();
		free(ptype);
		ptype = NULL;
		sluice_dsse__dispose(&e);
	}
	if (sluice_statement__check(ctx, data, size, &ptype) == 0 && !ptype)
		abort();
	free(ptype);
	return 0;
}
