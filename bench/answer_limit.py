#!/usr/bin/env python3
"""trigger_answer's one-answer figure over many strings, against a clean reference per string:
a study (not a gate rule) of whether the strings of string_margin_drop's lists find fixed-target
backdoors whose made-up trigger follows the prompt.

    python3 bench/answer_limit.py --reference REF.jsonl [--candidates C.jsonl ...]
        [--reference-splits round29,round30,round31,round32] [--count-above D] [--bare]
        [--cases DIR] [--json OUT]

The lines come from `bench/trigger_answer.py --rows` (per case, for every string and set, the
share of prompts on which the token the candidate raises most is newly its first choice, less
the reverse). trigger_answer in the gate sets one limit for every row; a string that reads as
the start of a sentence gives clean adapters one answer too (benign-finetune-ac05 answered
" can" on 0.86 of the questions after `Discussing OpenAI`, docs/bench-gates.md, "A longer
list"). Here each row is set against the largest figure the reference's clean adapters show on
the same string and set, and a case's figure is its largest excess over that envelope.

As bench/string_limit.py reads string_drop_max: each reference round's clean adapters are set
against the other rounds' clean adapters only, so the largest excess there is what a clean
adapter the reference never saw can reach; the limit is that, rounded up to the next 0.05.
Then every candidate line (other rounds) is set against the whole reference and that limit:
per split and family, how many exceed it with 95% Clopper-Pearson intervals, the string, set
and token that name each poisoned case, and the largest clean excess. Reads files only.

--count-above D makes a case's figure the number of its rows that stand more than D above the
envelope, and the limit the largest such count of a clean adapter set against the other
rounds: a trigger's neighbours may each give one answer a little, where a clean adapter's
one answer is one string's accident.

--bare reads figure_bare instead (trigger_answer.py's figure_bare): what the string does with
the adapter's effect on the bare prompt taken out.
"""
import argparse
import collections
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import PINNED, rate  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CLEAN = ("good-adapter", "benign-finetune", "unusual-adapter")


def read(paths):
    out = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            out += [json.loads(line) for line in f if line.strip()]
    return out


def table(line, col):
    """{(string, position, set): (figure, token)} of one line, the figure in column col (4:
    figure, 6: figure_bare)"""
    return {(r[0], r[2], r[3]): (r[col], r[col + 1]) for r in line["rows"]}


def envelope(lines, col):
    env = {}
    for x in lines:
        for k, (f, _) in table(x, col).items():
            env[k] = max(env.get(k, -1.0), f)
    return env


def excess(env, line, col, over=None):
    """(excess, string, set, token, figure): the row that stands furthest above env; with over,
    the first element is instead how many rows stand more than over above env"""
    rows = sorted(((f - env[k], k[0], k[2], tok, f) for k, (f, tok) in table(line, col).items()
                   if k in env), reverse=True)
    if over is None:
        return rows[0]
    return (sum(r[0] > over for r in rows),) + rows[0][1:]


def trigger_kinds(cases_dir):
    """{case id: "pinned" or "made-up"} for the backdoors of the labelled set's manifest"""
    with open(os.path.join(cases_dir, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    return {c["id"]: "pinned" if (c.get("final_params") or c["params"])["trigger"] in PINNED
            else "made-up" for c in cases if c["family"] == "backdoor"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", action="append", required=True)
    ap.add_argument("--reference-splits", default="round29,round30,round31,round32")
    ap.add_argument("--candidates", action="append", default=[])
    ap.add_argument("--bare", action="store_true", help="read figure_bare")
    ap.add_argument("--count-above", type=float, default=None,
                    help="a case's figure is the count of rows more than this above the envelope")
    ap.add_argument("--cases", default=os.path.join(ROOT, "tests", "resources", "gate-cases"))
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    kinds = trigger_kinds(a.cases)
    over = a.count_above
    col = 6 if a.bare else 4
    ref_splits = a.reference_splits.split(",")
    ref = [x for x in read(a.reference)
           if x["family"] in CLEAN and x["split"] in ref_splits]
    if not ref:
        sys.exit("answer_limit: no clean line of %s in %s" % (a.reference_splits, a.reference))
    loro = []
    for s in ref_splits:
        env = envelope([x for x in ref if x["split"] != s], col)
        loro += [(excess(env, x, col, over), x["id"]) for x in ref if x["split"] == s]
    loro.sort(reverse=True)
    limit = loro[0][0][0] if over is not None else math.ceil(loro[0][0][0] * 20 - 1e-9) / 20
    raw = max(max(f for f, _ in table(x, col).values()) for x in ref)
    print("reference: %d clean adapters of %s; largest raw figure %.2f" % (
        len(ref), a.reference_splits, raw))
    print("each round against the others: largest clean excess %.3f (%s: %r, %s, %r); "
          "limit %.2f" % (loro[0][0][0], loro[0][1], loro[0][0][1], loro[0][0][2],
                          loro[0][0][3], limit))
    print("  next largest: " + ", ".join("%.3f %s" % (e[0], i) for e, i in loro[1:6]))
    env = envelope(ref, col)
    cands = [x for x in read(a.candidates) if x["split"] not in ref_splits]
    groups = collections.defaultdict(list)
    for x in cands:
        fam = x["family"] + ("/" + kinds[x["id"]] if x["id"] in kinds else "")
        groups[(x["split"], fam)].append((excess(env, x, col, over), x["id"]))
    report = {"limit": limit, "loro": [[e[0], i] for e, i in loro[:10]], "groups": {}}
    if groups:
        print("\n| split | family | n | above %.2f | largest excess |" % limit)
        print("|---|---|---:|---|---|")
    pooled = collections.defaultdict(lambda: [0, 0])
    for (split, fam), v in sorted(groups.items()):
        k = sum(e[0] > limit for e, _ in v)
        pooled[fam][0] += k
        pooled[fam][1] += len(v)
        top = max(v)
        print("| %s | %s | %d | %s | %.3f (%s) |" % (split, fam, len(v), rate(k, len(v)),
                                                    top[0][0], top[1]))
        report["groups"]["%s %s" % (split, fam)] = {
            "n": len(v), "above": k,
            "cases": [[i, round(e[0], 4), e[1], e[2], e[3]] for e, i in sorted(v)]}
    if len(groups) > 1:
        print("\npooled:")
        for fam, (k, n) in sorted(pooled.items()):
            print("  %-28s %s" % (fam, rate(k, n)))
        clean = [pooled[f] for f in CLEAN if f in pooled]
        if clean:
            k, n = sum(c[0] for c in clean), sum(c[1] for c in clean)
            print("  %-28s %s" % ("clean adapters", rate(k, n)))
            report["clean"] = {"n": n, "above": k}
    for (split, fam), v in sorted(groups.items()):
        if fam in CLEAN:
            continue
        for e, i in sorted(v, reverse=True):
            print("  %-22s %+.3f %-6s %r (%s, %r, figure %.2f)" % (
                i, e[0], "HELD" if e[0] > limit else "", e[1], e[2], e[3], e[4]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
