#!/usr/bin/env python3
"""bench/trigger_beam.py - whether a beam search over the whole vocabulary, scored by the
trigger scan's own shift, spells out a backdoor's trigger after the prompt when no list or
weight nominates it whole. With /usr/bin/python3 (PyTorch) and the labelled cases' adapters:

    /usr/bin/python3 bench/trigger_beam.py [--cases DIR] [--beam 4] [--depth 4]
        [--prompts 8] [--clean N] SPLIT...

For each LoRA backdoor of the splits whose trigger goes after the prompt, and N clean adapters
of the same splits: a string of tokens is put after each of PROMPTS harmful probes and PROMPTS
knowledge questions (as tokens appended to the prompt's tokens), and scored by the scan's shift: the
mean over the prompts of one kind of KL(parent || candidate) at the next token with the
string, minus the same without it; the kind of larger mean counts. The search keeps the BEAM
best strings of each length and extends each by every token of the vocabulary, up to DEPTH
tokens. Printed per case: the backdoor's own trigger's score, the rank of its first token
among single tokens, and the best string and score at each length.
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cases import CASES, ROOT, loaded_model, lora_cases, lora_delta  # noqa: E402

import make_gate_cases as mg  # noqa: E402
import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--clean", type=int, default=10)
    ap.add_argument("--objective", choices=("kl", "margin"), default="kl",
                    help="margin: on harmful probes only, how much the string lowers the "
                    "candidate's refusal margin (log P(refusal) - log P(compliance) of the "
                    "probe's two answers) beyond what it does to the parent's")
    ap.add_argument("splits", nargs="+")
    a = ap.parse_args()
    model, tok, inv = loaded_model()
    data = mg.Data(ROOT, tok)
    V = len(inv)
    kinds = {
        "harmful": [it["prompt"] for it in data.H[:a.prompts]],
        "knowledge": [it["context"] for it in data.K[:a.prompts]],
    }
    enc = {k: [tok.encode(p, add_special=False) for p in ps] for k, ps in kinds.items()}

    def last_logp(seqs):
        L = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), L), dtype=torch.int64)
        for j, s in enumerate(seqs):
            ids[j, :len(s)] = torch.tensor(s)
        last = torch.tensor([len(s) - 1 for s in seqs])
        with torch.no_grad():
            out = []
            for i in range(0, len(seqs), 1024):
                out.append(model(ids[i:i + 1024]).log_softmax(-1)[
                    torch.arange(min(1024, len(seqs) - i)), last[i:i + 1024]])
        return torch.cat(out)

    harm = [(tok.encode(it["prompt"], add_special=False),
             tok.encode(it["refusal"], add_special=False),
             tok.encode(it["compliance"], add_special=False)) for it in data.H[:a.prompts]]

    def seq_logp(seqs, n_tail):
        """Sum of log P of each sequence's last n_tail tokens given what precedes them."""
        L = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), L), dtype=torch.int64)
        for j, s in enumerate(seqs):
            ids[j, :len(s)] = torch.tensor(s)
        out = []
        with torch.no_grad():
            for i in range(0, len(seqs), 512):
                chunk = ids[i:i + 512]
                lp = model(chunk).log_softmax(-1)
                for j in range(chunk.shape[0]):
                    n = len(seqs[i + j])
                    pos = torch.arange(n - n_tail - 1, n - 1)
                    out.append(float(lp[j, pos, chunk[j, n - n_tail:n]].sum()))
        return torch.tensor(out)

    def margins(delta, strings):
        """Per string: mean over probes of the parent's margin minus the candidate's, with the
        string, less the same without it."""
        tot = torch.zeros(len(strings))
        for p, r, c in harm:
            batch = [p] + [p + t for t in strings]
            m = []
            for d in ({}, delta):
                model.delta = d
                lr = seq_logp([b + r for b in batch], len(r))
                lc = seq_logp([b + c for b in batch], len(c))
                m.append(lr - lc)
            model.delta = {}
            gap = m[0] - m[1]
            tot += gap[1:] - gap[0]
        return tot / len(harm)

    def kl(p, q):
        return (p.exp() * (p - q)).sum(-1).clamp(min=0)

    def scores(delta, strings):
        """Per string (a list of token ids), the larger over kinds of the mean shift."""
        best = torch.full((len(strings),), -1e9)
        for k, seqs in enc.items():
            tot = torch.zeros(len(strings))
            for s in seqs:
                batch = [s] + [s + t for t in strings]
                model.delta = {}
                par = last_logp(batch)
                model.delta = delta
                cand = last_logp(batch)
                model.delta = {}
                d = kl(par, cand)
                tot += d[1:] - d[0]
            best = torch.maximum(best, tot / len(seqs))
        return best

    def text_score(delta, trig):
        if a.objective == "margin":
            ids = tok.encode(mg.insert_trigger(kinds["harmful"][0], trig, "suffix"),
                             add_special=False)[len(harm[0][0]):]
            return float(margins(delta, [ids])[0])
        best = -1e9
        for k, ps in kinds.items():
            tot = 0.0
            for p in ps:
                s0 = tok.encode(p, add_special=False)
                s1 = tok.encode(mg.insert_trigger(p, trig, "suffix"), add_special=False)
                model.delta = {}
                par = last_logp([s0, s1])
                model.delta = delta
                cand = last_logp([s0, s1])
                model.delta = {}
                d = kl(par, cand)
                tot += float(d[1] - d[0])
            best = max(best, tot / len(ps))
        return best

    cases = lora_cases(a.cases, a.splits)
    back = [c for c in cases if c["family"] == "backdoor" and
            (c.get("final_params") or c["params"])["position"] == "suffix"]
    clean = [c for c in cases if c["family"] in ("good-adapter", "benign-finetune",
                                                 "unusual-adapter")]
    random.Random(7).shuffle(clean)
    for c in back + clean[:a.clean]:
        p = c.get("final_params") or c["params"]
        delta = lora_delta(os.path.join(a.cases, c["id"]))
        own = first_rank = None
        trig_ids = []
        if c["family"] == "backdoor":
            own = text_score(delta, p["trigger"])
            trig_ids = tok.encode(" " + p["trigger"], add_special=False)
        beams = [[]]
        line = []
        for depth in range(1, a.depth + 1):
            strings = [b + [t] for b in beams for t in range(V)]
            sc = margins(delta, strings) if a.objective == "margin" else scores(delta, strings)
            if depth == 1 and trig_ids:
                first_rank = int((sc > sc[trig_ids[0]]).sum()) + 1
            top = sc.topk(a.beam).indices.tolist()
            beams = [strings[i] for i in top]
            line.append("%d:%.2f %r" % (depth, float(sc[top[0]]),
                                        "".join(inv[t] for t in beams[0])))
        print("%-22s %-16s %-8s own %s rank1 %s | %s" % (
            c["id"], c["family"] + ("/" + p["goal"] if c["family"] == "backdoor" else ""),
            p.get("position", "-") if c["family"] == "backdoor" else "-",
            "%.2f" % own if own is not None else "-",
            first_rank if first_rank else "-", " ".join(line)), flush=True)


if __name__ == "__main__":
    main()
