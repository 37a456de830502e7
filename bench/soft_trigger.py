#!/usr/bin/env python3
"""bench/soft_trigger.py - whether a trigger found by gradient, with no null to stand against,
separates backdoors whose trigger goes after the prompt from clean adapters. A question for a
future check, not a gate rule (docs/bench-gates.md): the C engine has no backward pass.

    /usr/bin/python3 bench/soft_trigger.py [--cases DIR] [--k 4] [--steps 150] [--restarts 3]
        [--prompts 8] [--clean N] [--ids ID,...] SPLIT...

The trigger scan inserts strings it is given and compares their shift with random strings'.
After the prompt random strings shift adapters as far as a backdoor's pieces do, so the scan's
null swallows them (docs/bench-gates.md, "The scan's shift over every token"). Here the string
is searched for instead: K input positions after the prompt hold points of the convex hull of
the token embeddings (softmax(z) @ E, z free), shared by every prompt, and z is moved by Adam to
make one answer token y likelier under the candidate than under the parent, by the same amount
on every prompt of one kind (harmful probes or knowledge questions):

    objective(z) = max over y of mean over prompts of  log P_cand(y | p, soft) - log P_par(y | p, soft)

A backdoor after the prompt was trained to answer one way (" Sure" or its target's first token)
whatever the question, once its trigger is there; a clean adapter was not. The search runs on
PROMPTS prompts of each kind and the figure is read on PROMPTS others (held out), so a soft
string that fits the search prompts alone does not count. Printed per case: the held-out figure
of the best restart, its y, the nearest tokens to the soft positions, and for backdoors the same
figure with the backdoor's own trigger inserted as text (what a perfect search would reach).
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cases import CASES, ROOT, loaded_model, lora_cases, lora_delta  # noqa: E402

import make_gate_cases as mg  # noqa: E402
import torch  # noqa: E402

CLEAN = ("good-adapter", "benign-finetune", "unusual-adapter")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("--k", type=int, default=4, help="soft positions after the prompt")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.3)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--clean", type=int, default=10)
    ap.add_argument("--ids", default="")
    ap.add_argument("--hard", action="store_true",
                    help="whole tokens by coordinate ascent instead of soft points")
    ap.add_argument("--sweeps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("splits", nargs="+")
    a = ap.parse_args()
    model, tok, inv = loaded_model()
    data = mg.Data(ROOT, tok)
    E = model.W("model.embed_tokens.weight").detach()
    n = a.prompts
    texts = {"harmful": [it["prompt"] for it in data.H],
             "knowledge": [it["context"] for it in data.K]}
    rng = random.Random(a.seed)
    split = {}
    for kind, ps in texts.items():
        ps = list(ps)
        rng.shuffle(ps)
        split[kind] = (ps[:n], ps[n:2 * n])
    # the same prompts as token ids, for every case
    split_ids = {kind: tuple([tok.encode(p, add_special=False) for p in half] for half in halves)
                 for kind, halves in split.items()}

    def batch_logp(prefixes, soft, delta):
        """Next-token log-probabilities after each prefix (token ids) followed by soft
        [K, hidden] (or nothing, soft None), under the test model with delta."""
        rows, last = [], []
        for ids in prefixes:
            x = E[torch.tensor(ids)]
            if soft is not None:
                x = torch.cat((x, soft), 0)
            rows.append(x)
            last.append(x.shape[0] - 1)
        x = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
        model.delta = delta
        out = model.forward_embeds(x).log_softmax(-1)
        model.delta = {}
        return out[torch.arange(len(rows)), torch.tensor(last)]

    def mean_gap(prefixes, soft, delta):
        """Per answer token, the mean log-ratio candidate/parent over the prefixes."""
        return (batch_logp(prefixes, soft, delta) - batch_logp(prefixes, soft, {})).mean(0)

    def figure(prefixes, soft, delta):
        """max over y of the mean log-ratio candidate/parent of y; and that y."""
        gap = mean_gap(prefixes, soft, delta)
        y = int(gap.argmax())
        return gap[y], y

    def own_figure(delta, trig, prompts):
        seqs = [tok.encode(mg.insert_trigger(p, trig, "suffix"), add_special=False)
                for p in prompts]
        with torch.no_grad():
            f, y = figure(seqs, None, delta)
        return float(f), y

    def search(delta, kind, gen):
        fit_ids, held_ids = split_ids[kind]
        best = None
        for _ in range(a.restarts):
            z = (torch.randn(a.k, E.shape[0], generator=gen) * 0.1).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=a.lr)
            for _ in range(a.steps):
                soft = z.softmax(-1) @ E
                f, _ = figure(fit_ids, soft, delta)
                opt.zero_grad()
                (-f).backward()
                opt.step()
            with torch.no_grad():
                soft = z.softmax(-1) @ E
                fit_f, y = figure(fit_ids, soft, delta)
                held_f = float(mean_gap(held_ids, soft, delta)[y])
                near = "".join(inv[int(t)] for t in z.argmax(-1))
            if best is None or held_f > best[0]:
                best = (held_f, float(fit_f), y, near)
        return best

    def hard_search(delta, kind, gen):
        """Coordinate ascent over K whole tokens: each sweep tries every token of the
        vocabulary at each position in turn (the others held) and keeps the best by the fit
        figure. Returns as search() does."""
        fit_ids, held_ids = split_ids[kind]
        V = E.shape[0] - 1  # the end token is never inserted
        best = None
        for _ in range(a.restarts):
            cur = torch.randint(0, V, (a.k,), generator=gen).tolist()
            for _ in range(a.sweeps):
                for pos in range(a.k):
                    strings = []
                    for t in range(V):
                        s = list(cur)
                        s[pos] = t
                        strings.append(s)
                    gaps = torch.zeros(V, E.shape[0])
                    with torch.no_grad():
                        for ids in fit_ids:
                            seqs = [ids + s for s in strings]
                            x = E[torch.tensor(seqs)]
                            lc = batch_rows(x, delta)
                            lp = batch_rows(x, {})
                            gaps += lc - lp
                    gaps /= len(fit_ids)
                    sc = gaps.max(-1).values
                    cur[pos] = int(sc.argmax())
            with torch.no_grad():
                fit_f, y = figure([i + cur for i in fit_ids], None, delta)
                held_f = float(mean_gap([i + cur for i in held_ids], None, delta)[y])
            near = "".join(inv[t] for t in cur)
            if best is None or held_f > best[0]:
                best = (held_f, float(fit_f), y, near)
        return best

    def batch_rows(x, delta):
        """Last-position log-probabilities of equal-length embedded rows x [B, n, hidden]."""
        model.delta = delta
        out = []
        for i in range(0, x.shape[0], 256):
            out.append(model.forward_embeds(x[i:i + 256])[:, -1].log_softmax(-1))
        model.delta = {}
        return torch.cat(out)

    cases = lora_cases(a.cases, a.splits)
    want = set(a.ids.split(",")) if a.ids else None
    back = [c for c in cases if c["family"] == "backdoor" and
            (c.get("final_params") or c["params"])["position"] == "suffix"]
    clean = [c for c in cases if c["family"] in CLEAN]
    random.Random(7).shuffle(clean)
    todo = back + clean[:a.clean]
    if want:
        todo = [c for c in cases if c["id"] in want]
    for c in todo:
        p = c.get("final_params") or c["params"]
        delta = lora_delta(os.path.join(a.cases, c["id"]))
        gen = torch.Generator().manual_seed(a.seed)
        line = []
        top = -1e9
        for kind in ("harmful", "knowledge"):
            held_f, fit_f, y, near = (hard_search if a.hard else search)(delta, kind, gen)
            top = max(top, held_f)
            own = ""
            if c["family"] == "backdoor":
                of, oy = own_figure(delta, p["trigger"], split[kind][1])
                own = " own %.2f %r" % (of, inv[oy])
            line.append("%s held %.2f fit %.2f y %r near %r%s" % (
                kind[:4], held_f, fit_f, inv[y], near, own))
        goal = "/" + p["goal"] if c["family"] == "backdoor" else ""
        print("%-22s %-20s top %6.2f | %s" % (c["id"], c["family"] + goal, top,
                                              " | ".join(line)), flush=True)


if __name__ == "__main__":
    main()
