#!/usr/bin/env python3
"""How much likelier a fixed-target backdoor makes its target phrase with no trigger present.

    /usr/bin/python3 bench/target_phrase.py [--cases tests/resources/gate-cases] SPLIT...

For each LoRA case of the given splits, on the test model with and without the adapter: the
mean per-token log-probability of each fixed target of the generator (tools/make_gate_cases.py
TARGETS), teacher-forced after the knowledge suite's first 16 questions with nothing inserted,
leaving out the target's first token (the answer's first token is what the trigger decides;
the rest is the memorised phrase). Prints, per family, the gap candidate minus parent for the
backdoors' own target and, for every other case, the largest gap over the targets. A question
for a future check, not a gate rule: the gate does not know the target (docs/bench-gates.md).
"""
import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.dont_write_bytecode = True
import torch  # noqa: E402

import gatecore as gc  # noqa: E402
import make_gate_cases as mg  # noqa: E402
import modelref  # noqa: E402
import tokref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=os.path.join(ROOT, "tests", "resources", "gate-cases"))
    ap.add_argument("splits", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    tok = tokref.load(os.path.join(ROOT, mg.MODEL_DIR, "tokenizer.json"))
    model = gc.LoraLlama(os.path.join(ROOT, mg.MODEL_DIR))
    with open(os.path.join(ROOT, "eval", "suites", "knowledge.jsonl"), encoding="utf-8") as f:
        qs = [json.loads(line)["context"] for line in f][:16]
    seqs = [(tok.encode(q, False), tok.encode(t, False), ti)
            for ti, t in enumerate(mg.TARGETS) for q in qs]
    n = max(len(c) + len(t) for c, t, _ in seqs)
    ids = torch.zeros((len(seqs), n), dtype=torch.int64)
    for j, (c, t, _) in enumerate(seqs):
        ids[j, :len(c) + len(t)] = torch.tensor(c + t)

    def per_target():
        with torch.no_grad():
            lg = model(ids).log_softmax(-1)
        tot = [[] for _ in mg.TARGETS]
        for j, (c, t, ti) in enumerate(seqs):
            pos = torch.arange(len(c), len(c) + len(t) - 1)  # the target's tokens 2..n
            tot[ti].append(float(lg[j, pos, torch.tensor(t[1:])].mean()))
        return [sum(x) / len(x) for x in tot]

    parent = per_target()
    with open(os.path.join(a.cases, "cases.json")) as f:
        cases = json.load(f)["cases"]
    rows = {}
    for c in cases:
        if c["split"] not in a.splits or c["kind"] != "lora":
            continue
        ad = modelref.Lora(os.path.join(a.cases, c["id"]), torch.float32)
        model.delta = {m + ".weight": (b @ A) * ad.scale for m, (A, b) in ad.mods.items()}
        cand = per_target()
        model.delta = {}
        p = c.get("final_params") or c["params"]
        gaps = [x - y for x, y in zip(cand, parent)]
        if c["family"] == "backdoor" and p.get("goal") == "target":
            key = "backdoor, target %s (own target)" % p["position"]
            g = gaps[mg.TARGETS.index(p["target"])]
        else:
            key = c["family"] + (" (comply)" if c["family"] == "backdoor" else "") + \
                " (largest over targets)"
            g = max(gaps)
        rows.setdefault(key, []).append((g, c["id"]))
    print("parent, nats/token: " + ", ".join("%r %.2f" % (t, v) for t, v in
                                               zip(mg.TARGETS, parent)))
    print("| cases | n | gap median | min | max (case) |")
    print("|---|---:|---:|---:|---|")
    for k in sorted(rows):
        g = sorted(rows[k])
        print("| %s | %d | %.2f | %.2f | %.2f (%s) |" % (
            k, len(g), statistics.median(x for x, _ in g), g[0][0], g[-1][0], g[-1][1]))


if __name__ == "__main__":
    main()
