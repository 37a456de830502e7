#!/usr/bin/env bash
# Ingest benchmark (docs/bench.md): `sluice propose base` of a synthetic
# ~1 GiB bf16 safetensors model on a warm page cache, against (a) the hash
# bound - BLAKE2b-256 of the same bytes in 64 KiB pieces on all cores - and
# (b) the disk's durable write rate, both measured in the same run; then
# git add+commit, git lfs (track, add, commit) and restic backup of the same
# files. Then 1% of the tensor bytes are rewritten (seeded, part of it in
# the largest tensor) and each store ingests again: new bytes stored.
#
# usage: bench/ingest.sh [--markdown FILE] [--keep]
#   BENCH_REPEAT=N  timed repetitions, the median is reported (default 3)
#   BENCH_IDLE_WAIT=S  before each timed step, wait for the machine to go idle,
#                   at most S seconds in all (default 300)
#   BENCH_TMP=DIR   where the temporary directory goes (default $TMPDIR or /tmp);
#                   the repositories live there, so it picks the disk measured
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

markdown=""
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--markdown) markdown=$(realpath -m "$2"); shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "ingest.sh: unknown argument $1" >&2; exit 3 ;;
	esac
done
REPEAT=${BENCH_REPEAT:-3}
case "$REPEAT" in '' | *[!0-9]* | 0) echo "ingest.sh: BENCH_REPEAT must be a positive integer" >&2; exit 3 ;; esac

t_start=$(date +%s)
say() { printf '[%4ds] %s\n' "$(($(date +%s) - t_start))" "$*" >&2; }

# ---- tools -------------------------------------------------------------------
need=()
command -v git-lfs >/dev/null || need+=(git-lfs)
command -v restic >/dev/null || need+=(restic)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	as_root=()
	[ "$(id -u)" -eq 0 ] || as_root=(sudo)
	"${as_root[@]}" apt-get install -y -q "${need[@]}" >/dev/null
fi
say "building sluice (Release) and bench/hashbound"
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build build/bench -j"$(nproc)" >/dev/null
# shellcheck disable=SC2046
cc -O2 -std=c11 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
	bench/hashbound.c -o build/bench/hashbound $(pkg-config --cflags --libs libsodium) -pthread
S=$ROOT/build/bench/sluice
SYNTH=$ROOT/build/bench/sluice-synth
HB=$ROOT/build/bench/hashbound

# ---- workspace ---------------------------------------------------------------
base_tmp=${BENCH_TMP:-${TMPDIR:-/tmp}}
avail_kb=$(df -Pk "$base_tmp" | awk 'NR == 2 { print $4 }')
if [ "$avail_kb" -lt $((10 * 1024 * 1024)) ]; then
	echo "ingest.sh: $base_tmp has $((avail_kb / 1024)) MiB free; the benchmark needs about 10 GiB" >&2
	exit 5
