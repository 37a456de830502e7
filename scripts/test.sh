#!/usr/bin/env bash
# The whole test suite, as CI runs it: install dependencies, build with gcc
# and -Werror, build again with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer, run every test in both, and check formatting.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

jobs=$(nproc)
export SLUICE_TEST_TMP="${TMPDIR:-/tmp}"

echo "== gcc, -Werror"
cmake -S . -B build/gcc -DCMAKE_C_COMPILER=gcc -DSLUICE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/gcc -j"$jobs"
ctest --test-dir build/gcc --output-on-failure -j"$jobs"

echo "== tokenizer against Hugging Face's tokenizers (npm)"
bash scripts/hf-tokenizers.sh build/gcc/sluice-tokdump

echo "== clang, ASan + UBSan"
# -O1, as the sanitizers' own documentation advises. Asserts stay on. Every
# test runs OpenBLAS on one thread (tests/CMakeLists.txt says why): with
# that, this phase took 10 minutes and the gcc one 4 on a quiet machine
# (2026-12-02), against 65 and 7 before.
cmake -S . -B build/asan -DCMAKE_C_COMPILER=clang -DSLUICE_WERROR=ON -DSLUICE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
  "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" >/dev/null
cmake --build build/asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs"

echo "== clang-format"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror
echo "format: ok"
