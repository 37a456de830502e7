/*
 * core/remote.h - the pieces of remotes (core/remote.c) that judge bytes
 * from outside: a chunk store's answers. Separate so the fuzz target
 * (tests/fuzz/chunk_answer_fuzzer.c) drives exactly this code.
 */
#ifndef SLUICE_CORE_REMOTE_H
#define SLUICE_CORE_REMOTE_H

#include "internal.h"

/* The request a chunk store answered. */
typedef enum { SLUICE_CHUNK_GET, SLUICE_CHUNK_PUT, SLUICE_CHUNK_HEAD } sluice_chunk_op;

/*
 * Judge a chunk store's answer to one request for chunk id (len bytes):
 * status is the HTTP status, body/blen what a GET received, hlen the
 * Content-Length a HEAD reported (-1 when absent). url and why (what needs
 * the chunk: "version V, FILE") name it in messages. Returns
 *   0                 GET: status 200 and body is the chunk (BLAKE2b-256 id,
 *                     exactly len bytes); PUT: 200, 201 or 204; HEAD: 200
 *                     with the chunk's length
 *   SLUICE_ENOTFOUND  GET or HEAD: 404 or 410 (the store lacks it)
 *   SLUICE_ECORRUPT   GET: 200 with other bytes; HEAD: 200 with another length
 *   SLUICE_EIO        any other status; *retry = 1 when trying again may
 *                     help (408, 429, 5xx), else 0
 * and sets the context's message for every failure. Anything it does not
 * understand is a failure: nothing but these statuses is accepted.
 */
int sluice_remote__judge(sluice_ctx *ctx, sluice_chunk_op op, long status,
                         const unsigned char id[SLUICE_B2_LEN], uint64_t len,
                         const unsigned char *body, size_t blen, int64_t hlen, const char *url,
                         const char *why, int *retry);

/*
 * Check a chunk store URL: http:// or https://, a host, no query,
 * fragment, user information, whitespace or control bytes. SLUICE_EINVALID
 * naming what is wrong.
 */
int sluice_remote__check_store_url(sluice_ctx *ctx, const char *url);

#endif
