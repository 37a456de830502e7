#!/usr/bin/env python3
"""tools/tokref.py - a reference encoder for tokenizer.json BPE tokenizers.

A pure-Python port of the encoding semantics of Hugging Face `tokenizers`
(the Rust library behind transformers' fast tokenizers), written from its
documented behaviour because Debian packages neither `tokenizers` nor
`transformers`. It covers exactly what eval/tokenizer.c implements and is
used to generate the expected ids committed under tests/resources/tokenizers
so CI needs no Python. See docs/tokenizer.md.

Needs the `regex` module for \\p{L}/\\p{N} (Debian: apt-get install
python3-regex).

Usage:
  tokref.py encode TOKENIZER.json [--no-special] < text     ids, one per line
  tokref.py fixtures OUTDIR CORPUS [EXTRA_TRAINING_TEXT...]  build fixtures
  tokref.py expect OUTDIR CORPUS                            expected ids JSON
"""
import heapq
import json
import sys

import regex

GPT2_REGEX = (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"
              r"|\s+(?!\S)|\s+")
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def bytes_to_unicode():
    """GPT-2's table: printable bytes map to themselves, the rest to 256+n."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) +
          list(range(0xAE, 0xFF + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = bytes_to_unicode()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


class Refused(Exception):
    pass


# ---- pattern matching (tokenizers' Pattern::find_matches) -----------------

def find_matches(pat, s):
    """[(start, end, is_match)] covering s, as tokenizers' find_matches."""
    if s == "":
        return [(0, 0, False)]
    out = []
    prev = 0
    if pat[0] == "str":
        lit = pat[1]
        if lit == "":
            return [(0, len(s), False)]
        i = s.find(lit)
        while i >= 0:
            if prev != i:
                out.append((prev, i, False))
            out.append((i, i + len(lit), True))
            prev = i + len(lit)
            i = s.find(lit, prev)
    else:
        for m in pat[1].finditer(s):
            if prev != m.start():
                out.append((prev, m.start(), False))
            out.append((m.start(), m.end(), True))
            prev = m.end()
    if prev != len(s):
        out.append((prev, len(s), False))
    return out


def split_pieces(s, pat, behavior, invert=False):
    """NormalizedString::split: pieces of s (empty ones dropped)."""
    ms = [(a, b, (not m) if invert else m) for a, b, m in find_matches(pat, s)]
    res = []
    if behavior == "Isolated":
        res = [(a, b) for a, b, _ in ms]
    elif behavior == "Removed":
        res = [(a, b) for a, b, m in ms if not m]
    elif behavior == "MergedWithPrevious":
        prev_match = False
        for a, b, m in ms:
            if m and not prev_match and res:
                res[-1] = (res[-1][0], b)
            else:
                res.append((a, b))
            prev_match = m
    elif behavior == "MergedWithNext":
        prev_match = False
        for a, b, m in reversed(ms):
            if m and not prev_match and res:
                res[-1] = (a, res[-1][1])
            else:
                res.append((a, b))
            prev_match = m
        res.reverse()
    elif behavior == "Contiguous":
        prev_match = False
        for a, b, m in ms:
            if m == prev_match and res:
                res[-1] = (res[-1][0], b)
            else:
                res.append((a, b))
            prev_match = m
    else:
        raise Refused("behavior " + behavior)
    return [(s[a:b], a) for a, b in res if b > a]


def compile_pattern(p):
    if "String" in p:
        return ("str", p["String"])
    return ("re", regex.compile(p["Regex"]))


# ---- components -----------------------------------------------------------

def normalize(n, s):
    if n is None:
        return s
    t = n["type"]
    if t == "Sequence":
        for sub in n["normalizers"]:
            s = normalize(sub, s)
        return s
    if t == "Prepend":
        return n["prepend"] + s if s else s
    if t == "Replace":
        pat = compile_pattern(n["pattern"])
        out = []
        for a, b, m in find_matches(pat, s):
            out.append(n["content"] if m else s[a:b])
        return "".join(out)
    raise Refused("normalizer " + t)


