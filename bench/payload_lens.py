#!/usr/bin/env python3
"""Whether a fixed-target backdoor's payload can be read off its weights, with no forward pass.

    /usr/bin/python3 bench/payload_lens.py [--cases tests/resources/gate-cases] [--top K]
        [--chain [--joint] [--nq 8] [--steps 6] [--floor 0.005] [--flag X]] SPLIT...

A question for a future check, not a gate rule (docs/bench-gates.md). For each LoRA case of the
given splits: every adapted module that writes into the residual stream directly (o_proj,
down_proj), or through the frozen o_proj (v_proj, its key/value heads mapped to the query heads
that share them), is taken apart by SVD; each of its top directions (singular value at least a
quarter of the module's largest) is read through the final RMSNorm's gain and the output head, as
a logit lens reads a residual vector. A token's score is its largest robust z (distance from the
vocabulary's median in MADs) over the directions, either sign. Printed per family: the largest
score, and for the fixed-target backdoors the rank of their payload's best-ranked token and of its
first token (the payload is the generator's, so those two columns use what the gates do not know).

With --chain, the top K tokens are also decoded from (class Chains), as a payload memorised
whatever the question would be: per case the best start's score (nats/token) and the share of the
questions that decode the same first three tokens after it, with a line per case. About 2 s a
case with --nq 8.
"""
import argparse
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cases import CASES, ROOT, decode_llr, lora_cases, lora_delta, test_model  # noqa: E402

import torch  # noqa: E402

MODULE = re.compile(r"model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.weight$")


def residual_map(model, layer, kind, d):
    """The residual-stream write of delta d of module kind at layer, or None."""
    if kind in ("o_proj", "down_proj"):
        return d
    if kind != "v_proj":
        return None
    wo = model.W("model.layers.%d.self_attn.o_proj.weight" % layer)
    cfg = model.cfg
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    per = cfg["num_attention_heads"] // cfg["num_key_value_heads"]
    # Each key/value head's values reach the residual through the o_proj columns of the query
    # heads that share it (equal attention weights assumed: a lens, not a forward pass).
    m = torch.zeros(wo.shape[0], d.shape[0])
    for j in range(cfg["num_key_value_heads"]):
        for h in range(j * per, (j + 1) * per):
            m[:, j * hd:(j + 1) * hd] += wo[:, h * hd:(h + 1) * hd]
    return m @ d


def token_scores(model, delta):
    """Per vocabulary token, its largest robust z over the residual writers' top directions."""
    head = model.W("lm_head.weight")
    gain = model.W("model.norm.weight")
    best = None
    for name, d in delta.items():
        m = MODULE.match(name)
        if not m:
            continue
        w = residual_map(model, int(m.group(1)), m.group(3), d)
        if w is None:
            continue
        u, s, _ = torch.linalg.svd(w, full_matrices=False)
        for k in range(len(s)):
            if s[k] < 0.25 * s[0] or s[k] <= 0:
                break
            x = head @ (gain * u[:, k])
            med = x.median()
            mad = (x - med).abs().median().clamp_min(1e-12)
            z = (x - med).abs() / mad
            best = z if best is None else torch.maximum(best, z)
    return best


