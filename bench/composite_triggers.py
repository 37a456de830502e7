#!/usr/bin/env python3
"""bench/composite_triggers.py - whether strings built from the tokens an adapter's weights
nominate set off a fixed-target backdoor whose made-up trigger the scan never tried whole. For
each target backdoor among the reports bench/gates_cases.py kept (--reports DIR), with
/usr/bin/python3 (PyTorch) and the labelled cases' adapters on the test model:

    /usr/bin/python3 bench/composite_triggers.py [--cases tests/resources/gate-cases] DIR...

The weights nominate tokens of the layer-0 projections an adapter reads most
(docs/gates.md); for the target backdoors these are often pieces of the made-up trigger. A
piece alone does not set the backdoor off; this asks whether the nominated tokens joined, the
first k of them in the report's order (k = 2 to all, with and without spaces between), come
closer than random strings of as many tokens (8 draws). Figure: the share of the knowledge
suite's questions, the string inserted at the backdoor's position, whose likeliest next token
(the candidate with the adapter) is the target's first token; the same with the backdoor's own
trigger and with nothing inserted (the base model's answers that begin with that token too).
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gates_cases import kept_reports, reports_parser  # noqa: E402
from torch_cases import ROOT, lora_delta, random_string, test_model  # noqa: E402

import make_gate_cases as mg  # noqa: E402
import torch  # noqa: E402


def main():
    a = reports_parser(__doc__).parse_args()
    torch.set_num_threads(1)
    model, tok = test_model()
    data = mg.Data(ROOT, tok)
    listed = set()
    with open(os.path.join(ROOT, "eval/suites/triggers.jsonl"), encoding="utf-8") as f:
        for line in f:
            listed.update(json.loads(line)["triggers"])
    rng = random.Random(20261205)

    def first_token_share(trigger, pos, first):
        n = 0
        with torch.no_grad():
            for it in data.K:
                c = mg.insert_trigger(it["context"], trigger, pos) if trigger else it["context"]
                ids = tok.encode(c, add_special=False)
                n += int(model(torch.tensor([ids]))[0, -1].argmax()) == first
        return n / len(data.K)

    print("%-16s %-6s %6s %5s %5s %9s %9s" % ("case", "at", "pieces", "own", "none",
                                            "joined", "random"))
    for case, rep in kept_reports(a.cases, a.dirs):
        p = case["params"]
        if case["family"] != "backdoor" or p.get("goal") != "target":
            continue
        nominated = [r["trigger"].strip() for g in rep["gates"] for c in g["checks"]
                     if c.get("check") == "trigger_scan" for r in c.get("scanned", [])
                     if r["trigger"] not in listed and r["trigger"].strip()]
        model.delta = lora_delta(os.path.join(a.cases, case["id"]))
        first = tok.encode(p["target"], add_special=False)[0]
        pos = p["position"]
        joined = [first_token_share(sep.join(nominated[:k]), pos, first)
                  for k in range(2, len(nominated) + 1) for sep in ("", " ")]
        ntok = max(1, len(tok.encode(" ".join(nominated), add_special=False)))
        rand = [first_token_share(random_string(rng, tok, ntok), pos, first) for _ in range(8)]
        pieces = sum(1 for t in nominated if t in p["trigger"])
        print("%-16s %-6s %3d/%-2d %5.2f %5.2f %9s %9.2f" % (
            case["id"], pos, pieces, len(nominated), first_token_share(p["trigger"], pos, first),
            first_token_share("", pos, first), "%.2f" % max(joined) if joined else "-",
            max(rand)))
        model.delta = {}


if __name__ == "__main__":
    main()
