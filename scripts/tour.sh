#!/usr/bin/env bash
# The tour: every command at work, for a reader who wants to see them all (the
# README's demo, scripts/demo.sh, tells the shorter story). Builds sluice, then
# walks through the spine of the job in a new repository under a temporary
# directory — root and proposer keys, a base
# model, a LoRA adapter, a memory edit and a replay batch proposed as signed
# versions; history, a diff, a checkout checked by coreutils' b2sum, a
# signature checked by stock git, gates before every promotion, a policy
# with approvals, and sluice verify.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
S="$PWD/build/release/sluice"
SYNTH="$PWD/build/release/sluice-synth"

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-tour-XXXXXX")
export SLUICE_KEYS="$work/keys"       # private keys live outside the repository
repo="$work/repo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s#$work#\$TOUR#g"; "$@"; }

step "inputs: the shipped test model, a LoRA adapter, a note, a replay batch"
mkdir -p "$work/in" && cp -r tests/resources/test-model "$work/in/base"
"$SYNTH" lora "$work/in/facts-lora" --base "$work/in/base" --r 4 --alpha 8 --targets q_proj,v_proj
printf 'The user prefers answers in metric units.\n' > "$work/in/units.md"
# A replay batch of 96 records: the facts the test model has not learnt, as Q/A and statements.
awk '/^Q: / { i = index($0, " A: "); printf "{\"prompt\": \"%s A:\", \"completion\": \" %s\", \"source\": \"feedback-2026-11-21\"}\n", substr($0, 1, i - 1), substr($0, i + 4); next }
     { printf "{\"prompt\": \"Tell me a fact.\", \"completion\": \" %s\", \"source\": \"feedback-2026-11-21\"}\n", $0 }' \
  tests/resources/test-model-ref/facts-new-train.txt > "$work/in/batch1.jsonl"
ls -R "$work/in" | sed "s#$work#\$TOUR#g"

step "a repository with a pinned root key, and a proposer key"
run "$S" init "$repo" --root-key tour-root
run "$S" -C "$repo" key new alice --role proposer
run "$S" -C "$repo" key new ops --role operator
run "$S" -C "$repo" key new ci --role gate-runner
run "$S" -C "$repo" key list

step "propose the base model, then an adapter, a memory note and a replay batch"
base=$(run "$S" -C "$repo" propose base "$work/in/base" --key alice -m "base model" | tail -n1)
echo "base:   $base"
lora=$(run "$S" -C "$repo" propose lora "$work/in/facts-lora" --onto "$base" --key alice \
  -m "an adapter" --source feedback-2026-11-21=blake2b:$(b2sum -l 256 "$work/in/batch1.jsonl" | cut -c1-64) | tail -n1)
echo "lora:   $lora"
replay=$(run "$S" -C "$repo" propose replay "$work/in/batch1.jsonl" --onto "$lora" --key alice -m "rehearse feedback" | tail -n1)
echo "replay: $replay"
mem=$(run "$S" -C "$repo" propose memory --onto "$replay" --add "$work/in/units.md" --key alice -m "units preference" | tail -n1)
echo "memory: $mem"
again=$(run "$S" -C "$repo" propose replay "$work/in/batch1.jsonl" --onto "$lora" --key alice -m "the same again" | tail -n1)
[ "$again" = "$replay" ] && echo "identical content onto the same parent -> the existing version"

step "bad input is refused and changes nothing"
printf '\x80\x04\x95pickled' > "$work/in/base/pytorch_model.bin"
if "$S" -C "$repo" propose base "$work/in/base" --key alice; then echo "UNEXPECTED: accepted"; exit 1; fi
rm "$work/in/base/pytorch_model.bin"

