/*
 * core/ctx.c - the context handle: last error, fault hook, thread count,
 * and process-wide initialisation of the libraries sluice stands on.
 */
#include "curl.h"
#include "internal.h"

#include <errno.h>
#include <git2.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sluice_global_init(void)
{
	if (sodium_init() < 0)
		return SLUICE_ERROR;
	if (git_libgit2_init() < 0)
		return SLUICE_ERROR;
	/* libcurl is loaded and initialised on first use (core/curl.h). */
	/*
	 * Every object and ref libgit2 writes is fsynced, with its directory:
	 * an acknowledged version must survive a power cut (DESIGN "Invariants").
	 */
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	/* Objects are checked for existence and type when trees/commits refer to them. */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 1);
	/*
	 * Trees of any size stay in libgit2's object cache (its default keeps
	 * only trees up to 4 KiB): a version's files/ directory is one tree
	 * read again for every path looked up in it. verify on a repository of
	 * 1,000 versions spent 78% of its time re-reading and inflating such
	 * trees (docs/bench-rollback.md, 2026-12-03).
	 */
	git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, (size_t)16 << 20);
	return SLUICE_OK;
}

void sluice_global_shutdown(void)
{
	sluice_curl__shutdown();
	git_libgit2_shutdown();
}

int sluice_ctx_new(sluice_ctx **out)
{
	sluice_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return SLUICE_ENOMEM;
	*out = ctx;
	return SLUICE_OK;
}

void sluice_ctx_free(sluice_ctx *ctx)
{
	free(ctx);
}

const char *sluice_ctx_errmsg(const sluice_ctx *ctx)
{
	return ctx ? ctx->errmsg : "";
}

int sluice_ctx_errcode(const sluice_ctx *ctx)
{
	return ctx ? ctx->errcode : 0;
}

void sluice_ctx_clear_error(sluice_ctx *ctx)
{
	ctx->errcode = 0;
	ctx->errmsg[0] = '\0';
}

void sluice_ctx_set_fault_hook(sluice_ctx *ctx, sluice_fault_hook hook, void *data)
{
	ctx->fault = hook;
	ctx->fault_data = data;
}

void sluice_ctx_set_threads(sluice_ctx *ctx, unsigned threads)
{
	ctx->threads = threads;
}

unsigned sluice_ctx__threads(const sluice_ctx *ctx)
{
	long n;

	if (ctx->threads)
		return ctx->threads;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	if (n > 64)
		n = 64;
	return (unsigned)n;
}

static int verror(sluice_ctx *ctx, int code, const char *fmt, va_list ap)
{
	ctx->errcode = code;
	vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), fmt, ap);
	return code;
}

int sluice_ctx__error(sluice_ctx *ctx, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(ctx, code, fmt, ap);
	va_end(ap);
	return code;
}

int sluice_ctx__oserror(sluice_ctx *ctx, const char *fmt, ...)
{
	int saved = errno;
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	verror(ctx, saved == ENOMEM ? SLUICE_ENOMEM : SLUICE_EIO, fmt, ap);
	va_end(ap);
	n = strlen(ctx->errmsg);
	snprintf(ctx->errmsg + n, sizeof(ctx->errmsg) - n, ": %s", strerror(saved));
	errno = saved;
	return ctx->errcode;
}

int sluice_ctx__giterror(sluice_ctx *ctx, int giterr, const char *fmt, ...)
{
	const git_error *e = git_error_last();
	int code;
	size_t n;
	va_list ap;

	switch (giterr) {
	case GIT_ENOTFOUND:
		code = SLUICE_ENOTFOUND;
		break;
	case GIT_EEXISTS:
		code = SLUICE_EEXISTS;
		break;
	case GIT_EMODIFIED:
	case GIT_ELOCKED:
		code = SLUICE_ECONFLICT;
		break;
	case GIT_EINVALIDSPEC:
	case GIT_EAMBIGUOUS:
		code = SLUICE_EINVALID;
		break;
	default:
		code = SLUICE_ERROR;
	}
	va_start(ap, fmt);
	verror(ctx, code, fmt, ap);
	va_end(ap);
	n = strlen(ctx->errmsg);
	snprintf(ctx->errmsg + n, sizeof(ctx->errmsg) - n, ": %s",
	         e && e->message ? e->message : "libgit2 gave no message");
	return code;
}

int sluice_ctx__wrap(sluice_ctx *ctx, int code, const char *fmt, ...)
{
	char prefix[512], old[sizeof(ctx->errmsg)];
	va_list ap;

	memcpy(old, ctx->errmsg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(ctx->errmsg, sizeof(ctx->errmsg), "%s: %s", prefix, old);
	ctx->errcode = code;
	return code;
}

int sluice_exit_code(int error)
{
	switch (error) {
	case SLUICE_OK:
		return SLUICE_EXIT_OK;
	case SLUICE_EDENIED:
		return SLUICE_EXIT_NO;
	case SLUICE_EUSAGE:
		return SLUICE_EXIT_USAGE;
	case SLUICE_EINVALID:
	case SLUICE_ENOTFOUND:
	case SLUICE_EEXISTS:
	case SLUICE_ECONFLICT:
		return SLUICE_EXIT_REFUSED;
	case SLUICE_ECORRUPT:
		return SLUICE_EXIT_NO;
	default:
		return SLUICE_EXIT_INTERNAL;
	}
}

const char *sluice_strerror(int error)
{
	switch (error) {
	case SLUICE_OK:
		return "success";
	case SLUICE_ENOTFOUND:
		return "not found";
	case SLUICE_EEXISTS:
		return "already exists";
	case SLUICE_EINVALID:
		return "invalid input";
	case SLUICE_ECORRUPT:
		return "corrupt data";
	case SLUICE_EDENIED:
		return "denied";
	case SLUICE_EIO:
		return "I/O error";
	case SLUICE_ENOMEM:
		return "out of memory";
	case SLUICE_ECONFLICT:
		return "concurrent update";
	case SLUICE_EUSAGE:
		return "usage error";
	default:
		return "error";
	}
}
