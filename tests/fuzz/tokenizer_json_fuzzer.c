/*
 * tests/fuzz/tokenizer_json_fuzzer.c - tokenizer.json loading on arbitrary
 * bytes (JSON, components, merges, regexes compiled with PCRE2) and, when a
 * file loads, encoding and decoding a fixed text that touches every path:
 * added-token-like markup, digits, whitespace runs, non-ASCII and emoji.
 */
#include "internal.h"
#include "../../eval/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TEXT[] = "<s>Hello  world's 12345\t\n\n caf\xC3\xA9 \xF0\x9F\x98\x80\xE2\x80\x8D"
                           "\xE4\xBD\xA0\xE5\xA5\xBD<|endoftext|>  ";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	sluice_tokenizer *tok = (sluice_tokenizer *)1;
	uint32_t *ids = NULL;
	size_t n = 0, tlen;
	char *text;
	int rc;

	if (!ctx && sluice_ctx_new(&ctx) < 0)
		abort();
	rc = sluice_tokenizer__load(ctx, &tok, (const char *)data, size, "tokenizer.json");
	if (rc < 0) {
		/* Failure leaves no tokenizer and names the problem. */
		if (tok || !sluice_ctx_errmsg(ctx)[0])
			abort();
		return 0;
	}
	rc = sluice_tokenizer__encode(ctx, &ids, &n, tok, TEXT, sizeof(TEXT) - 1, true);
	if (rc == 0) {
		size_t i;

		for (i = 0; i < n; i++) {
			if (ids[i] >= sluice_tokenizer__vocab_size(tok))
				abort();
		}
		if (sluice_tokenizer__decode(ctx, &text, &tlen, tok, ids, n, false) == 0) {
			if (strlen(text) > tlen)
				abort();
			free(text);
		}
	} else if (rc != SLUICE_EINVALID && rc != SLUICE_ENOMEM) {
		abort();
	}
	free(ids);
	sluice_tokenizer__free(tok);
	return 0;
}
