/*
 * sluice/policy.h - policies (docs/policies.md) and approvals.
 *
 * A policy is YAML saying, per channel, which gates a promotion needs and
 * under which thresholds, which suites (by digest) the verdicts must have
 * used, the drift budget, how many approvals of which roles, who may
 * accept an inconclusive verdict, how long approvals and verdicts stay
 * valid, and who may roll back. Its exact bytes are journaled; it takes
 * effect once a threshold of root keys signed it. Every promotion records
 * the digest of the policy it was checked against.
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Journal the policy in file path as the next version, proposed by root
 * key signer (NULL: the first available). It is parsed first: an error
 * names the line, the column and the rule, and nothing is journaled. It
 * takes effect when the root threshold of root keys signed it (at once
 * with a threshold of 1; else sluice_root_sign).
 * *report: {"change","version","digest","applied","root_signatures"}.
 */
int sluice_policy_set(sluice_repo *repo, const char *path, const char *signer, char **report);

/*
 * Policy version `version` (0: the one in effect): *text (may be NULL)
 * receives its exact bytes, *report (may be NULL) {"version","latest",
 * "digest","in_effect","text"}.
 */
int sluice_policy_show(sluice_repo *repo, unsigned version, char **text, char **report);

/*
 * What promoting ref to channel would meet and what would block it, rule
 * by rule, without changing anything: {"channel","candidate","head",
 * "policy","allowed": bool,"checks":[{"rule","ok","detail"}]}.
 */
int sluice_policy_check(sluice_repo *repo, const char *ref, const char *channel, char **report);

/*
 * Approve promoting ref to channel with key: a signed statement (DSSE,
 * in-toto, predicate urn:sluice:predicate:approval:v1) bound to the
 * candidate, the channel, its current head, the channel's last move and
 * the policy, journaled as an "approve" entry. accept[] names gates whose
 * inconclusive verdicts this key accepts. With out_path, the envelope is
 * written there instead of journaled (for an approver key kept off this
 * host; sluice_approve_submit journals it later).
 * Refused (and the refusal journaled, naming the rule) for a key outside
 * the policy's roles, or the proposer of the version when the policy does
 * not count the proposer.
 */
int sluice_approve(sluice_repo *repo, const char *ref, const char *channel, const char *key,
                   const char *const *accept, size_t naccept, const char *reason,
                   const char *out_path, char **report);

/*
 * Journal an approval envelope signed elsewhere, with key (any registered
 * key) signing the entry. The envelope's signature must be by a registered
 * key; its statement must be bound to the channel's current head, last
 * move and policy (an old approval replayed is refused) and not be
 * expired or dated in the future.
 */
int sluice_approve_submit(sluice_repo *repo, const char *envelope_path, const char *key,
                          char **report);

/*
 * Co-sign version REF as proposer key: an in-toto statement (predicate
 * urn:sluice:predicate:cosign:v1, {"version", "time"}, subject the
 * version's state digest) in a DSSE envelope, journaled ("cosign" entry)
 * and kept in trust.json's "cosigned". Under a proposer threshold of N a
 * version is promotable once N distinct proposer keys signed it: its
 * proposal's signature and co-signatures. The proposer's own co-signature
 * is refused (rule cosign.proposer: its signature already counts), as is a
 * key without the proposer role (rule role); both are journaled. A key
 * co-signs a version once (SLUICE_EEXISTS). *report: {"version","entry",
 * "statement","signatures":{"have","need"}}.
 */
int sluice_cosign(sluice_repo *repo, const char *ref, const char *key, char **report);

#ifdef __cplusplus
}
#endif
#endif