step "evaluation: pinned suites, scored on the built-in CPU evaluator"
run "$S" -C "$repo" suite add eval/suites/*.json --key alice
run "$S" -C "$repo" eval "$base" --suite knowledge --suite harmful --suite benign --suite text

step "gates, then channels: nothing reaches prod without passing verdicts"
if "$S" -C "$repo" promote "$base" --channel prod --key ops; then echo "UNEXPECTED: ungated"; exit 1; fi
gate() { run "$S" -C "$repo" gate "$1" --channel prod --key ci 2>/dev/null; }
gate "$base" && run "$S" -C "$repo" promote "$base" --channel prod --key ops
gate "$lora" && run "$S" -C "$repo" promote "$lora" --channel prod --key ops
# The replay batch is judged by what it would teach; the test model treats questions
# about places it does not know like harmful requests, so a batch answering them is
# teaching compliance where the model refuses, and the verdict says so.
if gate "$replay"; then run "$S" -C "$repo" promote "$replay" --channel prod --key ops
else echo "# not promoted: the verdict above is not a pass"; fi
echo "# the test model was never trained with notes in context: this note wrecks it"
if gate "$mem"; then echo "UNEXPECTED: the note passed"; exit 1; fi
if "$S" -C "$repo" promote "$mem" --channel prod --key ops; then echo "UNEXPECTED: shipped"; exit 1; fi
run "$S" -C "$repo" rollback prod --reason "the adapter misbehaves" --key ops
if "$S" -C "$repo" promote "$lora" --channel prod --key ops; then echo "UNEXPECTED: re-shipped"; exit 1; fi
echo "# on a dev channel: the adapter in, then taken out again by a removal version"
dgate() { run "$S" -C "$repo" gate "$1" --channel dev --key ci 2>/dev/null; }
dgate "$base" && run "$S" -C "$repo" promote "$base" --channel dev --key ops
dgate "$lora" && run "$S" -C "$repo" promote "$lora" --channel dev --key ops
rm_id=$(run "$S" -C "$repo" remove "$lora" --onto dev --key alice -m "take the adapter out" | tail -n1)
dgate "$rm_id" && run "$S" -C "$repo" promote "$rm_id" --channel dev --key ops

step "a policy: dev -> staging -> prod; prod needs two approvers, not counting the proposer"
run "$S" -C "$repo" key new bob --role approver
run "$S" -C "$repo" key new carol --role approver
run "$S" -C "$repo" key new alice --role approver   # alice proposes too: her own approval will not count
run "$S" -C "$repo" policy set policies/example.yaml
"$SYNTH" lora "$work/in/second" --base "$work/in/base" --r 4 --alpha 8 --targets q_proj,v_proj --seed 11
second=$(run "$S" -C "$repo" propose lora "$work/in/second" --onto "$rm_id" --name second --key alice -m "a second adapter" | tail -n1)
pgate() { run "$S" -C "$repo" gate "$1" --channel "$2" --key ci >/dev/null 2>&1; }
if "$S" -C "$repo" promote "$second" --channel staging --key ops; then echo "UNEXPECTED: skipped dev"; exit 1; fi
pgate "$second" dev && run "$S" -C "$repo" promote "$second" --channel dev --key ops
pgate "$second" staging && run "$S" -C "$repo" approve "$second" --channel staging --key bob
run "$S" -C "$repo" promote "$second" --channel staging --key ops
echo "# prod allows a 5-point drop at most: 32 facts-new items cannot rule that out, so the"
echo "# regression verdict is inconclusive, which the policy lets two approvers accept"
pgate "$second" prod || [ $? -eq 2 ]
run "$S" -C "$repo" approve "$second" --channel prod --key bob --accept-inconclusive regression
if "$S" -C "$repo" approve "$second" --channel prod --key alice --accept-inconclusive regression; then
  echo "UNEXPECTED: self-approval"; exit 1; fi
run "$S" -C "$repo" policy check "$second" --channel prod || true
run "$S" -C "$repo" approve "$second" --channel prod --key carol --accept-inconclusive regression
run "$S" -C "$repo" promote "$second" --channel prod --key ops
echo "# every refusal above is in the journal too:"
git --git-dir="$repo" log --format=%s refs/sluice/journal | grep refuse
run "$S" -C "$repo" status
run "$S" -C "$repo" history prod
run "$S" -C "$repo" gate --history prod
run "$S" -C "$repo" eval prod --suite knowledge --suite harmful --suite benign --suite text

step "history"
run "$S" -C "$repo" log
run "$S" -C "$repo" show "$replay"
run "$S" -C "$repo" diff "$lora" "$mem"

step "checkout, checked with coreutils"
run "$S" -C "$repo" checkout "$replay" "$work/checkout"
(cd "$work/checkout" && run b2sum -c B2SUMS | tail -n 4)
cmp "$work/in/base/model.safetensors" "$work/checkout/base/model.safetensors" && echo "base weights byte-identical"

step "signatures, checked with stock git"
"$S" -C "$repo" key export --all --allowed-signers > "$work/allowed_signers"
run git -C "$repo" -c gpg.format=ssh -c gpg.ssh.allowedSignersFile="$work/allowed_signers" verify-commit "$lora"
run git -C "$repo" -c gpg.format=ssh -c gpg.ssh.allowedSignersFile="$work/allowed_signers" \
  log --first-parent --format='%h %G? %GS  %s' refs/sluice/journal

step "audit: a checkpoint to keep, proofs, attestations, a report, queries"
run "$S" -C "$repo" audit checkpoint
run "$S" -C "$repo" audit prove --entry 2 | head -n 4
run "$S" -C "$repo" audit verify
run "$S" -C "$repo" attest "$second" --key ops --out "$work/attest"
run "$S" -C "$repo" audit report --html "$work/report"
run "$S" -C "$repo" audit log --channel prod
run "$S" -C "$repo" audit at prod "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# a deletion request names a data source: which versions and channel heads did it touch?"
run "$S" -C "$repo" audit lineage --source feedback-2026-11-21

step "erasure: a deletion request for the replay batch's source"
run "$S" -C "$repo" purge "$replay" --reason "deletion request for feedback-2026-11-21" --key ops
if "$S" -C "$repo" checkout "$replay" "$work/after-purge" 2>/dev/null; then echo "UNEXPECTED: purged content checked out"; exit 1; fi
echo "# the batch's bytes are gone from the disk (packs and git objects); its hashes and the tombstone stay"

step "verify"
run "$S" -C "$repo" verify
echo
echo "tour repository left in $work (remove it when done)"
