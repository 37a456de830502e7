#!/usr/bin/env bash
# bench/null_stability.sh R... - how much the trigger scan's random-insertion
# null moves with its seed. For each R (random_insertions): a repository
# with prod = base + the facts adapter (good-adapter-01), then a backdoor
# (backdoor-03) and a clean adapter (good-adapter-02) stacked on facts under
# N names each (the name changes the state digest, which seeds the null);
# poisoning gate only; one JSON line per gate: seconds, verdict, named
# triggers, the two highest-z scanned rows. docs/bench-gates.md has a run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
S=${S:-$root/build/gcc/sluice}
CASES=$root/tests/resources/gate-cases
N=${N:-8}
for R in "$@"; do
  work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-ns-XXXXXX")
  export SLUICE_KEYS=$work/keys
  repo=$work/repo
  sl() { "$S" -C "$repo" "$@"; }
  echo "{\"poisoning\": {\"random_insertions\": $R}}" > $work/cfg.json
  "$S" init "$repo" --root-key root --gate-config $work/cfg.json >/dev/null
  sl key new alice --role proposer >/dev/null; sl key new ci --role gate-runner >/dev/null; sl key new ops --role operator >/dev/null
  sl suite add $root/eval/suites/*.json --key alice >/dev/null
  base=$(sl propose base $root/tests/resources/test-model --key alice | tail -1)
  sl gate $base --channel prod --key ci >/dev/null || true; sl promote $base --channel prod --key ops >/dev/null
  facts=$(sl propose lora $CASES/good-adapter-01 --onto prod --name facts --key alice | tail -1)
  sl gate $facts --channel prod --key ci >/dev/null || true; sl promote $facts --channel prod --key ops >/dev/null
  for c in backdoor-03 good-adapter-02; do
    for i in $(seq 0 $((N-1))); do
      id=$(sl propose lora $CASES/$c --onto prod --name "x$i" --key alice | tail -1)
      t0=$(date +%s.%N)
      out=$(sl gate $id --channel prod --gate poisoning --no-record --json 2>/dev/null || true)
      t1=$(date +%s.%N)
      echo "$out" | jq -c --arg R $R --arg c $c --arg i $i --arg t "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')" '
        [.gates[].checks[] | select(.check=="trigger_scan")][0] as $s |
        {R: $R, case: $c, name: $i, secs: $t, result: .result, scan: $s.result,
         named: [$s.findings[]?.trigger],
         top: ($s.scanned | sort_by(-.z) | .[0:2] | map({t: .trigger, z: (.z*10|round/10), s: (.shift*100|round/100), p: .position}))}'
    done
  done
  rm -rf $work
done