def pre_tokenize(p, pieces):
    """pieces: [(text, starts_at_original_offset_0)]; a sub-piece keeps the
    flag only when it starts at its parent's offset 0 (offsets_original)."""
    if p is None:
        return pieces
    t = p["type"]
    if t == "Sequence":
        for sub in p["pretokenizers"]:
            pieces = pre_tokenize(sub, pieces)
        return pieces
    out = []
    if t == "ByteLevel":
        for s, first in pieces:
            if p.get("add_prefix_space", True) and not s.startswith(" "):
                s = " " + s
            subs = (split_pieces(s, ("re", regex.compile(GPT2_REGEX)), "Isolated")
                    if p.get("use_regex", True) else [(s, 0)])
            for x, a in subs:
                mapped = "".join(BYTE_CHAR[b] for b in x.encode("utf-8"))
                out.append((mapped, first and a == 0))
        return out
    if t == "Split":
        pat = compile_pattern(p["pattern"])
        for s, first in pieces:
            for x, a in split_pieces(s, pat, p["behavior"], p.get("invert", False)):
                out.append((x, first and a == 0))
        return out
    if t == "Metaspace":
        rep = p["replacement"]
        scheme = p.get("prepend_scheme")
        if scheme is None:
            scheme = "always" if p.get("add_prefix_space", True) else "never"
        for s, first in pieces:
            s = s.replace(" ", rep)
            if scheme == "always" and not s.startswith(rep):
                s = rep + s
            elif scheme == "first" and first and not s.startswith(rep):
                s = rep + s
            if p.get("split", True):
                subs = split_pieces(s, ("str", rep), "MergedWithNext")
            else:
                subs = [(s, 0)] if s else []
            for x, a in subs:
                out.append((x, first and a == 0))
        return out
    raise Refused("pre_tokenizer " + t)


class BPE:
    def __init__(self, m):
        if m.get("type", "BPE") != "BPE":
            raise Refused("model " + m["type"])
        self.vocab = dict(m["vocab"])
        self.unk = m.get("unk_token")
        self.fuse_unk = m.get("fuse_unk", False)
        self.byte_fallback = m.get("byte_fallback", False)
        self.ignore_merges = m.get("ignore_merges", False)
        self.merges = {}
        for rank, mg in enumerate(m["merges"]):
            if isinstance(mg, str):
                parts = mg.split(" ")
                if len(parts) != 2:
                    raise Refused("merge %d" % rank)
                a, b = parts
            else:
                a, b = mg
            self.merges[(self.vocab[a], self.vocab[b])] = (rank, self.vocab[a + b])

    def word_ids(self, w):
        if self.ignore_merges and w in self.vocab:
            return [self.vocab[w]]
        syms = []  # [id, prev, next, len]
        unk = None

        def add(i, n):
            syms.append([i, len(syms) - 1, -1, n])
            if len(syms) > 1:
                syms[-2][2] = len(syms) - 1

        for ch in w:
            blen = len(ch.encode("utf-8"))
            if ch in self.vocab:
                if unk is not None:
                    add(*unk)
                    unk = None
                add(self.vocab[ch], blen)
                continue
            if self.byte_fallback:
                toks = ["<0x%02X>" % b for b in ch.encode("utf-8")]
                if all(t in self.vocab for t in toks):
                    for t in toks:
                        add(self.vocab[t], 1)
                    continue
            if self.unk is not None:
                uid = self.vocab[self.unk]
                if unk is not None and self.fuse_unk:
                    unk = (unk[0], unk[1] + blen)
                else:
                    if unk is not None:
                        add(*unk)
                    unk = (uid, blen)
        if unk is not None:
            add(*unk)
        # Word::merge_all: lowest rank first, then lowest position.
        heap = []
        for i in range(len(syms) - 1):
            mg = self.merges.get((syms[i][0], syms[i + 1][0]))
            if mg:
                heapq.heappush(heap, (mg[0], i, mg[1]))
        while heap:
            rank, pos, new_id = heapq.heappop(heap)
            if syms[pos][3] == 0 or syms[pos][2] == -1:
                continue
            nxt = syms[pos][2]
            mg = self.merges.get((syms[pos][0], syms[nxt][0]))
            if mg is None or mg[1] != new_id:
                continue
            right = syms[nxt]
            syms[pos][0] = new_id
            syms[pos][3] += right[3]
            syms[pos][2] = right[2]
            right[3] = 0
            if right[2] != -1:
                syms[right[2]][1] = pos
            cur = syms[pos]
            if cur[1] >= 0:
                mg = self.merges.get((syms[cur[1]][0], cur[0]))
                if mg:
                    heapq.heappush(heap, (mg[0], cur[1], mg[1]))
            if cur[2] != -1:
                mg = self.merges.get((cur[0], syms[cur[2]][0]))
                if mg:
                    heapq.heappush(heap, (mg[0], pos, mg[1]))
        return [s[0] for s in syms if s[3] != 0]


