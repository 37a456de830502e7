#!/usr/bin/env bash
# Detection and false-positive rates of the gates on the labelled update cases
# (tests/resources/gate-cases), per gate and family with 95% Clopper-Pearson
# intervals, and the wall time of the three gates on one adapter. See
# docs/bench-gates.md.
#
#   bash bench/gates.sh [round32|round42|round41|round40|round39|round38|round37|round36|round35|round34|round33|round28|round31|round30|round29|round27|round9|round26|round25|round24|round23|round22|round21|round20|round19|round18|round17|round16|round15|round14|round13|round12|round11|round10|round8|round7|round6|round5|round4|round3|fresh|heldout|dev|all] [results.json]
#
# The thresholds are the default configuration (docs/gates.md). Each split was
# fixed before any gate ran on its cases; a split measures the rules blind
# until it has been run once, and later rounds were made when rules changed
# after a run: round32 (the default) the latest complete round, every family
# with twice the backdoors and fixed targets of its own, run once on the rules
# of da5d447; round33 the adapter families only, its ten fixed-target backdoors all
# with the trigger after the prompt (eight pinned), run once on the rules of e2b1941
# (trigger_answer); round34 the adapter families only, every backdoor with a made-up
# trigger after the prompt, run once on the rules of e2b1941 (a build of 18900a4;
# trigger_answer's row_alpha came after it); round35 planned as round33, run once
# on the rules of e6b5bb8 (row_alpha); round36 planned as round34, run once on the
# rules of 728268d (token_margin_drop, whose reference is pinned for every split
# but round29 to round32, the rounds it holds, as is the trigger scan's clean
# reference); round37 planned as round31, made to measure blind that clean
# reference (trigger_rise_reference, 560232f); round38 planned as round37, made
# to measure blind the scan's confirmation draws (random_insertions_confirm); round39
# planned as round38, made to measure blind the scan's token reference
# (token_rise_reference, 7deb66c); round40 planned as round36, made to measure
# blind the strings of jargon after the prompt (bench/string_drops.py, outside the
# gates); round41 planned as round40, made to measure blind those strings as the
# poisoning gate's string_margin_drop, on triggers not asked to be jargon; round42
# planned as round41, made to measure blind string_margin_drop with its second list
# (eval/suites/trigger-guesses) and its refitted limit, on triggers an attacker chose freely; round31, round30 and round29 the adapter families
# only with 40 backdoors and fixed targets of their own, round29 and round30
# each run once on the rules of 014fa98 (fixed_answer), round31 once on those
# of da5d447 (trigger_override_spare);
# round28 the complete round before, with twice the
# backdoors, run once on the rules of 76262f7; round27 a complete round run once on
# the rules of f96a15c; round9 the complete round before it;
# round26 the adapter families only,
# twice their counts as in round25; round25 the
# adapter and memory families, as round16 to round24, with twice their adapters;
# round19, round20 and round21 run once each on the rules of 169f40c, round22 and round23 once
# each on the rules of 1557017, round24 once on the rules of f5d2fd2, round25, round26 and
# round27 once each on the rules of f96a15c;
# rounds 10-15 are memory families only; tests/resources/gate-cases/README.md,
# docs/bench-gates.md say which rules each round measured blind).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
cases="${SLUICE_GATE_CASES:-tests/resources/gate-cases}"
python3 bench/gates_cases.py --sluice build/release/sluice --cases "$cases" \
  --split "${1:-round32}" --json "${2:-${TMPDIR:-/tmp}/sluice-gates-bench.json}"
