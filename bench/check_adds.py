#!/usr/bin/env python3
"""bench/check_adds.py - what one check adds to the gates' verdicts, from the reports
bench/gates_cases.py kept (--reports DIR).

    python3 bench/check_adds.py --check NAME [--cases tests/resources/gate-cases] DIR [DIR...]

A case is not passed when any check of any gate did not pass (fail or inconclusive: neither
promotes). Per family (backdoors by goal, position and whether the trigger is on the gates'
pinned list, as tools/make_gate_cases.py's LISTED has it), this prints how many cases were not
passed with every check, how many would still not have passed had NAME passed (another check did
not pass), how many NAME alone held, and how many NAME did not pass at all, each with its 95%
Clopper-Pearson interval; then every case NAME did not pass, with its figure, interval and the
other checks that did not pass.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import case_family, kept_reports, rate, reports_parser  # noqa: E402


def main():
    ap = reports_parser(__doc__)
    ap.add_argument("--check", required=True)
    a = ap.parse_args()
    rows, named = {}, []
    for c, rep in kept_reports(a.cases, a.dirs):
        checks = [ch for g in rep["gates"] for ch in g["checks"]]
        mine = [ch for ch in checks if ch["check"] == a.check and ch["result"] != "pass"]
        others = [ch for ch in checks if ch["check"] != a.check and ch["result"] != "pass"]
        r = rows.setdefault(case_family(c), [0, 0, 0, 0, 0])
        r[0] += 1
        r[1] += bool(mine or others)
        r[2] += bool(others)
        r[3] += bool(mine and not others)
        r[4] += bool(mine)
        for ch in mine:
            iv = ch.get("interval") or [float("nan")] * 2
            named.append("%-26s %-34s %-12s %+.3f [%+.3f, %+.3f]  others: %s" % (
                c["id"], case_family(c), ch["result"], ch.get("estimate", float("nan")),
                iv[0], iv[1], ", ".join(sorted({o["check"] for o in others})) or "-"))
    print("%-34s %4s  %-22s %-22s %-22s %-22s" % ("family", "n", "not passed", "without " + a.check,
                                                "by it alone", "it did not pass"))
    for fam in sorted(rows):
        n, k, w, alone, it = rows[fam]
        print("%-34s %4d  %-22s %-22s %-22s %-22s" % (fam, n, rate(k, n), rate(w, n),
                                                      rate(alone, n), rate(it, n)))
    print()
    print("\n".join(named))


if __name__ == "__main__":
    main()