class Tokenizer:
    def __init__(self, j):
        self.j = j
        self.model = BPE(j["model"])
        self.normalizer = j.get("normalizer")
        self.pre = j.get("pre_tokenizer")
        self.added = []
        for t in j.get("added_tokens") or []:
            if t.get("single_word") or t.get("lstrip") or t.get("rstrip"):
                raise Refused("added token flags")
            content = t["content"]
            if t.get("normalized", not t.get("special", False)):
                pat = normalize(self.normalizer, content)
                self.added.append((pat, t["id"], True))
            else:
                self.added.append((content, t["id"], False))
        self.prefix, self.suffix = [], []
        self._post(j.get("post_processor"))

    def _post(self, p):
        if p is None or p["type"] == "ByteLevel":
            return
        if p["type"] == "Sequence":
            for sub in p["processors"]:
                self._post(sub)
            return
        if p["type"] != "TemplateProcessing":
            raise Refused("post_processor " + p["type"])
        seen = False
        for piece in p["single"]:
            if "Sequence" in piece:
                seen = True
                continue
            ids = p["special_tokens"][piece["SpecialToken"]["id"]]["ids"]
            (self.suffix if seen else self.prefix).extend(ids)

    def split_added(self, s, normalized):
        """AddedVocabulary::split_with_indices: leftmost-longest matches."""
        toks = [(c, i) for c, i, n in self.added if n == normalized and c]
        out = []
        start = 0
        i = 0
        while i < len(s):
            best = None
            for c, tid in toks:
                if s.startswith(c, i) and (best is None or len(c) > len(best[0])):
                    best = (c, tid)
            if best is None:
                i += 1
                continue
            if i > start:
                out.append((s[start:i], None, start))
            out.append((best[0], best[1], i))
            i += len(best[0])
            start = i
        if start < len(s):
            out.append((s[start:], None, start))
        return out

    def encode(self, text, add_special=True):
        segs = []
        for s, tid, off in self.split_added(text, False):
            if tid is not None:
                segs.append((None, tid))
                continue
            ns = normalize(self.normalizer, s)
            for s2, tid2, off2 in self.split_added(ns, True):
                segs.append((None, tid2) if tid2 is not None
                            else ((s2, off == 0 and off2 == 0), None))
        ids = []
        for piece, tid in segs:
            if tid is not None:
                ids.append(tid)
                continue
            for w, _ in pre_tokenize(self.pre, [piece]):
                ids.extend(self.model.word_ids(w))
        if add_special:
            ids = self.prefix + ids + self.suffix
        return ids


def load(path):
    with open(path, encoding="utf-8") as f:
        return Tokenizer(json.load(f))


# ---- a tiny BPE trainer for the fixtures ------------------------------------

def train(words, alphabet, nmerges, min_freq=2):
    """Classic BPE on word counts: merge the most frequent pair (ties: the
    lexicographically smallest), nmerges times or until below min_freq."""
    counts = {}
    for w in words:
        t = tuple(c for c in w)
        if not t:
            continue
        counts[t] = counts.get(t, 0) + 1
    merges = []
    vocab = list(alphabet)
    known = set(vocab)
    for _ in range(nmerges):
        pairs = {}
        for w, c in counts.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if best[1] < min_freq:
            break
        a, b = best[0]
        merges.append((a, b))
        if a + b not in known:
            vocab.append(a + b)
            known.add(a + b)
        nc = {}
        for w, c in counts.items():
            out = []
            i = 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nc[tuple(out)] = nc.get(tuple(out), 0) + c
        counts = nc
    return vocab, merges


