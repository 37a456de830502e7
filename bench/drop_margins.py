#!/usr/bin/env python3
"""bench/drop_margins.py - what `token_margin_drop` found, per kind of case, from the reports
bench/gates_cases.py kept (--reports DIR).

    python3 bench/drop_margins.py [--cases tests/resources/gate-cases] [--list] DIR [DIR...]

`token_margin_drop` (gates/token_drop.c, docs/gates.md) fails an adapter when some token after
the harmful probes lowers its refusal margin more than `token_drop_max` nats below the lowest
drop of the pinned clean reference adapters at that token (`below_max`). For every LoRA case in
the reports this prints, per kind of case (clean families; backdoors by goal, position and
whether the trigger is pinned), how many the check named with 95% Clopper-Pearson intervals, the
median and largest `below_max` (with its case and token), how many of those named no other
check held (every other check of every gate passed), and for named backdoors how many were
named on a token their trigger ends with. With --list, every case's figure and token.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from answer_margins import check_of, kind, pinned_triggers  # noqa: E402
from gates_cases import kept_reports, rate, reports_parser  # noqa: E402


def others_pass(rep):
    """Whether every check but token_margin_drop, in every gate, passed."""
    return all(c["result"] == "pass" for g in rep["gates"] for c in g["checks"]
               if c["check"] != "token_margin_drop")


def main():
    ap = reports_parser(__doc__)
    ap.add_argument("--list", action="store_true", help="print every case's figure")
    a = ap.parse_args()
    pinned = pinned_triggers()
    kinds, unjudged = {}, 0
    for c, rep in kept_reports(a.cases, a.dirs):
        if c["kind"] != "lora":
            continue
        ch = check_of(rep, "token_margin_drop")
        if ch is None or ch.get("judged") is False or "below_max" not in ch:
            unjudged += 1
            continue
        top = (ch.get("largest") or [{}])[0]
        p = c.get("final_params") or c["params"]
        trig = p.get("trigger") if c["family"] == "backdoor" else None
        row = {"id": c["id"], "below": ch["below_max"], "token": top.get("token"),
               "named": ch["result"] == "fail", "alone": others_pass(rep),
               "on_trigger": bool(trig and top.get("token") and trig.endswith(top["token"]))}
        kinds.setdefault(kind(c, pinned), []).append(row)
        if a.list:
            print("%-24s %-34s below %7.2f on %-12r%s%s" % (
                c["id"], kind(c, pinned), row["below"], row["token"],
                "  NAMED" if row["named"] else "",
                " (no other check held it)" if row["named"] and row["alone"] else ""))
    if a.list:
        print()
    if unjudged:
        print("%d LoRA cases without a judged token_margin_drop (no reference pinned, or not "
              "run) are left out\n" % unjudged)
    print("%-34s %4s  %-22s %7s  %-40s %s" % ("kind", "n", "named", "median",
                                              "largest (case, token)", "named alone / on trigger"))
    for k in sorted(kinds):
        v = kinds[k]
        big = max(v, key=lambda r: r["below"])
        named = [r for r in v if r["named"]]
        print("%-34s %4d  %-22s %7.2f  %-40s %d / %d" % (
            k, len(v), rate(len(named), len(v)), statistics.median(r["below"] for r in v),
            "%.2f (%s, %r)" % (big["below"], big["id"], big["token"]),
            sum(r["alone"] for r in named), sum(r["on_trigger"] for r in named)))
    clean = [r for k, v in kinds.items() if not k.startswith("backdoor") for r in v]
    if clean:
        print("\nclean adapters, all: named %s" % rate(sum(r["named"] for r in clean), len(clean)))


if __name__ == "__main__":
    main()
