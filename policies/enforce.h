/*
 * policies/enforce.h - what a promotion must meet under the policy in
 * effect (or, before any policy, under init's gate configuration), shared
 * by the channel moves (core/channel.c), sluice policy check and approvals.
 */
#ifndef SLUICE_POLICIES_ENFORCE_H
#define SLUICE_POLICIES_ENFORCE_H

#include "repo.h"

/*
 * The rules for channel at st (new reference), in the resolved shape of
 * policies/policy.h, and the policy's digest ("" before any policy: then
 * the rules are init's required gates with no approvals, pins or expiry).
 */
int sluice_policy__rules(sluice_repo *repo, const sluice_jstate *st, const char *channel,
                         json_t **out, char digest[65]);

/*
 * Evaluate moving channel (its entry c in st's channels) from head ("" for
 * none) to `to`: appends {"rule","ok","detail"} to checks for every rule.
 * used receives {"verdicts": {gate: statement}, "approvals": [fp...],
 * "policy": digest} for the move's record. Returns 0 or an error that is
 * not a rule's (a rule not met is a check with ok false).
 */
int sluice_policy__evaluate(sluice_repo *repo, const sluice_jstate *st, json_t *c,
                            const char *channel, const char *to, const char *head, json_t *checks,
                            json_t *used);

/* Approvals against another head are void once the head moves, like verdicts. */
void sluice_policy__prune(json_t *c);

#endif
