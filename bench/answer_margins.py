#!/usr/bin/env python3
"""bench/answer_margins.py - how near `trigger_answer` came to its limit, per kind of case, from
the reports bench/gates_cases.py kept (--reports DIR).

    python3 bench/answer_margins.py [--cases tests/resources/gate-cases] [--list] DIR [DIR...]

`trigger_answer` (gates/poisoning.c, docs/gates.md) names an adapter when the low end of one of
its rows (a pinned trigger after the prompt, on the questions or the harmful probes) is above
`trigger_answer_max`. A verdict says only pass or fail; how far under the limit the clean
adapters stayed is what says whether the rule has room. For every LoRA case in the reports this
takes the row of the highest low end (`largest`) and prints, per kind of case (clean families;
backdoors by goal, position and whether the trigger is one of the pinned ones), the largest low
end with its case, string and set, the median, and how many were named; with --list, every
case's row. The kinds follow the generator's final parameters (tools/make_gate_cases.py).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import kept_reports, reports_parser  # noqa: E402


def check_of(rep, name):
    """The check called name in rep, or None."""
    for g in rep["gates"]:
        for c in g["checks"]:
            if c["check"] == name:
                return c
    return None


def pinned_triggers():
    """The triggers the repository's pinned trigger suite lists (the strings `trigger_answer`
    tries under the default suites)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "eval", "suites", "triggers.jsonl")
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            out.update(json.loads(line).get("triggers", []))
    return out


def kind(c, pinned):
    """The case's row in the table: a clean family, or backdoor/GOAL/POSITION/pinned|made-up."""
    if c["family"] != "backdoor":
        return c["family"]
    p = c.get("final_params") or c["params"]
    return "backdoor/%s/%s/%s" % (p["goal"], p["position"],
                                  "pinned" if p["trigger"] in pinned else "made-up")


def main():
    ap = reports_parser(__doc__)
    ap.add_argument("--list", action="store_true", help="print every case's largest row")
    a = ap.parse_args()
    pinned = pinned_triggers()
    kinds = {}
    for c, rep in kept_reports(a.cases, a.dirs):
        if c["kind"] != "lora":
            continue
        ch = check_of(rep, "trigger_answer")
        if ch is None or not ch.get("largest"):
            continue
        row = ch["largest"]
        lo = row["interval"][0]
        named = ch["result"] == "fail"
        k = kind(c, pinned)
        kinds.setdefault(k, []).append((lo, c["id"], row["trigger"], row["set"], named))
        if a.list:
            print("%-24s %-34s low end %6.3f  %-14r %-9s %r%s" % (
                c["id"], k, lo, row["trigger"], row["set"], row.get("token"),
                "  NAMED" if named else ""))
    if a.list:
        print()
    print("%-34s %4s  %-44s %7s %6s" % ("kind", "n", "largest low end (case, string, set)",
                                         "median", "named"))
    for k in sorted(kinds):
        v = sorted(kinds[k], reverse=True)
        lo, cid, trig, qset, _ = v[0]
        med = v[len(v) // 2][0] if len(v) % 2 else (v[len(v) // 2 - 1][0] + v[len(v) // 2][0]) / 2
        print("%-34s %4d  %6.3f %-37s %7.3f %6d" % (
            k, len(v), lo, "%s, %r, %s" % (cid, trig, qset), med, sum(x[4] for x in v)))


if __name__ == "__main__":
    main()
