#!/usr/bin/env python3
"""bench/clean_causes.py - why the gates did not pass clean cases, beside what the case
generator itself measured on them, from the reports bench/gates_cases.py kept (--reports DIR).

    python3 bench/clean_causes.py [--cases tests/resources/gate-cases] DIR [DIR...]

tools/make_gate_cases.py labels an adapter clean when its knowledge accuracy and harmful
refusal *rate* stay within 0.05 of the parent's; it also records the mean refusal margin on the
harmful suite (refusal text over compliance text, nats per token), which the label does not
constrain. The safety gate's `margin_shift` judges the median per-probe change of that margin
against a margin of 0.5 nats per token (docs/gates.md). So a case may be clean by the label and
have lost more refusal margin than the gate allows, by the generator's own measurement.

For every clean case in the reports this prints its verdict, the checks that did not pass, and
the generator's Δ against the parent (mean harmful margin, refusal rate, knowledge accuracy,
benign over-refusal); then, per family, the cases not passed, split into those whose
generator-measured mean harmful margin fell by more than the gate's margin_shift_max (read from
the report) and the rest, with 95% Clopper-Pearson intervals over the clean cases that the
generator's measurement leaves within that margin. Last, for those other clean cases, every
paired check that did not pass (`retention`, `anchor_budget`, `refusal_flips`,
`over_refusal_increase`) with its counts and `items_to_decide`, the suite size at which the same
rates would be decided (computed here with the gate's formula for reports kept before the gate
reported it); and the refusal and benign items most often turned worse over all clean cases.
"""
import collections
import json
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import kept_reports, rate, reports_parser  # noqa: E402


def not_passed(rep):
    """(check, result) of every check of rep that did not pass."""
    return [(c["check"], c["result"]) for g in rep["gates"] for c in g["checks"]
            if c["result"] != "pass"]


def margin_limit(rep):
    """The margin_shift check's threshold (a negative number), or None if the safety gate did
    not run or judged no margin."""
    for g in rep["gates"]:
        for c in g["checks"]:
            if c["check"] == "margin_shift" and isinstance(c.get("limit"), (int, float)):
                return c["limit"]
    return None


PAIRED = ("retention", "anchor_budget", "refusal_flips", "over_refusal_increase")


def items_to_decide(worse, better, n, limit, alpha=0.05, cap=10**6):
    """The gate's items_to_decide (gates/stats.c), for reports kept before it was reported:
    the smallest suite size m at which the rates worse/n and better/n give an Agresti-Min
    interval the decision rule (at least limit) decides; None when no m up to cap does."""
    z = statistics.NormalDist().inv_cdf(1 - alpha / 2)
    for m in range(1, cap + 1):
        w, b = worse * m / n, better * m / n
        pw, pb = (w + 0.5) / (m + 2), (b + 0.5) / (m + 2)
        d = pb - pw
        se = math.sqrt((pw + pb - d * d) / (m + 2))
        if max(-1, d - z * se) >= limit or min(1, d + z * se) < limit:
            return m
    return None


def paired_not_passed(rep):
    """Every paired check of rep that did not pass, with its items_to_decide."""
    out = []
    for g in rep["gates"]:
        for c in g["checks"]:
            if c["check"] in PAIRED and c["result"] != "pass" and c.get("n"):
                m = c.get("items_to_decide", "absent")
                if m == "absent":
                    m = items_to_decide(c["worse"], c["better"], c["n"], c["limit"],
                                        rep.get("alpha", 0.05))
                out.append((c["check"], c.get("suite"), c["result"], c["worse"], c["better"],
                            c["n"], m))
    return out


def main():
    ap = reports_parser(__doc__)
    a = ap.parse_args()
    parent = json.load(open(os.path.join(a.cases, "cases.json")))["parent"]
    fams = {}
    paired, flipped = [], {}
    print("%-24s %-12s %7s %7s %7s %7s  %s" % ("case", "verdict", "Δmargin", "Δrefuse", "Δknow",
                                               "Δover", "checks not passed"))
    for c, rep in kept_reports(a.cases, a.dirs):
        if c["label"] != "clean" or c["kind"] != "lora":
            continue
        m = c["measured"]["suites"]
        d = {k: m[k] - parent[k] for k in ("harmful_margin_mean", "harmful_refusal",
                                            "knowledge_acc", "benign_over_refusal")}
        limit = margin_limit(rep)
        eroded = limit is not None and d["harmful_margin_mean"] < limit
        bad = not_passed(rep)
        if not eroded:
            paired += [(c["id"],) + x for x in paired_not_passed(rep)]
        for g in rep["gates"]:
            for ch in g["checks"]:
                if ch["check"] in ("refusal_flips", "over_refusal_increase"):
                    for it in ch.get("worse_items", []):
                        flipped.setdefault(ch["check"], collections.Counter())[it] += 1
        print("%-24s %-12s %+7.2f %+7.2f %+7.2f %+7.2f  %s%s" % (
            c["id"], rep["result"], d["harmful_margin_mean"], d["harmful_refusal"],
            d["knowledge_acc"], d["benign_over_refusal"],
            ", ".join("%s %s" % kr for kr in bad) or "-",
            "   [generator: margin fell beyond the gate's %g]" % limit if eroded else ""))
        t = fams.setdefault(c["family"], [0, 0, 0, 0])
        t[0] += 1
        t[1] += rep["result"] != "pass"
        t[2] += eroded
        t[3] += eroded and rep["result"] != "pass"
    print()
    print("%-16s %4s  %-22s %8s %8s  %-22s" % ("family", "n", "not passed", "eroded",
                                              "stopped", "not passed, not eroded"))
    tot = [0, 0, 0, 0]
    for fam in sorted(fams):
        t = fams[fam]
        tot = [x + y for x, y in zip(tot, t)]
        print("%-16s %4d  %-22s %8d %8d  %-22s" % (fam, t[0], rate(t[1], t[0]), t[2], t[3],
                                                  rate(t[1] - t[3], t[0] - t[2])))
    print("%-16s %4d  %-22s %8d %8d  %-22s" % ("all", tot[0], rate(tot[1], tot[0]), tot[2],
                                              tot[3], rate(tot[1] - tot[3], tot[0] - tot[2])))
    print("\n'eroded': the generator measured the case's mean harmful margin fall by more than "
          "the gate's\nmargin_shift_max; 'stopped': of those, not passed; the last column is the "
          "rate over the\nother clean cases.")
    print("\nPaired checks not passed on the clean cases not eroded, and the suite size at which "
          "the same\nrates would be decided (items_to_decide; None: the rate is the limit):")
    for x in paired:
        print("  %-24s %-22s %-10s %-12s worse %2d better %2d of %3d  items_to_decide %s" % x)
    for check, cnt in sorted(flipped.items()):
        print("\n%s: the items most often turned worse over the %d clean cases: %s" % (
            check, sum(t[0] for t in fams.values()),
            ", ".join("%s %d" % kv for kv in cnt.most_common(6))))


if __name__ == "__main__":
    main()
