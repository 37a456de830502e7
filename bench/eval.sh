#!/usr/bin/env bash
# The evaluator throughput benchmark (docs/bench-eval.md): build libsluice,
# sluice-synth and bench/eval.c; measure OpenBLAS's sgemm rate; score the
# shipped test model and a synthetic ~100M-parameter llama (f32 and bf16,
# random weights made here) with the built-in evaluator, every position
# scored, and the same weights and tokens with PyTorch's CPU forward pass;
# print one table.
#
# usage: bench/eval.sh   (env: THREADS, default nproc; REPS, default 5;
#                         SEQ, default 512; KEEP=1 keeps the work directory)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build/evb
threads=${THREADS:-$(nproc)}
reps=${REPS:-5}
seq=${SEQ:-512}
py=/usr/bin/python3

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target sluice_lib sluice-synth >/dev/null
# Built here rather than in the top-level CMakeLists.txt: it needs the
# evaluator's private header.
# shellcheck disable=SC2046
cc -std=c11 -O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror \
  -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$root/core" -I"$root/eval" -I"$root/include" \
  $(pkg-config --cflags openblas) "$root/bench/eval.c" "$build/libsluice.a" \
  $(pkg-config --libs libgit2 libsodium lmdb jansson yaml-0.1 libcurl libpcre2-8 openblas) \
  -lpthread -lm -o "$build/bench-eval"

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-evbench-XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

echo "== machine"
grep -m1 'model name' /proc/cpuinfo | sed 's/^.*: /cpu: /'
echo "cpus: $(nproc); threads used: $threads; memory: $(free -g | awk '/^Mem:/{print $2}') GiB"
echo "openblas: $(pkg-config --modversion openblas)"

# Key lookup in a "key value" output file.
kv() { awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$1"; }

echo "== sgemm (C = A . B^T, median of 7)"
best=0
for shape in "512 768 2048" "512 2048 768" "512 768 16000" "2048 2048 2048"; do
  # shellcheck disable=SC2086
  "$build/bench-eval" sgemm "$threads" $shape 7 >"$work/sg.txt"
  g=$(kv "$work/sg.txt" sgemm_gflops)
  echo "sgemm $(kv "$work/sg.txt" sgemm_shape) (MxKxN): $g GFLOP/s"
  best=$(awk -v a="$best" -v b="$g" 'BEGIN { print (b > a) ? b : a }')
done
echo "sgemm rate (best of the shapes): $best GFLOP/s"

# The ~100M model: 12 x (768 hidden, 2048 inter, 12 heads, 4 KV heads) with
# a 16000-token vocabulary and an untied lm_head = 100.1M parameters.
big="--hidden 768 --inter 2048 --layers 12 --heads 12 --kv-heads 4 --vocab 16000"
for dt in f32 bf16; do
  # shellcheck disable=SC2086
  "$build/sluice-synth" model "$work/m100-$dt" $big --dtype "$dt" --seed 7 >/dev/null
done

# The shipped test model is f32; its bf16 twin is the same weights rounded.
"$py" "$root/bench/torch_forward.py" --to-bf16 "$root/tests/resources/test-model" \
  "$work/test-model-bf16"

rows=()
run() { # label dir seq reps
  local label=$1 dir=$2 n=$3 r=$4 out=$work/$1.txt tout=$work/$1.torch.txt
  echo "== $label (seq $n, median of $r)"
  "$build/bench-eval" model "$threads" "$dir" "$n" "$r" "$work/lp.bin" >"$out"
  cat "$out"
  "$py" "$root/bench/torch_forward.py" "$threads" "$dir" "$n" "$r" \
    --logprobs "$work/lp.bin" --matmul 2048 2048 2048 >"$tout"
  cat "$tout"
  rm -f "$work/lp.bin"
  rows+=("$(awk -v label="$label" -v best="$best" \
    -v tps="$(kv "$out" tokens_per_s)" -v ttps="$(kv "$tout" torch_tokens_per_s)" \
    -v gf="$(kv "$out" forward_gflops)" -v gflop="$(kv "$out" forward_gflop)" \
    -v tmin="$(kv "$out" forward_min_seconds)" -v params="$(kv "$out" params)" \
    -v rss="$(kv "$out" peak_rss_kib)" -v wb="$(kv "$out" weights_bytes)" \
    -v trss="$(kv "$tout" torch_peak_rss_kib)" \
    -v diff="$(kv "$tout" logprobs_max_abs_diff)" 'BEGIN {
      rssb = rss * 1024
      printf "| %s | %.2fM | %.0f | %.0f | %.2fx | %.1f | %.1f | %.0f%% (best pass %.0f%%) | %.1f | %.1f | %.2f | %.1f | %s |", \
        label, params / 1e6, tps, ttps, tps / ttps, gf, best, 100 * gf / best, \
        100 * gflop / tmin / best, \
        rssb / 1048576, wb / 1048576, rssb / wb, trss / 1024, diff }')")
}

run test-model-f32 "$root/tests/resources/test-model" 128 20
run test-model-bf16 "$work/test-model-bf16" 128 20
run m100-f32 "$work/m100-f32" "$seq" "$reps"
run m100-bf16 "$work/m100-bf16" "$seq" "$reps"

# Scoring-shaped passes (what sluice eval runs): the same SEQ tokens, only the
# last 32 rows of logits computed and held; each in its own process, so the
# peak RSS is that pass's.
srows=()
for dt in f32 bf16; do
  "$build/bench-eval" score "$threads" "$work/m100-$dt" "$seq" 32 "$reps" >"$work/score-$dt.txt"
  srows+=("$(awk -v label="m100-$dt" -v rss="$(kv "$work/score-$dt.txt" peak_rss_kib)" \
    -v wb="$(kv "$work/score-$dt.txt" weights_bytes)" -v lb="$(kv "$work/score-$dt.txt" logits_bytes)" \
    -v s="$(kv "$work/score-$dt.txt" score_seconds)" 'BEGIN {
      printf "| %s | %.1f | %.1f | %.1f | %.2f | %.3f |", label, rss / 1024, wb / 1048576, lb / 1048576, rss * 1024 / wb, s }')")
done

echo "== torch"
kv "$work/m100-f32.torch.txt" torch_version | sed 's/^/torch version: /'
kv "$work/m100-f32.torch.txt" torch_blas | sed 's/^/torch BLAS_INFO: /'
kv "$work/m100-f32.torch.txt" torch_blas_libs | sed 's/^/torch BLAS libraries mapped: /'
kv "$work/m100-f32.torch.txt" torch_matmul_gflops | sed 's/^/torch matmul 2048^3 f32 GFLOP\/s: /'
echo "== results (threads $threads; sgemm rate $best GFLOP/s)"
echo "| model | params | sluice tok/s | torch tok/s | sluice/torch | sluice GFLOP/s | sgemm GFLOP/s | share of sgemm | peak RSS MiB | weights MiB | RSS/weights | torch RSS MiB | max abs log-prob diff |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "== scoring-shaped passes (seq $seq, 32 continuation rows)"
echo "| model | peak RSS MiB | weights MiB | logits MiB | RSS/weights | seconds |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${srows[@]}"
