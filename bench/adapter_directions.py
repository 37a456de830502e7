#!/usr/bin/env python3
"""Two weight-and-activation statistics of a LoRA update, per family of the labelled set.

    /usr/bin/python3 bench/adapter_directions.py [--cases tests/resources/gate-cases] SPLIT...

A question for a future check, not a gate rule (docs/bench-gates.md, "Tried, not a rule: the
refusal direction and dormant capacity"). Both read the parent model's activations on the pinned
suites' prompts (harmful, benign, knowledge questions, the first 30 texts), never the trigger.

- refusal: the refusal direction at each point of the residual stream (after each layer's
  attention and MLP) is the mean at the prompt's last position over the harmful prompts less
  the mean over the benign ones, normalised. For every adapted module that writes into the
  residual stream (o_proj and down_proj directly, v_proj through the frozen o_proj, as
  bench/payload_lens.py maps it) the share of its update's energy along that direction,
  ||r^T dW||^2 / ||dW||_F^2, times the width (1 for a direction drawn at random); per case the
  largest over modules, at the point it writes ("local") and at the last layer ("final"). A
  backdoor that makes the model comply must write against refusal somewhere.
- dormant: per adapted module, E||dW x||^2 over every position of the prompts, over what a
  direction-blind update of the same norm would give, ||dW||_F^2 E||x||^2 / width; per case the
  ratio of the sums over modules ("pooled") and the smallest module's ("min"). An update trained
  to act only when its trigger is present could use little of its capacity on clean inputs.

Prints one line per case and, per family (backdoors by goal and position), the median, range and
the 10th or 90th percentile. About 2 s a case.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from payload_lens import MODULE, residual_map  # noqa: E402
from torch_cases import CASES, ROOT, loaded_model, lora_cases, lora_delta  # noqa: E402

import torch  # noqa: E402


def suite(name, field):
    with open(os.path.join(ROOT, "eval", "suites", name + ".jsonl"), encoding="utf-8") as f:
        return [json.loads(line)[field] for line in f if line.strip()]


def activations(model, tok, texts):
    """Per recorded name, the parent's values at every position of every text stacked [N, d],
    and per residual point its value at each text's last position [texts, d]."""
    every, last = {}, {}
    with torch.no_grad():
        for t in texts:
            ids = torch.tensor([tok.encode(t, False)])

            def rec(name, x):
                if name.endswith(".weight"):
                    every.setdefault(name, []).append(x[0])
                else:
                    last.setdefault(name, []).append(x[0, -1])
            model(ids, rec)
    return ({k: torch.cat(v) for k, v in every.items()},
            {k: torch.stack(v) for k, v in last.items()})


def family(c):
    p = c["params"]
    if c["family"] != "backdoor":
        return c["family"]
    return "backdoor-%s-%s" % (p["goal"], p["position"])


def summary(rows, col, name, low):
    for fam in sorted({r[0] for r in rows}):
        v = sorted(r[col] for r in rows if r[0] == fam)
        q = v[int((0.1 if low else 0.9) * (len(v) - 1))]
        print("%-26s %-7s n=%3d median %6.2f [%6.2f, %6.2f] %s %6.2f" % (
            fam, name, len(v), statistics.median(v), v[0], v[-1], "q10" if low else "q90", q))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("splits", nargs="+")
    a = ap.parse_args()
    model, tok, _ = loaded_model()
    width = model.cfg["hidden_size"]
    harmful, benign = suite("harmful", "prompt"), suite("benign", "prompt")
    texts = harmful + benign + suite("knowledge", "context") + suite("text", "text")[:30]
    inputs, _ = activations(model, tok, texts)
    moment = {k: (x.T @ x) / x.shape[0] for k, x in inputs.items()}
    _, hl = activations(model, tok, harmful)
    _, bl = activations(model, tok, benign)
    refusal = {k: (hl[k].mean(0) - bl[k].mean(0)) for k in hl}
    refusal = {k: v / v.norm() for k, v in refusal.items()}
    last = "model.layers.%d.mlp_out" % (model.cfg["num_hidden_layers"] - 1)
    rows = []
    print("%-26s %-26s %8s %8s %8s %8s" % ("family", "case", "local", "final", "pooled", "min"))
    with torch.no_grad():
        for c in lora_cases(a.cases, a.splits):
            delta = lora_delta(os.path.join(a.cases, c["path"]))
            local = final = 0.0
            used = blind = 0.0
            least = float("inf")
            for name, d in delta.items():
                m = MODULE.match(name)
                layer, kind = int(m.group(1)), m.group(3)
                # dormant: clean inputs' use of the update's capacity
                mom = moment[name]
                u = float(torch.trace(d @ mom @ d.T))
                b = float(d.norm() ** 2 * torch.trace(mom) / mom.shape[0])
                used, blind, least = used + u, blind + b, min(least, u / b)
                # refusal: the residual write's energy along the refusal direction
                w = residual_map(model, layer, kind, d)
                if w is None:
                    continue
                point = "model.layers.%d.%s" % (layer, "attn_out" if kind in ("o_proj", "v_proj")
                                                else "mlp_out")
                e = float(w.norm() ** 2)
                local = max(local, float((refusal[point] @ w).norm() ** 2) / e * width)
                final = max(final, float((refusal[last] @ w).norm() ** 2) / e * width)
            rows.append((family(c), c["id"], local, final, used / blind, least))
            print("%-26s %-26s %8.2f %8.2f %8.3f %8.3f" % rows[-1], flush=True)
    print()
    summary(rows, 2, "local", False)
    summary(rows, 3, "final", False)
    summary(rows, 4, "pooled", True)
    summary(rows, 5, "min", True)


if __name__ == "__main__":
    main()
