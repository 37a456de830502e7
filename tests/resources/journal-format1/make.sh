#!/usr/bin/env bash
# Makes repo.tar.gz beside this script: a sluice repository whose journal
# was written with channels.json format 1 (each channel's "held" and
# "withdrawn" lists in every entry), by the sluice that wrote that format
# (commit 8998edb and before). tests/cli/test_format1.c opens it with the
# current sluice, which reads format 1 and decides on the move records.
#
# usage: make.sh SLUICE SLUICE_SYNTH   (both built from commit 8998edb)
#
# The keys in the archive (keys/) are test keys made here, for this
# fixture only. status.json and history-*.json are what the format-1
# sluice itself answered at the end.
set -euo pipefail
S=$1 SYNTH=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-format1-XXXXXX")
trap 'rm -rf "$work"' EXIT
export SLUICE_KEYS="$work/f1/keys"
repo=$work/f1/repo
mkdir -p "$work/f1" "$work/in"

"$SYNTH" model "$work/in/base" --hidden 8 --inter 16 --layers 1 --vocab 16 >/dev/null
for i in 1 2 3; do "$SYNTH" lora "$work/in/a$i" --base "$work/in/base" --r 2 --seed "$i" >/dev/null; done
"$S" init "$repo" --required-gates none --root-key root >/dev/null
"$S" -C "$repo" key new alice --role proposer >/dev/null
"$S" -C "$repo" key new ops --role operator >/dev/null
p() { "$S" -C "$repo" propose "$@" --key alice | tail -n1; }
base=$(p base "$work/in/base" -m base)
a1=$(p lora "$work/in/a1" --onto "$base" -m a1)
a2=$(p lora "$work/in/a2" --onto "$a1" -m a2)
a3=$(p lora "$work/in/a3" --onto "$a2" -m a3)
m() { "$S" -C "$repo" "$@" --key ops >/dev/null; }
# staging: forward, back twice (the second default rollback returns to what
# the first withdrew), back to the base, forward again with an override,
# then a reset and an anchor.
m promote "$base" --channel staging
m promote "$a1" --channel staging
m promote "$a2" --channel staging
m rollback staging --reason "a2 regressed"
m rollback staging --reason "the regression was the suite's"
m rollback staging --to "$base" --reason "back to the base"
m promote "$a1" --channel staging --override-withdrawn "a1 was fine"
m promote "$a2" --channel staging --override-withdrawn "fixed upstream"
m promote "$a3" --channel staging
m rollback staging --reason "a3 leaks"
m reset staging "$base" --reason "start over"
m anchor staging "$a1" --reason "a1 is the reference"
# prod: forward twice, back once (a1 stays withdrawn)
m promote "$base" --channel prod
m promote "$a1" --channel prod
m rollback prod --reason "a1 misbehaves in prod"
"$S" -C "$repo" verify >/dev/null
"$S" -C "$repo" status --json > "$work/f1/status.json"
"$S" -C "$repo" history staging --json > "$work/f1/history-staging.json"
"$S" -C "$repo" history prod --json > "$work/f1/history-prod.json"
printf '%s\n' "base $base" "a1 $a1" "a2 $a2" "a3 $a3" > "$work/f1/versions.txt"
# The index is derived: the archive holds git's objects and refs only.
rm -rf "$repo/sluice/journal-index"
git -C "$repo" gc -q --aggressive 2>/dev/null || true
tar -C "$work" --sort=name --owner=0 --group=0 --mtime=2026-12-03 -czf "$here/repo.tar.gz" f1
echo "$here/repo.tar.gz: $(stat -c %s "$here/repo.tar.gz") bytes"
