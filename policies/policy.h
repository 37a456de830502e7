/*
 * policies/policy.h - promotion policies: per channel, what a promotion
 * needs (gates, thresholds, pinned suites, approvals, who may accept an
 * inconclusive verdict, how long approvals and verdicts stay valid, who may
 * roll back). docs/policies.md is the reference of the YAML format.
 *
 * The parser turns YAML bytes into one canonical, fully resolved JSON
 * object, so storing, signing and enforcing a policy never needs YAML:
 *
 *   {"version": 1,
 *    "default":  RULES,
 *    "channels": {NAME: RULES, ...}}
 *
 *   RULES = {"from": [channel, ...],
 *            "gates": {"required": [gate, ...], "thresholds": {...}},
 *            "drift_budget": {"max_drop": number | null},
 *            "suites": {name: "64 lowercase hex", ...},
 *            "approvals": {"roles": [role, ...], "count": int,
 *                          "proposer_counts": bool},
 *            "inconclusive": {"roles": [role, ...], "count": int},
 *            "expiry": {"approvals": seconds | null, "verdicts": seconds | null},
 *            "emergency": {"rollback": [role, ...]}}
 *
 * Every key is present in every RULES; null expiry means "never", null
 * max_drop means "the gate configuration's own anchor_max_drop".
 * thresholds holds the overrides exactly as written (possibly {}).
 */
#ifndef SLUICE_POLICIES_POLICY_H
#define SLUICE_POLICIES_POLICY_H

#include "sluice/common.h"

#include <jansson.h>
#include <stddef.h>

/* The largest policy read, and the deepest nesting of maps and lists. */
#define SLUICE_POLICY_MAX_BYTES ((size_t)1 << 20)
#define SLUICE_POLICY_MAX_DEPTH 16

/*
 * Parse and validate policy YAML (data[0..len), need not be NUL-terminated).
 * *out receives the canonical, fully resolved policy (new reference).
 * name is used in messages: "policy.yaml:12:5: channels.prod.approvals.count:
 * ..." (line and column 1-based). Returns 0, SLUICE_EINVALID for anything
 * refused (*out untouched) or SLUICE_ENOMEM; nothing allocated is left on
 * failure. Thread rules: those of ctx.
 */
int sluice_policy__parse(sluice_ctx *ctx, json_t **out, const void *data, size_t len,
                         const char *name);

/*
 * The effective rules of channel: the policy's entry for it, or "default"
 * for a channel the policy does not name. Borrowed from policy (valid while
 * policy is). NULL if policy is not shaped as sluice_policy__parse makes it.
 */
json_t *sluice_policy__channel(json_t *policy, const char *channel);

/*
 * The gate configuration for channel (new reference in *out):
 * sluice_gates__default_config() with the channel's gates.required as
 * required_gates, its gates.thresholds merged over it (as
 * sluice_gates__merge_config does) and drift_budget.max_drop, when set, as
 * regression.anchor_max_drop. Returns 0, SLUICE_EINVALID if policy is not a
 * parsed policy (message names the channel), SLUICE_ENOMEM.
 */
int sluice_policy__gate_config(sluice_ctx *ctx, json_t **out, json_t *policy, const char *channel);

#endif
