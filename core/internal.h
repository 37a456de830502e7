/*
 * core/internal.h - helpers shared by libsluice's modules and its tests.
 * Not installed; nothing outside the library (cli/) may include it.
 */
#ifndef SLUICE_CORE_INTERNAL_H
#define SLUICE_CORE_INTERNAL_H

#include "sluice/common.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(__GNUC__) || defined(__clang__)
#define SLUICE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SLUICE_PRINTF(a, b)
#endif

#define SLUICE_B2_LEN 32 /* BLAKE2b-256 digest bytes */
#define SLUICE_B2_HEX 65 /* hex digits + NUL */

struct sluice_ctx {
	int errcode;
	char errmsg[1024];
	sluice_fault_hook fault;
	void *fault_data;
	unsigned threads;
	/* Journal entries committed through this context, hook entries aside (hooks/). */
	unsigned journal_writes;
};

/*
 * Set the context's error and return code, so callers write
 * `return sluice_ctx__error(ctx, SLUICE_EINVALID, "...", ...)`. The message
 * should name what was wrong and where (file, tensor, line, field).
 */
int sluice_ctx__error(sluice_ctx *ctx, int code, const char *fmt, ...) SLUICE_PRINTF(3, 4);

/* As sluice_ctx__error, with strerror(errno) appended after ": ". */
int sluice_ctx__oserror(sluice_ctx *ctx, const char *fmt, ...) SLUICE_PRINTF(2, 3);

/*
 * Translate libgit2's last error (which may be NULL in 1.5) into ctx, with
 * a prefix naming what was being done. Maps GIT_ENOTFOUND, GIT_EEXISTS and
 * GIT_EMODIFIED/GIT_ELOCKED to the matching sluice codes.
 */
int sluice_ctx__giterror(sluice_ctx *ctx, int giterr, const char *fmt, ...) SLUICE_PRINTF(3, 4);

/* Prefix the existing message with more context ("while ...: <old>"). */
int sluice_ctx__wrap(sluice_ctx *ctx, int code, const char *fmt, ...) SLUICE_PRINTF(3, 4);

/* Threads to use for parallel work (>= 1). */
unsigned sluice_ctx__threads(const sluice_ctx *ctx);

/* ---- I/O through the fault hook ---------------------------------------- */

/* Allocation that the fault hook can fail; sets ENOMEM error on ctx. */
void *sluice__malloc(sluice_ctx *ctx, size_t n);

/*
 * core/dl.c. Open $env, or soname, with dlopen (RTLD_NOW | RTLD_LOCAL);
 * *opened names what was tried; on failure NULL and why says "cannot load
 * NAME<what>: <dlerror>". sluice__dl_find stores name's address in the
 * function pointer at fn, and the first name not found in *missing.
 */
void *sluice__dl_open(const char *env, const char *soname, const char *what, char *why,
                      size_t whylen, const char **opened);
void sluice__dl_find(void *so, const char *name, void *fn, const char **missing);
void *sluice__calloc(sluice_ctx *ctx, size_t n, size_t size);
void *sluice__realloc(sluice_ctx *ctx, void *p, size_t n);
/*
 * Room for need elements of elem bytes in the array *p of *cap elements:
 * grown by doubling (from 16) through sluice__realloc, overflow-checked;
 * *p and *cap are unchanged on failure.
 */
int sluice__reserve(sluice_ctx *ctx, void **p, size_t *cap, size_t need, size_t elem);
char *sluice__strdup(sluice_ctx *ctx, const char *s);

/* Write all of buf to fd (retrying short writes). `what` names the file. */
int sluice_io__write_all(sluice_ctx *ctx, int fd, const void *buf, size_t len, const char *what);
/* pwrite all of buf at off. */
int sluice_io__pwrite_all(sluice_ctx *ctx, int fd, const void *buf, size_t len, off_t off,
                          const char *what);
/* Read exactly len bytes at off; a short file is SLUICE_ECORRUPT. */
int sluice_io__pread_all(sluice_ctx *ctx, int fd, void *buf, size_t len, off_t off,
                         const char *what);
int sluice_io__fsync(sluice_ctx *ctx, int fd, const char *what);
/* fsync the directory that holds path (or path itself if it is a directory). */
int sluice_io__fsync_dir(sluice_ctx *ctx, const char *dirpath);
/*
 * fsync n open files (or directories) at once, as one Linux AIO batch (or,
 * where AIO is refused, each on a thread of its own), and wait for all: the
 * flushes overlap on the device. what[i] names fds[i]
 * in errors. n is at most SLUICE_IO_FSYNC_MAX. The fault hook sees one fsync
 * per file, in order, before any starts.
 */
