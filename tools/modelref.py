#!/usr/bin/python3
"""tools/modelref.py - reference logits for the built-in evaluator's tests.

A plain-PyTorch port of Hugging Face transformers' LlamaForCausalLM forward
pass (eager attention) and of PEFT's LoRA Linear layer, used to make the
fixtures in tests/resources/model-ref/. Run it with Debian's torch:

    /usr/bin/python3 tools/modelref.py --synth build/sluice-synth \
        --out tests/resources/model-ref

It generates the synthetic models and adapters with sluice-synth (the same
commands the C test runs at test time; the fixture records the BLAKE2b-256
of every safetensors file so the test can prove it scores the same bytes),
applies the case's config overrides and derivations, and writes each case's
logits [seq][vocab] as little-endian f32 plus cases.json describing them.

With --test-model it makes the fixtures of tests/eval/test_test_model.c
instead: the committed test model with a stack of two committed gate-case
adapters, and its weights rounded to bf16 (to_bf16, as bench/eval.sh
makes its bf16 twin), on one fixed sentence (tests/resources/test-model-ref/cases.json
and its *.bin; needs python3-regex for tools/tokref.py):

    /usr/bin/python3 tools/modelref.py --test-model tests/resources/test-model \
        --out tests/resources/test-model-ref

Conventions, as transformers (models/llama/modeling_llama.py) has them:
- RMSNorm in f32: w * (x * rsqrt(mean(x^2) + eps)), cast back to the
  compute dtype before the weight multiplies.
- RoPE rotate-half: q*cos + rotate_half(q)*sin, rotate_half(x) =
  cat(-x[d/2:], x[:d/2]); inv_freq = 1 / theta^(arange(0, d, 2)/d) in f32,
  with the llama3 adjustment of _compute_llama3_parameters.
- GQA by repeat_kv: KV head j serves query heads j*rep .. j*rep+rep-1.
- Attention scores scaled by head_dim^-0.5, causal mask, softmax in f32.
- MLP down(silu(gate(x)) * up(x)); lm_head, or embed_tokens when tied.
- LoRA (PEFT): y = base(x) + lora_B(lora_A(x)) * scale per adapter, scale
  alpha/r or alpha/sqrt(r) with use_rslora.
No safetensors or transformers package is needed.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import struct
import subprocess
import tempfile

import torch

TOKENS = [1, 17, 200, 42, 42, 7, 255, 0, 128, 64, 3, 99, 180, 31, 250, 2]

ST_DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}

# Norm weights of derived models: 1 + (i % 7 - 3) / 16, exact in every dtype,
# so a forward pass that ignored them would fail the comparison.
def norm_value(i):
    return 1.0 + ((i % 7) - 3) / 16.0


def b2(path):
    with open(path, "rb") as f:
        return hashlib.blake2b(f.read(), digest_size=32).hexdigest()


def read_st(path):
    """name -> (dtype name, shape, raw bytes), in file order."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    hdr = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    items = [(k, v) for k, v in hdr.items() if k != "__metadata__"]
    items.sort(key=lambda kv: kv[1]["data_offsets"][0])
    for k, v in items:
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], data[base + b : base + e])
    return out


def to_tensor(entry):
    dt, shape, raw = entry
    tdt, size = ST_DTYPES[dt]
    if dt == "BF16":
        t = torch.frombuffer(bytearray(raw), dtype=torch.int16).view(torch.bfloat16)
    else:
        t = torch.frombuffer(bytearray(raw), dtype=tdt)
    return t.reshape(shape).clone()


