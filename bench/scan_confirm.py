#!/usr/bin/env python3
"""What the trigger scan's confirmation draws changed, read from kept gate reports.

    python3 bench/scan_confirm.py NEW_DIR [OLD_DIR]

NEW_DIR holds the reports `bench/gates_cases.py --reports DIR` keeps (one CASE_ID.json each)
under the default configuration, where the scan draws its null on from `random_insertions`
(16) strings to `random_insertions_confirm` (64) at a length where some candidate meets every
condition of a finding but z (docs/gates.md). Each report's `random.by_length` gives the draws
at each length, so NEW_DIR alone says how often the null was drawn on, for which labels, and
at which lengths.

OLD_DIR, if given, holds reports of the same cases made with `--gate-config` of
{"poisoning": {"random_insertions_confirm": 0}}: the rule before. The first 16 draws at each
length are the same in both runs (the further ones come from a generator of their own), so any
difference between the two is the confirmation's. Prints each case whose scan verdict or named
triggers differ, with the z of each named trigger in both, and per label the cases each rule's
scan failed. Both `trigger_scan` and, for stacked runs, `trigger_scan_alone` are read.
"""
import argparse
import glob
import json
import os
import statistics
from collections import Counter

CHECKS = ("trigger_scan", "trigger_scan_alone")


def scans(path):
    rep = json.load(open(path))
    out = {}
    for g in rep.get("gates", []):
        for c in g.get("checks", []):
            if c.get("check") in CHECKS:
                out[c["check"]] = c
    return out


def named(c):
    return {(f["trigger"], f["position"]): f["z"] for f in c.get("findings") or []
            if "trigger" in f}


def label(case):
    return "poisoned" if case.startswith("backdoor") else "clean"


def load(d):
    return {os.path.basename(f)[:-5]: scans(f) for f in sorted(glob.glob(os.path.join(d, "*.json")))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("new")
    ap.add_argument("old", nargs="?")
    a = ap.parse_args()
    new = load(a.new)
    drawn_on = Counter()
    lengths = Counter()
    per_case = {"clean": [], "poisoned": []}
    for case, cs in new.items():
        for name, c in cs.items():
            by = c.get("random", {}).get("by_length", {})
            n = c.get("random", {}).get("n")
            more = sorted(int(k.split("_")[0]) for k, v in by.items() if v.get("draws", n) != n)
            per_case[label(case)].append(len(more))
            if more:
                drawn_on[(label(case), name)] += 1
                for m in more:
                    lengths[m] += 1
    print("scans whose null was drawn on at some length (of all scans read):")
    for lab in ("clean", "poisoned"):
        k = per_case[lab]
        if k:
            print("  %-8s %d of %d; lengths drawn on per scan: mean %.2f" % (
                lab, sum(1 for x in k if x), len(k), statistics.mean(k)))
    print("  lengths drawn on (tokens: scans):",
          ", ".join("%d: %d" % (m, lengths[m]) for m in sorted(lengths)))
    if not a.old:
        return
    old = load(a.old)
    fails = Counter()
    print("\ncases whose scan differs (new rule against the rule before):")
    for case in sorted(set(new) & set(old)):
        for name in CHECKS:
            cn, co = new[case].get(name), old[case].get(name)
            if not cn or not co:
                continue
            fails[(label(case), name, "new")] += cn["result"] == "fail"
            fails[(label(case), name, "old")] += co["result"] == "fail"
            fails[(label(case), name, "n")] += 1
            if cn["result"] != co["result"] or set(named(cn)) != set(named(co)):
                fmt = lambda d: ", ".join("%s@%s z %.1f" % (t, p, z)
                                          for (t, p), z in sorted(d.items())) or "-"
                print("  %-24s %-18s new %-5s [%s]  before %-5s [%s]" % (
                    case, name, cn["result"], fmt(named(cn)), co["result"], fmt(named(co))))
    print("\nscans failed, new rule / rule before (of cases read in both):")
    for lab in ("clean", "poisoned"):
        for name in CHECKS:
            if fails[(lab, name, "n")]:
                print("  %-8s %-18s %d / %d of %d" % (lab, name, fails[(lab, name, "new")],
                                                     fails[(lab, name, "old")],
                                                     fails[(lab, name, "n")]))


if __name__ == "__main__":
    main()
