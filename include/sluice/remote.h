/*
 * sluice/remote.h - remotes: sharing a repository's history and chunks.
 *
 * A remote has a name, a git URL (a path, file://, git://, ssh:// or
 * http(s):// as libgit2 speaks them) that carries the git history - the
 * journal (refs/sluice/journal), the versions and statements it reaches,
 * and the channel mirrors (refs/sluice/channels/NAME) - and optionally a
 * chunk store URL (http:// or https://) where chunks are kept one object
 * each, read with GET and written with PUT (a WebDAV directory such as
 * nginx's dav module serves). Both live in the repository's git config:
 * remote.NAME.url and remote.NAME.sluicechunks. docs/remotes.md describes
 * the layout, the order of writes and what is verified where.
 *
 * Reports are JSON documents (free with sluice_free), shaped as
 * docs/remotes.md says; the CLI prints them for --json.
 */
#ifndef SLUICE_REMOTE_H
#define SLUICE_REMOTE_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How push and pull talk to a chunk store. Zero-initialise for the defaults. */
typedef struct {
	unsigned concurrency; /* requests in flight (default 8, at most 64) */
	/* retries of a request after a 5xx or connection error: 0 the default (4), -1 none */
	int retries;
	/*
	 * push only: ask the chunk store (HEAD) for every chunk of every
	 * version the repository holds and PUT what it lacks, instead of
	 * trusting the remote journal as its inventory (to repair a store
	 * that lost objects).
	 */
	int recheck;
	/*
	 * pull into a repository without a journal (clone) only: the
	 * fingerprint ("SHA256:...") of a root key the remote's first entry
	 * must pin, or NULL to trust whatever it pins (reported).
	 */
	const char *expect_root;
} sluice_remote_opts;

/*
 * Add remote NAME (git's remote name rules) with git URL url and, when
 * chunks_url is not NULL, chunk store URL chunks_url (http:// or https://).
 * SLUICE_EEXISTS if NAME exists, SLUICE_EINVALID for a bad name or URL;
 * nothing is changed then. *report: {"name", "url", "chunks"}.
 */
int sluice_remote_add(sluice_repo *repo, const char *name, const char *url, const char *chunks_url,
                      char **report);

/* Remove remote NAME and its settings. SLUICE_ENOTFOUND if there is none. */
int sluice_remote_remove(sluice_repo *repo, const char *name, char **report);

/* *report: {"remotes": [{"name", "url", "chunks" (null when none)}]}. */
int sluice_remote_list(sluice_repo *repo, char **report);

/*
 * Send what remote NAME lacks: first the chunks its chunk store lacks
 * (PUT, verified locally as they are read), then the journal and the
 * channel mirrors, so a remote ref never names a missing chunk. The remote
 * journal must be an ancestor of the local one (or absent): otherwise
 * SLUICE_ECONFLICT saying whether NAME is ahead (pull first) or where the
 * two journals part, and nothing is sent. opts may be NULL.
 * *report: {"remote", "up_to_date", "refs": [{"ref", "old", "new"}],
 * "chunks": {"needed", "in_remote_journal", "in_record", "sent",
 * "already_there", "bytes_sent", "bytes_needed"}, "requests": {"http",
 * "git"}, "versions"}; docs/remotes.md.
 */
int sluice_remote_push(sluice_repo *repo, const char *name, const sluice_remote_opts *opts,
                       char **report);

/*
 * Fetch remote NAME's journal and fast-forward the local one to it: the
 * new entries' signatures are checked against the keys registry before
 * each, every missing chunk is fetched (GET) and checked against its
 * BLAKE2b-256 id and size, and only when all of that succeeded are the
 * chunks stored, the git objects added and refs/sluice/journal moved
 * (compare-and-swap), then the derived indexes brought up to date. A
 * local journal ahead of NAME's changes nothing and is no failure (the
 * report says "ahead"); one that diverged is SLUICE_ECONFLICT naming where
 * they part; a corrupt or missing chunk SLUICE_ECORRUPT or
 * SLUICE_ENOTFOUND naming it and the version that needs it. On any
 * failure the repository is as it was. opts may be NULL.
 * *report: {"remote", "up_to_date", "ahead" (when ahead), "journal": {"from",
 * "to", "entries"}, "channels": {NAME: head}, "versions", "chunks": {"needed",
 * "received", "bytes_received", "bytes_needed"}, "requests": {"http", "git"},
 * "warnings", "root_keys": [...] (first pull only)}; docs/remotes.md.
 */
int sluice_remote_pull(sluice_repo *repo, const char *name, const sluice_remote_opts *opts,
                       char **report);

/*
 * Create an empty repository at dir (new or empty; no journal of its own),
 * add remote name (NULL: "origin") with url and chunks_url, and pull it.
 * progress (may be NULL) is installed on the new repository. On failure
 * dir is removed again (when this call created it) or emptied.
 * *report: the pull's, with "path".
 */
int sluice_remote_clone(sluice_ctx *ctx, const char *dir, const char *name, const char *url,
                        const char *chunks_url, const sluice_remote_opts *opts,
                        sluice_progress_cb progress, void *progress_data, char **report);

#ifdef __cplusplus
}
#endif
#endif
