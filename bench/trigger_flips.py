#!/usr/bin/env python3
"""bench/trigger_flips.py - what the trigger scan's flip rule names, under the rule before
`trigger_kind_flips_min` and under the rule with it, from the reports bench/gates_cases.py kept
(--reports DIR), per family, with 95% Clopper-Pearson intervals.

    python3 bench/trigger_flips.py [--cases tests/resources/gate-cases] DIR [DIR...]

Each scanned row of a report carries every position's figures (z, shift, flips, flips per kind
of prompt), so one run gives both rules:
- before: a finding at a position where z > z_limit, shift > shift_min and flips >= flips_min
  (after the prompt, suffix_flips_min);
- with it: the same, except that before the prompt and after its first word the flips must be
  within one kind: kind_flips_min of them, or all the kind's prompts if it has fewer (prompts of
  no kind: flips_min).
"named" counts cases where either scan (trigger_scan, trigger_scan_alone) names something;
"poisoning not passed" adds the poisoning gate's other checks (a case stopped by them counts
under both rules).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import kept_reports, rate, reports_parser  # noqa: E402

SCANS = ("trigger_scan", "trigger_scan_alone")


def suffix_flips_enough(flips, counted, need, all_counted=True):
    """Whether flips after the prompt name a trigger: need of them, or every prompt counted
    there if at least two (SUFFIX_ALL_MIN in gates/poisoning.c since 2026-12-04; implied by any
    suffix_flips_min up to 2)."""
    return flips >= need or (all_counted and flips >= 2 and flips == counted)


def kind_flips_enough(flipped_by_kind, check):
    """Whether flips before the prompt or after its first word, by kind of prompt, name a
    trigger under check's rule (flips_enough in gates/poisoning.c): kind_flips_min within one
    kind, or all the kind's prompts if it has fewer, never fewer than flips_min; prompts of no
    kind (key "") need flips_min."""
    fmin = check.get("flips_min", 0)
    fkind = check.get("kind_flips_min", fmin)
    nkind = check.get("prompt_kinds", {})
    return any(n > 0 and n >= fmin and n >= min(fkind, nkind.get(k, 0) if k else fmin)
               for k, n in flipped_by_kind.items())


def overrides(p, omin):
    """Whether a position's figures after the prompt make an override of omin nats
    (trigger_override_shift; overrides in gates/poisoning.c): every prompt counted there, at
    least two, flipped, with a shift of at least omin."""
    return omin > 0 and p["flips"] >= 2 and p["flips"] == p["counted"] and p["shift"] >= omin


def row_named(row, check, rule, all_counted=True):
    zl, smin = check["z_limit"], check["shift_min"]
    fmin = check.get("flips_min", 0)
    fsuf = check.get("suffix_flips_min", fmin)
    for at, p in row["positions"].items():
        if not (p["z"] > zl and p["shift"] > smin):
            continue
        if at == "suffix":
            ok = suffix_flips_enough(p["flips"], p["counted"], fsuf, all_counted)
        elif rule == "before":
            ok = p["flips"] >= fmin
        else:
            ok = kind_flips_enough(p["flipped_by_kind"], check)
        if ok:
            return True
    return False


def case_figures(rep):
    """(named before, named with, other poisoning checks not passed, names before, names with)"""
    named = {"before": [], "with": []}
    other = False
    for g in rep["gates"]:
        if g["gate"] != "poisoning":
            continue
        for c in g["checks"]:
            if c["check"] in SCANS:
                if "scanned" not in c:
                    other = other or c["result"] != "pass"
                    continue
                for row in c["scanned"]:
                    if "positions" not in row:
                        sys.exit("a report without per-position figures: made before this script")
                    for rule in named:
                        if row_named(row, c, rule):
                            named[rule].append(row["trigger"])
            elif c["result"] != "pass":
                other = True
    return named, other


def main():
    ap = reports_parser(__doc__)
    ap.add_argument("--list", action="store_true", help="print each case the rules differ on")
    a = ap.parse_args()
    fams = {}
    for c, rep in kept_reports(a.cases, a.dirs):
        named, other = case_figures(rep)
        t = fams.setdefault((c["label"], c["family"]), [0] * 5)
        t[0] += 1
        t[1] += bool(named["before"])
        t[2] += bool(named["with"])
        t[3] += bool(named["before"]) or other
        t[4] += bool(named["with"]) or other
        if a.list and bool(named["before"]) != bool(named["with"]):
            print("%-24s before %s, with %s, other checks %s" %
                  (c["id"], named["before"], named["with"], "not passed" if other else "pass"))
    print("%-9s %-16s %4s  %-22s %-22s %-22s %-22s" %
          ("label", "family", "n", "named before", "named with",
           "poisoning before", "poisoning with"))
    for (label, fam), t in sorted(fams.items(), key=lambda kv: (kv[0][0] != "poisoned", kv[0][1])):
        print("%-9s %-16s %4d  %-22s %-22s %-22s %-22s" %
              (label, fam, t[0], rate(t[1], t[0]), rate(t[2], t[0]), rate(t[3], t[0]), rate(t[4], t[0])))


if __name__ == "__main__":
    main()
