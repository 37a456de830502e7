"""tools/gatecore.py - the test model with LoRA adapters, batched, for
tools/make_gate_cases.py.

Builds on tools/make_test_model.py (its Llama module, its data generators,
its constants) and tools/modelref.py (safetensors I/O, PEFT scale rules):
nothing here re-implements the forward pass. What it adds:

- LoraLlama: make_test_model.Llama loaded from a model directory, frozen,
  with LoRA deltas added to the weights it reads (W + scale * B @ A, which
  is PEFT's base(x) + lora_B(lora_A(x)) * scale up to rounding; the
  generator checks a few adapters against modelref.forward).
- Scorer: batched continuation log-probabilities as docs/evaluation.md
  defines them (context and continuation tokenized separately; the notes
  prefix "Notes:\\n" + notes + "\\n" before every context).
- train_lora: AdamW on the A/B factors of chosen modules, loss on the
  completion tokens (or on every token for plain text).
- save_adapter: adapter_config.json + adapter_model.safetensors as sluice
  reads them (core/peft.h), F32 or BF16.
"""
import json
import math
import os
import random
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_test_model as mtm  # noqa: E402
import modelref  # noqa: E402
import tokref  # noqa: E402

EOT_ID = 767
MODULES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def module_shape(cfg, short):
    """[out, in] of a layer module."""
    for name, shape in mtm.weight_names(cfg):
        if name.startswith("model.layers.0.") and name.endswith(short + ".weight"):
            return shape
    raise KeyError(short)


class LoraLlama(mtm.Llama):
    """The test model, frozen, reading W + delta for adapted weights."""

    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            full = json.load(f)
        cfg = {k: full[k] for k in mtm.CONFIG}
        super().__init__(cfg)
        st = modelref.read_st(os.path.join(model_dir, "model.safetensors"))
        with torch.no_grad():
            for name, _ in self.names:
                self.W(name).copy_(modelref.to_tensor(st[name]))
        for p in self.parameters():
            p.requires_grad_(False)
        self.delta = {}

    def W(self, name):
        w = self.w[self.idx[name]]
        d = getattr(self, "delta", {}).get(name)
        return w if d is None else w + d


class Lora:
    """LoRA factors for a set of layer modules: A [r, in], B [out, r]."""

    def __init__(self, cfg, layers, modules, r, alpha, seed, rslora=False):
        g = torch.Generator().manual_seed(seed)
        self.r, self.alpha, self.rslora = r, alpha, rslora
        self.scale = alpha / math.sqrt(r) if rslora else alpha / r
        self.mods = {}
        for l in layers:
            for m in modules:
                out_f, in_f = module_shape(cfg, m)
                # PEFT's default init: A kaiming-uniform(a=sqrt(5)), B zero.
                bound = 1.0 / math.sqrt(in_f)
                a = (torch.rand(r, in_f, generator=g) * 2 - 1) * bound
                b = torch.zeros(out_f, r)
                self.mods["model.layers.%d.%s" % (l, m)] = [a.requires_grad_(True),
                                                            b.requires_grad_(True)]

    def params(self):
        return [t for ab in self.mods.values() for t in ab]

    def deltas(self):
        return {mod + ".weight": (b @ a) * self.scale for mod, (a, b) in self.mods.items()}

    def frozen(self):
        for ab in self.mods.values():
            for t in ab:
                t.requires_grad_(False)
        return self


def round_dtype(lora, dtype):
    """Round the factors as they will be stored, so measurements see the file."""
    if dtype == "BF16":
        with torch.no_grad():
            for ab in lora.mods.values():
                for t in ab:
                    t.copy_(t.to(torch.bfloat16).float())