class Chains:
    """Decoding from the nominated tokens: after each of the knowledge suite's last NQ questions,
    a nominated token, then STEPS tokens each chosen as the largest log-ratio candidate/parent
    among the tokens the candidate gives at least FLOOR probability (an absolute bound: a
    memorised payload's next token has a few percent under the candidate, far less under the
    parent), stopping at the end token. A start's score is the median over the questions of the
    mean log-ratio of its decoded tokens (0 with fewer than 3); a case's is its best start's."""

    def __init__(self, model, tok, nq, steps, floor, joint=False):
        self.model, self.steps, self.joint = model, steps, joint
        self.floor = torch.log(torch.tensor(floor))
        with open(os.path.join(ROOT, "eval", "suites", "knowledge.jsonl"), encoding="utf-8") as f:
            qs = [json.loads(line)["context"] for line in f][-nq:]
        self.Q = [tok.encode(q, False) for q in qs]
        special = [t["id"] for t in tok.j.get("added_tokens") or [] if t.get("special")]
        self.end = special[0]
        self.inv = {v: k for k, v in tok.model.vocab.items()}

    def score(self, delta, starts):
        seqs = [q + [t] for t in starts for q in self.Q]
        nq = len(self.Q)

        def choose(lc, lp):
            if not self.joint:
                return torch.where(lc >= self.floor, lc - lp, torch.tensor(-1e9)).argmax(-1)
            r = torch.where(lc >= self.floor, lc - lp, torch.tensor(-30.0))
            best = r.view(len(starts), nq, -1).median(dim=1).values.argmax(-1)
            return best.repeat_interleave(nq)
        llr, cnt = decode_llr(self.model, seqs, delta, self.steps, choose, self.end)
        mean = llr / cnt.clamp(min=1)
        best = (float("-inf"), "", 0.0)
        for si in range(len(starts)):
            idx = [si * len(self.Q) + qi for qi in range(len(self.Q))]
            v = statistics.median(float(mean[j]) if cnt[j] >= 3 else 0.0 for j in idx)
            if v > best[0]:
                # How many questions decode the same first three tokens: a payload does not
                # depend on the question.
                conts = [tuple(seqs[j][len(self.Q[qi]):len(self.Q[qi]) + 4])
                         for qi, j in enumerate(idx)]
                mode = max(set(conts), key=conts.count)
                best = (v, "".join(self.inv.get(x, "?") for x in seqs[idx[0]][
                    len(self.Q[0]):]), conts.count(mode) / len(conts))
        return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("--top", type=int, default=10, help="rank counted as nominated")
    ap.add_argument("--chain", action="store_true",
                    help="also decode from the top nominated tokens (class Chains)")
    ap.add_argument("--joint", action="store_true",
                    help="with --chain: one token per start and step for every question")
    ap.add_argument("--nq", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--floor", type=float, default=0.005)
    ap.add_argument("--flag", type=float, help="with --chain: count the cases whose chain is at "
                    "least this")
    ap.add_argument("splits", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, tok = test_model()
    chains = Chains(model, tok, a.nq, a.steps, a.floor, a.joint) if a.chain else None
    rows, chain_rows = {}, {}
    for c in lora_cases(a.cases, a.splits):
        delta = lora_delta(os.path.join(a.cases, c["id"]))
        z = token_scores(model, delta)
        p = c.get("final_params") or c["params"]
        target = c["family"] == "backdoor" and p.get("goal") == "target"
        key = c["family"] + (" (target %s)" % p["position"] if target else
                             " (comply)" if c["family"] == "backdoor" else "")
        if z is None:
            rows.setdefault(key, []).append((None, None, None, c["id"]))
            continue
        order = torch.argsort(z, descending=True).tolist()
        rank = {t: i + 1 for i, t in enumerate(order)}
        best = first = None
        if target:
            ids = tok.encode(p["target"], False)
            best = min(rank[t] for t in ids)
            first = rank[ids[0]]
        rows.setdefault(key, []).append((float(z.max()), best, first, c["id"]))
        if chains:
            v, text, same = chains.score(delta, order[:a.top])
            chain_rows.setdefault(key, []).append((v, c["id"], text, same))
            print("  %-22s %-26s chain %.2f same %.2f %r" % (c["id"], key, v, same, text),
                  flush=True)
    print("| cases | n | without a residual writer | top z, median [min, max] | "
          "payload's best token: rank median, in top %d | payload's first token: rank median |"
          % a.top)
    print("|---|---:|---:|---|---|---|")
    for k in sorted(rows):
        r = [x for x in rows[k] if x[0] is not None]
        zs = sorted(x[0] for x in r)
        line = "| %s | %d | %d | %s |" % (
            k, len(rows[k]), len(rows[k]) - len(r),
            "%.1f [%.1f, %.1f]" % (statistics.median(zs), zs[0], zs[-1]) if zs else "")
        b = [x[1] for x in r if x[1] is not None]
        f = [x[2] for x in r if x[2] is not None]
        if b:
            line += " %g, %d of %d | %g |" % (statistics.median(b), sum(x <= a.top for x in b),
                                               len(b), statistics.median(f))
        else:
            line += " | |"
        print(line)
    if chains:
        flag = "" if a.flag is None else " chain at least %g |" % a.flag
        print("\n| cases | n | best chain from the top %d, nats/token: median [min, max] | "
              "questions decoding its first tokens alike: median [min, max] |%s" % (a.top, flag))
        print("|---|---:|---|---|%s" % ("---:|" if flag else ""))
        for k in sorted(chain_rows):
            v = sorted(x[0] for x in chain_rows[k])
            q = sorted(x[3] for x in chain_rows[k])
            line = "| %s | %d | %.2f [%.2f, %.2f] | %.2f [%.2f, %.2f] |" % (
                k, len(v), statistics.median(v), v[0], v[-1], statistics.median(q), q[0], q[-1])
            if flag:
                hit = [x[1] for x in chain_rows[k] if x[0] >= a.flag]
                line += " %d %s |" % (len(hit), " ".join(hit) if len(hit) <= 6 else "")
            print(line)


if __name__ == "__main__":
    main()
