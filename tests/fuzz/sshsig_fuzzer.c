/*
 * tests/fuzz/sshsig_fuzzer.c - SSHSIG verification on arbitrary bytes
 * (namespace "git", a fixed message). Input that starts with the armour's
 * BEGIN line goes in as it is; anything else is taken as a raw SSHSIG blob
 * and armoured first, the way ssh-keygen would, so the fuzzer can mutate
 * the binary structure without having to rediscover base64.
 */
#include "keys.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BEGIN "-----BEGIN SSH SIGNATURE-----"
/* The message the valid seeds were signed over (by ssh-keygen -Y sign -n git). */
#define MESSAGE "sluice fuzz message\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	unsigned char signer[32];
	char *text = NULL;
	size_t len = size, enc, i;
	const char *in = (const char *)data;

	if (!ctx && (sluice_global_init() < 0 || sluice_ctx_new(&ctx) < 0))
		abort();
	if (size > 8192)
		return 0;
	if (size < sizeof(BEGIN) - 1 || memcmp(data, BEGIN, sizeof(BEGIN) - 1) != 0) {
		char b64[sodium_base64_ENCODED_LEN(8192, sodium_base64_VARIANT_ORIGINAL)];
		sodium_bin2base64(b64, sizeof(b64), data, size, sodium_base64_VARIANT_ORIGINAL);
		enc = strlen(b64);
		if (!(text = malloc(enc + enc / 70 + 128)))
			abort();
		len = 0;
		memcpy(text, BEGIN "\n", sizeof(BEGIN));
		len += sizeof(BEGIN);
		for (i = 0; i < enc; i += 70) {
			size_t n = enc - i < 70 ? enc - i : 70;
			memcpy(text + len, b64 + i, n);
			len += n;
			text[len++] = '\n';
		}
		memcpy(text + len, "-----END SSH SIGNATURE-----\n", 28);
		len += 28;
		in = text;
	}
	(void)sluice_sshsig__verify(ctx, signer, in, len, "git", MESSAGE, strlen(MESSAGE));
	free(text);
	return 0;
}
