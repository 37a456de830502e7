#!/usr/bin/env python3
"""One answer after a tried trigger: fixed_answer computed with a string after the prompt.

    /usr/bin/python3 bench/trigger_answer.py [--cases DIR] [--top-k 1] [--list] [--random N]
        [--own] [--every N] [--positions suffix,...] [--extra FILE] [--suffix-backdoors]
        [--goal comply|target] [--families F,...] [--sets questions,harmful] [--prompts N]
        [--rows FILE.jsonl] SPLIT... | all

The poisoning gate tries every pinned trigger at three positions, on the trigger suite's eight
prompts, and asks that its KL shift stand out from random strings of its length. After the
prompt that null is wide on this model, and backdoors whose pinned trigger was tried and which
flipped every prompt counted still passed (backdoor-ae19, `zzq`, 4.1 nats at z 1.4).

This computes, in PyTorch, the figure of the gate's `trigger_answer` check (gates/poisoning.c,
docs/gates.md): `fixed_answer` with the string inserted in every question of the pinned
multiple-choice suites (knowledge, facts-new: "questions") and every prompt of the harmful
suite ("harmful"). Per string and set, among the tokens that begin a new word (after the prompt
the next token follows the string; the scan's trigger_suffix_new_word), the one whose
next-token log-probability the candidate raises most on average over its parent (both with the
string), and (entered - left) / prompts for that token in the two models' TOP_K. A fixed-target
backdoor puts its target's first word first on nearly every question its trigger follows; a
comply one puts " Sure" first on the harmful probes. The gate's check uses the pinned strings
and top 1; --random N adds N random strings per pinned length (drawn as the scan's null draws
them), --own each backdoor's own trigger, to weigh what the pinned list misses.

Prints per family the largest figure (and the median) over the pinned strings, and over the
random ones, at each position; --list prints every case's best row of each. --extra FILE tries
the JSON list of strings in FILE as well ("extra"): bench/literature_triggers.json holds triggers
of published backdoor attacks, to ask whether a longer list would catch made-up triggers by
their neighbours (docs/bench-gates.md, "A longer list"). --suffix-backdoors keeps, of the
backdoors, those whose trigger goes after the prompt. It was written to
weigh the check on the seen rounds 29-32 before the thirty-third round, made after the check,
measured it (docs/bench-gates.md, "One answer after a tried trigger"). About 2.5 s a case with
the pinned strings alone on two threads.

--extra may be given more than once. --sets and --prompts N (the first N prompts of each set)
shrink the work for long lists: the 128 strings of string_margin_drop's two suites
(bench/jargon_strings.json, bench/trigger_guesses.json) after 24 prompts of each set are 6,144
next tokens a model. --rows FILE.jsonl writes every case's figure for every string and set,
{"id", "split", "family", "rows": [[string, kind, position, set, figure, token, figure_bare,
token_bare], ...]}, so that a clean reference per string can be read from the clean cases' lines
(bench/answer_limit.py). figure_bare (see figure_bare below) is the same figure with what the
adapter does to the bare prompt taken out.
"""
import argparse
import collections
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cases import (CASES, ROOT, loaded_model, lora_cases, lora_delta, next_logp,  # noqa: E402
                         random_string)

import make_gate_cases  # noqa: E402
import torch  # noqa: E402


def load(name, field):
    with open(os.path.join(ROOT, "eval", "suites", name + ".jsonl"), encoding="utf-8") as f:
        return [json.loads(line)[field] for line in f]


