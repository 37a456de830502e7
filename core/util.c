/*
 * core/util.c - byte buffers, hex, BLAKE2b, UTF-8 and path-safety checks.
 */
#include "internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <time.h>

int sluice_buf__grow(sluice_ctx *ctx, sluice_buf *b, size_t extra)
{
	size_t need, cap;
	unsigned char *p;

	if (sluice__add_ovf(&need, b->len, extra) < 0 || sluice__add_ovf(&need, need, 1) < 0)
		return sluice_ctx__error(ctx, SLUICE_ENOMEM, "buffer size overflow");
	if (need <= b->cap)
		return SLUICE_OK;
	cap = b->cap ? b->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	if (!(p = sluice__realloc(ctx, b->ptr, cap)))
		return SLUICE_ENOMEM;
	b->ptr = p;
	b->cap = cap;
	return SLUICE_OK;
}

int sluice_buf__put(sluice_ctx *ctx, sluice_buf *b, const void *data, size_t len)
{
	int error;

	if ((error = sluice_buf__grow(ctx, b, len)) < 0)
		return error;
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
	return SLUICE_OK;
}

int sluice_buf__puts(sluice_ctx *ctx, sluice_buf *b, const char *s)
{
	return sluice_buf__put(ctx, b, s, strlen(s));
}

int sluice_buf__printf(sluice_ctx *ctx, sluice_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, error;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return sluice_ctx__error(ctx, SLUICE_ERROR, "format error");
	if ((error = sluice_buf__grow(ctx, b, (size_t)n)) < 0)
		return error;
	va_start(ap, fmt);
	vsnprintf((char *)b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return SLUICE_OK;
}

int sluice_buf__cstr(sluice_ctx *ctx, sluice_buf *b)
{
	int error;

	if ((error = sluice_buf__grow(ctx, b, 0)) < 0)
		return error;
	b->ptr[b->len] = '\0';
	return SLUICE_OK;
}

void sluice_buf__dispose(sluice_buf *b)
{
	if (!b)
		return;
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
}

void sluice__hex(char *out, const unsigned char *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sluice__unhex(unsigned char *out, size_t len, const char *hex)
{
	size_t i;

	for (i = 0; i < len; i++) {
		int hi = hexval((unsigned char)hex[2 * i]);
		int lo = hi < 0 ? -1 : hexval((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

void sluice__b2(unsigned char out[SLUICE_B2_LEN], const void *data, size_t len)
{
	crypto_generichash(out, SLUICE_B2_LEN, data, len, NULL, 0);
}

bool sluice__utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

bool sluice__path_safe(const char *path, size_t len, const char **why)
{
	size_t i, start = 0;

	if (len == 0) {
		*why = "empty name";
		return false;
	}
	if (len > 4096) {
		*why = "path longer than 4096 bytes";
		return false;
	}
	if (memchr(path, '\0', len)) {
		*why = "name contains a NUL byte";
		return false;
	}
	if (path[0] == '/') {
		*why = "absolute path";
		return false;
	}
	if (memchr(path, '\\', len)) {
		*why = "name contains a backslash";
		return false;
	}
	for (i = 0; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		size_t n = i - start;
		if (n == 0) {
			*why = "empty path component";
			return false;
		}
		if (n > 255) {
			*why = "path component longer than 255 bytes";
			return false;
		}
		if ((n == 1 && path[start] == '.') ||
		    (n == 2 && path[start] == '.' && path[start + 1] == '.')) {
			*why = "'.' or '..' component escapes the directory";
			return false;
		}
		start = i + 1;
	}
	if (!sluice__utf8_valid((const unsigned char *)path, len)) {
		*why = "name is not valid UTF-8";
		return false;
	}
	return true;
}

double sluice__monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sluice__sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

double sluice__backoff_s(double base, unsigned attempt, double cap)
{
	double d = ldexp(base, (int)(attempt < 30 ? attempt : 30));

	if (d > cap)
		d = cap;
	return d + d * 0.5 * ((double)randombytes_uniform(1000) / 1000.0);
}

long long sluice__utc_seconds(const char *s)
{
	int y, mo, d, h, mi, sec, n = 0;
	long long days;

	if (!s || strlen(s) != 20 ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 20 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	/* Days from 1970-01-01 in the proleptic Gregorian calendar (civil-from-days inverted). */
	y -= mo <= 2;
	{
		long long era = (y >= 0 ? y : y - 399) / 400;
		long long yoe = y - era * 400;
		long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
		long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
		days = era * 146097 + doe - 719468;
	}
	return days * 86400 + h * 3600 + mi * 60 + sec;
}

void sluice__utc_format(char out[32], long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "9999-12-31T23:59:59Z");
}

int sluice__parse_duration(const char *s, long long *out)
{
	static const struct {
		char unit;
		long long secs;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	long long n = 0, mul = 1;
	size_t len = s ? strlen(s) : 0, digits = len, i;

	if (len == 0)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(*units); i++)
		if (s[len - 1] == units[i].unit) {
			mul = units[i].secs;
			digits = len - 1;
		}
	if (digits == 0 || digits > 12 || s[0] == '0')
		return -1;
	for (i = 0; i < digits; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (s[i] - '0');
	}
	if (n > 36500LL * 86400 / mul)
		return -1;
	*out = n * mul;
	return 0;
}
