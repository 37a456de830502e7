/*
 * sluice/repo.h - opening, creating, re-indexing and verifying a sluice
 * repository.
 *
 * A repository is a bare git repository (so stock git reads it directly)
 * with sluice's own data beside git's in the sluice/ subdirectory:
 *   sluice/packs/   chunk pack files (append-only; see docs/format.md)
 *   sluice/index/   LMDB: derived indexes, rebuilt by sluice_repo_reindex
 * Durable truth is in git: versions are signed commits, and every action
 * is a signed commit on refs/sluice/journal.
 *
 * Functions that report return a malloc'd JSON document in *report (free
 * with sluice_free); its shape is documented in docs/cli.md and is what the
 * CLI prints for --json.
 */
#ifndef SLUICE_REPO_H
#define SLUICE_REPO_H

#include "sluice/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sluice_repo sluice_repo;

/* Progress callback: what is being done, bytes done and total (0 if unknown). */
typedef void (*sluice_progress_cb)(void *data, const char *what, uint64_t done, uint64_t total);

/*
 * What a new repository's gate configuration says (docs/gates.md): which
 * gates every promotion needs. With gates_set = 0 (or opts NULL) all
 * three are required; otherwise exactly the ngates names given
 * ("regression", "safety", "poisoning"; none at all is allowed and is
 * recorded as such). The configuration is part of the root-signed init
 * entry; policies (a later change) replace it.
 */
typedef struct {
	int gates_set;
	const char *const *required_gates;
	size_t ngates;
	/*
	 * Thresholds over the defaults, or NULL: JSON text such as
	 * {"regression": {"anchor_max_drop": 0.05}}. Only the default
	 * configuration's keys are accepted, each a number of the same sign
	 * (docs/gates.md); config_name names it in messages.
	 */
	const char *config_json;
	const char *config_name;
	/*
	 * How many root keys must sign a root change (keys, roles, policies,
	 * rotation); 0 means 1. At most the number of root keys.
	 */
	unsigned root_threshold;
} sluice_init_opts;

/*
 * Create a repository at path (created if missing; must be empty) and pin
 * its root keys: each name is a key in the keys directory, generated if it
 * does not exist yet. With no names, a key named "root" is used. The first
 * journal entry records the root keys and is signed by the first.
 * *report (may be NULL): {"path", "root_keys": [{"name","fingerprint"}]}.
 * Returns 0, SLUICE_EEXISTS if path holds a repository or other files.
 */
int sluice_repo_init(sluice_repo **out, sluice_ctx *ctx, const char *path,
                     const char *const *root_keys, size_t nroot, const sluice_init_opts *opts,
                     char **report);

/* Open an existing repository. SLUICE_ENOTFOUND if path is not one. */
int sluice_repo_open(sluice_repo **out, sluice_ctx *ctx, const char *path);

/* Close; accepts NULL. */
void sluice_repo_free(sluice_repo *repo);

/* The repository's directory. Borrowed; lives as long as repo. */
const char *sluice_repo_path(const sluice_repo *repo);

/* Install a progress callback for long operations (ingest, checkout, verify). */
void sluice_repo_set_progress(sluice_repo *repo, sluice_progress_cb cb, void *data);

/*
 * Install a progress callback for work counted in items rather than bytes
 * (evaluation: the pairs of a suite scored so far, and how many there are).
 */
void sluice_repo_set_item_progress(sluice_repo *repo, sluice_progress_cb cb, void *data);

/*
 * Rebuild the derived LMDB index from the packs and the journal.
 * *report: {"chunks": N}.
 */
int sluice_repo_reindex(sluice_repo *repo, char **report);

/*
 * Check everything, read-only: journal signatures, every version's
 * signature, tree, digest list and manifests, every chunk's bytes, and the
 * index against the packs. Returns 0 when all is well, SLUICE_ECORRUPT
 * when anything is wrong. *report: {"ok": bool, "problems": [text...],
 * "checked": {"journal_entries", "versions", "files", "chunks"}}.
 */
int sluice_repo_verify(sluice_repo *repo, char **report);

/* Free a string returned by libsluice; accepts NULL. */
void sluice_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
