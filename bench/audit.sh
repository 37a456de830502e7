#!/usr/bin/env bash
# The audit query benchmark (docs/bench-audit.md): build libsluice and
# bench/audit.c, generate a journal of N signed entries in a new directory
# under $TMPDIR, measure one append at that size and the latency of each
# indexed query of sluice audit log / at / lineage, and print the medians
# and p99s; then time sluice audit verify on that journal (--full on one
# thread and on all, the first default run, which re-derives everything and
# builds the leaf index, and the default runs after it). Not run in CI.
#
# usage: bench/audit.sh [--entries N] [--appends N] [--runs N]
#        bench/audit.sh --reuse DIR [--entries N] [--runs N]
#        (defaults: 1000000 entries, 2000 measured appends, 200 runs a query;
#        --reuse: the queries and verify on the journal a KEEP=1 run left in
#        DIR, generated with the same --entries)
# Set KEEP=1 to keep the work directory; VERIFY=0 to skip the verify timings.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build/bench
reuse=
if [ "${1:-}" = --reuse ]; then
  reuse=$2
  shift 2
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target sluice_lib sluice >/dev/null
# Built here rather than in the top-level CMakeLists.txt, like bench-rollback;
# it reaches into core/ to write journal entries directly.
# shellcheck disable=SC2046
cc -std=c11 -O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror \
  -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$root/include" -I"$root/core" \
  "$root/bench/audit.c" "$build/libsluice.a" \
  $(pkg-config --cflags --libs libgit2 libsodium lmdb jansson yaml-0.1 libcurl libpcre2-8 openblas) \
  -lpthread -lm -o "$build/bench-audit"

if [ -n "$reuse" ]; then
  work=$reuse
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-auditbench-XXXXXX")
  [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
fi

echo "== machine"
grep -m1 'model name' /proc/cpuinfo | sed 's/^.*: /cpu: /'
echo "cpus: $(nproc); memory: $(free -g | awk '/^Mem:/{print $2}') GiB"
echo "kernel: $(uname -sr); filesystem of $work: $(df -T "$work" | awk 'NR==2{print $2" on "$1}')"
echo "libgit2: $(pkg-config --modversion libgit2); lmdb: $(pkg-config --modversion lmdb); date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
if [ -n "$reuse" ]; then
  "$build/bench-audit" "$work" --reuse 1 "$@"
else
  "$build/bench-audit" "$work" "$@"
fi

if [ "${VERIFY:-1}" = 1 ]; then
  sl() { "$build/sluice" -C "$work/repo" "$@"; }
  # One run of audit verify: wall time and peak RSS, and what its report says.
  timed() {
    local label=$1 out
    shift
    out=$(/usr/bin/time -f '%e %M' -o "$work/time" "$build/sluice" -C "$work/repo" audit verify --json "$@" || true)
    printf '  %-40s %8.2f s wall %7d MiB  ' "$label" "$(cut -d' ' -f1 "$work/time")" "$(($(cut -d' ' -f2 "$work/time") / 1024))"
    /usr/bin/python3 -c 'import json,sys
v=json.load(sys.stdin); s=v["seconds"]; r=v["rederived"]
print("%s, re-derived %d (trusted %d), %d threads %.2f s, %d signatures %.2f s, ok=%s"
      % (v["mode"], r["count"], r["trusted"], s["threads"], s["rederive"], v["signatures"], s["signatures"], v["ok"]))' <<<"$out"
  }
  echo "== audit verify at $(sl audit checkpoint --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])') entries"
  rm -rf "$work/repo/sluice/tlog-index"
  timed "--full --threads 1 (index not built)" --full --threads 1
  timed "--full (index not built)" --full
  timed "default, first (no record: all, index built)"
  for i in 1 2 3 4 5; do timed "default, again ($i)"; done
  timed "--full (index checked, record kept)" --full
fi
[ "${KEEP:-0}" = 1 ] && echo "work directory kept: $work"
exit 0
