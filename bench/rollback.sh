#!/usr/bin/env bash
# The rollback benchmark (docs/bench-rollback.md): build sluice and
# bench/rollback.c, run it in a new directory under $TMPDIR (same
# filesystem for the repository, the git peer and the LMDB peer), then
# trace one more CLI promote + rollback to count where a rollback's fsyncs go.
#
# usage: bench/rollback.sh [--versions N] [--moves N] [--cli-moves N]
#        (defaults: 1000 versions, 1000 in-process moves, 400 CLI moves)
# Set KEEP=1 to keep the work directory, PROFILE=1 to add a perf profile of
# 200 more in-process rollbacks on the finished repository.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build/bench

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target sluice sluice-synth >/dev/null
# Built here rather than in the top-level CMakeLists.txt; the equivalent
# target is in docs/bench-rollback.md.
# shellcheck disable=SC2046
cc -std=c11 -O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror \
  -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$root/include" \
  "$root/bench/rollback.c" "$build/libsluice.a" \
  $(pkg-config --cflags --libs libgit2 libsodium lmdb jansson yaml-0.1 libpcre2-8 openblas libcurl) \
  -lpthread -lm -o "$build/bench-rollback"

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-rbbench-XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
git=$(command -v git)

echo "== machine"
grep -m1 'model name' /proc/cpuinfo | sed 's/^.*: /cpu: /'
echo "cpus: $(nproc); memory: $(free -g | awk '/^Mem:/{print $2}') GiB"
echo "kernel: $(uname -sr); filesystem of $work: $(df -T "$work" | awk 'NR==2{print $2" on "$1}')"
echo "git: $(git --version); libgit2: $(pkg-config --modversion libgit2); lmdb: $(pkg-config --modversion lmdb)"

"$build/sluice-synth" model "$work/model" --hidden 16 --inter 32 --layers 1 --vocab 32 >/dev/null
echo "== bench"
"$build/bench-rollback" "$work" "$work/model" "$build/sluice" "$git" "$@" | tee "$work/out.txt"
spare=$(awk '/^spare candidate/{print $NF}' "$work/out.txt")

export SLUICE_KEYS="$work/keys"
repo=$work/repo
echo
echo "== where one rollback's time goes (strace of one CLI rollback after a CLI promote)"
"$build/sluice" -C "$repo" promote "$spare" --channel prod --key ops >/dev/null
strace -f -y -T -e trace=fsync,fdatasync,msync,sync_file_range,rename,renameat,renameat2,pwrite64 \
  -o "$work/trace.txt" \
  "$build/sluice" -C "$repo" rollback prod --reason traced --key ops >/dev/null
# In order: every fsync/fdatasync with its file (a directory fsync shows the
# directory), LMDB's O_DSYNC meta-page write, and the renames.
# The staged journal objects are fsynced on threads: strace splits such a call
# into "<unfinished ...>" and "<... fsync resumed>" lines; they are joined by
# thread id, and marked "||" (overlapping with the calls around it).
awk -v repo="$repo" '
  /unfinished \.\.\.>$/ { split($0, w, " "); pend[w[1]] = $0; next }
  /<\.\.\. [a-z0-9]+ resumed>/ {
    split($0, w, " "); if (!(w[1] in pend)) next;
    tail = $0; sub(/^.*resumed>/, "", tail);
    head = pend[w[1]]; sub(/ *<unfinished \.\.\.>$/, "", head);
    $0 = head tail; delete pend[w[1]]; par = 1
  }
  /(fsync|fdatasync)\(|rename|pwrite64\(.*data\.mdb/ {
    line = $0; sub(/^[0-9]+ +/, "", line);
    match(line, /<[0-9.]+>$/); t = substr(line, RSTART + 1, RLENGTH - 2);
    call = line; sub(/\(.*/, "", call);
    if (call == "pwrite64") { call = lmdbsynced ? "pwrite64 (LMDB meta page, O_DSYNC fd)" : "pwrite64 (LMDB data page)" }
    if (call == "fdatasync" && line ~ /data\.mdb/) { lmdbsynced = 1 }
    match(line, /<[^<>]*>/); f = substr(line, RSTART + 1, RLENGTH - 2);
    if (call ~ /rename/) { match(line, /", "[^"]*"/); f = substr(line, RSTART + 4, RLENGTH - 5) }
    gsub(repo, "REPO", f); gsub(/[0-9a-f]{38}/, "<rest of id>", f);
    gsub(/tmp_object_git2_[A-Za-z0-9]+/, "tmp_object_git2_*", f);
    gsub(/tmp_object_sluice_[A-Za-z0-9]+/, "tmp_object_sluice_*", f);
    gsub(/#[0-9]+ \(deleted\)/, "(unnamed file)", f);
    if (par) { call = call " ||"; par = 0 }
    printf "  %-40s %-52s %8.3f ms\n", call, f, 1000 * t;
    if (call ~ /sync/) { n++; s += t } else { other += t }
  }
  END { printf "  => %d fsync/fdatasync calls, %.3f ms inside them; %.3f ms in renames and LMDB page writes\n", n, 1000 * s, 1000 * other }' \
  "$work/trace.txt"
echo
echo "== the same for one git update-ref (core.fsync=reference)"
old=$(git --git-dir "$repo" rev-parse refs/bench/gitcli)
new=$(git --git-dir "$repo" rev-parse refs/sluice/journal) # never equal to old
strace -f -y -T -e trace=fsync,fdatasync,rename,renameat,renameat2 -o "$work/trace-git.txt" \
  git --git-dir "$repo" -c core.fsync=reference -c core.fsyncMethod=fsync \
  update-ref refs/bench/gitcli "$new" "$old"
grep -E 'fsync|fdatasync|rename' "$work/trace-git.txt" | sed "s#$repo#REPO#g; s/^[0-9]* //" || true

if [ "${PROFILE:-0}" = 1 ] && command -v perf >/dev/null; then
  echo
  echo "== on-CPU profile of 200 in-process rollbacks (perf, inclusive %)"
  perf record -q -F 1999 --call-graph dwarf,16384 -o "$work/perf.data" -- \
    "$build/bench-rollback" --rollbacks-only "$work" 200
  perf report -i "$work/perf.data" --children --stdio -g none --percent-limit 0.5 2>/dev/null |
    grep -E ' (sluice_[a-z_]+|mirror_refs|put_entries|collect|decide_move|tree_put_json|entry_file|json_loadb|json_dumps|json_deep_copy|deflate|inflate|ext4_sync_file|mdb_txn_commit|git_odb_write|git_reference_create(_matching)?)$' |
    awk '{printf "  %7s  %s\n", $1, $NF}'
fi
[ "${KEEP:-0}" = 1 ] && echo "work directory kept: $work"
exit 0