#define SLUICE_IO_FSYNC_MAX 32
int sluice_io__fsync_all(sluice_ctx *ctx, const int *fds, const char *const *what, size_t n);
/* Read a whole regular file (at most cap bytes) into a new buffer. */
int sluice_io__read_file(sluice_ctx *ctx, unsigned char **out, size_t *outlen, const char *path,
                         size_t cap);
/*
 * Write a file durably: write to a temporary beside it, fsync, rename,
 * fsync the directory. mode is the new file's permission bits.
 */
int sluice_io__write_file_atomic(sluice_ctx *ctx, const char *path, const void *buf, size_t len,
                                 int mode);
/* mkdir -p; existing directories are fine. */
int sluice_io__mkdirs(sluice_ctx *ctx, const char *path, int mode);

/* ---- small utilities ---------------------------------------------------- */

/* A growable byte buffer. Zero-initialise, then append; free with _dispose. */
typedef struct {
	unsigned char *ptr;
	size_t len;
	size_t cap;
} sluice_buf;

int sluice_buf__grow(sluice_ctx *ctx, sluice_buf *b, size_t extra);
int sluice_buf__put(sluice_ctx *ctx, sluice_buf *b, const void *data, size_t len);
int sluice_buf__puts(sluice_ctx *ctx, sluice_buf *b, const char *s);
int sluice_buf__printf(sluice_ctx *ctx, sluice_buf *b, const char *fmt, ...) SLUICE_PRINTF(3, 4);
/* Make ptr a NUL-terminated string (the NUL is not counted in len). */
int sluice_buf__cstr(sluice_ctx *ctx, sluice_buf *b);
void sluice_buf__dispose(sluice_buf *b);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void sluice__hex(char *out, const unsigned char *in, size_t len);
/* Parse exactly 2*len hex digits; returns 0 or -1. */
int sluice__unhex(unsigned char *out, size_t len, const char *hex);

/* BLAKE2b-256 of a buffer (same bytes as `b2sum -l 256`). */
void sluice__b2(unsigned char out[SLUICE_B2_LEN], const void *data, size_t len);

/* Seconds on the monotonic clock (for timeouts and backoff, never for records). */
double sluice__monotonic_s(void);
/* Sleep s seconds (nothing when s <= 0), resuming after signals. */
void sluice__sleep_s(double s);
/*
 * The wait before retry number attempt (0 for the first retry): base
 * doubled per attempt, at most cap, plus up to half of it again at random,
 * so clients that failed together do not retry together.
 */
double sluice__backoff_s(double base, unsigned attempt, double cap);

/*
 * Journal times, "YYYY-MM-DDTHH:MM:SSZ" (UTC): seconds since the epoch, or
 * -1 if s is not exactly that shape; and back (out holds 21 bytes or more).
 */
long long sluice__utc_seconds(const char *s);
void sluice__utc_format(char out[32], long long t);
/*
 * A duration as written on a command line: seconds ("3600") or <n>s, <n>m,
 * <n>h, <n>d ("90m", "7d"), from 1 second to 36500 days. 0 or -1.
 */
int sluice__parse_duration(const char *s, long long *out);

/* Little-endian load/store. */
static inline uint32_t sluice__le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t sluice__le64(const unsigned char *p)
{
	return (uint64_t)sluice__le32(p) | (uint64_t)sluice__le32(p + 4) << 32;
}
static inline void sluice__st32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}
static inline void sluice__st64(unsigned char *p, uint64_t v)
{
	sluice__st32(p, (uint32_t)v);
	sluice__st32(p + 4, (uint32_t)(v >> 32));
}
/* Big-endian 32-bit, for SSH wire encoding. */
static inline uint32_t sluice__be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static inline void sluice__stbe32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Checked size arithmetic: 0 on success, -1 on overflow. */
static inline int sluice__add_ovf(size_t *out, size_t a, size_t b)
{
	if (a > SIZE_MAX - b)
		return -1;
	*out = a + b;
	return 0;
}
static inline int sluice__mul_ovf(size_t *out, size_t a, size_t b)
{
	if (a != 0 && b > SIZE_MAX / a)
		return -1;
	*out = a * b;
	return 0;
}

/* True if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool sluice__utf8_valid(const unsigned char *s, size_t len);

/*
 * True if a relative path is safe to create under a directory: not empty,
 * not absolute, no "." or ".." component, no empty component, no NUL
 * within len, no backslash, each component at most 255 bytes, whole path at
 * most 4096 bytes. On false, *why (static string) says which rule failed.
 */
bool sluice__path_safe(const char *path, size_t len, const char **why);

#endif
