#!/usr/bin/env bash
# The provable log's benchmark (docs/audit-tlog.md): build sluice and
# bench/tlog.c, make a journal of N entries (default 5000) in a new
# directory under $TMPDIR, and time a journal commit, the tree's share of
# it, and `sluice audit verify` (in-process, then through the CLI with the
# index built). Set KEEP=1 to keep the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build/bench
n=${1:-5000}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build "$build" -j1 --target sluice >/dev/null
# shellcheck disable=SC2046
cc -std=c11 -O2 -g -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
  -I"$root/include" -I"$root/core" -I"$root/audit" \
  "$root/bench/tlog.c" "$build/libsluice.a" \
  $(pkg-config --cflags --libs libgit2 libsodium lmdb jansson yaml-0.1 libcurl libpcre2-8 openblas) \
  -lpthread -lm -o "$build/bench-tlog"

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-tlogbench-XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
mkdir -m 700 "$work/keys"
export SLUICE_KEYS=$work/keys
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | sed 's/^.*: //'); filesystem: $(df -T "$work" | awk 'NR==2{print $2}')"
"$build/bench-tlog" "$work" "$n"
/usr/bin/time -f "sluice audit verify (CLI, index built): %e s, %M KiB max RSS" \
  "$build/sluice" -C "$work/repo" audit verify
