/*
 * hooks/hooks.h - the hooks' private interface: configuration, one
 * delivery attempt per hook type (hooks/deliver.c), and what sluice status
 * shows (called from core/channel.c).
 */
#ifndef SLUICE_HOOKS_PRIVATE_H
#define SLUICE_HOOKS_PRIVATE_H

#include "repo.h"

#include "sluice/hooks.h"

/* One configured hook (hook.NAME.* in the repository's git config). */
typedef struct {
	char name[65];
	char type[16]; /* webhook | vllm | llamacpp */
	char *url;
	char **channels;
	size_t nchannels;
	char key[65];
	int notes;
	uint64_t since; /* webhook: moves after this journal position */
	long timeout;   /* seconds per request (hook.NAME.timeout, default 10) */
} sluice_hook;

void sluice_hook__dispose(sluice_hook *h);

/* Every configured hook into a new array (*n of them); free each with _dispose. */
int sluice_hooks__load(sluice_repo *repo, sluice_hook **out, size_t *n);

/*
 * One delivery: a move of channel to version `to` at journal entry
 * `entry` (seq), to be delivered by hook. prev_loaded is what the last
 * acknowledged delivery of this hook for this channel loaded (vLLM: the
 * adapter name; "" for none).
 */
typedef struct {
	const sluice_hook *hook;
	const sluice_key *key; /* the hook's key, with its secret half (signs webhooks) */
	const char *channel;
	uint64_t seq;
	char entry[41];
	char to[41];
	char from[41];
	char action[16];
	char time[32];
	const char *reason;
	const char *prev_loaded;
	/*
	 * vLLM: adapters that failed attempts since the last acknowledgement
	 * loaded (a load that worked before the unload failed), to unload too.
	 */
	json_t *stray;
} sluice_hook_move;

/* What one attempt came to: journaled as the hook entry's record. */
typedef struct {
	int ok;
	long status;      /* HTTP status of the last request (0: none answered) */
	char answer[256]; /* a bounded excerpt of its body */
	char error[512];  /* why it failed ("" when ok) */
	char id[64];      /* webhook: the delivery id */
	char loaded[96];  /* vLLM: the adapter name now loaded ("" for the base model) */
	char state[65];   /* the state digest of the version delivered */
} sluice_hook_result;

/* The delivery id of a move for a hook: stable across retries and processes. */
void sluice_hooks__delivery_id(char out[64], const char *hook, const char *entry);

/* One attempt (hooks/deliver.c). Fills res; returns 0 even when the server said no. */
int sluice_hooks__attempt(sluice_repo *repo, const sluice_hook_move *mv, sluice_hook_result *res);

/*
 * Add to each element of the channels array ({"name","head",...}) a
 * "hooks" array: every hook following it, with what its server last
 * acknowledged and what is pending (core/channel.c's status).
 */
int sluice_hooks__status(sluice_repo *repo, json_t *channels);

#endif
