#!/usr/bin/env bash
# The audit query benchmark (docs/bench-audit.md): build libsluice and
# bench/audit.c, generate a journal of N signed entries in a new directory
# under $TMPDIR, measure one append at that size and the latency of each
# indexed query of sluice audit log / at / lineage, and print the medians
# and p99s. Not run in CI.
#
# usage: bench/audit.sh [--entries N] [--appends N] [--runs N]
#        (defaults: 1000000 entries, 2000 measured appends, 200 runs a query)
# Set KEEP=1 to keep the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build/bench

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target sluice_lib >/dev/null
# Built here rather than in the top-level CMakeLists.txt, like bench-rollback;
# it reaches into core/ to write journal entries directly.
# shellcheck disable=SC2046
cc -std=c11 -O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror \
  -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$root/include" -I"$root/core" \
  "$root/bench/audit.c" "$build/libsluice.a" \
  $(pkg-config --cflags --libs libgit2 libsodium lmdb jansson yaml-0.1 libcurl libpcre2-8 openblas) \
  -lpthread -lm -o "$build/bench-audit"

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-auditbench-XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

echo "== machine"
grep -m1 'model name' /proc/cpuinfo | sed 's/^.*: /cpu: /'
echo "cpus: $(nproc); memory: $(free -g | awk '/^Mem:/{print $2}') GiB"
echo "kernel: $(uname -sr); filesystem of $work: $(df -T "$work" | awk 'NR==2{print $2" on "$1}')"
echo "libgit2: $(pkg-config --modversion libgit2); lmdb: $(pkg-config --modversion lmdb); date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
"$build/bench-audit" "$work" "$@"
[ "${KEEP:-0}" = 1 ] && echo "work directory kept: $work"
exit 0
