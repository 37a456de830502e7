/*
 * sluice/audit_attest.h - attestations of a version as DSSE envelopes
 * holding in-toto Statement v1 (docs/audit-attest.md).
 */
#ifndef SLUICE_AUDIT_ATTEST_H
#define SLUICE_AUDIT_ATTEST_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Write ref's attestations into dir (created if missing; existing files of
 * the same names are replaced):
 *   provenance.intoto.json   SLSA provenance v1 for the version, signed now
 *                            by key (any registered key in good standing;
 *                            the envelope's keyid is its fingerprint). Its
 *                            subjects are every file of the version with
 *                            sha256 and blake2b256 of the file's exact bytes.
 *   verdict-C-E.intoto.json  each gate verdict the journal holds for ref
 *                            (channel C, journal entry E), exactly as the
 *                            gate runner signed it; each is checked against
 *                            the runner's registered key first.
 * *report: {"version","directory","key","files":[{"file","kind":
 * "provenance"|"verdict","predicateType","keyid","channel"?,"entry"?,
 * "sha256"}],"subjects":N}; "sha256" is of the written file's bytes.
 * SLUICE_EDENIED when key is not registered, revoked or expired;
 * SLUICE_ECORRUPT when a stored file or journaled verdict fails its check.
 */
int sluice_attest(sluice_repo *repo, const char *ref, const char *key, const char *dir,
                  char **report);

#ifdef __cplusplus
}
#endif
#endif
