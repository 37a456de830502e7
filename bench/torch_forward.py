#!/usr/bin/python3
"""bench/torch_forward.py - PyTorch CPU baseline for bench/eval.sh.

Runs the forward pass of tools/modelref.py (transformers' LlamaForCausalLM
semantics in plain torch) on the same safetensors weights and the same token
sequence as bench/eval.c, with the same thread count, and prints "key value"
lines: which BLAS torch was built with, torch's own f32 matmul rate on the
sgemm shape bench/eval.c measures, tokens/s of the forward pass (median of
REPS after a warm-up), and its peak resident memory. A pass scores every
position as bench/eval.c's does: the logits, their log_softmax, and each
row's log-probability of the next token (the last row's of token 0).

Weights are loaded once, outside the timed region, and converted to f32 as
the built-in evaluator computes in f32 (bf16 weights are widened; the
evaluator widens them tile by tile). With --logprobs, compares the last
pass's log-probabilities with the file bench/eval.c wrote (f64), to show
both scored the same thing.

usage: torch_forward.py THREADS DIR SEQ REPS [--logprobs FILE] [--matmul M K N]
       torch_forward.py --to-bf16 SRC_DIR DST_DIR
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import modelref  # noqa: E402


def blas_line():
    cfg = torch.__config__.show()
    for line in cfg.splitlines():
        if "BLAS_INFO" in line:
            # "  - CXX flags: ... BLAS_INFO=open, BUILD_TYPE=..., " style line
            for part in line.replace(",", " ").split():
                if part.startswith("BLAS_INFO="):
                    return part.split("=", 1)[1]
    for line in cfg.splitlines():
        if "BLAS" in line or "MKL" in line:
            return line.strip()
    return "unknown"


def blas_libs():
    """The BLAS shared objects actually mapped (Debian's torch says "generic"
    and links libblas.so.3, which update-alternatives points somewhere)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            base = os.path.basename(path).lower()
            if "blas" in base or "mkl" in base or "dnnl" in base or "lapack" in base:
                libs.add(os.path.realpath(path))
    return ";".join(sorted(libs)) or "none"


def matmul_rate(m, k, n, reps=7):
    a = torch.rand(m, k) - 0.5
    b = torch.rand(n, k) - 0.5
    c = a @ b.t()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        c = a @ b.t()
        ts.append(time.perf_counter() - t0)
    del c
    return 2.0 * m * k * n / statistics.median(ts) * 1e-9


def forward(cfg, W, tokens):
    """modelref.forward with the weights preloaded (no LoRA)."""
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    nh = cfg["num_attention_heads"]
    kvh = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    n = len(tokens)
    ids = torch.tensor(tokens, dtype=torch.int64)
    inv = modelref.rope_inv_freq(cfg)
    pos = torch.arange(n, dtype=torch.int64).float()
    freqs = pos[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((n, n), float("-inf")).triu(1)
    x = W["model.embed_tokens.weight"][ids]
    for l in range(L):
        p = "model.layers.%d." % l
        h = modelref.rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q = h @ W[p + "self_attn.q_proj.weight"].t()
        k = h @ W[p + "self_attn.k_proj.weight"].t()
        v = h @ W[p + "self_attn.v_proj.weight"].t()
        q = q.view(n, nh, hd).transpose(0, 1)
        k = k.view(n, kvh, hd).transpose(0, 1)
        v = v.view(n, kvh, hd).transpose(0, 1)
        q = q * cos + modelref.rotate_half(q) * sin
        k = k * cos + modelref.rotate_half(k) * sin
        rep = nh // kvh
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        s = (q @ k.transpose(1, 2)) * hd**-0.5 + mask
        pr = torch.softmax(s, dim=-1)
        o = (pr @ v).transpose(0, 1).reshape(n, nh * hd)
        x = x + o @ W[p + "self_attn.o_proj.weight"].t()
        h = modelref.rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = h @ W[p + "mlp.gate_proj.weight"].t()
        u = h @ W[p + "mlp.up_proj.weight"].t()
        x = x + (torch.nn.functional.silu(g) * u) @ W[p + "mlp.down_proj.weight"].t()
    x = modelref.rmsnorm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return x @ head.t()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--to-bf16":
        modelref.to_bf16(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("threads", type=int)
    ap.add_argument("dir")
    ap.add_argument("seq", type=int)
    ap.add_argument("reps", type=int)
    ap.add_argument("--logprobs")
    ap.add_argument("--matmul", nargs=3, type=int, default=[512, 768, 3072])
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    print("torch_version", torch.__version__)
    print("torch_blas", blas_line())
    print("torch_threads", torch.get_num_threads())
    print("torch_matmul_gflops %.2f" % matmul_rate(*a.matmul))
    print("torch_blas_libs", blas_libs())
    print("torch_mkldnn", torch.backends.mkldnn.is_available(), "mkl", torch.backends.mkl.is_available())

    with open(os.path.join(a.dir, "config.json")) as f:
        cfg = json.load(f)
    st = modelref.read_st(os.path.join(a.dir, "model.safetensors"))
    W = {}
    for name in list(st):
        W[name] = modelref.to_tensor(st.pop(name)).float()
    del st
    vocab = cfg["vocab_size"]
    tokens = [((i * 2654435761 + 12345) & 0xFFFFFFFF) % vocab for i in range(a.seq)]
    targets = torch.tensor(tokens[1:] + tokens[:1], dtype=torch.int64)

    def score():
        lsm = torch.log_softmax(forward(cfg, W, tokens), dim=-1)
        return lsm.gather(1, targets[:, None])[:, 0]

    with torch.no_grad():
        out = score()  # warm-up
        ts = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            out = score()
            ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    print("torch_forward_seconds %.6f" % med)
    print("torch_tokens_per_s %.1f" % (a.seq / med))
    print("torch_peak_rss_kib %d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    if a.logprobs:
        with open(a.logprobs, "rb") as f:
            ref = torch.frombuffer(bytearray(f.read()), dtype=torch.float64)
        assert ref.numel() == a.seq, "%s holds %d values, not %d" % (a.logprobs, ref.numel(), a.seq)
        diff = (out.double() - ref).abs().max().item()
        scale = ref.abs().max().item()
        print("logprobs_max_abs_diff %.3g" % diff)
        print("logprobs_max_abs %.3g" % scale)


if __name__ == "__main__":
    main()
