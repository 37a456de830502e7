/*
 * audit/entry.h - one journal entry as sluice audit log lists it, shared
 * by the queries (audit/queries.c) and the HTML report (audit/report.c) so
 * that both say the same thing about an entry.
 */
#ifndef SLUICE_AUDIT_ENTRY_H
#define SLUICE_AUDIT_ENTRY_H

#include "repo.h"

/*
 * {"seq","entry","time","action","actor","fingerprint","channel","version",
 * "summary"} of the entry whose commit is id and record rec (new
 * reference into *out). SLUICE_ECORRUPT when rec lacks its time or actor.
 */
int sluice_audit__entry_json(sluice_ctx *ctx, json_t **out, uint64_t seq, const git_oid *id,
                             json_t *rec);

#endif
