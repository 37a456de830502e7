/*
 * sluice/audit_tlog.h - the journal as a provable log (docs/audit-tlog.md):
 * signed checkpoints, inclusion and consistency proofs, the entries'
 * canonical encodings and a full recomputation.
 *
 * Entries are numbered by their journal seq (1 is init); tree sizes count
 * entries. Reports are JSON strings the caller frees with sluice_free.
 */
#ifndef SLUICE_AUDIT_TLOG_H
#define SLUICE_AUDIT_TLOG_H

#include "sluice/common.h"
#include "sluice/repo.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The newest entry's checkpoint: {"checkpoint": note text, "origin",
 * "size", "root" (base64), "entry" (hex)}; with verifiers, "verifiers": the
 * note verifier key of every registered key ("name+id+base64(0x01||pk)").
 * SLUICE_ENOTFOUND when the newest entry predates checkpoints.
 */
int sluice_audit_checkpoint(sluice_repo *repo, int verifiers, char **report);

/*
 * The inclusion proof of entry (seq, >= 1) in the tree of size (0: the
 * newest): {"entry", "index", "size", "root", "hashes": [base64...]}.
 * SLUICE_EINVALID unless 1 <= entry <= size <= the journal's size.
 */
int sluice_audit_prove_entry(sluice_repo *repo, uint64_t entry, uint64_t size, char **report);

/*
 * The consistency proof from tree size from to size to (0: the newest):
 * {"from", "to", "old_root", "root", "hashes": [base64...]}.
 * SLUICE_EINVALID unless 1 <= from <= to <= the journal's size.
 */
int sluice_audit_prove_consistency(sluice_repo *repo, uint64_t from, uint64_t to, char **report);

/* Receives one canonical encoding (no newline); a negative return stops the export. */
typedef int (*sluice_audit_line_cb)(void *data, const char *line, size_t len);

/*
 * The canonical encodings of entries from..to (0: 1 and the newest), in
 * order, each passed to cb.
 */
int sluice_audit_export(sluice_repo *repo, uint64_t from, uint64_t to, sluice_audit_line_cb cb,
                        void *data);

/* sluice_audit_verify: re-derive every entry, not only those no verify re-derived yet. */
#define SLUICE_AUDIT_VERIFY_FULL 1u

/*
 * Check the journal's tree (docs/audit-tlog.md, "Verification").
 *
 * By default: catch the leaf index up with the journal, recompute the root
 * from its leaves, and re-derive from the journal (canonical encoding ->
 * leaf hash, tlog.json, checkpoint and its signature) every entry after the
 * last one an earlier verify re-derived and matched (recorded in the
 * index), and always the newest; the leaves before that are trusted as
 * far as the index's record of that verify (their root must still be the
 * root it recorded). Without such a record, every entry is re-derived and
 * the index rebuilt from what was read.
 *
 * With SLUICE_AUDIT_VERIFY_FULL: re-derive every entry, over the threads
 * of sluice_ctx_set_threads (default: the online CPUs), and compare the
 * index as it is, without building or catching it up.
 *
 * The report ("mode", "entries", "root", "origin", "checked",
 * "before_tlog", "index", "rederived", "signatures", "seconds",
 * "problems", "problem_count", "ok") lists problems; SLUICE_ECORRUPT
 * (report still set) when there is any. A run with no problem records what
 * it matched in the index, so the next one starts after it.
 */
int sluice_audit_verify(sluice_repo *repo, unsigned flags, char **report);

/* Drop and rebuild sluice/tlog-index: {"size": n}. */
int sluice_audit_reindex(sluice_repo *repo, char **report);

#ifdef __cplusplus
}
#endif

#endif