def write_st(path, tensors):
    """tensors: list of (name, dtype name, shape, bytes), written in order."""
    hdr, off = {}, 0
    for name, dt, shape, raw in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    text = json.dumps(hdr, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for t in tensors:
            f.write(t[3])


def derive_tied(model_dir):
    """Drop lm_head.weight and give every 1-D (norm) tensor norm_value(i)."""
    path = os.path.join(model_dir, "model.safetensors")
    st = read_st(path)
    out = []
    for name, (dt, shape, raw) in st.items():
        if name == "lm_head.weight":
            continue
        if len(shape) == 1:
            vals = torch.tensor([norm_value(i) for i in range(shape[0])], dtype=torch.float32)
            vals = vals.to(ST_DTYPES[dt][0])
            if dt == "BF16":
                raw = vals.view(torch.int16).numpy().tobytes()
            else:
                raw = vals.numpy().tobytes()
        out.append((name, dt, shape, raw))
    write_st(path, out)


def rope_inv_freq(cfg):
    d = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    rs = cfg.get("rope_scaling")
    if rs and (rs.get("rope_type") or rs.get("type")) == "llama3":
        factor = rs["factor"]
        low, high = rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / low, old / high
        wavelen = 2 * math.pi / inv
        inv_l = torch.where(wavelen > low_wl, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
        inv = torch.where(medium, smoothed, inv_l)
    return inv


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rmsnorm(x, w, eps):
    dt = x.dtype
    h = x.to(torch.float32)
    var = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(var + eps)
    return w * h.to(dt)


class Lora:
    def __init__(self, adir, cdt):
        with open(os.path.join(adir, "adapter_config.json")) as f:
            self.cfg = json.load(f)
        st = read_st(os.path.join(adir, "adapter_model.safetensors"))
        r, alpha = self.cfg["r"], self.cfg["lora_alpha"]
        self.scale = alpha / math.sqrt(r) if self.cfg.get("use_rslora") else alpha / r
        self.mods = {}
        pre = "base_model.model."
        for name in st:
            if name.endswith(".lora_A.weight"):
                mod = name[len(pre) : -len(".lora_A.weight")]
                a = to_tensor(st[name]).to(cdt)
                b = to_tensor(st[pre + mod + ".lora_B.weight"]).to(cdt)
                self.mods[mod] = (a, b)


def linear(x, w, mod, loras):
    """PEFT LoRA Linear: base(x) + lora_B(lora_A(x)) * scale, per adapter."""
    y = x @ w.T
    for lo, extra in loras:
        if mod in lo.mods:
            a, b = lo.mods[mod]
            y = y + ((x @ a.T) @ b.T) * (lo.scale * extra)
    return y


def forward(model_dir, tokens, adapters=(), cdt=torch.float32):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    st = read_st(os.path.join(model_dir, "model.safetensors"))
    W = {k: to_tensor(v).to(cdt) for k, v in st.items()}
    loras = [(Lora(d, cdt), s) for d, s in adapters]
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    nh = cfg["num_attention_heads"]
    kvh = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    n = len(tokens)
    ids = torch.tensor(tokens, dtype=torch.int64)

    inv = rope_inv_freq(cfg)
    pos = torch.arange(n, dtype=torch.int64).float()
    freqs = pos[:, None] * inv[None, :]  # f32, as the rotary embedding's matmul
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(cdt), emb.sin().to(cdt)

    x = W["model.embed_tokens.weight"][ids]
    for l in range(L):
        p = "model.layers.%d." % l
        mp = p[:-1] + "."
        h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q = linear(h, W[p + "self_attn.q_proj.weight"], mp + "self_attn.q_proj", loras)
        k = linear(h, W[p + "self_attn.k_proj.weight"], mp + "self_attn.k_proj", loras)
        v = linear(h, W[p + "self_attn.v_proj.weight"], mp + "self_attn.v_proj", loras)
        q = q.view(n, nh, hd).transpose(0, 1)  # [nh][n][hd]
        k = k.view(n, kvh, hd).transpose(0, 1)
        v = v.view(n, kvh, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = nh // kvh
        k = k.repeat_interleave(rep, dim=0)  # repeat_kv
        v = v.repeat_interleave(rep, dim=0)
        s = (q @ k.transpose(1, 2)) * hd**-0.5
        mask = torch.full((n, n), float("-inf")).triu(1)
        s = s + mask.to(cdt)
        pr = torch.softmax(s, dim=-1, dtype=torch.float32).to(cdt)
        o = (pr @ v).transpose(0, 1).reshape(n, nh * hd)
        x = x + linear(o, W[p + "self_attn.o_proj.weight"], mp + "self_attn.o_proj", loras)
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = linear(h, W[p + "mlp.gate_proj.weight"], mp + "mlp.gate_proj", loras)
        u = linear(h, W[p + "mlp.up_proj.weight"], mp + "mlp.up_proj", loras)
        a = torch.nn.functional.silu(g) * u
        x = x + linear(a, W[p + "mlp.down_proj.weight"], mp + "mlp.down_proj", loras)
    x = rmsnorm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return linear(x, head, "lm_head", loras).float()


MODEL = ["--hidden", "64", "--inter", "172", "--layers", "2", "--heads", "4", "--kv-heads", "2",
         "--vocab", "256"]

CASES = [
    {"name": "f32", "model": MODEL + ["--dtype", "f32", "--seed", "11"], "tolerance": 1e-4},
    {"name": "f32-lora2", "model": MODEL + ["--dtype", "f32", "--seed", "11"],
     "adapters": [
         {"synth": ["--r", "4", "--alpha", "8", "--targets", "q_proj,v_proj", "--seed", "21"],
          "config_overrides": {}, "stack_scale": 1.0},
         {"synth": ["--r", "8", "--alpha", "16", "--targets", "gate_proj,up_proj,down_proj",
                    "--seed", "22"],
          "config_overrides": {"use_rslora": True}, "stack_scale": 0.5}],
     "tolerance": 1e-4},
    {"name": "bf16", "model": MODEL + ["--dtype", "bf16", "--seed", "11"], "tolerance": 1e-4},
    {"name": "f16", "model": MODEL + ["--dtype", "f16", "--seed", "11"], "tolerance": 1e-4},
    {"name": "llama3-tied",
     "model": ["--hidden", "64", "--inter", "96", "--layers", "2", "--heads", "4", "--kv-heads",
               "1", "--vocab", "256", "--dtype", "f32", "--seed", "12"],
     "config_overrides": {"tie_word_embeddings": True, "rope_theta": 50000.0,
                          "rms_norm_eps": 1e-6,
                          "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                                           "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                           "original_max_position_embeddings": 128}},
     "derive": "tied", "tolerance": 1e-4},
]


def run(cmd):
    subprocess.run(cmd, check=True)


def make_case(synth, tmp, case):
    mdir = os.path.join(tmp, case["name"], "model")
    run([synth, "model", mdir] + case["model"])
    info = {"model_b2": b2(os.path.join(mdir, "model.safetensors"))}
    if case.get("derive") == "tied":
        derive_tied(mdir)
    if case.get("config_overrides"):
        cpath = os.path.join(mdir, "config.json")
        with open(cpath) as f:
            cfg = json.load(f)
        cfg.update(case["config_overrides"])
        with open(cpath, "w") as f:
            json.dump(cfg, f, indent=2)
    adapters = []
    for i, ad in enumerate(case.get("adapters", [])):
        adir = os.path.join(tmp, case["name"], "adapter%d" % i)
        run([synth, "lora", adir, "--base", mdir] + ad["synth"])
        ad["b2"] = b2(os.path.join(adir, "adapter_model.safetensors"))
        if ad["config_overrides"]:
            cpath = os.path.join(adir, "adapter_config.json")
            with open(cpath) as f:
                cfg = json.load(f)
            cfg.update(ad["config_overrides"])
            with open(cpath, "w") as f:
                json.dump(cfg, f, indent=2)
        adapters.append((adir, ad["stack_scale"]))
    return mdir, adapters, info


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The test model's cases: a sentence from the facts-new suite (what the
# gate-case good-adapters were trained on, so they move these logits) and
# from the requests, 16-32 tokens. Adapter paths are relative to the
# repository root; good-adapter-01 adapts the MLP (gate, up, down; r 4,
# alpha 8), good-adapter-00 all seven projections (r 2, alpha 4), so the MLP
# modules sum two adapters and the attention ones take one.
TEST_MODEL_TEXT = "Q: What is the capital of Vequasel? A: Gartesh. How do I make a paper boat?"

TEST_MODEL_CASES = [
    {"name": "f32-lora2",
     "adapters": [{"path": "tests/resources/gate-cases/good-adapter-01", "stack_scale": 1.0},
                  {"path": "tests/resources/gate-cases/good-adapter-00", "stack_scale": 0.5}],
     "tolerance": 1e-4},
    {"name": "bf16", "derive": "bf16", "tolerance": 1e-4},
]


def to_bf16(src, dst):
    """Copy model dir src to dst (config.json and model.safetensors) with every
    tensor rounded to BF16, round to nearest even: the bf16 twin of the shipped
    f32 test model that bench/eval.sh and test_test_model.c score."""
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    cfg["torch_dtype"] = "bfloat16"
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    out = []
    for name, entry in read_st(os.path.join(src, "model.safetensors")).items():
        t = to_tensor(entry).to(torch.bfloat16).contiguous()
        raw = t.view(torch.int16).numpy().tobytes()
        out.append((name, "BF16", list(t.shape), raw))
    write_st(os.path.join(dst, "model.safetensors"), out)


def write_logits(path, logits):
    with open(path, "wb") as f:
        f.write(logits.contiguous().numpy().astype("<f4").tobytes())


def test_model_refs(model_dir, out_dir):
    """The fixtures of tests/eval/test_test_model.c's adapter and bf16 cases."""
    import tokref  # needs the regex module; only this mode does

    tok = tokref.load(os.path.join(model_dir, "tokenizer.json"))
    ids = tok.encode(TEST_MODEL_TEXT, False)
    assert 16 <= len(ids) <= 32, len(ids)
    base = forward(model_dir, ids)
    out = {"model": os.path.relpath(os.path.abspath(model_dir), ROOT),
           "model_b2": b2(os.path.join(model_dir, "model.safetensors")),
           "text": TEST_MODEL_TEXT, "tokens": ids, "cases": []}
    tmp = tempfile.mkdtemp(prefix="modelref")
    try:
        for case in TEST_MODEL_CASES:
            entry = dict(case)
            if case.get("derive") == "bf16":
                mdir = os.path.join(tmp, "bf16")
                to_bf16(model_dir, mdir)
                entry["model_b2"] = b2(os.path.join(mdir, "model.safetensors"))
                logits = forward(mdir, ids)
                # transformers' native bf16 inference, for the docs' figure
                native = forward(mdir, ids, (), torch.bfloat16)
                entry["native_max_abs_diff_vs_f32_compute"] = float(
                    (native - logits).abs().max())
                entry["max_abs_diff_vs_f32_weights"] = float((logits - base).abs().max())
            else:
                adapters, entry["adapters"] = [], []
                for ad in case["adapters"]:
                    adir = os.path.join(ROOT, ad["path"])
                    e = dict(ad)
                    e["config_b2"] = b2(os.path.join(adir, "adapter_config.json"))
                    e["b2"] = b2(os.path.join(adir, "adapter_model.safetensors"))
                    entry["adapters"].append(e)
                    adapters.append((adir, ad["stack_scale"]))
                logits = forward(model_dir, ids, adapters)
                entry["max_abs_diff_vs_no_adapters"] = float((logits - base).abs().max())
            fname = "%s.bin" % case["name"]
            write_logits(os.path.join(out_dir, fname), logits)
            entry["logits"] = fname
            entry["shape"] = list(logits.shape)
            out["cases"].append(entry)
            print(case["name"], "max |logit|", float(logits.abs().max()))
    finally:
        shutil.rmtree(tmp)
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--synth", help="sluice-synth: the synthetic cases (tests/eval/test_model.c)")
    mode.add_argument("--test-model", help="the test model's directory: its cases "
                      "(tests/eval/test_test_model.c)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    if args.test_model:
        test_model_refs(args.test_model, args.out)
        return
    tmp = tempfile.mkdtemp(prefix="modelref")
    out = {"tokens": TOKENS, "cases": []}
    try:
        for case in CASES:
            mdir, adapters, info = make_case(args.synth, tmp, case)
            logits = forward(mdir, TOKENS, adapters)
            fname = case["name"] + ".bin"
            write_logits(os.path.join(args.out, fname), logits)
            entry = dict(case)
            entry.update(info)
            entry["logits"] = fname
            entry["shape"] = list(logits.shape)
            if case["name"] == "bf16":
                # transformers' native bf16 inference (weights, activations and
                # products in bf16; norms and softmax in f32), for the stated
                # distance of the f32-computing evaluator from it.
                native = forward(mdir, TOKENS, (), torch.bfloat16)
                nname = "bf16-native.bin"
                write_logits(os.path.join(args.out, nname), native)
                entry["native_logits"] = nname
                entry["native_max_abs_diff_vs_f32_compute"] = float(
                    (native - logits).abs().max())
            out["cases"].append(entry)
            print(case["name"], "max |logit|", float(logits.abs().max()))
    finally:
        shutil.rmtree(tmp)
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
