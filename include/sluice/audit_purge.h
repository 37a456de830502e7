/*
 * sluice/audit_purge.h - erasure (issue 7): honouring a deletion request
 * for one update's content, and garbage collection of unreachable chunks.
 * docs/audit-purge.md gives what is deleted, what stays and the crash rules.
 */
#ifndef SLUICE_AUDIT_PURGE_H
#define SLUICE_AUDIT_PURGE_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Purge the content version ref added (its files whose BLAKE2b-256 does
 * not occur in its parent's state): journal a "purge" entry signed by key
 * (operator role; otherwise a journaled refusal, SLUICE_EDENIED) holding
 * a DSSE tombstone, then delete the bytes: chunks no kept file uses are
 * cut out of every pack, and the git blobs of purged small files are
 * removed from the object database (loose objects, and git packfiles
 * repacked without them). reason is required. Re-running a purge whose
 * deletion was interrupted journals nothing new and finishes it.
 * *report: {"entry","version","purged":[{path,blake2b,size}],"chunks",
 * "blobs_removed","bytes_freed","already"}.
 */
int sluice_purge(sluice_repo *repo, const char *ref, const char *reason, const char *key,
                 char **report);

/*
 * Garbage collection: every chunk reachable from a version the journal
 * brought in (minus purged files) is kept; the pack records of all others
 * are removed (dry_run: only counted), and loose git blobs of purged
 * files left by an interrupted purge are deleted. *report:
 * {"dry_run","reachable_chunks","packs_rewritten","records_removed",
 * "duplicates_removed","bytes_freed","blobs_removed"}.
 */
int sluice_gc(sluice_repo *repo, int dry_run, char **report);

/*
 * The purges the journal recorded (version: only those of that version,
 * 40 hex digits; NULL: all), oldest first, from the journal index:
 * {"tombstones": [{"seq","entry","time","actor","fingerprint","version",
 * "reason","subject","purged":[{path,blake2b,size}],"chunks" (how many
 * chunk ids the purge removed),"signed" (a DSSE tombstone is attached)}]}.
 * What sluice log and show print for a purged version.
 */
int sluice_audit_tombstones(sluice_repo *repo, const char *version, char **report);

#ifdef __cplusplus
}
#endif

#endif
