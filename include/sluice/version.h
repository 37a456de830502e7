/*
 * sluice/version.h - proposals (updates) and the versions they create.
 *
 * A version is a signed git commit whose tree describes a full state: the
 * base model's files, an ordered stack of LoRA adapters, memory notes and
 * the replay buffer (docs/format.md gives the tree's layout). A proposal is
 * a version whose parent is the version it changes.
 *
 * REF arguments name a version by its full or abbreviated commit id.
 */
#ifndef SLUICE_VERSION_H
#define SLUICE_VERSION_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options common to every propose. */
typedef struct {
	const char *onto;           /* parent version; NULL only for a first base */
	const char *message;        /* summary; NULL for a default */
	const char *key;            /* signing key name (proposer role); required */
	const char *target_suite;   /* what the update is meant to teach, or NULL */
	const char *const *sources; /* "NAME=DIGEST" provenance entries */
	size_t nsources;
	const char *method;        /* training method, or NULL */
	const char *code_revision; /* code revision that produced it, or NULL */
} sluice_propose_opts;

typedef enum {
	SLUICE_MEMORY_ADD = 1,
	SLUICE_MEMORY_REPLACE = 2,
	SLUICE_MEMORY_REMOVE = 3
} sluice_memory_op;

typedef struct {
	sluice_memory_op op;
	const char *name; /* note name (ADD: NULL = the file's base name) */
	const char *file; /* ADD, REPLACE: the note's text file */
} sluice_memory_edit;

/*
 * Each propose writes the new version id (40 hex + NUL) to id_out and a
 * report to *report: {"version","parent","kind","existing": bool, ...}.
 * Proposing identical content onto the same parent returns the existing
 * version ("existing": true) and journals nothing.
 * Bad input returns SLUICE_EINVALID and changes nothing.
 */
int sluice_propose_base(sluice_repo *repo, char id_out[41], const sluice_propose_opts *opts,
                        const char *dir, char **report);

/* name: the adapter's name in the stack (NULL: the directory's base name). */
int sluice_propose_lora(sluice_repo *repo, char id_out[41], const sluice_propose_opts *opts,
                        const char *dir, const char *name, double scale, char **report);

int sluice_propose_memory(sluice_repo *repo, char id_out[41], const sluice_propose_opts *opts,
                          const sluice_memory_edit *edits, size_t nedits, char **report);

int sluice_propose_replay(sluice_repo *repo, char id_out[41], const sluice_propose_opts *opts,
                          const char *file, char **report);

/*
 * Propose channel's current state minus one earlier update (`update`, a
 * version in the channel head's history): an adapter out of the stack, a
 * memory edit undone, a replay batch out of the buffer. opts->onto is
 * ignored: the parent is the channel's head. The report lists the
 * dependants, the versions built on top of the removed update (removing an
 * adapter does not unlearn what later adapters learned from it). The new
 * version goes through promotion like any other.
 */
int sluice_propose_remove(sluice_repo *repo, char id_out[41], const sluice_propose_opts *opts,
                          const char *update, const char *channel, char **report);

/*
 * History. ref NULL: every version in the journal, newest first; else the
 * ancestry of ref. *report: {"versions":[{"version","parent","kind",
 * "summary","proposer","time"}]}.
 */
int sluice_version_log(sluice_repo *repo, const char *ref, char **report);

/* One version: metadata, provenance and state, as JSON. */
int sluice_version_show(sluice_repo *repo, const char *ref, char **report);

/*
 * What changed from a to b: {"changes":[{"component","path","change",
 * "patch"?}]}; memory notes and small text files carry a unified diff.
 */
int sluice_version_diff(sluice_repo *repo, const char *a, const char *b, char **report);

/*
 * Materialise ref's full state into dir (created; must be empty or
 * absent): base/, adapters/NAME/ (PEFT directories), memory/, replay/ and
 * B2SUMS. Every chunk and file digest is verified as it is written; a path
 * that would escape dir is refused.
 */
int sluice_version_checkout(sluice_repo *repo, const char *ref, const char *dir, char **report);

#ifdef __cplusplus
}
#endif
#endif
