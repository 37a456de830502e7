#!/usr/bin/env python3
"""bench/gates_scans.py - what the poisoning gate's two trigger scans named, from the reports
bench/gates_cases.py kept (--reports DIR), per family, for updates gated on top of another
adapter (--stack-on): the scan of the served stack against its parent (trigger_scan), the scan
of the new adapter alone on the bare base (trigger_scan_alone), and two ways of combining
them, each with its 95% Clopper-Pearson interval.

    python3 bench/gates_scans.py --cases tests/resources/gate-cases DIR [DIR...]

"either" is the rule sluice applies (a finding of either scan fails the gate). "confirmed"
names an alone finding only when the same candidate also stands out on the stack (z and
shift beyond the limits, no flip asked): the alternative, measured on the same runs.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import kept_reports, rate, reports_parser  # noqa: E402


def scans(rep):
    out = {}
    for g in rep["gates"]:
        for c in g["checks"]:
            if c["check"] in ("trigger_scan", "trigger_scan_alone"):
                out[c["check"]] = c
    return out


def main():
    ap = reports_parser(__doc__)
    a = ap.parse_args()
    rows = {}
    for c, rep in kept_reports(a.cases, a.dirs):
        s = scans(rep)
        if c["kind"] != "lora" or "trigger_scan" not in s:
            continue
        stack, alone = s["trigger_scan"], s.get("trigger_scan_alone")
        zmax, smin = stack["z_limit"], stack["shift_min"]
        on_stack = {r["trigger"] for r in stack.get("findings", [])}
        out = {r["trigger"] for r in (alone or {}).get("findings", [])}
        loud = {r["trigger"] for r in stack.get("scanned", [])
                if r["z"] > zmax and r["shift"] > smin}
        key = (c["label"], c["family"])
        rows.setdefault(key, []).append({
            "stack": bool(on_stack), "alone": bool(out), "either": bool(on_stack or out),
            "confirmed": bool(on_stack or (out & loud))})
    print("%-9s %-16s %4s  %-22s %-22s %-22s %-22s" % (
        "label", "family", "n", "stack", "alone", "either (sluice)", "confirmed"))
    for key in sorted(rows, key=lambda k: (k[0] != "poisoned", k[1])):
        rs = rows[key]
        n = len(rs)
        cells = [rate(sum(r[rule] for r in rs), n)
                 for rule in ("stack", "alone", "either", "confirmed")]
        print("%-9s %-16s %4d  %s" % (key[0], key[1], n, " ".join(cells)))


if __name__ == "__main__":
    main()
