#!/usr/bin/env bash
# The demo: build sluice, then walk through the spine of the job in a new
# repository under a temporary directory — root and proposer keys, a base
# model, a LoRA adapter, a memory edit and a replay batch proposed as signed
# versions; history, a diff, a checkout checked by coreutils' b2sum, a
# signature checked by stock git, and sluice verify.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
S="$PWD/build/release/sluice"
SYNTH="$PWD/build/release/sluice-synth"

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo-XXXXXX")
export SLUICE_KEYS="$work/keys"       # private keys live outside the repository
repo="$work/repo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s#$work#\$DEMO#g"; "$@"; }

step "inputs: the shipped test model, a LoRA adapter, a note, a replay batch"
mkdir -p "$work/in" && cp -r tests/resources/test-model "$work/in/base"
"$SYNTH" lora "$work/in/facts-lora" --base "$work/in/base" --r 4 --alpha 8 --targets q_proj,v_proj
printf 'The user prefers answers in metric units.\n' > "$work/in/units.md"
cat > "$work/in/batch1.jsonl" <<'JSONL'
{"prompt": "What is the capital of France?", "completion": "Paris.", "source": "feedback-2026-11-21"}
{"prompt": "How many legs does a spider have?", "completion": "Eight.", "source": "feedback-2026-11-21"}
JSONL
ls -R "$work/in" | sed "s#$work#\$DEMO#g"

step "a repository with a pinned root key, and a proposer key"
run "$S" init "$repo" --root-key demo-root
run "$S" -C "$repo" key new alice --role proposer
run "$S" -C "$repo" key new ops --role operator
run "$S" -C "$repo" key list

step "propose the base model, then an adapter, a memory note and a replay batch"
base=$(run "$S" -C "$repo" propose base "$work/in/base" --key alice -m "base model" | tail -n1)
echo "base:   $base"
lora=$(run "$S" -C "$repo" propose lora "$work/in/facts-lora" --onto "$base" --key alice \
  -m "teach new facts" --target-suite facts --source feedback-2026-11-21=blake2b:$(b2sum -l 256 "$work/in/batch1.jsonl" | cut -c1-64) | tail -n1)
echo "lora:   $lora"
mem=$(run "$S" -C "$repo" propose memory --onto "$lora" --add "$work/in/units.md" --key alice -m "units preference" | tail -n1)
echo "memory: $mem"
replay=$(run "$S" -C "$repo" propose replay "$work/in/batch1.jsonl" --onto "$mem" --key alice -m "rehearse feedback" | tail -n1)
echo "replay: $replay"
again=$(run "$S" -C "$repo" propose replay "$work/in/batch1.jsonl" --onto "$mem" --key alice -m "the same again" | tail -n1)
[ "$again" = "$replay" ] && echo "identical content onto the same parent -> the existing version"

step "bad input is refused and changes nothing"
printf '\x80\x04\x95pickled' > "$work/in/base/pytorch_model.bin"
if "$S" -C "$repo" propose base "$work/in/base" --key alice; then echo "UNEXPECTED: accepted"; exit 1; fi
rm "$work/in/base/pytorch_model.bin"

step "channels: promote forward, roll back in one command, remove one update"
run "$S" -C "$repo" promote "$base" --channel prod --key ops
run "$S" -C "$repo" promote "$lora" --channel prod --key ops
run "$S" -C "$repo" promote "$replay" --channel prod --key ops
run "$S" -C "$repo" rollback prod --reason "the replay batch misbehaves" --key ops
if "$S" -C "$repo" promote "$replay" --channel prod --key ops; then echo "UNEXPECTED: re-shipped"; exit 1; fi
run "$S" -C "$repo" promote "$mem" --channel prod --key ops
rm_id=$(run "$S" -C "$repo" remove "$lora" --onto prod --key alice -m "take the adapter out" | tail -n1)
run "$S" -C "$repo" promote "$rm_id" --channel prod --key ops
run "$S" -C "$repo" status
run "$S" -C "$repo" history prod

step "evaluation: pinned suites, scored on the built-in CPU evaluator"
run "$S" -C "$repo" suite add eval/suites/*.json --key alice
run "$S" -C "$repo" eval "$base" --suite knowledge --suite harmful --suite benign --suite text
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

step "verify"
run "$S" -C "$repo" verify
echo
echo "demo repository left in $work (remove it when done)"
