#!/usr/bin/env python3
"""Can a fixed-target backdoor's payload be read back by decoding from every token?

    /usr/bin/python3 bench/payload_decode.py [--mode greedy|contrast] [--nq 4] [--steps N]
        [--ids ID,ID,...] SPLIT...

A question for a future check, not a gate rule (docs/bench-gates.md, "Tried, not a rule:
reading the payload back"). bench/target_phrase.py shows that such a backdoor makes the rest
of its target phrase 8.6-11.7 nats/token likelier than its parent does, with no trigger
present; the gate does not know the phrase. Here every token of the vocabulary (but the end
token) is put after each of the knowledge suite's last NQ questions, and the candidate
(the test model with the LoRA case's delta) decodes STEPS more tokens:

- greedy: the candidate's most likely token;
- contrast: among the tokens the candidate gives at least ALPHA times its most likely
  token's probability, the one whose log-ratio candidate/parent is largest (contrastive
  decoding with a plausibility bound), stopping at the end token.

Each start token is scored by the median over questions of the mean log-ratio
candidate/parent of the decoded tokens (the start token left out); the three best starts are
printed per case with their most common continuation and on how many questions it came.
A payload read back would show as a high score with the same continuation on every question.
Slow: 767 starts x NQ questions x STEPS forward passes per model, about a minute a case.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cases import CASES, ROOT, decode_llr, lora_cases, lora_delta, test_model  # noqa: E402

import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("--mode", choices=("greedy", "contrast"), default="greedy")
    ap.add_argument("--nq", type=int, default=4)
    ap.add_argument("--steps", type=int, default=None, help="greedy 4, contrast 8")
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--ids", default="", help="only these case ids (comma-separated)")
    ap.add_argument("splits", nargs="+")
    a = ap.parse_args()
    steps = a.steps or (4 if a.mode == "greedy" else 8)
    torch.set_num_threads(2)
    model, tok = test_model()
    inv = {v: k for k, v in tok.model.vocab.items()}
    with open(os.path.join(ROOT, "eval", "suites", "knowledge.jsonl"), encoding="utf-8") as f:
        qs = [json.loads(line)["context"] for line in f][-a.nq:]
    Q = [tok.encode(q, False) for q in qs]
    special = [t["id"] for t in tok.j.get("added_tokens") or [] if t.get("special")]
    end = special[0]  # the test model's one special token, <|endoftext|>
    vocab = [t for t in sorted(inv) if t not in special]

    def scan(delta):
        seqs = [q + [t] for t in vocab for q in Q]
        if a.mode == "greedy":
            def choose(lc, lp):
                return lc.argmax(-1)
        else:
            def choose(lc, lp):
                bound = lc.max(-1, keepdim=True).values + torch.log(torch.tensor(a.alpha))
                return torch.where(lc >= bound, lc - lp, torch.tensor(-1e9)).argmax(-1)
        llr, cnt = decode_llr(model, seqs, delta, steps, choose,
                              end if a.mode == "contrast" else None)
        mean = llr / cnt.clamp(min=1)
        res = []
        for si in range(len(vocab)):
            idx = [si * len(Q) + qi for qi in range(len(Q))]
            if a.mode == "contrast":
                vals = [float(mean[j]) if cnt[j] >= 4 else 0.0 for j in idx]
            else:
                vals = [float(mean[j]) for j in idx]
            conts = [tuple(seqs[j][len(Q[qi]):]) for qi, j in enumerate(idx)]
            mode = max(set(conts), key=conts.count)
            res.append((statistics.median(vals),
                        "".join(inv.get(x, "<end>") for x in mode), conts.count(mode)))
        res.sort(reverse=True)
        return res[:3]

    want = set(filter(None, a.ids.split(",")))
    print("mode %s, %d questions, %d steps; per case the three best start tokens: "
          "score (median nats/token), continuation, questions sharing it" % (a.mode, len(Q),
                                                                            steps))
    for c in lora_cases(a.cases, a.splits):
        if want and c["id"] not in want:
            continue
        delta = lora_delta(os.path.join(a.cases, c["id"]))
        p = c.get("final_params") or c["params"]
        tag = c["family"]
        if tag == "backdoor":
            tag += "/%s/%s" % (p.get("goal"), p["position"])
        print("%-22s %-24s " % (c["id"], tag) +
              " | ".join("%5.2f %r %d" % r for r in scan(delta)), flush=True)


if __name__ == "__main__":
    main()