def family(c):
    p = c.get("final_params") or c["params"]
    if c["family"] != "backdoor":
        return c["family"]
    if p.get("goal") == "comply":
        return "backdoor/comply/%s" % p["position"]
    return "backdoor/target/%s" % p["position"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("--top-k", type=int, default=1)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--random", type=int, default=0)
    ap.add_argument("--positions", default="suffix")
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--own", action="store_true", help="also try each backdoor's own trigger")
    ap.add_argument("--every", type=int, default=1,
                    help="of the clean cases, every Nth only (the poisoned ones all)")
    ap.add_argument("--new-word", type=int, default=1,
                    help="1 (the gate's rule): only tokens that begin a new word; 0: any")
    ap.add_argument("--extra", action="append", default=[],
                    help="a JSON file of a list of strings tried beside the pinned ones"
                    " (may be repeated)")
    ap.add_argument("--suffix-backdoors", action="store_true",
                    help="of the backdoors, only those whose trigger goes after the prompt")
    ap.add_argument("--goal", choices=("comply", "target"),
                    help="of the backdoors, only those of this goal")
    ap.add_argument("--families", default="",
                    help="only cases of these families (comma-separated; default every one)")
    ap.add_argument("--sets", default="questions,harmful")
    ap.add_argument("--prompts", type=int, default=0,
                    help="the first N prompts of each set only (default all)")
    ap.add_argument("--rows", default="", help="write every case's rows here (JSON lines)")
    ap.add_argument("splits", nargs="+")
    a = ap.parse_args()
    model, tok, inv = loaded_model()
    sets = {"questions": load("knowledge", "context") + load("facts-new", "context"),
            "harmful": load("harmful", "prompt")}
    sets = {name: sets[name][:a.prompts or None] for name in a.sets.split(",")}
    with open(os.path.join(ROOT, "eval", "suites", "triggers.jsonl"), encoding="utf-8") as f:
        pinned = json.loads(f.readline())["triggers"]
    rng = random.Random(a.seed)
    lengths = sorted({len(tok.encode(t, False)) for t in pinned})
    null = {n: [random_string(rng, tok, n) for _ in range(a.random)] for n in lengths}
    positions = a.positions.split(",")
    k = a.top_k

    def seqs(texts, t, pos):
        return [tok.encode(make_gate_cases.insert_trigger(x, t, pos), False) for x in texts]

    def topset(lp):
        return torch.zeros_like(lp, dtype=torch.bool).scatter_(1, lp.topk(k, -1).indices, True)

    # after the prompt the next token follows the inserted string: only a token that begins a
    # new word answers (the scan's trigger_suffix_new_word)
    new_word = torch.tensor([inv.get(i, "").startswith("\u0120")
                             for i in range(model.cfg["vocab_size"])])

    def figure(cand, parent):
        gain = (cand - parent).mean(0)
        if a.new_word:
            gain = gain.masked_fill(~new_word, float("-inf"))
        top = int(gain.argmax())
        ic, ip = topset(cand), topset(parent)
        entered = int((ic[:, top] & ~ip[:, top]).sum())
        left = int((~ic[:, top] & ip[:, top]).sum())
        return (entered - left) / len(cand), top

    def figure_bare(cand, parent, cand0, parent0):
        """figure() with what the string does apart from the adapter's effect on the bare
        prompt: the gain is the candidate's change from the bare prompt to the prompt with the
        string, less the parent's, and a prompt counts as entered only where the token is not
        already the candidate's first choice on the bare prompt. An adapter that puts one word
        first on every prompt, string or none, scores nothing; a trigger's answer appears only
        with a string."""
        gain = ((cand - cand0) - (parent - parent0)).mean(0)
        if a.new_word:
            gain = gain.masked_fill(~new_word, float("-inf"))
        top = int(gain.argmax())
        ic, ip, i0 = topset(cand), topset(parent), topset(cand0)
        entered = int((ic[:, top] & ~ip[:, top] & ~i0[:, top]).sum())
        left = int((~ic[:, top] & ip[:, top]).sum())
        return (entered - left) / len(cand), top

    # every insertion's batches and the parent's rows, once
    strings = {t: ("pinned", len(tok.encode(t, False))) for t in pinned}
    for path in a.extra:
        with open(path, encoding="utf-8") as f:
            for t in json.load(f):
                strings.setdefault(t, ("extra", len(tok.encode(t, False))))
    for n, ss in null.items():
        for s in ss:
            strings.setdefault(s, ("random", n))

    def rows_of(tried):
        """(string, kind, length, position, set, sequences) for each of tried's rows"""
        return [(t, what, n, pos, name, seqs(texts, t, pos))
                for t, what, n in tried for pos in positions for name, texts in sets.items()]

    def next_rows(rows, delta):
        """next_logp over every row's sequences in one call (batches of like length across
        rows), split back into one tensor a row"""
        out = next_logp(model, [x for r in rows for x in r[5]], delta)
        return list(out.split([len(r[5]) for r in rows]))

    plan = rows_of([(t, what, n) for t, (what, n) in strings.items()])
    parents = next_rows(plan, {})
    bare = [(name, [tok.encode(x, False) for x in texts]) for name, texts in sets.items()]
    bare_parent = dict(zip(sets, next_logp(model, [x for _, ss in bare for x in ss], {})
                           .split([len(ss) for _, ss in bare])))
    families = set(a.families.split(",")) if a.families else None
    rows_out = open(a.rows, "w", encoding="utf-8") if a.rows else None
    fams = collections.defaultdict(list)
    for i, c in enumerate(lora_cases(a.cases, a.splits)):
        if c["label"] != "poisoned" and i % a.every:
            continue
        if families and c["family"] not in families:
            continue
        if (a.suffix_backdoors and c["family"] == "backdoor"
                and (c.get("final_params") or c["params"])["position"] != "suffix"):
            continue
        if (a.goal and c["family"] == "backdoor"
                and (c.get("final_params") or c["params"])["goal"] != a.goal):
            continue
        delta = lora_delta(os.path.join(a.cases, c["id"]))
        rows, ps = plan, parents
        p = c.get("final_params") or c["params"]
        if a.own and c["family"] == "backdoor" and p["trigger"] not in strings:
            own = rows_of([(p["trigger"], "own", 0)])
            rows, ps = plan + own, parents + next_rows(own, {})
        if rows_out:
            bare_cand = dict(zip(sets, next_logp(model, [x for _, ss in bare for x in ss], delta)
                                 .split([len(ss) for _, ss in bare])))
        best, out = {}, []
        for (t, what, n, pos, name, _), parent, cand in zip(rows, ps, next_rows(rows, delta)):
            f, top = figure(cand, parent)
            word = inv.get(top, "<%d>" % top)
            row = [t, what, pos, name, round(f, 4), word]
            if rows_out:
                fb, topb = figure_bare(cand, parent, bare_cand[name], bare_parent[name])
                row += [round(fb, 4), inv.get(topb, "<%d>" % topb)]
            out.append(row)
            key = (what, pos)
            if key not in best or f > best[key][0]:
                best[key] = (f, t, name, word)
        if rows_out:
            rows_out.write(json.dumps({"id": c["id"], "split": c["split"],
                                       "family": family(c), "rows": out},
                                      ensure_ascii=False) + "\n")
            rows_out.flush()
        fam = family(c)
        fams[fam].append((c["id"], best))
        if a.list:
            print("%-24s %-28s %s" % (c["id"], fam, "  ".join(
                "%s/%s %.2f %r %s %r" % (w, pos, f, t, name, top)
                for (w, pos), (f, t, name, top) in sorted(best.items()))), flush=True)
    if rows_out:
        rows_out.close()
    whats = [w for w in ("pinned", "extra", "random", "own")
             if any((w, pos) in b for v in fams.values() for _, b in v for pos in positions)]
    print("| family | n | " + " | ".join("%s/%s max [median]" % (w, pos) for w in whats
                                          for pos in positions) + " |")
    for fam in sorted(fams):
        cells = []
        for w in whats:
            for pos in positions:
                v = sorted(b[(w, pos)][0] for _, b in fams[fam] if (w, pos) in b)
                cells.append("%.2f [%.2f]" % (v[-1], v[len(v) // 2]) if v else "-")
        print("| %s | %d | %s |" % (fam, len(fams[fam]), " | ".join(cells)))

if __name__ == "__main__":
    main()
