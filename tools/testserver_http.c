/*
 * tools/testserver_http.c - see testserver_http.h.
 */
#include "testserver_http.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: the characters of a method or a field name. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / obs-text, SP and HTAB: what a field value may hold. */
static bool is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Case-insensitive comparison of n bytes at a with the NUL-terminated b. */
static bool eq_ci(const char *a, size_t n, const char *b)
{
	return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

/* Does the comma-separated list value[0..n) hold token tok (case-insensitive)? */
static bool list_has(const char *value, size_t n, const char *tok)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
			i++;
		s = i;
		while (i < n && value[i] != ',')
			i++;
		e = i;
		while (e > s && (value[e - 1] == ' ' || value[e - 1] == '\t'))
			e--;
		if (e > s && eq_ci(value + s, e - s, tok))
			return true;
	}
	return false;
}

static int parse_request_line(sluice_ctx *ctx, sluice_tsrv_head *out, const char *p, size_t n)
{
	size_t i = 0, m, t0, tn, q;

	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	m = i;
	if (m == 0 || i >= n || p[i] != ' ')
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "request line: the method is not a token followed by a "
		                         "single space");
	if (m >= sizeof(out->method))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "request line: method longer than %zu bytes",
		                         sizeof(out->method) - 1);
	memcpy(out->method, p, m);
	out->method[m] = '\0';
	t0 = ++i;
	while (i < n && p[i] != ' ') {
		unsigned char c = (unsigned char)p[i];

		/* No controls, no DEL, no non-ASCII and no fragment in a target. */
		if (c <= 0x20 || c >= 0x7f || c == '#')
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "request line: byte 0x%02x not allowed in the "
			                         "target (column %zu)",
			                         c, i + 1);
		i++;
	}
	tn = i - t0;
	if (tn == 0 || p[t0] != '/')
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "request line: the target is not in origin form "
		                         "(\"/path\")");
	if (i >= n)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "request line: no HTTP version after the target");
	for (q = 0; q < tn && p[t0 + q] != '?'; q++)
		;
	if (q >= sizeof(out->path) || tn - q >= sizeof(out->query))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "request line: target longer than %zu bytes",
		                         sizeof(out->path) - 1);
	memcpy(out->path, p + t0, q);
	out->path[q] = '\0';
	if (q < tn) {
		memcpy(out->query, p + t0 + q + 1, tn - q - 1);
		out->query[tn - q - 1] = '\0';
	} else {
		out->query[0] = '\0';
	}
	i++; /* the space */
	if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 || (p[i + 7] != '0' && p[i + 7] != '1'))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "request line: version is not HTTP/1.0 or HTTP/1.1");
	out->minor = p[i + 7] - '0';
	return 0;
}

static int parse_content_length(sluice_ctx *ctx, uint64_t *out, const char *v, size_t n,
                                unsigned line)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "line %u: empty Content-Length",
		                         line);
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "line %u: Content-Length is not a decimal number",
			                         line);
		x = x * 10 + (uint64_t)(v[i] - '0');
		if (x > SLUICE_TSRV_MAX_BODY)
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "line %u: Content-Length above the limit of %u "
			                         "bytes",
			                         line, SLUICE_TSRV_MAX_BODY);
	}
	*out = x;
	return 0;
}

/* Interpret the fields the server acts on, once all are collected. */
static int check_fields(sluice_ctx *ctx, sluice_tsrv_head *out)
{
	bool have_len = false, have_host = false, conn_close = false, conn_keep = false;
	size_t k;

	for (k = 0; k < out->nheaders; k++) {
		const sluice_tsrv_header *h = &out->headers[k];
		unsigned line = (unsigned)k + 2;

		if (eq_ci(h->name, h->name_len, "content-length")) {
			uint64_t v = 0;
			int error;

			if ((error = parse_content_length(ctx, &v, h->value, h->value_len, line)) <
			    0)
				return error;
			if (have_len && v != out->content_length)
				return sluice_ctx__error(ctx, SLUICE_EINVALID,
				                         "line %u: a second Content-Length that "
				                         "disagrees with the first",
				                         line);
			have_len = true;
			out->content_length = v;
		} else if (eq_ci(h->name, h->name_len, "transfer-encoding")) {
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "line %u: Transfer-Encoding is not supported; send "
			        "a Content-Length",
			        line);
		} else if (eq_ci(h->name, h->name_len, "host")) {
			if (have_host)
				return sluice_ctx__error(ctx, SLUICE_EINVALID,
				                         "line %u: a second Host field", line);
			have_host = true;
		} else if (eq_ci(h->name, h->name_len, "connection")) {
			conn_close |= list_has(h->value, h->value_len, "close");
			conn_keep |= list_has(h->value, h->value_len, "keep-alive");
		} else if (eq_ci(h->name, h->name_len, "expect")) {
			if (!eq_ci(h->value, h->value_len, "100-continue"))
				return sluice_ctx__error(ctx, SLUICE_EINVALID,
				                         "line %u: unsupported expectation (only "
				                         "100-continue)",
				                         line);
			out->expect_continue = true;
		}
	}
	if (out->minor == 1 && !have_host)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "an HTTP/1.1 request without a Host field");
	out->keep_alive = out->minor == 1 ? !conn_close : (conn_keep && !conn_close);
	return 0;
}

