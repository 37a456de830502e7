/*
 * sluice/hooks.h - serving that follows a channel: hooks that tell a
 * webhook receiver, a vLLM server or a llama.cpp server when a channel
 * moves (docs/hooks.md).
 *
 * Hooks are configured in the repository's git config (hook.NAME.type,
 * url, channel, key, notes; not journaled: they change no state). What a
 * hook still has to deliver is derived from the journal alone: the moves
 * of its channel after the last one the journal records as acknowledged
 * for it. Every attempt is journaled as a "hook" entry signed by the
 * hook's key (operator role), which changes no channel. A failed hook
 * never changes the result of the move it follows.
 */
#ifndef SLUICE_HOOKS_H
#define SLUICE_HOOKS_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What `sluice hook add` configures. */
typedef struct {
	const char *name; /* 1-64 of [A-Za-z0-9._-], not starting with '.' or '-' */
	const char *type; /* "webhook", "vllm" or "llamacpp" */
	const char *url;  /* http:// or https:// */
	const char *const *channels;
	size_t nchannels; /* at least one */
	const char *key;  /* a local key registered with the operator role */
	int notes;        /* webhook only: deliver the memory notes' text */
} sluice_hook_opts;

/*
 * Configure a hook. SLUICE_EEXISTS if NAME is configured; SLUICE_EINVALID
 * for a bad name, type, URL or channel; SLUICE_EDENIED when key is not a
 * local key registered with the operator role. A webhook delivers moves
 * from this point of the journal on (hook.NAME.since); a vLLM or llama.cpp
 * hook brings its server to the channel's current head on the next
 * delivery. *report: {"hook": {...}} (free with sluice_free).
 */
int sluice_hooks_add(sluice_repo *repo, const sluice_hook_opts *opts, char **report);

/* Every configured hook: {"hooks": [{"name","type","url","channels","key","notes","since"}]}. */
int sluice_hooks_list(sluice_repo *repo, char **report);

/* Forget hook NAME's configuration (its journal entries stay). SLUICE_ENOTFOUND if absent. */
int sluice_hooks_remove(sluice_repo *repo, const char *name, char **report);

/*
 * Deliver what is due. With SLUICE_HOOKS_AFTER_WRITE (what the sluice
 * program does after every command that wrote to the journal) a hook that
 * failed recently waits for its backoff unless its channel moved since,
 * and another process already delivering is left to it; without it
 * (`sluice hook deliver`) everything pending is tried now, waiting up to
 * wait_seconds in total for failures to clear. Each hook and channel gets
 * a bounded number of attempts per call, with exponential backoff and
 * jitter; what still fails stays pending for the next process.
 * *report: {"delivered": n, "failed": n, "pending": n, "attempts": [...]}.
 * Returns 0 even when deliveries failed (the report says so); an error
 * only when the hooks could not be read at all.
 */
#define SLUICE_HOOKS_AFTER_WRITE 1u
int sluice_hooks_deliver(sluice_repo *repo, unsigned flags, double wait_seconds, char **report);

/*
 * Journal entries this context committed, other than hook entries: the
 * sluice program drains the hooks' outbox after a command when nonzero.
 */
unsigned sluice_ctx_journal_writes(const sluice_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
