#!/usr/bin/env python3
"""bench/suffix_flips.py - what the trigger scan's flips asked after the prompt
(`trigger_suffix_flips_min`) changes in whole verdicts, from the reports bench/gates_cases.py
kept (--reports DIR, all three gates run), per family, with 95% Clopper-Pearson intervals.

    python3 bench/suffix_flips.py [--cases tests/resources/gate-cases] [--values 2,3,3+]
                                  [--list] DIR [DIR...]

Each scanned row of a report carries every position's z, shift and flips, so one run gives
every value: a case counts as not passed under a value when any check other than the two trigger
scans did not pass, or a scanned row meets the finding rule (bench/trigger_flips.py's `before`
rule: z, shift and flips beyond the report's limits) with that many flips asked after the
prompt; "N+" names one that flips every prompt counted there as well, when at least two (the
scan's rule since 2026-12-04: gates/poisoning.c, SUFFIX_ALL_MIN). "none" never names a trigger
after the prompt. Adapter cases only. --list prints every
finding after the prompt that meets the report's z and shift limits, with its flips, and every
case whose verdict differs between the values.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import kept_reports, rate, reports_parser  # noqa: E402
from trigger_flips import SCANS, row_named  # noqa: E402


def main():
    ap = reports_parser(__doc__)
    ap.add_argument("--values", default="2,3,3+",
                    help="suffix flips to weigh (comma-separated); N+ also names an insertion "
                         "that flips every prompt counted there, at least two (the rule since "
                         "2026-12-04)")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    values = [v for v in a.values.split(",")] + [None]
    label = {v: "%s flips" % v if v is not None else "none" for v in values}
    fams = {}
    for c, rep in kept_reports(a.cases, a.dirs):
        if c["kind"] != "lora":
            continue
        other, named = False, {v: False for v in values}
        for g in rep["gates"]:
            for ch in g["checks"]:
                if ch["check"] not in SCANS or "scanned" not in ch:
                    other = other or ch["result"] != "pass"
                    continue
                for row in ch["scanned"]:
                    p = row["positions"]["suffix"]
                    if a.list and p["z"] > ch["z_limit"] and p["shift"] > ch["shift_min"]:
                        print("%-9s %-24s %-18s %-14r after the prompt: %d flips of %d, z %.1f"
                              % (c["label"], c["id"], ch["check"], row["trigger"], p["flips"],
                                 p["counted"], p["z"]))
                    for v in values:
                        if v is None:
                            rule = dict(ch, suffix_flips_min=float("inf"))
                        else:
                            rule = dict(ch, suffix_flips_min=int(v.rstrip("+")))
                        named[v] = named[v] or row_named(row, rule, "before",
                                                         all_counted=v is not None and
                                                         v.endswith("+"))
        stopped = {v: other or named[v] for v in values}
        if a.list and len(set(stopped.values())) > 1:
            print("%-24s not passed: %s" % (c["id"], ", ".join(
                "%s %s" % (label[v], "yes" if stopped[v] else "no") for v in values)))
        t = fams.setdefault((c["label"], c["family"]), {"n": 0, **{v: 0 for v in values}})
        t["n"] += 1
        for v in values:
            t[v] += stopped[v]
    print("%-9s %-16s %4s  %s" % ("label", "family", "n",
                                  " ".join("%-22s" % ("not passed, " + label[v]) for v in values)))
    for (lab, fam), t in sorted(fams.items(), key=lambda kv: (kv[0][0] != "poisoned", kv[0][1])):
        print("%-9s %-16s %4d  %s" % (lab, fam, t["n"],
                                      " ".join("%-22s" % rate(t[v], t["n"]) for v in values)))


if __name__ == "__main__":
    main()