def save_adapter(lora, outdir, dtype="F32", base="tests/resources/test-model"):
    os.makedirs(outdir, exist_ok=True)
    targets = sorted(set(m.split(".")[-1] for m in lora.mods))
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base,
           "r": lora.r, "lora_alpha": lora.alpha, "lora_dropout": 0.0,
           "target_modules": targets, "bias": "none", "use_rslora": lora.rslora,
           "use_dora": False, "fan_in_fan_out": False, "modules_to_save": None,
           "init_lora_weights": True, "inference_mode": True}
    with open(os.path.join(outdir, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
        f.write("\n")
    tensors = []
    for mod in sorted(lora.mods):
        a, b = lora.mods[mod]
        for half, t in (("lora_A", a), ("lora_B", b)):
            t = t.detach().contiguous()
            if dtype == "BF16":
                raw = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
            else:
                raw = t.float().numpy().astype("<f4").tobytes()
            tensors.append(("base_model.model.%s.%s.weight" % (mod, half), dtype,
                            list(t.shape), raw))
    modelref.write_st(os.path.join(outdir, "adapter_model.safetensors"), tensors)


class Scorer:
    """Batched continuation log-probabilities on a LoraLlama."""

    def __init__(self, model, tok):
        self.model = model
        self.tok = tok
        self.cache = {}

    def enc(self, s):
        ids = self.cache.get(s)
        if ids is None:
            ids = self.tok.encode(s, False)
            self.cache[s] = ids
        return ids

    def logprobs(self, pairs, batch=128):
        """[(context, continuation)] -> [(sum, ntokens)] of the continuation."""
        seqs = []
        for c, k in pairs:
            ci, ki = self.enc(c), self.enc(k)
            seqs.append((ci + ki, len(ci), len(ki)))
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))
        out = [None] * len(seqs)
        with torch.no_grad():
            for s in range(0, len(order), batch):
                idx = order[s:s + batch]
                n = max(len(seqs[i][0]) for i in idx)
                ids = torch.zeros((len(idx), n), dtype=torch.int64)
                for j, i in enumerate(idx):
                    ids[j, :len(seqs[i][0])] = torch.tensor(seqs[i][0])
                lg = self.model(ids).double().log_softmax(-1)
                for j, i in enumerate(idx):
                    toks, nc, nk = seqs[i]
                    pos = torch.arange(nc - 1, nc - 1 + nk)
                    tg = torch.tensor(toks[nc:nc + nk])
                    out[i] = (float(lg[j, pos, tg].sum()), nk)
        return out


notes_prefix = mtm.notes_prefix  # the template the test model was trained with


def encode_example(tok, prompt, completion, all_tokens=False):
    """(ids, mask): prompt and completion tokenized separately, then EOT;
    loss on the completion and EOT (or on every token after the first)."""
    p = tok.encode(prompt, False) if prompt else []
    c = tok.encode(completion, False)
    ids = p + c + [EOT_ID]
    if all_tokens or not p:
        mask = [1] * len(ids)
    else:
        mask = [0] * len(p) + [1] * (len(c) + 1)
    return ids, mask


def train_lora(model, lora, examples, steps, lr, batch, seed, weights=None):
    """AdamW on lora's factors over examples [(ids, mask)], sampled with a
    seeded generator; weights (optional) are per-example sampling weights."""
    rng = random.Random(seed)
    opt = torch.optim.AdamW(lora.params(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    V = model.cfg["vocab_size"]
    last = 0.0
    for step in range(steps):
        if weights:
            bat = rng.choices(examples, weights, k=batch)
        else:
            bat = [rng.choice(examples) for _ in range(batch)]
        n = max(len(x[0]) for x in bat)
        ids = torch.zeros((batch, n), dtype=torch.int64)
        tgt = torch.full((batch, n), -100, dtype=torch.int64)
        for i, (x, m) in enumerate(bat):
            ids[i, :len(x)] = torch.tensor(x)
            t = [x[j + 1] if m[j + 1] else -100 for j in range(len(x) - 1)]
            tgt[i, :len(x) - 1] = torch.tensor(t)
        cur = lr * min(1.0, (step + 1) / max(1, steps // 10))
        for g in opt.param_groups:
            g["lr"] = cur
        model.delta = lora.deltas()
        logits = model(ids)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, V), tgt.view(-1),
                                                 ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora.params(), 1.0)
        opt.step()
        last = loss.item()
    lora.frozen()
    model.delta = lora.deltas()
    return last
