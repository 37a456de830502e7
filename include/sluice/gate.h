/*
 * sluice/gate.h - the regression, safety-alignment and poisoning gates
 * (docs/gates.md).
 *
 * sluice_gate_run compares a candidate version with a channel's current
 * head (its baseline) and the channel's anchor, on every pinned suite of
 * the types each gate reads, with the built-in evaluator. Each gate says
 * pass, fail or inconclusive with every figure, its interval and its
 * limit. The verdict is a signed in-toto statement (DSSE envelope,
 * gate-runner key) bound to the candidate, the baseline, the channel, the
 * configuration's digest, the suites' digests and the backend identity,
 * journaled as a "gate" entry; promotion requires passing verdicts of the
 * target against the channel's current head for every required gate.
 */
#ifndef SLUICE_GATE_H
#define SLUICE_GATE_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
	const char *const *gates; /* gates to run; NULL/0: the configuration's required ones */
	size_t ngates;
	const char *key; /* gate-runner key that signs the verdict; NULL: not journaled */
	/*
	 * "builtin" (or NULL) or "http": the evaluator backend
	 * (docs/evaluation-http.md). Its identity is the verdict's "backend".
	 */
	const char *backend;
} sluice_gate_opts;

/*
 * Gate ref for channel. *report: {"candidate","channel","head","baseline",
 * "anchor","config","backend","suites":{name: digest},"gates":[{"gate",
 * "result","checks":[...]}],"result","entry"?,"statement"?}. The call
 * succeeds (0) whatever the verdict; "result" is the worst gate's.
 * SLUICE_EDENIED when key lacks the gate-runner role, SLUICE_ECONFLICT when
 * the channel's head moved while gating (gate again), SLUICE_EINVALID for
 * a state the evaluator cannot run or an unknown gate.
 */
int sluice_gate_run(sluice_repo *repo, const char *ref, const char *channel,
                    const sluice_gate_opts *opts, char **report);

/*
 * The channel's forgetting matrix and backward transfer: each promoted
 * version's scores on each pinned suite, from the verdicts journaled for
 * it. *report: {"channel","suites":[names],"rows":[{"version","entry",
 * "scores":{suite: value}}],"backward_transfer": x|null}.
 */
int sluice_gate_history(sluice_repo *repo, const char *channel, char **report);

/*
 * The weight statistics of a PEFT adapter directory against ref's base
 * (gates/lora_stats.h): *report is {"adapter": name, "modules": [...],
 * "triggers": [...], "reference_items": [{"adapter","module","top_sv",
 * "top_share","frobenius"}]}. The reference items are the lines of a
 * "lora_reference" suite: pinning clean adapters' figures that way gives
 * the poisoning gate a reference population while a channel has served
 * few adapters (docs/gates.md).
 */
int sluice_gate_lora_stats(sluice_repo *repo, const char *ref, const char *adapter_dir,
                           const char *name, char **report);

/*
 * How far each token after the pinned harmful probes lowers the refusal
 * margin of ref's state with the PEFT adapter in adapter_dir pushed on
 * top, beyond what it does to ref's state alone (gates/token_drop.h), with
 * the probe count of the default configuration. *report is {"adapter":
 * name, "probes": n, "tokens": n, "probes_digest": hex, "lowest": [{token,
 * token_id, drop}] (the five lowest drops), "reference_items": [{"adapter",
 * "probes", "drop"}]}: the one line of a "token_drop_reference" suite, whose
 * pinned clean adapters give the poisoning gate's token_margin_drop its
 * envelope (docs/gates.md). Always on the builtin backend. SLUICE_EINVALID
 * when no refusal suite with a usable probe is pinned.
 */
int sluice_gate_token_drops(sluice_repo *repo, const char *ref, const char *adapter_dir,
                            const char *name, char **report);

/*
 * The same for each string of the pinned probe_strings suites put after
 * the probes ("prompt string", tokenized together). *report is {"adapter":
 * name, "probes": n, "strings": n, "probes_digest": hex, "lowest":
 * [{string, drop}], "reference_items": [{"adapter", "probes", "drop"}]}:
 * the one line of a "string_drop_reference" suite, string_margin_drop's
 * envelope, one drop per string in suite order. SLUICE_EINVALID when no
 * usable refusal probe or no probe_strings suite is pinned.
 */
int sluice_gate_string_drops(sluice_repo *repo, const char *ref, const char *adapter_dir,
                             const char *name, char **report);

/*
 * The rise of the trigger scan's divergence that each pinned trigger of
 * the trigger suites causes, before, after and inside each of their
 * prompts, of ref's state with the PEFT adapter in adapter_dir pushed on
 * top against ref's state alone (docs/gates.md, trigger_scan). *report is
 * {"adapter": name, "scan_digest": hex, "prompts": n, "triggers": [...],
 * "largest": [{trigger, position, prompt, rise}] (the five largest),
 * "reference_items": [{"adapter", "scan", "rise"}]}: the one line of a
 * "trigger_rise_reference" suite, whose pinned clean adapters tell the
 * scan which flips of a pinned trigger clean adapters make too. Always
 * on the builtin backend. SLUICE_EINVALID when no trigger suite is pinned.
 */
int sluice_gate_trigger_rises(sluice_repo *repo, const char *ref, const char *adapter_dir,
                              const char *name, char **report);

/*
 * The same rise for every vocabulary token's text, as the trigger scan
 * inserts a token nominated from an adapter's weights, before each
 * trigger-suite prompt and after its first word. *report is {"adapter":
 * name, "scan_digest": hex, "prompts": n, "strings": n (the distinct
 * token strings tried), "floor": nats, "largest": [...],
 * "reference_items": [{"adapter", "scan", "rise"}]} with "rise" only the
 * cells of at least "floor" nats, each [string, position (0 before the
 * prompt, 2 after its first word), prompt index, rise]: the one line of a
 * "token_rise_reference" suite, whose pinned clean adapters tell the scan
 * which flips of a nominated token clean adapters make too. Always on the
 * builtin backend. SLUICE_EINVALID when no trigger suite with prompts is
 * pinned.
 */
int sluice_gate_token_rises(sluice_repo *repo, const char *ref, const char *adapter_dir,
                            const char *name, char **report);

#ifdef __cplusplus
}
#endif
#endif