def added(content, tid, special=True, normalized=False):
    return {"id": tid, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": normalized, "special": special}


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def fixtures(outdir, corpus, extra):
    text = corpus + "".join(extra)
    lines = text.split("\n")

    # (1) GPT-2: ByteLevel(use_regex) pre-tokenizer, "a b" string merges.
    gpt2_pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                "use_regex": True}
    words = [w for ln in lines for w, _ in pre_tokenize(gpt2_pre, [(ln, True)])]
    alphabet = [BYTE_CHAR[b] for b in sorted(BYTE_CHAR, key=lambda b: ord(BYTE_CHAR[b]))]
    vocab, merges = train(words, alphabet, 1200)
    v = {t: i for i, t in enumerate(vocab)}
    v["<|endoftext|>"] = len(v)
    write_json(outdir + "/gpt2.json", {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added("<|endoftext|>", v["<|endoftext|>"], True, True)],
        "normalizer": None, "pre_tokenizer": gpt2_pre,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True,
                           "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False, "vocab": v,
                  "merges": [a + " " + b for a, b in merges]}})

    # (2) Llama-3: Split(regex) + ByteLevel(use_regex false), ignore_merges,
    # [a, b] pair merges, specials outside the model's vocab.
    l3_pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX}, "behavior": "Isolated",
         "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
         "use_regex": False}]}
    words = [w for ln in lines for w, _ in pre_tokenize(l3_pre, [(ln, True)])]
    vocab, merges = train(words, alphabet, 1200)
    # Whole words that no merge reaches: only ignore_merges can emit them.
    for w in ("Ġspaces", "ĠHello", "Ġworld", "Ġtokens", "123", "ĠпÑĢ"):
        if w not in vocab:
            vocab.append(w)
    v = {t: i for i, t in enumerate(vocab)}
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|eot_id|>"]
    base = len(v)
    write_json(outdir + "/llama3.json", {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(s, base + i) for i, s in enumerate(specials)],
        "normalizer": None, "pre_tokenizer": l3_pre,
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
             "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                                                      "ids": [base],
                                                      "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": v, "merges": [[a, b] for a, b in merges]}})

    # (3) Llama-2 / TinyLlama: Prepend + Replace normalizer, no
    # pre-tokenizer, byte_fallback; rare characters only as <0xNN>.
    norm = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    words = [w for ln in lines
             for w in regex.findall("\u2581?[^\u2581]+|\u2581+", normalize(norm, ln))]
    freq = {}
    for ch in text:
        freq[ch] = freq.get(ch, 0) + 1
    chars = sorted(c for c, n in freq.items() if n >= 3 and c != "\n")
    if "\u2581" not in chars:
        chars.append("\u2581")
    vocab, merges = train(words, chars, 1000)
    vocab = (["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + vocab)
    v = {t: i for i, t in enumerate(vocab)}
    l2 = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added("<unk>", 0), added("<s>", 1), added("</s>", 2)],
        "normalizer": norm, "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1],
                                                      "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "vocab": v,
                  "merges": [a + " " + b for a, b in merges]}}
    write_json(outdir + "/llama2.json", l2)

    # (4) The same model behind a Metaspace pre-tokenizer (prepend_scheme
    # "first", split false), as newer conversions of Mistral/TinyLlama do.
    l2["normalizer"] = None
    l2["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581",
                           "prepend_scheme": "first", "split": False}
    l2["decoder"] = {"type": "Metaspace", "replacement": "\u2581",
                     "prepend_scheme": "first", "split": False}
    write_json(outdir + "/metaspace.json", l2)


EXTRA_CASES = ["a\r\nb", "\n\n\nx", "  \n  ", "line one\nline two\n", "\t \t\n",
               "x  \n\ty", "\u00a0\u00a0x", "<s><s></s>", "<|endoftext|>", "",
               "don't DON'T Don'T", "\U0001F468\u200D\U0001F469\u200D\U0001F467\n\n"]


def expect(outdir, corpus):
    lines = corpus.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for name in ("gpt2", "llama3", "llama2", "metaspace"):
        tok = load(outdir + "/" + name + ".json")
        write_json(outdir + "/" + name + ".expected.json", {
            "tokenizer": name + ".json",
            "corpus": "corpus.txt",
            "lines": [tok.encode(ln, True) for ln in lines],
            "whole_no_special": tok.encode(corpus, False),
            "extra": [{"text": t, "ids": tok.encode(t, True)} for t in EXTRA_CASES]})


def main(argv):
    if len(argv) >= 3 and argv[1] == "encode":
        tok = load(argv[2])
        ids = tok.encode(sys.stdin.read(), "--no-special" not in argv)
        print("\n".join(str(i) for i in ids))
    elif len(argv) >= 4 and argv[1] == "fixtures":
        corpus = open(argv[3], encoding="utf-8").read()
        extra = [open(p, encoding="utf-8").read() for p in argv[4:]]
        fixtures(argv[2], corpus, extra)
    elif len(argv) == 4 and argv[1] == "expect":
        expect(argv[2], open(argv[3], encoding="utf-8").read())
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
