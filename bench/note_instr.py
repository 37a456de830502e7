#!/usr/bin/env python3
"""The note scan's instruction detector on the labelled memory notes.

    python3 bench/note_instr.py [--sluice-notescan PATH] [--rounds A-B] [--list]

Runs the built sluice-notescan (tools/notescan.c: gates/scan.c's model-free
note scan, as the poisoning gate runs it) on every memory note of
tests/resources/gate-cases and prints, per round, how many notes of each kind
the `instruction` check matches, beside the older phrase patterns (the
`injection` check) and either of the two. Round 1 is the dev and held-out
splits, round 2 the fresh split, round N the split `roundN`. With --list,
each matched note's findings (category, directive kind, clause, words) and
each missed injection or off-topic note are printed too.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = os.path.join(ROOT, "tests", "resources", "gate-cases")
KINDS = ("injection", "off-topic", "false-fact", "clean")


def round_of(split):
    if split in ("dev", "heldout"):
        return 1
    if split == "fresh":
        return 2
    if split.startswith("round"):
        return int(split[5:])
    raise ValueError(split)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice-notescan", default=os.path.join(ROOT, "build", "me", "sluice-notescan"))
    ap.add_argument("--rounds", default=None, help="A-B, the rounds to read (default: all)")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    lo, hi = (1, 10**9)
    if a.rounds:
        parts = a.rounds.split("-")
        lo, hi = int(parts[0]), int(parts[-1])

    with open(os.path.join(CASES, "cases.json")) as f:
        cases = json.load(f)["cases"]
    notes = []
    for c in cases:
        if not c["family"].startswith("memory-"):
            continue
        r = round_of(c["split"])
        if not lo <= r <= hi:
            continue
        kind = "clean" if c["family"] == "memory-clean" else c["params"]["note"]
        notes.append((r, kind, c["id"], os.path.join(CASES, c["path"])))
    if not notes:
        sys.exit("no notes in rounds %s" % a.rounds)
    out = subprocess.run([a.sluice_notescan] + [n[3] for n in notes], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert len(out) == len(notes)

    table = {}
    for (r, kind, cid, path), line in zip(notes, out):
        rep = json.loads(line)
        checks = {c["check"]: c for c in rep["checks"]}
        new = checks["instruction"]["flagged"]
        old = checks["injection"]["flagged"]
        row = table.setdefault(r, {k: [0, 0, 0, 0] for k in KINDS})
        t = row[kind]
        t[0] += 1
        t[1] += new
        t[2] += old
        t[3] += new or old
        if a.list and (new or kind in ("injection", "off-topic")):
            text = open(path, encoding="utf-8").read().strip()
            mark = "MATCH" if new else "miss "
            print("%s r%-2d %-10s %s %r" % (mark, r, kind, cid, text[:160]))
            for f in checks["instruction"]["findings"]:
                print("        %s/%s %r %s" % (f["category"], f["directive"], f["excerpt"],
                                              f["words"]))
    if a.list:
        print()

    def cell(t, i):
        return "%d/%d" % (t[i], t[0])

    print("instruction check (new) | injection patterns (old) | either, matched/total")
    print("| rounds | injection | off-topic | false-fact | clean |")
    print("|---|---|---|---|---|")
    groups = [("%d" % r, [r]) for r in sorted(table)]
    present = sorted(table)
    if any(r <= 10 for r in present):
        groups.append(("1-10", [r for r in present if r <= 10]))
    if any(r > 10 for r in present):
        groups.append(("11-%d" % max(present), [r for r in present if r > 10]))
    for name, rs in groups:
        cells = []
        for k in KINDS:
            t = [sum(table[r][k][i] for r in rs) for i in range(4)]
            cells.append("%s \\| %s \\| %s" % (cell(t, 1), cell(t, 2), cell(t, 3)))
        print("| %s | %s |" % (name, " | ".join(cells)))


if __name__ == "__main__":
    main()
