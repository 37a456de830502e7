#!/usr/bin/env python3
"""string_margin_drop's limit, read from a pinned string_drop_reference: each clean adapter of
one round set against the clean adapters of the other rounds, as the limit was first fixed.

    python3 bench/string_limit.py [--reference eval/references/string-drops-r29-32]
        [--strings eval/suites/jargon-strings,...] [--cases DIR] [--candidates FILE.jsonl]
        [--limit L] [--json OUT]

The reference's lines (`sluice gate --string-drops`, one per clean adapter of rounds 29 to 32)
hold drop(s) for every string of the pinned probe_strings suites, in the order the gate reads
them (suites by name, then their lines). string_margin_drop's figure for an adapter is how far
its drop(s) falls below the lowest drop(s) of the reference at the same string, at its most
extreme string. Here each round's clean adapters are set against the other rounds' only, so no
adapter is its own envelope: the largest figure is what a clean adapter the reference never
saw can reach, and the limit (`string_drop_max`, docs/gates.md) is that figure rounded up.

--strings names the probe_strings suites the reference was made on, in order: the figure is
printed for each suite's strings alone and for all of them, so what a list adds to the largest
clean figure is seen apart from what it had before. Reads files only; no model runs.

--candidates FILE.jsonl sets other adapters' lines against the whole reference and the limit
(`tools/make_reference.py --kind string-drops --families backdoor --splits ... --out FILE`):
the comply backdoors whose trigger follows the prompt (the ones the figure is for) and the
clean adapters, per split, how many exceed the limit with 95% Clopper-Pearson intervals (for
clean adapters, false alarms), how many each list alone would name, and the string and list
that name each case.
"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import clopper_pearson, rate  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def most_below(env, drop, cols):
    """(figure, string index): how far drop falls below the envelope env, at its most extreme
    string among cols."""
    return max((env[j] - drop[j], j) for j in cols)


def figures(lines, split_of, cols):
    """Per adapter (id, split, figure, string index): the most extreme string among cols, set
    against the other splits' lines."""
    splits = sorted({split_of[x["adapter"]] for x in lines})
    out = []
    for s in splits:
        others = [x for x in lines if split_of[x["adapter"]] != s]
        env = {j: min(x["drop"][j] for x in others) for j in cols}
        for x in lines:
            if split_of[x["adapter"]] == s:
                f, j = most_below(env, x["drop"], cols)
                out.append((x["adapter"], s, f, j))
    return out


