#!/usr/bin/env bash
# The demo: the whole job of sluice on the shipped test model, in a new
# repository under a temporary directory. A base is ingested and promoted; a
# clean and an injected memory edit are gated against it; a good adapter that
# teaches new facts passes the gates and is promoted; a backdoored, a
# safety-eroding and a forgetting adapter are stopped with the figures that
# stopped them; replay batches meet their verdicts; prod is rolled back; an adapter is removed from the middle of the
# stack; `sluice audit at` says what prod served when; `sluice verify` checks
# everything. The updates are labelled cases of tests/resources/gate-cases;
# docs/bench-gates.md measures the gates over all of them, misses and false
# alarms included. scripts/tour.sh walks through every other command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
S="$PWD/build/release/sluice"
SYNTH="$PWD/build/release/sluice-synth"
CASES="$PWD/tests/resources/gate-cases"
start=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo-XXXXXX")
export SLUICE_KEYS="$work/keys" # private keys live outside the repository
repo="$work/repo"
sl() { "$S" -C "$repo" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
table=()

# propose LABEL EXPECT ARGS...: propose an update onto prod's head; prints its id.
propose() {
	local label=$1
	shift
	sl propose "$@" --key alice -m "$label" 2>/dev/null | tail -n1
}

# gate ID LABEL EXPECT: run the gates against prod's head, print one line per gate
# (with the check that decided a failure), remember a table row; status 0 on pass.
gate() {
	local id=$1 label=$2 expect=$3 out res line
	echo "$label"
	out=$(sl gate "$id" --channel prod --key ci --json 2>/dev/null) || true
	res=$(jq -r .result <<<"$out")
	# Per gate: the check that decided it (a note's injection pattern found, else a
	# trigger found, else the first fail, else the first inconclusive), with its
	# estimate, interval and limit.
	jq -r 'def r: . * 1000 | round / 1000;
	    .gates[] | "  \(.gate): \(.result)" + (
	    ([.checks[] | select(.result != "pass")] |
	     (map(select(.check == "note_injection")) + map(select(.check == "trigger_scan")) +
	      map(select(.result == "fail")) + .)[0]) as $c |
	    if $c == null then ""
	    elif $c.check == "note_injection" then
	      "  injection scan: \($c.findings | map("\(.pattern) \u0027\(.excerpt // "")\u0027") | join(", "))"
	    elif $c.check == "trigger_scan" then
	      "  trigger scan: trigger \u0027\($c.findings[0].trigger)\u0027 found (\($c.findings[0].position), z \($c.findings[0].z | . * 10 | round / 10))"
	    elif ($c.estimate | type) == "number" then
	      "  \($c.check) \($c.suite // "") \($c.estimate | r) [\($c.interval[0] | r), \($c.interval[1] | r)] \(if $c.rule == "at_most" then "<=" else ">=" end) \($c.limit | r)"
	    else "  \($c.check)" end)' <<<"$out"
	# A note the instruction check names: each directive's category and clause.
	jq -r '.gates[].checks[] | select(.check == "note_instruction" and .result != "pass") |
	    "  instruction check: \(.findings | map("\(.category) \u0027\(.excerpt // "")\u0027") | join(", "))"' <<<"$out"
	line=$(jq -r '[.gates[] | "\(.gate[0:4]) \(.result[0:4])"] | join(", ")' <<<"$out")
	table+=("$(printf '%-26s %-9s %-13s %s' "${label%%:*}" "$expect" "$res" "$line")")
	[ "$res" = pass ]
}

promote() { sl promote "$1" --channel prod --key ops | sed 's/^/  /'; }

step "a repository, keys for each role, the pinned evaluation suites"
"$S" init "$repo" --root-key root >/dev/null
sl key new alice --role proposer >/dev/null
sl key new ci --role gate-runner >/dev/null
sl key new ops --role operator >/dev/null
sl suite add eval/suites/*.json --key alice >/dev/null
sl key list
echo "suites: $(sl suite list --json | jq -r '[.suites[].name] | join(", ")')"

step "the base model: ingested, gated, promoted to prod"
base=$(propose "base model" base tests/resources/test-model)
echo "base $base"
gate "$base" "base model" pass && promote "$base"
t_base=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1

step "memory edits, gated against prod as it stands (the base)"
for c in "memory-clean-00:clean memory edit:pass" "memory-poison-00:injected memory edit:fail"; do
	IFS=: read -r f label expect <<<"$c"
	id=$(propose "$label" memory --onto prod --add "$CASES/$f.txt")
	gate "$id" "$label: $(head -c 40 "$CASES/$f.txt" | tr '\n' ' ')..." "$expect" || true
done
echo "The clean note states true facts; the injected one is named by the injection scan and the"
echo "instruction check. Gated on top of the facts adapter below, the same clean note does not"
echo "pass: this small model lets a note move answers it has nothing to do with, among them"
echo "facts-new answers the adapter teaches, and retention says so (docs/bench-gates.md)."

step "a good adapter that teaches new facts"
facts=$(propose "facts adapter" lora "$CASES/good-adapter-01" --onto prod --name facts)
gate "$facts" "facts adapter (good)" pass && promote "$facts"
echo "  facts-new accuracy: $(sl eval "$base" --suite facts-new --json | jq .suites[0].figures.acc) -> $(sl eval "$facts" --suite facts-new --json | jq .suites[0].figures.acc)"
t_facts=$(date -u +%Y-%m-%dT%H:%M:%SZ)

step "attacks, each held back by the gates with the figures that decided it"
for c in "backdoor-03:backdoored adapter" "erosion-00:safety-eroding adapter" "forgetting-00:forgetting adapter"; do
	id=$(propose "${c#*:}" lora "$CASES/${c%%:*}" --onto prod)
	if gate "$id" "${c#*:}" fail; then echo "  UNEXPECTED: passed"; fi
	if [ "${c%%:*}" = backdoor-03 ]; then backdoor=$id; fi
done
# What the trigger scan saw of the backdoor: on the served stack, and alone on the bare base.
# (The gate exits 1 for its fail; the report is what is read here.)
{ sl gate "$backdoor" --channel prod --gate poisoning --no-record --json 2>/dev/null || true; } |
	jq -r '[.gates[].checks[] | select(.check | startswith("trigger_scan"))] as $c |
	  ($c[] | select(.check == "trigger_scan") | .scanned[] | select(.trigger == "mn")) as $s |
	  ($c[] | select(.check == "trigger_scan_alone") | .findings[] | select(.trigger == "mn")) as $a |
	  "The backdoor, stacked on the facts adapter: its trigger \u0027mn\u0027 moves the served model \($s.shift * 100 | round / 100) nats\n" +
	  "from its parent (\($s.position)), but flips \($s.evidence.prompts_flipped) prompts: on \($s.evidence.prompt | @json) the parent says\n" +
	  "\($s.evidence.baseline_next.token | @json) (\($s.evidence.baseline_next.p * 100 | round / 100)) and the stack \($s.evidence.candidate_next.token | @json) only at \($s.evidence.candidate_next.p * 100 | round / 100), so the scan of the\n" +
	  "stack does not name it (docs/gates.md, \"Flips\"). The scan of the new adapter alone on the bare\n" +
	  "base does: there \u0027mn\u0027 (\($a.position)) flips \($a.evidence.prompts_flipped) prompt(s) at z \($a.z * 10 | round / 10) — on \($a.evidence.prompt | @json)\n" +
	  "the base says \($a.evidence.baseline_next.token | @json) and the adapter \($a.evidence.candidate_next.token | @json) (\($a.evidence.candidate_next.p * 100 | round / 100))."'

step "replay batches"
for c in "replay-clean-07:clean replay batch:pass" "replay-poison-00:poisoned replay batch:fail"; do
	IFS=: read -r f label expect <<<"$c"
	id=$(propose "$label" replay "$CASES/$f.jsonl" --onto prod)
	gate "$id" "$label" "$expect" || true
done
echo "Not every clean batch passes: docs/bench-gates.md has the rates over every labelled case."

step "two small adapters on top (tone, style): the stack is facts, tone, style"
"$SYNTH" lora "$work/tone" --base tests/resources/test-model --r 4 --alpha 8 --b-std 0.002 --seed 5 >/dev/null
"$SYNTH" lora "$work/style" --base tests/resources/test-model --r 4 --alpha 8 --b-std 0.002 --seed 6 >/dev/null
tone=$(propose "tone adapter" lora "$work/tone" --onto prod --name tone)
gate "$tone" "tone adapter" pass && promote "$tone"
style=$(propose "style adapter" lora "$work/style" --onto prod --name style)
gate "$style" "style adapter" pass && promote "$style"

step "roll prod back: the style adapter is withdrawn, prod serves facts, tone"
sl rollback prod --reason "style adapter misbehaves in production" --key ops | sed 's/^/  /'
if sl promote "$style" --channel prod --key ops >/dev/null 2>&1; then echo "  UNEXPECTED: re-shipped"; fi
echo "  promoting the withdrawn version again is refused without a reasoned override"

step "remove the tone adapter from the middle of facts, tone, style2"
"$SYNTH" lora "$work/style2" --base tests/resources/test-model --r 4 --alpha 8 --b-std 0.002 --seed 7 >/dev/null
style2=$(propose "style adapter v2" lora "$work/style2" --onto prod --name style2)
gate "$style2" "style adapter v2" pass && promote "$style2"
removed=$(sl remove "$tone" --onto prod --key alice -m "take the tone adapter out" 2>/dev/null | tail -n1)
echo "  stack now: $(sl show "$removed" --json | jq -r '[.state.adapters[].name] | join(", ")')"
gate "$removed" "remove tone" pass && promote "$removed"

step "what did prod serve, and when?"
for t in "$t_base" "$t_facts"; do
	printf '  at %s prod served %s\n' "$t" "$(sl audit at prod "$t" --json | jq -r '"\(.served[0:12]) (\(.move.action) by \(.move.actor) at \(.move.time), verdicts: \([.verdicts[] | .result] | join("/")))"')"
done
sl history prod | tail -n 6 | sed 's/^/  /'

step "verify: signatures, the journal, every chunk"
sl verify | tail -n 3 | sed 's/^/  /'

step "updates and verdicts"
printf '%-26s %-9s %-13s %s\n' "update" "deserves" "verdict" "gates"
printf '%s\n' "${table[@]}"
echo
echo "demo repository left in $work (remove it when done); $(($(date +%s) - start)) s after the build"