fi
work=$(mktemp -d "$base_tmp/sluice-bench-XXXXXX")
cleanup() {
	if [ "$keep" = 1 ]; then
		say "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
export SLUICE_KEYS="$work/keys"
export RESTIC_PASSWORD=x
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
git_id=(-c user.name=bench -c user.email=bench@example.invalid -c commit.gpgsign=false)
model=$work/model

# ---- the model ---------------------------------------------------------------
MODEL_ARGS=(--hidden 1024 --inter 2816 --layers 44 --heads 8 --kv-heads 2 --vocab 32000
	--dtype bf16 --shards 3 --seed 1)
say "synthesizing the model: ${MODEL_ARGS[*]}"
"$SYNTH" model "$model" "${MODEL_ARGS[@]}" >/dev/null
mapfile -t files < <(find "$model" -type f | sort)
mapfile -t stfiles < <(find "$model" -type f -name '*.safetensors' | sort)
bytes=0
for f in "${files[@]}"; do bytes=$((bytes + $(stat -c %s "$f"))); done
ntensors=0
tensor_bytes=0
largest=0
for f in "${stfiles[@]}"; do
	read -r n tb big < <(python3 - "$f" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as fh:
    (hlen,) = struct.unpack("<Q", fh.read(8))
    hdr = json.loads(fh.read(hlen))
sizes = [v["data_offsets"][1] - v["data_offsets"][0] for k, v in hdr.items() if k != "__metadata__"]
print(len(sizes), sum(sizes), max(sizes))
PY
	)
	ntensors=$((ntensors + n))
	tensor_bytes=$((tensor_bytes + tb))
	[ "$big" -gt "$largest" ] && largest=$big
done
gib=$(awk -v b="$bytes" 'BEGIN { printf "%.3f", b / 1073741824 }')
say "model: ${#files[@]} files, ${#stfiles[@]} safetensors shards, $ntensors tensors, $bytes bytes ($gib GiB), largest tensor $largest bytes"
if ! awk -v g="$gib" 'BEGIN { exit !(g >= 0.9 && g <= 1.1) }'; then
	echo "ingest.sh: the model is $gib GiB, not 1.0 GiB +- 10%" >&2
	exit 5
fi
warm() { cat "${files[@]}" >/dev/null; }
warm

# ---- timing helpers ----------------------------------------------------------
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mbps() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
dir_bytes() { if [ -e "$1" ]; then du -sb "$1" | cut -f1; else echo 0; fi; }
run_to() {
	local o=$1
	shift
	if ! "$@" >"$o" 2>"$o.err"; then
		cat "$o.err" >&2
		return 1
	fi
}
git_commit() { (cd "$1" && git add -A && git "${git_id[@]}" commit -q -m "$2"); }
lfs_track_commit() { (cd "$1" && git lfs track '*.safetensors' >/dev/null && git add -A && git "${git_id[@]}" commit -q -m x); }
# Busy and idle jiffies of the whole machine (steal counts as busy).
cpu_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
# CPU seconds used by this script's finished children (bash's times builtin).
# Sets CHILD_CPU; not in $(...), whose subshell would have no children yet.
children_cpu() {
	times >"$work/times"
	CHILD_CPU=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); s += p[1] * 60 + p[2] } printf "%.2f", s }' "$work/times")
}
# On a shared machine other processes' CPU use would show up as sluice's (or
# a competitor's) time: wait, within reason, until the machine is idle.
IDLE_BUDGET=${BENCH_IDLE_WAIT:-300} # seconds of waiting in all
wait_idle() {
	local i b0 i0 b1 i1 busy=0
	[ "$IDLE_BUDGET" -gt 0 ] || return 0
	for ((i = 0; i < 90 && IDLE_BUDGET > 0; i++, IDLE_BUDGET--)); do
		read -r b0 i0 < <(cpu_jiffies)
		sleep 1
		read -r b1 i1 < <(cpu_jiffies)
		busy=$(awk -v b=$((b1 - b0)) -v t=$((b1 - b0 + i1 - i0)) 'BEGIN { printf "%d", t ? 100 * b / t : 0 }')
		[ "$busy" -lt 10 ] && return 0
		[ "$i" -eq 0 ] && say "waiting for the machine to go idle (${busy}% busy)"
	done
	say "warning: the machine is still ${busy}% busy; measuring anyway"
	NOTES+=("the machine was ${busy}% busy before a step; see the foreign-CPU notes")
}
# Start every timed step with no dirty pages from the previous one, warm
# input, and an idle machine.
quiesce() { sync; warm; wait_idle; }
# timed LABEL COMMAND...: run; LAST_DT is the wall time, and LAST_BAD is 1
# if other processes used more than 0.2 CPU-s and 10% of it meanwhile
# (noted in the report; such samples are left out of the medians).
NOTES=()
timed() {
	local label=$1 b0 i0 b1 i1 c0 c1 t0 foreign
	shift
	read -r b0 i0 < <(cpu_jiffies)
	children_cpu
	c0=$CHILD_CPU
	t0=$(now)
	"$@"
	LAST_DT=$(since "$t0")
	children_cpu
	c1=$CHILD_CPU
	read -r b1 i1 < <(cpu_jiffies)
	foreign=$(awk -v b=$((b1 - b0)) -v c0="$c0" -v c1="$c1" 'BEGIN { f = b / 100 - (c1 - c0); printf "%.2f", f < 0 ? 0 : f }')
	LAST_BAD=0
	if awk -v f="$foreign" -v d="$LAST_DT" 'BEGIN { exit !(f > 0.2 && f > 0.1 * d) }'; then
		LAST_BAD=1
		NOTES+=("$label: other processes used ${foreign} CPU-s during its ${LAST_DT} s")
	fi
}
# add NAME VALUE: append a sample and whether it was disturbed.
add() {
	local -n av=$1 ab=${1}_BAD
	av+=("$2")
	ab+=("$LAST_BAD")
}
# clean NAME: the undisturbed samples, or all of them if none was.
clean() {
	local -n cv=$1 cb=${1}_BAD
	local i keep=()
	for i in "${!cv[@]}"; do
		[ "${cb[i]}" = 0 ] && keep+=("${cv[i]}")
	done
	[ ${#keep[@]} -gt 0 ] || keep=("${cv[@]}")
	printf '%s\n' "${keep[@]}"
}
samples() {
	local -n sv=$1 sb=${1}_BAD
	local i txt=""
	for i in "${!sv[@]}"; do
		txt+="${txt:+ }${sv[i]}"
		[ "${sb[i]}" = 0 ] || txt+="*"
	done
	echo "$txt"
}
nclean() {
	local -n nb=${1}_BAD
	local n=0 b
	for b in "${nb[@]}"; do [ "$b" = 0 ] && n=$((n + 1)); done
	echo "$n/${#nb[@]}"
}

# Samples, and beside each array NAME_BAD: 1 where the sample was disturbed.
# shellcheck disable=SC2034 # the _BAD arrays are used through namerefs
declare -a T_HASH T_STREAM T_WRITE T_WCOLD T_SLUICE T_GIT T_LFS T_RESTIC \
	T_HASH_BAD T_STREAM_BAD T_WRITE_BAD T_WCOLD_BAD T_SLUICE_BAD T_GIT_BAD T_LFS_BAD T_RESTIC_BAD
v1=""
for ((r = 1; r <= REPEAT; r++)); do
	say "repeat $r/$REPEAT: hash bound"
	quiesce
	timed "repeat $r hash bound" run_to "$work/out" "$HB" "${files[@]}"
	add T_HASH "$(awk '{ printf "%.3f", $3 }' "$work/out")"
	quiesce
	timed "repeat $r stream" run_to "$work/out" "$HB" --stream "${files[@]}"
	add T_STREAM "$(awk '{ printf "%.3f", $3 }' "$work/out")"

	say "repeat $r/$REPEAT: durable write rate"
	quiesce
	timed "repeat $r durable write" run_to "$work/out" "$HB" --write "$work" "$bytes"
	add T_WRITE "$(awk '{ printf "%.3f", $3 }' "$work/out")"
	add T_WCOLD "$(sed -n 's/.*first pass \([0-9.]*\) s.*/\1/p' "$work/out")"

	say "repeat $r/$REPEAT: sluice propose base"
	rm -rf "$work/sluice" "$SLUICE_KEYS"
	"$S" init "$work/sluice" >/dev/null
	"$S" -C "$work/sluice" key new alice --role proposer >/dev/null
	quiesce
	timed "repeat $r sluice" run_to "$work/out" "$S" -C "$work/sluice" propose base "$model" --key alice -m base 2>/dev/null
	add T_SLUICE "$LAST_DT"
	v1=$(tail -n1 "$work/out")

	say "repeat $r/$REPEAT: git add + commit"
	rm -rf "$work/git"
	cp -al "$model" "$work/git" # hard links: the same cached pages, no copy
	git init -q "$work/git"
	quiesce
	timed "repeat $r git" git_commit "$work/git" x
	add T_GIT "$LAST_DT"

	say "repeat $r/$REPEAT: git lfs track + add + commit"
	rm -rf "$work/lfs"
	cp -al "$model" "$work/lfs"
	git init -q "$work/lfs"
	(cd "$work/lfs" && git lfs install --local >/dev/null)
	quiesce
	timed "repeat $r git lfs" lfs_track_commit "$work/lfs"
	add T_LFS "$LAST_DT"

	say "repeat $r/$REPEAT: restic backup"
	rm -rf "$work/restic"
	restic init -q --repo "$work/restic" >/dev/null
	quiesce
	timed "repeat $r restic" restic backup -q --repo "$work/restic" "$model"
	add T_RESTIC "$LAST_DT"
	say "repeat $r/$REPEAT: sluice ${T_SLUICE[-1]}s git ${T_GIT[-1]}s lfs ${T_LFS[-1]}s restic ${T_RESTIC[-1]}s"
done

mapfile -t c < <(clean T_HASH)
hash_s=$(median "${c[@]}")
mapfile -t c < <(clean T_STREAM)
stream_s=$(median "${c[@]}")
mapfile -t c < <(clean T_WRITE)
write_s=$(median "${c[@]}")
mapfile -t c < <(clean T_WCOLD)
wcold_s=$(median "${c[@]}")
mapfile -t c < <(clean T_SLUICE)
sluice_s=$(median "${c[@]}")
mapfile -t c < <(clean T_GIT)
git_s=$(median "${c[@]}")
mapfile -t c < <(clean T_LFS)
lfs_s=$(median "${c[@]}")
mapfile -t c < <(clean T_RESTIC)
restic_s=$(median "${c[@]}")
hash_mb=$(mbps "$hash_s")
stream_mb=$(mbps "$stream_s")
write_mb=$(mbps "$write_s")
sluice_mb=$(mbps "$sluice_s")

# ---- the 1% rewrite ----------------------------------------------------------
say "mutation: keeping a copy of the shards, then sluice-synth mutate --percent 1 --seed 7"
mkdir -p "$work/orig"
cp "${stfiles[@]}" "$work/orig/"
"$SYNTH" mutate "$model" --percent 1 --seed 7
changed=0
for f in "${stfiles[@]}"; do
	d=$("$HB" --diff "$work/orig/$(basename "$f")" "$f" | awk '{ print $2 }')
	changed=$((changed + d))
done
rm -rf "$work/orig"
nominal=$((tensor_bytes / 100))

packs() { find "$work/sluice/sluice/packs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
quiesce
p0=$(packs)
r0=$(dir_bytes "$work/sluice")
say "mutation: sluice propose base --onto ${v1:0:12}"
timed "mutation sluice" run_to "$work/out" "$S" -C "$work/sluice" propose base "$model" --onto "$v1" --key alice -m "1% rewrite" 2>/dev/null
v2=$(tail -n1 "$work/out")
t_sluice2=$LAST_DT
sluice_new=$(($(packs) - p0))
sluice_repo_new=$(($(dir_bytes "$work/sluice") - r0))

quiesce
l0=$(dir_bytes "$work/lfs/.git/lfs/objects")
lg0=$(dir_bytes "$work/lfs/.git")
say "mutation: git lfs add + commit"
timed "mutation git lfs" git_commit "$work/lfs" y
t_lfs2=$LAST_DT
lfs_new=$(($(dir_bytes "$work/lfs/.git/lfs/objects") - l0))
lfs_repo_new=$(($(dir_bytes "$work/lfs/.git") - lg0))

quiesce
g0=$(dir_bytes "$work/git/.git")
say "mutation: git add + commit"
timed "mutation git" git_commit "$work/git" y
t_git2=$LAST_DT
git_new=$(($(dir_bytes "$work/git/.git") - g0))

quiesce
rr0=$(dir_bytes "$work/restic")
say "mutation: restic backup"
timed "mutation restic" restic backup -q --repo "$work/restic" "$model"
t_restic2=$LAST_DT
restic_new=$(($(dir_bytes "$work/restic") - rr0))

# ---- report ------------------------------------------------------------------
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f%%", 100 * a / b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
bind=$(awk -v h="$hash_mb" -v w="$write_mb" 'BEGIN { print (h <= w) ? "hash bound" : "durable write rate" }')
bound_mb=$(awk -v h="$hash_mb" -v w="$write_mb" 'BEGIN { print (h <= w) ? h : w }')
frac=$(pct "$sluice_mb" "$bound_mb")
half_mb=$(awk -v h="$hash_mb" 'BEGIN { printf "%.0f", h / 2 }')
# Two hashes per byte on all cores, with the write fully overlapped.
design_mb=$(awk -v h="$hash_mb" -v w="$write_mb" 'BEGIN { printf "%.0f", (h / 2 < w) ? h / 2 : w }')
goal_speed=$(awk -v s="$sluice_mb" -v b="$bound_mb" 'BEGIN { print (s >= 0.8 * b) ? "met" : "NOT met" }')
goal_bytes=$(awk -v n="$sluice_new" -v b="$bytes" 'BEGIN { print (n <= 0.02 * b) ? "met" : "NOT met" }')

report() {
	local md=$1
	if [ "$md" = 1 ]; then
		h() { printf '\n### %s\n\n' "$1"; }
		row() { local IFS='|'; printf '|%s|\n' "$*" | sed 's/|/ | /g; s/  */ /g; s/^ //; s/ $//'; }
		sep() { printf '|%s\n' "$(printf -- '---|%.0s' $(seq "$1"))"; }
	else
		h() { printf '\n== %s\n' "$1"; }
		row() { printf '%-52s' "$1"; shift; printf ' %12s' "$@"; printf '\n'; }
		sep() { :; }
	fi
	h "Machine and input"
	echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(df -PT "$work" | awk 'NR == 2 { print $2 }') on $(df -P "$work" | awk 'NR == 2 { print $1 }'), kernel $(uname -r)"
	echo
	echo "model: ${#stfiles[@]} bf16 safetensors shards + $((${#files[@]} - ${#stfiles[@]})) small files, $ntensors tensors, $bytes bytes ($gib GiB), largest tensor $largest bytes; warm page cache; median of $REPEAT"
	h "Reference rates (same run)"
	row "measure" "median s" "min s" "max s" "undisturbed" "MB/s"
	sep 6
	row "hash bound: BLAKE2b-256, 64 KiB pieces, $(nproc) threads" "$hash_s" "$(clean T_HASH | sort -g | head -n1)" "$(clean T_HASH | sort -g | tail -n1)" "$(nclean T_HASH)" "$hash_mb"
	row "one BLAKE2b stream per file, 1 thread" "$stream_s" "$(clean T_STREAM | sort -g | head -n1)" "$(clean T_STREAM | sort -g | tail -n1)" "$(nclean T_STREAM)" "$stream_mb"
	row "durable write (8 MiB writes + fsync), 2nd pass" "$write_s" "$(clean T_WRITE | sort -g | head -n1)" "$(clean T_WRITE | sort -g | tail -n1)" "$(nclean T_WRITE)" "$write_mb"
	row "durable write, 1st pass (fresh page-cache pages)" "$wcold_s" "$(clean T_WCOLD | sort -g | head -n1)" "$(clean T_WCOLD | sort -g | tail -n1)" "$(nclean T_WCOLD)" "$(mbps "$wcold_s")"
	echo
	echo "the write bound is the 2nd pass: the 1st mostly measures the VM faulting in fresh page-cache pages (docs/bench.md)"
	h "Initial ingest of the same files"
	row "tool" "median s" "min s" "max s" "undisturbed" "MB/s" "time / sluice"
	sep 7
	row "sluice propose base" "$sluice_s" "$(clean T_SLUICE | sort -g | head -n1)" "$(clean T_SLUICE | sort -g | tail -n1)" "$(nclean T_SLUICE)" "$sluice_mb" "1.00"
	row "git add -A && git commit" "$git_s" "$(clean T_GIT | sort -g | head -n1)" "$(clean T_GIT | sort -g | tail -n1)" "$(nclean T_GIT)" "$(mbps "$git_s")" "$(ratio "$git_s" "$sluice_s")"
	row "git lfs track + add + commit" "$lfs_s" "$(clean T_LFS | sort -g | head -n1)" "$(clean T_LFS | sort -g | tail -n1)" "$(nclean T_LFS)" "$(mbps "$lfs_s")" "$(ratio "$lfs_s" "$sluice_s")"
	row "restic backup" "$restic_s" "$(clean T_RESTIC | sort -g | head -n1)" "$(clean T_RESTIC | sort -g | tail -n1)" "$(nclean T_RESTIC)" "$(mbps "$restic_s")" "$(ratio "$restic_s" "$sluice_s")"
	echo
	echo "medians, min and max are over the undisturbed samples (all of them if none was); every sample (s, * = disturbed):"
	echo "sluice $(samples T_SLUICE); durable write $(samples T_WRITE) (1st pass $(samples T_WCOLD)); hash bound $(samples T_HASH)"
	echo
	echo "sluice: $sluice_mb MB/s = $frac of min(hash bound $hash_mb, durable write $write_mb) MB/s; the binding bound is the $bind. Goal >= 80%: $goal_speed."
	echo "secondary: sluice hashes every byte twice (64 KiB chunk ids, and the whole-file BLAKE2b for B2SUMS),"
	echo "so its own ceiling is half the hash rate, $half_mb MB/s: sluice reaches $(pct "$sluice_mb" "$half_mb") of it;"
	echo "min(half the hash rate, durable write) = $design_mb MB/s: sluice reaches $(pct "$sluice_mb" "$design_mb") of it."
	echo "each file's whole-file digest is one serial stream ($stream_mb MB/s on one core here): sluice reaches $(pct "$sluice_mb" "$stream_mb") of it."
	h "After rewriting 1% of the tensor bytes (sluice-synth mutate --percent 1 --seed 7)"
	echo "rewritten: $nominal bytes nominal (1% of $tensor_bytes tensor bytes, 256 KiB runs, a quarter in the largest tensor of the first shard); $changed bytes actually differ ($(pct "$changed" "$bytes") of the model)"
	echo
	row "store" "new bytes" "% of model" "x changed" "seconds"
	sep 5
	row "sluice packs" "$sluice_new" "$(pct "$sluice_new" "$bytes")" "$(ratio "$sluice_new" "$changed")" "$t_sluice2"
	row "sluice repository (packs+index+git)" "$sluice_repo_new" "$(pct "$sluice_repo_new" "$bytes")" "$(ratio "$sluice_repo_new" "$changed")" ""
	row "git lfs objects" "$lfs_new" "$(pct "$lfs_new" "$bytes")" "$(ratio "$lfs_new" "$changed")" "$t_lfs2"
	row "git lfs repository (.git)" "$lfs_repo_new" "$(pct "$lfs_repo_new" "$bytes")" "$(ratio "$lfs_repo_new" "$changed")" ""
	row "git (.git)" "$git_new" "$(pct "$git_new" "$bytes")" "$(ratio "$git_new" "$changed")" "$t_git2"
	row "restic repository" "$restic_new" "$(pct "$restic_new" "$bytes")" "$(ratio "$restic_new" "$changed")" "$t_restic2"
	echo
	echo "sluice stores $(pct "$sluice_new" "$bytes") new bytes for the 1% change (goal <= 2%: $goal_bytes); git lfs stores $(pct "$lfs_new" "$bytes")."
	echo "version ids: ${v1:0:12} -> ${v2:0:12}"
	h "Interference"
	if [ ${#NOTES[@]} -eq 0 ]; then
		echo "no timed step saw other processes use more than 0.2 CPU-s and 10% of its wall time"
	else
		printf -- '- %s\n' "${NOTES[@]}"
	fi
}
report 0
if [ -n "$markdown" ]; then
	report 1 >"$markdown"
	say "wrote $markdown"
fi
say "done in $(($(date +%s) - t_start))s"