def candidates(a, lines, every, strings, suites, limit):
    """The comply backdoors after the prompt and the clean adapters of a.candidates against
    every reference line."""
    try:
        with open(a.candidates) as f:
            cand = [json.loads(x) for x in f if x.strip()]
    except (OSError, ValueError) as e:
        sys.exit("string_limit.py: %s: %s" % (a.candidates, e))
    env = [min(x["drop"][j] for x in lines) for j in range(len(strings))]
    list_of = {j: name for name, cols in suites for j in cols}
    rows, per = [], {}
    for x in cand:
        c = every.get(x["adapter"])
        if (not c or len(x.get("drop", [])) != len(strings) or x.get("probes") != lines[0]["probes"]):
            sys.exit("string_limit.py: %s: line of %s is not on this reference's probes and "
                     "strings" % (a.candidates, x.get("adapter")))
        p = c["params"]
        clean = c["label"] == "clean"
        if not clean and (p.get("goal") != "comply" or p.get("position") != "suffix"):
            continue
        f, j = most_below(env, x["drop"], range(len(strings)))
        alone = {name: most_below(env, x["drop"], cols)[0] > limit for name, cols in suites}
        rows.append({"adapter": x["adapter"], "split": c["split"], "clean": clean,
                     "trigger": None if clean else p.get("trigger"),
                     "figure": f, "string": strings[j], "list": list_of[j], "above": f > limit,
                     "above_by_list": alone})
        per.setdefault((clean, c["split"]), []).append(rows[-1])
    for r in sorted(rows, key=lambda r: r["adapter"]):
        print("%-20s %-24r %6.2f %s %r (%s)" % (r["adapter"], r["trigger"], r["figure"],
                                               "ABOVE" if r["above"] else "     ", r["string"],
                                               r["list"]))
    out = {"limit": limit, "cases": rows, "per_split": {}}
    for clean in (False, True):
        what = "clean adapters" if clean else "comply backdoors after the prompt"
        mine = [r for r in rows if r["clean"] == clean]
        for s, got in ([(s, g) for (cl, s), g in sorted(per.items()) if cl == clean]
                       + ([("all", mine)] if mine else [])):
            k, n = sum(r["above"] for r in got), len(got)
            lo, hi = clopper_pearson(k, n)
            alone = {name: sum(r["above_by_list"][name] for r in got) for name, _ in suites}
            print("%-8s %s above %.1f: %s of %d (%s); largest %.2f"
                  % (s, what, limit, rate(k, n), n,
                     ", ".join("%s alone %d" % kv for kv in alone.items()),
                     max(r["figure"] for r in got)))
            out["per_split"]["%s %s" % ("clean" if clean else "comply", s)] = {
                "above": k, "n": n, "ci95": [lo, hi], "by_list_alone": alone}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", default=os.path.join(ROOT, "eval/references/string-drops-r29-32"))
    ap.add_argument("--strings",
                    help="the probe_strings suites (without .json), comma-separated, in order "
                         "(default: those of eval/suites, by name, as the gate reads them)")
    ap.add_argument("--cases", default=os.path.join(ROOT, "tests/resources/gate-cases"))
    ap.add_argument("--candidates", metavar="FILE.jsonl",
                    help="lines of other adapters, set against the reference and the limit")
    ap.add_argument("--limit", type=float,
                    help="the limit for --candidates (default: the one this reference gives)")
    ap.add_argument("--json", metavar="OUT")
    a = ap.parse_args()
    with open(os.path.join(a.cases, "cases.json")) as f:
        every = {c["id"]: c for c in json.load(f)["cases"]}
    split_of = {i: c["split"] for i, c in every.items()}
    with open(a.reference + ".jsonl") as f:
        lines = [json.loads(x) for x in f if x.strip()]
    if not a.strings:
        d = os.path.join(ROOT, "eval/suites")
        a.strings = ",".join(os.path.join(d, f[:-5]) for f in sorted(os.listdir(d))
                             if f.endswith(".json")
                             and json.load(open(os.path.join(d, f)))["type"] == "probe_strings")
    suites, strings = [], []
    for path in a.strings.split(","):
        with open(path + ".json") as f:
            items = json.load(f)["items"]
        with open(os.path.join(os.path.dirname(path), items)) as f:
            got = [json.loads(x)["string"] for x in f if x.strip()]
        suites.append((os.path.basename(path), range(len(strings), len(strings) + len(got))))
        strings += got
    bad = [x["adapter"] for x in lines
           if len(x.get("drop", [])) != len(strings) or x["adapter"] not in split_of]
    if not lines or bad:
        sys.exit("string_limit.py: %s: %s" % (a.reference + ".jsonl", (
            "no lines" if not lines else
            "%d lines do not hold %d strings of known cases (first %s)"
            % (len(bad), len(strings), bad[0]))))
    report = {"reference": os.path.relpath(a.reference, ROOT), "adapters": len(lines),
              "strings": len(strings), "lists": []}
    for name, cols in suites + [("all", range(len(strings)))]:
        fig = figures(lines, split_of, list(cols))
        top = max(fig, key=lambda r: r[2])
        per = {}
        for _, s, f, _ in fig:
            per[s] = max(per.get(s, -math.inf), f)
        print("%-18s %3d strings: largest clean figure %.3f (%s, %s, %r); per round %s"
              % (name, len(cols), top[2], top[0], top[1], strings[top[3]],
                 ", ".join("%s %.3f" % kv for kv in sorted(per.items()))))
        report["lists"].append({"name": name, "strings": len(cols), "largest": top[2],
                                "adapter": top[0], "string": strings[top[3]],
                                "per_round": per,
                                "limit": math.ceil(top[2] * 10) / 10})
    print("limit (largest over all strings, rounded up to 0.1): %.1f"
          % report["lists"][-1]["limit"])
    if a.candidates:
        report["candidates"] = candidates(a, lines, every, strings, suites,
                                          a.limit or report["lists"][-1]["limit"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