int sluice_tsrv__parse_head(sluice_ctx *ctx, sluice_tsrv_head *out, const char *buf, size_t len)
{
	size_t pos = 0, lim = len < SLUICE_TSRV_MAX_HEAD ? len : SLUICE_TSRV_MAX_HEAD;
	unsigned line = 0;
	int error;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return 0; /* nothing read yet (buf may be NULL) */
	for (;;) {
		const char *p = buf + pos;
		const char *nl = memchr(p, '\n', lim - pos);
		size_t n;

		if (!nl) {
			if (len >= SLUICE_TSRV_MAX_HEAD)
				return sluice_ctx__error(ctx, SLUICE_EINVALID,
				                         "request head longer than %u bytes",
				                         SLUICE_TSRV_MAX_HEAD);
			/* A prefix is only worth waiting on if what is there is sane. */
			if (memchr(p, '\0', lim - pos))
				return sluice_ctx__error(ctx, SLUICE_EINVALID,
				                         "line %u: NUL byte in the request head",
				                         line + 1);
			return 0;
		}
		line++;
		n = (size_t)(nl - p);
		if (n == 0 || p[n - 1] != '\r')
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "line %u: ends in a bare LF (CRLF required)",
			                         line);
		n--; /* drop the CR */
		pos += n + 2;
		if (line == 1) {
			/* Leading empty lines (RFC 9112 2.2 "SHOULD ignore") are refused too. */
			if ((error = parse_request_line(ctx, out, p, n)) < 0)
				return error;
			continue;
		}
		if (n == 0)
			break;
		if (p[0] == ' ' || p[0] == '\t')
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "line %u: obsolete line folding is not accepted",
			                         line);
		{
			sluice_tsrv_header *h;
			size_t i = 0, vs, ve;

			while (i < n && is_tchar((unsigned char)p[i]))
				i++;
			if (i == 0 || i >= n || p[i] != ':')
				return sluice_ctx__error(ctx, SLUICE_EINVALID,
				                         "line %u: not a header field (\"name: "
				                         "value\")",
				                         line);
			if (out->nheaders >= SLUICE_TSRV_MAX_HEADERS)
				return sluice_ctx__error(ctx, SLUICE_EINVALID,
				                         "line %u: more than %d header fields",
				                         line, SLUICE_TSRV_MAX_HEADERS);
			h = &out->headers[out->nheaders++];
			h->name = p;
			h->name_len = i;
			vs = i + 1;
			for (ve = vs; ve < n; ve++)
				if (!is_value_char((unsigned char)p[ve]))
					return sluice_ctx__error(
					        ctx, SLUICE_EINVALID,
					        "line %u: control byte 0x%02x in the value of %.*s",
					        line, (unsigned char)p[ve], (int)i, p);
			while (vs < n && (p[vs] == ' ' || p[vs] == '\t'))
				vs++;
			while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
				ve--;
			h->value = p + vs;
			h->value_len = ve - vs;
		}
	}
	out->head_len = pos;
	if ((error = check_fields(ctx, out)) < 0)
		return error;
	return 1;
}

const char *sluice_tsrv__header(const sluice_tsrv_head *h, const char *name, size_t *len)
{
	size_t k;

	for (k = 0; k < h->nheaders; k++)
		if (eq_ci(h->headers[k].name, h->headers[k].name_len, name)) {
			*len = h->headers[k].value_len;
			return h->headers[k].value;
		}
	*len = 0;
	return NULL;
}
