/*
 * tests/fuzz/chunk_answer_fuzzer.c - sluice_remote__judge, which decides
 * what a chunk store's answer means, and sluice_remote__check_store_url,
 * on arbitrary input. Layout: op (byte 0, mod 3), HTTP status (bytes 1-2,
 * little-endian), flags (byte 3), a length byte (4), then the body (or,
 * with flag 0x80, a URL). With flag 0x01 the chunk id is the body's
 * BLAKE2b-256, so the accepting path is reachable.
 *
 * What must hold: a GET is accepted only with status 200 and a body whose
 * digest is the id and whose length is the chunk's; a PUT only with 200,
 * 201 or 204; a HEAD only with 200 and the chunk's length; every refusal
 * has a message; retry is asked only for 408, 429 and 5xx. An accepted URL
 * is http(s)://, has a host and holds no space, control byte, '?', '#' or
 * user information.
 */
#include "remote.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_url(sluice_ctx *ctx, const uint8_t *data, size_t size)
{
	char *url = malloc(size + 1), *host, *slash;
	int error;

	if (!url)
		return;
	memcpy(url, data, size);
	url[size] = '\0';
	error = sluice_remote__check_store_url(ctx, url);
	if (error == 0) {
		if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
			abort();
		host = strstr(url, "://") + 3;
		if (!*host || *host == '/' || strpbrk(url, " ?#\t\r\n"))
			abort();
		for (const char *p = url; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		slash = strchr(host, '/');
		if (slash)
			*slash = '\0';
		if (strchr(host, '@'))
			abort();
	} else if (error != SLUICE_EINVALID || !*sluice_ctx_errmsg(ctx)) {
		abort();
	}
	free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char id[SLUICE_B2_LEN], digest[SLUICE_B2_LEN];
	sluice_chunk_op op;
	const uint8_t *body;
	size_t blen;
	uint64_t len;
	int64_t hlen;
	long status;
	int flags, retry = -1, error;
	sluice_ctx *ctx;

	if (size < 5 || sluice_ctx_new(&ctx) < 0)
		return 0;
	op = (sluice_chunk_op)(data[0] % 3);
	status = (long)(data[1] | data[2] << 8);
	flags = data[3];
	body = data + 5;
	blen = size - 5;
	if (flags & 0x80) {
		check_url(ctx, body, blen);
		sluice_ctx_free(ctx);
		return 0;
	}
	sluice__b2(digest, body, blen);
	if (flags & 0x01)
		memcpy(id, digest, sizeof(id));
	else
		memset(id, data[4], sizeof(id));
	len = flags & 0x02 ? (uint64_t)blen : (uint64_t)blen ^ data[4];
	hlen = flags & 0x04 ? (int64_t)len : (int64_t)data[4] - 1;
	error = sluice_remote__judge(ctx, op, status, id, len, body, blen, hlen, "fuzz-url",
	                             "version fuzz, file", &retry);
	if (retry != 0 && retry != 1)
		abort();
	if (error == 0) {
		if (retry)
			abort();
		if (op == SLUICE_CHUNK_GET &&
		    (status != 200 || blen != len || memcmp(digest, id, sizeof(id))))
			abort();
		if (op == SLUICE_CHUNK_PUT && status != 200 && status != 201 && status != 204)
			abort();
		if (op == SLUICE_CHUNK_HEAD && (status != 200 || hlen < 0 || (uint64_t)hlen != len))
			abort();
	} else {
		if (!*sluice_ctx_errmsg(ctx))
			abort();
		if (error != SLUICE_ENOTFOUND && error != SLUICE_ECORRUPT && error != SLUICE_EIO)
			abort();
		if (retry && (error != SLUICE_EIO || !(status == 408 || status == 429 ||
		                                       (status >= 500 && status <= 599))))
			abort();
		/* Refusals of bytes name the chunk. */
		if (error == SLUICE_ECORRUPT &&
		    !strstr(sluice_ctx_errmsg(ctx), "needed by version"))
			abort();
	}
	sluice_ctx_free(ctx);
	return 0;
}
