/*
 * core/version.h - reading versions: resolving references, loading a
 * version's update.json and state.json, and walking its component files.
 */
#ifndef SLUICE_CORE_VERSION_H
#define SLUICE_CORE_VERSION_H

#include "repo.h"

/* A loaded version. */
typedef struct {
	git_oid id;
	git_commit *commit;
	git_tree *tree;
	json_t *update; /* update.json */
	json_t *state;  /* state.json */
	git_oid state_blob;
} sluice_version;

/* Resolve a reference (full or abbreviated id) and load the version. */
int sluice_version__load(sluice_repo *repo, sluice_version *out, const char *ref);
int sluice_version__load_id(sluice_repo *repo, sluice_version *out, const git_oid *id);
void sluice_version__dispose(sluice_version *v);

/*
 * The BLAKE2b-256 hex of a version's state.json: what signed statements
 * about the version (verdicts, approvals) name as their subject.
 */
int sluice_version__state_digest(sluice_repo *repo, const sluice_version *v, char out[65]);

/*
 * Every component file of a state, in checkout order: base files, each
 * adapter's files, memory notes, replay batches. Calls fn with the file's
 * state entry; stops at the first error fn returns.
 */
int sluice_version__each_file(json_t *state, int (*fn)(void *data, json_t *file), void *data);

/*
 * Check a state.json's shape: the fields and types docs/format.md gives,
 * every path safe (no escape from a checkout directory), paths unique.
 * what names the version in messages.
 */
int sluice_version__check_state(sluice_ctx *ctx, json_t *state, const char *what);

/* The B2SUMS text ("<hex>  <path>\n", sorted by path) a state implies. */
int sluice_version__b2sums(sluice_ctx *ctx, json_t *state, sluice_buf *out);

/* The tree path of a component file: "files/" + path. */
#define SLUICE_TREE_FILES "files/"

#endif
