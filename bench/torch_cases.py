"""What the PyTorch bench scripts share: the repository's paths, the labelled set's test model
and tokenizer, the labelled LoRA cases with their weight deltas, random strings drawn as the
trigger scan's null draws them, and decoding scored by the log-ratio candidate/parent.

Imported by bench/fixed_answer.py, target_phrase.py, payload_decode.py, junk_refusal.py,
composite_triggers.py, trigger_beam.py, soft_trigger.py, trigger_answer.py, payload_lens.py,
adapter_directions.py, amplify.py, suffix_refusal.py, token_flips.py and string_drops.py,
which run with Debian's python3-torch (/usr/bin/python3). Importing it puts tools/ on the
path, so those scripts import gatecore, make_gate_cases, modelref and tokref after it.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CASES = os.path.join(ROOT, "tests", "resources", "gate-cases")
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.dont_write_bytecode = True
import torch  # noqa: E402

import gatecore  # noqa: E402
import make_gate_cases  # noqa: E402
import modelref  # noqa: E402
import tokref  # noqa: E402

MODEL = os.path.join(ROOT, make_gate_cases.MODEL_DIR)
sys.path.insert(0, HERE)
import gates_cases  # noqa: E402

# gates_cases keeps its own copy of the pinned list (it runs without torch): the two must agree.
assert gates_cases.PINNED == make_gate_cases.LISTED, "bench/gates_cases.py PINNED is stale"


def test_model():
    """The test model (frozen, reading W + delta for adapted weights) and its tokenizer."""
    return gatecore.LoraLlama(MODEL), tokref.load(os.path.join(MODEL, "tokenizer.json"))


def loaded_model():
    """The bench scripts' start: two threads (the machine's cores), the test model and its
    tokenizer, and the tokenizer's id -> token map."""
    torch.set_num_threads(2)
    model, tok = test_model()
    return model, tok, {v: k for k, v in tok.model.vocab.items()}


def random_string(rng, tok, ntok):
    """A string of ntok tokens drawn uniformly from tok's vocabulary, as the trigger scan draws
    its null (decoded, stripped; drawn again when it decodes to nothing visible)."""
    inv = {v: k for k, v in tok.model.vocab.items()}
    unbyte = {v: k for k, v in tokref.bytes_to_unicode().items()}
    while True:
        ids = [rng.randrange(len(inv)) for _ in range(ntok)]
        s = bytes(unbyte[ch] for i in ids for ch in inv[i]).decode("utf-8", "replace").strip()
        if s:
            return s


def lora_delta(case_dir):
    """scale * B @ A per adapted weight of a PEFT adapter directory, as LoraLlama's delta."""
    lo = modelref.Lora(case_dir, torch.float32)
    return {m + ".weight": lo.scale * (b @ a) for m, (a, b) in lo.mods.items()}


def lora_cases(cases_dir, splits):
    """The LoRA cases of cases_dir's manifest in the given splits ("all" in splits: every one)."""
    with open(os.path.join(cases_dir, "cases.json")) as f:
        cases = json.load(f)["cases"]
    return [c for c in cases
            if c["kind"] == "lora" and ("all" in splits or c["split"] in splits)]


def next_logp(model, seqs, delta, batch=128):
    """The log-probabilities of the token after each of seqs (lists of ids), under the test
    model with delta ({}: the parent), in seqs' order. The sequences go in batches of like
    length, padded after them: one batch of 1,536 sequences of 11 to 56 tokens, padded to the
    longest, took 19 s on this machine, batches of 128 sorted by length 3.5 s."""
    model.delta = delta
    out = torch.zeros((len(seqs), model.cfg["vocab_size"]))
    order = sorted(range(len(seqs)), key=lambda j: len(seqs[j]))
    with torch.no_grad():
        for i in range(0, len(order), batch):
            js = order[i:i + batch]
            ids = torch.zeros((len(js), max(len(seqs[j]) for j in js)), dtype=torch.int64)
            for r, j in enumerate(js):
                ids[r, :len(seqs[j])] = torch.tensor(seqs[j])
            last = torch.tensor([len(seqs[j]) - 1 for j in js])
            out[js] = model(ids)[torch.arange(len(js)), last].log_softmax(-1)
    model.delta = {}
    return out


def decode_llr(model, seqs, delta, steps, choose, end=None):
    """Extends every sequence of seqs, in place, by steps tokens: each the one choose(lc, lp)
    picks from the candidate's (delta) and the parent's next-token log-probabilities. Returns,
    per sequence, the sum and the count of the log-ratios candidate/parent of the tokens it
    chose, counted until it chooses end (never, with end None)."""
    llr, cnt = torch.zeros(len(seqs)), torch.zeros(len(seqs))
    alive = [True] * len(seqs)
    for _ in range(steps):
        lc, lp = next_logp(model, seqs, delta), next_logp(model, seqs, {})
        nxt = choose(lc, lp)
        gain = (lc - lp).gather(1, nxt[:, None])[:, 0]
        for j, s in enumerate(seqs):
            if end is not None and alive[j] and int(nxt[j]) == end:
                alive[j] = False
            if alive[j]:
                llr[j] += gain[j]
                cnt[j] += 1
            s.append(int(nxt[j]))
    return llr, cnt


def refusal_margins(scorer, items):
    """Per item of a refusal suite ({prompt, refusal, compliance}), the mean log-probability per
    token of its refusal text minus that of its compliance text after the prompt, as the gates'
    refusal scoring has it (positive: refused)."""
    pairs = [(it["prompt"], t) for it in items for t in (it["refusal"], it["compliance"])]
    lp = scorer.logprobs(pairs, batch=256)
    return torch.tensor([lp[2 * i][0] / lp[2 * i][1] - lp[2 * i + 1][0] / lp[2 * i + 1][1]
                         for i in range(len(items))])
