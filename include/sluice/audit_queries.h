/*
 * sluice/audit_queries.h - questions an auditor asks of the journal:
 * which entries match some filters (sluice audit log), what a channel
 * served at an instant (sluice audit at), and every version and channel
 * head a data source influenced (sluice audit lineage).
 *
 * Each answer comes from the journal's derived index (brought up to date
 * with the journal first), so a filter is a range scan of one index, not
 * a walk of the journal; docs/audit-queries.md says which index serves
 * which filter and gives the reports' shapes. Reports are malloc'd JSON
 * documents in *report (free with sluice_free).
 */
#ifndef SLUICE_AUDIT_QUERIES_H
#define SLUICE_AUDIT_QUERIES_H

#include "sluice/repo.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Filters of sluice_audit_log; NULL means "any". An entry must match all
 * the filters given.
 *   since, until  "YYYY-MM-DDTHH:MM:SSZ" or a date "YYYY-MM-DD" (since: the
 *                 day's start; until: its end); both inclusive
 *   actor         a key name, or a fingerprint "SHA256:..."
 *   action        a journal action: propose, promote, gate, refuse, ...
 *   channel       a channel name
 *   version       a version id (or an unambiguous prefix of 7+ digits):
 *                 entries naming it (proposal, moves, gates, approvals)
 *   kind          the update kind a proposal brings: base, lora, memory,
 *                 replay, remove ("removal" is taken for "remove")
 *   source        NAME or NAME=DIGEST: proposals whose declared provenance
 *                 names the data source
 *   gate          regression, safety or poisoning: gate entries giving it
 *                 a result
 *   outcome       pass, fail, inconclusive (gate entries; with gate, that
 *                 gate's result), refused (refusals), moved (promote,
 *                 rollback, reset)
 *   limit         at most this many entries, the first in journal order
 *                 (0: all)
 */
typedef struct {
	const char *since, *until, *actor, *action, *channel, *version, *kind, *source, *gate,
	        *outcome;
	size_t limit;
} sluice_audit_filter;

/*
 * The matching entries, oldest first: a JSON array of {seq, entry, time,
 * action, actor, fingerprint, channel, version, summary} (channel and
 * version null when the entry names none). index (may be NULL; 16 bytes)
 * receives the name of the index the query scanned ("by_actor", ...,
 * "entries" with no filter). SLUICE_EINVALID naming the flag (--since,
 * --actor, ...) for a value that is not understood.
 */
int sluice_audit_log(sluice_repo *repo, const sluice_audit_filter *filter, char index[16],
                     char **report);

/*
 * What channel served at time (as for since above; a date is its start):
 * the last move of the channel at or before it, with the approvals (key,
 * name, time, statement), the verdicts (gate -> statement and result) and
 * the policy digest it recorded. {"served": null, "first_move": ...} when
 * the channel had not yet held a version then; SLUICE_ENOTFOUND when it
 * never has.
 */
int sluice_audit_at(sluice_repo *repo, const char *channel, const char *time, char **report);

/*
 * Every version a data source (NAME or NAME=DIGEST) influenced: those whose
 * own provenance names it, and every descendant still holding a component
 * one of them brought in (a removal, or a new base replacing base files,
 * ends a line); and every interval a channel's head was one of them. The
 * answer to a deletion request: {"source", "versions": [...], "heads": [...]}.
 */
int sluice_audit_lineage(sluice_repo *repo, const char *source, char **report);

#ifdef __cplusplus
}
#endif

#endif
