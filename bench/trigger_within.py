#!/usr/bin/env python3
"""What the trigger scan's clean reference changed, read from kept gate reports.

    python3 bench/trigger_within.py DIR [DIR ...] [--cases tests/resources/gate-cases]

DIR holds the reports `bench/gates_cases.py --reports DIR` keeps (one CASE_ID.json each), made
with a `trigger_rise_reference` suite pinned (docs/gates.md, "Flips against clean adapters").
Each scanned row gives, per position, the flips that counted and the ones the reference did not
let count (`within_reference`). A row is "spared" when, counting those back, it would have
been a finding by the rule without the reference: before the prompt or after its first word,
z above the check's z_limit, shift above its shift_min, and at least flips_min flips (every
default asks one flip of any kind there; a configuration with trigger_kind_flips_min above 1 is
not modelled and the script says so). A case is spared when such rows were its scan's only
would-be findings; whether it then passed depends on the other checks, which are listed.

Prints each case with a spared row, then per family: cases whose scan failed, cases the
reference spared the scan's verdict for, and of those, cases with no other check failing or
inconclusive in the report.
"""
import argparse
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSITIONS = ("prefix", "after_first_word")


def scan_check(rep):
    for g in rep.get("gates", []):
        for c in g.get("checks", []):
            if c.get("check") == "trigger_scan":
                return c
    return None


def other_not_passed(rep):
    return sorted({c["check"] for g in rep.get("gates", []) for c in g.get("checks", [])
                   if c.get("check") not in (None, "trigger_scan")
                   and c.get("result") in ("fail", "inconclusive")})


def spared_rows(c):
    """Rows that were a finding only by the flips the reference did not count."""
    if c.get("kind_flips_min", 1) > 1:
        sys.exit("trigger_within.py: kind_flips_min above 1 is not modelled")
    zmax, smin, fmin = c["z_limit"], c["shift_min"], max(c["flips_min"], 1)
    named = {(f["trigger"], f["position"]) for f in c.get("findings") or []}
    out = []
    for row in c.get("scanned", []):
        for at in POSITIONS:
            p = row["positions"][at]
            within = p.get("within_reference", 0)
            if not within or (row["trigger"], at) in named:
                continue
            if p["z"] > zmax and p["shift"] > smin and p["flips"] + within >= fmin:
                out.append((row["trigger"], at, p["flips"], within, p["shift"], p["z"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--cases", default=os.path.join(ROOT, "tests/resources/gate-cases"))
    a = ap.parse_args()
    family = {c["id"]: c["family"] for c in
              json.load(open(os.path.join(a.cases, "cases.json")))["cases"]}
    tally = {}
    applied = 0
    for d in a.dirs:
        for f in sorted(glob.glob(os.path.join(d, "*.json"))):
            cid = os.path.basename(f)[:-5]
            rep = json.load(open(f))
            c = scan_check(rep)
            if c is None:
                continue
            applied += bool((c.get("rise_reference") or {}).get("applied"))
            rows = spared_rows(c)
            t = tally.setdefault(family.get(cid, "?"), [0, 0, 0, 0])
            t[0] += 1
            t[1] += c.get("result") == "fail"
            if rows and c.get("result") != "fail":
                others = other_not_passed(rep)
                t[2] += 1
                t[3] += not others
                print("%-26s spared: %s; other checks not passed: %s" % (
                    cid, "; ".join("%s %s (flips %d + %d within, shift %.2f, z %.1f)" % r
                                   for r in rows), ", ".join(others) or "none"))
            elif rows:
                print("%-26s rows spared, scan still fails on another: %s" % (
                    cid, "; ".join("%s %s" % r[:2] for r in rows)))
    print("\nreports with the reference applied: %d" % applied)
    print("%-18s %6s %11s %8s %22s" % ("family", "cases", "scan fails", "spared",
                                        "spared, nothing else"))
    for fam in sorted(tally):
        n, fails, sp, alone = tally[fam]
        print("%-18s %6d %11d %8d %22d" % (fam, n, fails, sp, alone))


if __name__ == "__main__":
    main()
