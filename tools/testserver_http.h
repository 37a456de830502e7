/*
 * tools/testserver_http.h - the HTTP/1.1 request-head parser of
 * sluice-testserver (tools/testserver.c), apart so a libFuzzer target
 * (tests/fuzz/testserver_request_fuzzer.c) can drive it on arbitrary bytes.
 *
 * It understands the small subset of RFC 9112 that clients of the test
 * server send (libcurl, Python's http.client): a request line
 * "METHOD origin-form HTTP/1.x", CRLF-terminated header fields, bodies
 * framed by Content-Length only. Everything else is refused with a message
 * naming the place: bare LF line ends, obsolete line folding, a
 * Transfer-Encoding (chunked bodies are not implemented), conflicting
 * Content-Length values, a missing Host in HTTP/1.1, an expectation other
 * than 100-continue, control characters in the target or a field value.
 */
#ifndef SLUICE_TOOLS_TESTSERVER_HTTP_H
#define SLUICE_TOOLS_TESTSERVER_HTTP_H

#include "internal.h"

/* A head longer than this is refused (the server answers 431-like 400). */
#define SLUICE_TSRV_MAX_HEAD 16384
/* More header fields than this are refused. */
#define SLUICE_TSRV_MAX_HEADERS 64
/* A Content-Length above this is refused: no test sends more. */
#define SLUICE_TSRV_MAX_BODY (64u * 1024u * 1024u)

typedef struct {
	const char *name; /* points into the parsed buffer; not NUL-terminated */
	size_t name_len;
	const char *value; /* trimmed of surrounding spaces and tabs */
	size_t value_len;
} sluice_tsrv_header;

typedef struct {
	char method[16];         /* the request method token, e.g. "GET" */
	char path[1024];         /* the target's path (before any '?') */
	char query[1024];        /* the target's query (after '?'), "" when none */
	int minor;               /* HTTP/1.minor: 0 or 1 */
	uint64_t content_length; /* 0 when no Content-Length */
	bool keep_alive;         /* the connection may serve another request */
	bool expect_continue;    /* "Expect: 100-continue" was sent */
	size_t nheaders;
	sluice_tsrv_header headers[SLUICE_TSRV_MAX_HEADERS];
	size_t head_len; /* bytes of the head, the blank line included */
} sluice_tsrv_head;

/*
 * Parse the request head at the start of buf[0..len). Returns 1 with *out
 * filled when a whole head (through the empty line) is there, 0 when more
 * bytes are needed (buf holds a well-formed prefix shorter than
 * SLUICE_TSRV_MAX_HEAD), or SLUICE_EINVALID with a message in ctx naming
 * what was wrong (line and field). out->headers point into buf: they are
 * valid while buf is. The bytes after head_len are the body.
 */
int sluice_tsrv__parse_head(sluice_ctx *ctx, sluice_tsrv_head *out, const char *buf, size_t len);

/* The value of header `name` (case-insensitive), or NULL; *len its length. */
const char *sluice_tsrv__header(const sluice_tsrv_head *h, const char *name, size_t *len);

#endif
