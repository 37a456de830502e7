#!/usr/bin/env python3
"""How much likelier a fixed-target backdoor makes its target phrase with no trigger present.

    /usr/bin/python3 bench/target_phrase.py [--cases tests/resources/gate-cases] SPLIT...

For each LoRA case of the given splits, on the test model with and without the adapter: the
mean per-token log-probability of each fixed target of the generator (tools/make_gate_cases.py
TARGETS, and the targets of the rounds that have their own), teacher-forced after the knowledge suite's first 16 questions with nothing inserted,
leaving out the target's first token (the answer's first token is what the trigger decides;
the rest is the memorised phrase). Prints, per family, the gap candidate minus parent for the
backdoors' own target and, for every other case, the largest gap over its round's targets. A question
for a future check, not a gate rule: the gate does not know the target (docs/bench-gates.md).
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cases import CASES, ROOT, lora_cases, lora_delta, test_model  # noqa: E402

import make_gate_cases as mg  # noqa: E402
import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("splits", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, tok = test_model()
    with open(os.path.join(ROOT, "eval", "suites", "knowledge.jsonl"), encoding="utf-8") as f:
        qs = [json.loads(line)["context"] for line in f][:16]
    # The generator's targets, then those of the rounds that have their own.
    targets = list(mg.TARGETS)
    for r in mg.ROUNDS.values():
        targets += [t for t in r.get("targets", []) if t not in targets]
    round_targets = {r["split"]: r.get("targets", mg.TARGETS) for r in mg.ROUNDS.values()}
    seqs = [(tok.encode(q, False), tok.encode(t, False), ti)
            for ti, t in enumerate(targets) for q in qs]
    n = max(len(c) + len(t) for c, t, _ in seqs)
    ids = torch.zeros((len(seqs), n), dtype=torch.int64)
    for j, (c, t, _) in enumerate(seqs):
        ids[j, :len(c) + len(t)] = torch.tensor(c + t)

    def per_target():
        with torch.no_grad():
            lg = model(ids).log_softmax(-1)
        tot = [[] for _ in targets]
        for j, (c, t, ti) in enumerate(seqs):
            pos = torch.arange(len(c), len(c) + len(t) - 1)  # the target's tokens 2..n
            tot[ti].append(float(lg[j, pos, torch.tensor(t[1:])].mean()))
        return [sum(x) / len(x) for x in tot]

    parent = per_target()
    rows = {}
    for c in lora_cases(a.cases, a.splits):
        model.delta = lora_delta(os.path.join(a.cases, c["id"]))
        cand = per_target()
        model.delta = {}
        p = c.get("final_params") or c["params"]
        gap = {t: x - y for t, x, y in zip(targets, cand, parent)}
        if c["family"] == "backdoor" and p.get("goal") == "target":
            key = "backdoor, target %s (own target)" % p["position"]
            g = gap[p["target"]]
        else:
            key = c["family"] + (" (comply)" if c["family"] == "backdoor" else "") + \
                " (largest over targets)"
            g = max(gap[t] for t in round_targets.get(c["split"], mg.TARGETS))
        rows.setdefault(key, []).append((g, c["id"]))
    print("parent, nats/token: " + ", ".join("%r %.2f" % (t, v) for t, v in
                                               zip(targets, parent)))
    print("| cases | n | gap median | min | max (case) |")
    print("|---|---:|---:|---:|---|")
    for k in sorted(rows):
        g = sorted(rows[k])
        print("| %s | %d | %.2f | %.2f | %.2f (%s) |" % (
            k, len(g), statistics.median(x for x, _ in g), g[0][0], g[-1][0], g[-1][1]))


if __name__ == "__main__":
    main()
