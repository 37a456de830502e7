/*
 * tests/fuzz/testserver_request_fuzzer.c - sluice-testserver's HTTP request
 * head parser (tools/testserver_http.c) on arbitrary bytes: a complete head
 * must be well-formed and every proper prefix of it incomplete; anything
 * else is either "need more" below the size limit or a refusal with a
 * message.
 */
#include "internal.h"
#include "testserver_http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool within(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && p + n <= buf + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sluice_ctx *ctx;
	static sluice_tsrv_head *h;
	const char *buf = (const char *)data;
	int rc;

	if (!ctx && sluice_ctx_new(&ctx) < 0)
		abort();
	if (!h && !(h = malloc(sizeof(*h))))
		abort();
	rc = sluice_tsrv__parse_head(ctx, h, buf, size);
	if (rc < 0 && (rc != SLUICE_EINVALID || !sluice_ctx_errmsg(ctx)[0]))
		abort();
	if (rc == 0 && size >= SLUICE_TSRV_MAX_HEAD)
		abort();
	if (rc == 1) {
		size_t head_len = h->head_len;

		if (head_len < 4 || head_len > size || head_len > SLUICE_TSRV_MAX_HEAD ||
		    memcmp(buf + head_len - 4, "\r\n\r\n", 4) || !h->method[0] ||
		    h->path[0] != '/' || (h->minor != 0 && h->minor != 1) ||
		    h->content_length > SLUICE_TSRV_MAX_BODY ||
		    h->nheaders > SLUICE_TSRV_MAX_HEADERS)
			abort();
		for (size_t i = 0; i < h->nheaders; i++)
			if (!h->headers[i].name_len ||
			    !within(h->headers[i].name, h->headers[i].name_len, buf, head_len) ||
			    !within(h->headers[i].value, h->headers[i].value_len, buf, head_len) ||
			    memchr(h->headers[i].value, '\r', h->headers[i].value_len) ||
			    memchr(h->headers[i].value, '\n', h->headers[i].value_len))
				abort();
		if (strchr(h->path, ' ') || strchr(h->path, '?') || strchr(h->path, '#'))
			abort();
		/* The head without its last byte is a prefix still waiting for more. */
		if (sluice_tsrv__parse_head(ctx, h, buf, head_len - 1) != 0)
			abort();
	}
	return 0;
}
