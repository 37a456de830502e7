#!/usr/bin/env python3
"""bench/flip_shift.py - what `trigger_flip_shift_min` F changes, from the reports
bench/gates_cases.py kept (--reports DIR): before the prompt and after its first word, a flip
counts only where the insertion's rise on the flipped prompt is at least F nats. For each F of
--values, per label, how many adapter and memory cases the whole verdict does not pass, and the
cases whose verdict changes against the first value.

    python3 bench/flip_shift.py [--cases tests/resources/gate-cases] [--values 0,2,3,4,5]
                                [--others DIR ...] [--list] DIR...

Each scanned row of a report gives every position's figures (z, shift, flips by kind), but a
position's shift is the largest rise over all its counted prompts, not the flipped prompt's. So
this weighs F at position level: a position's flips count when its shift is at least F. That is
exact where the largest rise is on the flipped prompt, which holds for every finding the rerun
on the rules with the key checked (docs/bench-gates.md); reports made with the key count their
`weak` prompts as flips again for values under the report's own F. After the prompt nothing
changes (the rule does not apply there): a row is named there as gates/poisoning.c names it
(z, shift, `trigger_suffix_flips_min` or every prompt counted, and the override). The other
checks of every gate are taken as they are, from the same report, or, with --others, from the
report of the same case in one of those directories when the report at hand ran the poisoning
gate only; `lora_spectral` is left out (reported, not judged, since 1557017).
"""
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import kept_reports, rate, reports_parser  # noqa: E402
from trigger_flips import SCANS, kind_flips_enough, overrides, suffix_flips_enough  # noqa: E402


def position_named(at, p, ch, F):
    """Whether one position's figures name the row's trigger with flips of at least F nats."""
    if at == "suffix":
        if overrides(p, ch.get("override_shift", 0)):
            return True
        return (p["z"] > ch["z_limit"] and p["shift"] > ch["shift_min"] and
                suffix_flips_enough(p["flips"], p["counted"], ch["suffix_flips_min"]))
    if not (p["z"] > ch["z_limit"] and p["shift"] > ch["shift_min"]) or p["shift"] < F:
        return False
    kinds = dict(p["flipped_by_kind"])
    if F < ch.get("flip_shift_min", 0) and p.get("weak"):
        # The report's own F hid weak flips; their kinds are not given, so they count as one
        # kind with the position's largest count (exact for the one-flip rows that matter).
        k = max(kinds, key=kinds.get) if kinds else ""
        kinds[k] = kinds.get(k, 0) + p["weak"]
    return kind_flips_enough(kinds, ch)


def scan_named(rep, F):
    """The (check, trigger, position) the trigger scans of rep name with flips of F nats."""
    named = []
    for g in rep["gates"]:
        for ch in g["checks"]:
            if ch.get("check") in SCANS and "scanned" in ch:
                for row in ch["scanned"]:
                    for at, p in row["positions"].items():
                        if position_named(at, p, ch, F):
                            named.append("%s %r %s %.1f nats" % (ch["check"], row["trigger"], at,
                                                                 p["shift"]))
    return named


def other_checks(rep, gates):
    """The checks of rep's gates (all when gates is None) that did not pass, but the scans'
    and lora_spectral."""
    return ["%s %s" % (ch["check"], ch["result"]) for g in rep["gates"]
            if gates is None or g["gate"] in gates for ch in g["checks"]
            if ch.get("check") not in SCANS and ch.get("check") != "lora_spectral"
            and ch.get("result") != "pass"]


def main():
    ap = reports_parser(__doc__)
    ap.add_argument("--values", default="0,2,3,4,5", help="values of F, comma-separated")
    ap.add_argument("--others", nargs="*", default=[],
                    help="directories of full reports to take the regression and safety gates "
                         "from when DIR's reports ran the poisoning gate only")
    ap.add_argument("--list", action="store_true", help="print each case a value changes")
    a = ap.parse_args()
    values = [float(v) for v in a.values.split(",")]
    others = {c["id"]: rep for c, rep in kept_reports(a.cases, a.others)} if a.others else {}
    tally, n = Counter(), Counter()
    for c, rep in kept_reports(a.cases, a.dirs):
        if c["kind"] == "replay":  # no behaviour scanned: the served model is the baseline's
            continue
        gates = {g["gate"] for g in rep["gates"]}
        rest = other_checks(rep, None)
        if c["id"] in others and not {"regression", "safety"} <= gates:
            rest += other_checks(others[c["id"]], {"regression", "safety"} - gates)
        key = (c["label"], c["family"])
        n[key] += 1
        first = None
        for F in values:
            named = scan_named(rep, F)
            stopped = bool(rest or named)
            tally[key + (F,)] += stopped
            if first is None:
                first = (stopped, named)
            elif a.list and stopped != first[0]:
                print("%-9s %-24s F %g: %s -> %s (%s)" % (
                    c["label"], c["id"], F, "not passed" if first[0] else "passed",
                    "not passed" if stopped else "passed", "; ".join(first[1]) or "-"))
    print("%-9s %-16s %4s  " % ("label", "family", "n") +
          "  ".join("%-22s" % ("F %g not passed" % F) for F in values))
    for key in sorted(n, key=lambda k: (k[0] != "poisoned", k[1])):
        print("%-9s %-16s %4d  " % (key[0], key[1], n[key]) +
              "  ".join("%-22s" % rate(tally[key + (F,)], n[key]) for F in values))
    for label in ("poisoned", "clean"):
        tot = sum(v for k, v in n.items() if k[0] == label)
        if tot:
            print("%-9s %-16s %4d  " % (label, "all", tot) + "  ".join(
                "%-22s" % rate(sum(tally[k + (F,)] for k in n if k[0] == label), tot)
                for F in values))


if __name__ == "__main__":
    main()
