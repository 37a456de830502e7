/*
 * sluice/common.h - the context handle, error codes and process-wide setup.
 *
 * Every libsluice call takes a sluice_ctx. The context owns the last error
 * message (read it with sluice_ctx_errmsg) and the fault-injection hook used
 * by the tests. A context is not thread-safe: use one per thread.
 */
#ifndef SLUICE_COMMON_H
#define SLUICE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. 0 is success; every failure is negative. */
enum {
	SLUICE_OK = 0,
	SLUICE_ERROR = -1,      /* unclassified failure */
	SLUICE_ENOTFOUND = -3,  /* a named object, key, ref or file does not exist */
	SLUICE_EEXISTS = -4,    /* the thing to create already exists */
	SLUICE_EINVALID = -5,   /* bad input refused: nothing was changed */
	SLUICE_ECORRUPT = -6,   /* stored data failed a check */
	SLUICE_EDENIED = -7,    /* a signature, role or permission check said no */
	SLUICE_EIO = -8,        /* an operating-system call failed */
	SLUICE_ENOMEM = -9,     /* allocation failed */
	SLUICE_ECONFLICT = -10, /* a compare-and-swap lost to a concurrent action */
	SLUICE_EUSAGE = -11     /* the call's arguments are wrong */
};

/* Process exit codes used by the sluice program, documented in docs/cli.md. */
enum {
	SLUICE_EXIT_OK = 0,
	SLUICE_EXIT_NO = 1,           /* a check said no */
	SLUICE_EXIT_INCONCLUSIVE = 2, /* a check could not decide */
	SLUICE_EXIT_USAGE = 3,        /* usage error */
	SLUICE_EXIT_REFUSED = 4,      /* bad input refused, nothing changed */
	SLUICE_EXIT_INTERNAL = 5      /* I/O or internal error */
};

typedef struct sluice_ctx sluice_ctx;

/*
 * Fault-injection points. A hook installed with sluice_ctx_set_fault_hook is
 * asked before each write, fsync and allocation that goes through libsluice's
 * own I/O helpers; returning non-zero makes that operation fail as if the
 * system call had failed (EIO, or ENOMEM for allocations).
 */
typedef enum {
	SLUICE_FAULT_WRITE = 1,
	SLUICE_FAULT_FSYNC = 2,
	SLUICE_FAULT_ALLOC = 3
} sluice_fault_op;

/*
 * The hook sees the operation and a short description of its target (a path
 * or a purpose). It must not call back into libsluice.
 */
typedef int (*sluice_fault_hook)(void *data, sluice_fault_op op, const char *what);

/*
 * Process-wide setup: libgit2, libsodium. Call once before any other
 * function; pair with sluice_global_shutdown. Returns 0 or SLUICE_ERROR.
 */
int sluice_global_init(void);
void sluice_global_shutdown(void);

/* Create a context. Returns 0, or SLUICE_ENOMEM. Free with sluice_ctx_free. */
int sluice_ctx_new(sluice_ctx **out);

/* Destroy a context; accepts NULL. */
void sluice_ctx_free(sluice_ctx *ctx);

/*
 * The message of the last failure on this context, never NULL (empty when
 * none). Borrowed: valid until the next call that uses ctx.
 */
const char *sluice_ctx_errmsg(const sluice_ctx *ctx);

/* The code of the last failure on this context, or 0. */
int sluice_ctx_errcode(const sluice_ctx *ctx);

/* Forget the last error. */
void sluice_ctx_clear_error(sluice_ctx *ctx);

/* Install (or, with NULL, remove) the fault-injection hook. */
void sluice_ctx_set_fault_hook(sluice_ctx *ctx, sluice_fault_hook hook, void *data);

/*
 * Number of worker threads used for hashing (default: online CPUs).
 * 0 restores the default.
 */
void sluice_ctx_set_threads(sluice_ctx *ctx, unsigned threads);

/* Map a return code to the process exit code above. */
int sluice_exit_code(int error);

/* A short English name of a return code ("invalid input", ...). Static. */
const char *sluice_strerror(int error);

#ifdef __cplusplus
}
#endif
#endif
