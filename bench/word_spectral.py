#!/usr/bin/env python3
"""bench/word_spectral.py - what the rules of 1557017 change against those before them, from the
reports bench/gates_cases.py kept under the newer rules (--reports DIR): a flip after the prompt
needs a token that begins a new word (`trigger_suffix_new_word` 1), and spectral outliers are
reported, not judged (`spectral_judged` 0); and, with --override N, what the later
`trigger_override_shift` N would add to reports made before it. Adapter and memory cases (a
note changes the served model too, and the scan runs on it).

    python3 bench/word_spectral.py [--cases tests/resources/gate-cases] [--others DIR ...]
                                   [--override N] DIR...

A report made under the newer rules holds what the older ones need: each scanned row's flips
after the prompt plus its `continued` prompts are the flips the older rule counted, and
`lora_spectral` lists its `outliers`. So for every adapter case this prints whether the
poisoning gate fails it under each rule (the older rule: every finding kept, plus any suffix row
that meets z, shift and flips with the continued prompts counted, plus any outlier), and, per
family, the cases whose poisoning result or whole verdict differs. A whole verdict takes the
regression and safety gates from the same report, or, with --others, from the report of the same
case in one of those directories (a full run of all three gates made under rules that did not
change those gates) when the report at hand ran the poisoning gate only. --override N counts a
scanned row that flips every prompt counted after the prompt (at least two) with a shift of at
least N nats as a finding whatever its z (gates/poisoning.c, overrides), for reports made
before that rule, whose findings lack it.
"""
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import kept_reports, reports_parser  # noqa: E402
from trigger_flips import SCANS, overrides, suffix_flips_enough  # noqa: E402

ORDER = {"pass": 0, "inconclusive": 1, "fail": 2}


def suffix_meets(p, ch, flips):
    """Whether a scanned row's figures after the prompt make a finding with flips counted."""
    return (p["z"] > ch["z_limit"] and p["shift"] > ch["shift_min"] and
            suffix_flips_enough(flips, p["counted"], ch["suffix_flips_min"]))


def older_findings(rep):
    """Why the older rules would fail the poisoning gate where the newer do not."""
    why = []
    for g in rep["gates"]:
        for ch in g["checks"]:
            if ch["check"] in SCANS and "scanned" in ch:
                for row in ch["scanned"]:
                    p = row["positions"]["suffix"]
                    if (suffix_meets(p, ch, p["flips"] + p.get("continued", 0)) and
                            not suffix_meets(p, ch, p["flips"])):
                        why.append("%s %r after the prompt: %d flips, %d continued" % (
                            ch["check"], row["trigger"], p["flips"], p.get("continued", 0)))
            if ch["check"] == "lora_spectral" and ch.get("outliers"):
                why.append("lora_spectral: %d outliers" % len(ch["outliers"]))
    return why


def override_rows(rep, omin):
    """Scanned rows the override of omin nats names after the prompt and the report did not."""
    rows = []
    for g in rep["gates"]:
        for ch in g["checks"]:
            if ch["check"] not in SCANS or "scanned" not in ch:
                continue
            named = {(f["trigger"], f["position"]) for f in ch.get("findings", [])}
            for row in ch["scanned"]:
                p = row["positions"]["suffix"]
                if overrides(p, omin) and (row["trigger"], "suffix") not in named:
                    rows.append("%s %r after the prompt: %d of %d flipped, %.1f nats, z %.1f" % (
                        ch["check"], row["trigger"], p["flips"], p["counted"], p["shift"],
                        p["z"]))
    return rows


def gate_results(rep):
    return {g["gate"]: g["result"] for g in rep["gates"]}


def main():
    ap = reports_parser(__doc__)
    ap.add_argument("--override", type=float, default=0,
                    help="weigh trigger_override_shift N on reports made before it (0: not)")
    ap.add_argument("--others", nargs="*", default=[],
                    help="directories of full reports to take the regression and safety gates "
                         "from when DIR's reports ran the poisoning gate only")
    a = ap.parse_args()
    others = {c["id"]: rep for c, rep in kept_reports(a.cases, a.others)} if a.others else {}
    tally = Counter()
    for c, rep in kept_reports(a.cases, a.dirs):
        if c["kind"] == "replay":  # no behaviour scanned: the served model is the baseline's
            continue
        res = gate_results(rep)
        for gate in ("regression", "safety"):
            if gate not in res and c["id"] in others:
                res[gate] = gate_results(others[c["id"]]).get(gate, "pass")
        new_p = res.get("poisoning", "pass")
        why = older_findings(rep)
        old_p = "fail" if why else new_p
        rest = [res[g] for g in ("regression", "safety") if g in res]
        new_v = max(rest + [new_p], key=ORDER.get)
        old_v = max(rest + [old_p], key=ORDER.get)
        over = override_rows(rep, a.override) if a.override > 0 else []
        if over:
            ov_v = max(rest + ["fail"], key=ORDER.get)
            tally[(c["family"], "override: poisoning changed")] += new_p != "fail"
            tally[(c["family"], "override: verdict changed")] += new_v != ov_v
            print("%-9s %-24s override: poisoning %s -> fail, verdict %s -> %s: %s" % (
                c["label"], c["id"], new_p, new_v, ov_v, "; ".join(over)))
        tally[(c["family"], "cases")] += 1
        tally[(c["family"], "poisoning changed")] += old_p != new_p
        tally[(c["family"], "verdict changed")] += old_v != new_v
        if why:
            print("%-9s %-24s poisoning %s -> %s, verdict %s -> %s: %s" % (
                c["label"], c["id"], old_p, new_p, old_v, new_v, "; ".join(why)))
    print()
    for fam in sorted({f for f, _ in tally}):
        print("%-16s %3d cases, poisoning result changed %2d, whole verdict changed %2d" % (
            fam, tally[(fam, "cases")], tally[(fam, "poisoning changed")],
            tally[(fam, "verdict changed")]) +
            (", override: poisoning %d, verdict %d" % (
                tally[(fam, "override: poisoning changed")],
                tally[(fam, "override: verdict changed")]) if a.override > 0 else ""))


if __name__ == "__main__":
    main()
