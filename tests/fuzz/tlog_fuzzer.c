/*
 * tests/fuzz/tlog_fuzzer.c - the provable log's two parsers of stored
 * bytes on arbitrary input (audit/tlog.h). The first byte chooses:
 * 't': tlog.json — every accepted one has popcount(size) frontier hashes
 * and a 47-character "sluice.journal/" origin; every refused one leaves a
 * message. Anything else: a checkpoint note checked against a fixed body and
 * a registry of one key ("k", from a fixed seed) — an accepted note must
 * start with that body, and no input may read out of bounds.
 */
#include "internal.h"
#include "keys.h"
#include "tlog.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The body the seeds sign (tests/fuzz/corpus/tlog/). */
static const char body[] = "sluice.journal/00112233445566778899aabbccddeeff\n5\n"
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	static json_t *keys;
	static char fp[SLUICE_FP_LEN];

	if (!ctx) {
		unsigned char seed[32], pk[32], sk[64];
		sluice_buf line = {0};

		if (sodium_init() < 0 || sluice_ctx_new(&ctx) < 0)
			abort();
		memset(seed, 7, sizeof(seed));
		crypto_sign_seed_keypair(pk, sk, seed);
		if (sluice_keys__openssh_pub(ctx, pk, "k", &line) < 0 ||
		    sluice_buf__cstr(ctx, &line) < 0)
			abort();
		keys = json_pack("{s:{s:s}}", "k", "public_key", (const char *)line.ptr);
		sluice_keys__fingerprint(fp, pk);
		sluice_buf__dispose(&line);
	}
	if (size < 1)
		return 0;
	if (data[0] == 't') {
		sluice_tlog_frontier f;
		char origin[SLUICE_TLOG_ORIGIN_LEN + 1];

		if (sluice_tlog__parse_tlog(ctx, &f, origin, data + 1, size - 1, "fuzz") == 0) {
			if (f.count != (unsigned)__builtin_popcountll(f.size) || f.size == 0 ||
			    strlen(origin) != SLUICE_TLOG_ORIGIN_LEN ||
			    strncmp(origin, "sluice.journal/", 15))
				abort();
		} else if (!sluice_ctx_errmsg(ctx)[0]) {
			abort();
		}
	} else {
		char why[256];
		/* A copy of exactly the input's bytes, so ASan sees any read past them. */
		unsigned char *copy = malloc(size - 1 ? size - 1 : 1);

		if (!copy)
			return 0;
		memcpy(copy, data + 1, size - 1);
		if (!sluice_tlog__check_note(ctx, copy, size - 1, body, strlen(body), keys, NULL,
		                             fp, why, sizeof(why)) &&
		    (size - 1 < strlen(body) || memcmp(copy, body, strlen(body))))
			abort();
		free(copy);
	}
	return 0;
}
