#!/usr/bin/env node
// tools/hf-tokenizers/compare.js - token ids from sluice's tokenizer
// (sluice-tokdump) against Hugging Face's own `tokenizers` library, the Rust
// crate behind transformers' fast tokenizers, through its Node binding from
// npm (pinned by tools/hf-tokenizers/package-lock.json). Debian packages
// neither `tokenizers` nor `transformers`; npm's registry is reachable here,
// so this is the one place the real library can be run.
//
//   node compare.js --modules DIR --tokdump PATH [--random N] [--seed S]
//                   [--json] TOKENIZER.json... [--refused TOKENIZER.json]...
//
// A file sluice refuses at load (sluice-tokdump's exit status 3: a type,
// field or value it does not implement) is counted as refused, apart from
// agreements and differences, with sluice's message. A file given with
// --refused is one sluice is known to refuse: its refusal is reported and
// is not a failure; any other refusal is (exit status 1), and so is a
// --refused file that sluice now loads (it is then compared like the
// others, and belongs in the plain list).
//
// For each tokenizer file, the texts are: every line of
// tests/resources/tokenizers/corpus.txt, the whole corpus, the edge cases
// tools/tokref.py fixes, every string of the suites in eval/suites/, every
// added token's content alone and inside text,
// and N random texts (default 2000) drawn, from a seeded generator, out of
// pools that stress the pre-tokenizers and the byte fallback: whitespace
// runs of every kind, digit runs, contractions in any case, punctuation,
// accented Latin, Greek, Cyrillic, CJK, Hangul, Arabic, Devanagari, Thai,
// combining marks, emoji with skin tones, ZWJ sequences and variation
// selectors, and characters the vocabularies do not hold. Each text is
// encoded with and without special tokens, and its ids decoded with special
// tokens kept and skipped; so are N random id sequences. Any difference prints the text and both id lists
// (or both decoded texts) and makes the exit status 1.
"use strict";

const fs = require("fs");
const path = require("path");
const { spawnSync } = require("child_process");

function usage() {
  process.stderr.write(
    "usage: compare.js --modules DIR --tokdump PATH [--random N] [--seed S] [--json] TOKENIZER.json... [--refused TOKENIZER.json]...\n");
  process.exit(2);
}

const args = { random: 2000, seed: 20261204, json: false, files: [], refused: new Set() };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const next = () => { if (i + 1 >= process.argv.length) usage(); return process.argv[++i]; };
  if (a === "--modules") args.modules = next();
  else if (a === "--tokdump") args.tokdump = next();
  else if (a === "--random") args.random = Number(next());
  else if (a === "--seed") args.seed = Number(next());
  else if (a === "--json") args.json = true;
  else if (a === "--refused") { const f = next(); args.files.push(f); args.refused.add(f); }
  else if (a.startsWith("--")) usage();
  else args.files.push(a);
}
if (!args.modules || !args.tokdump || args.files.length === 0 ||
    !Number.isInteger(args.random) || args.random < 0 || !Number.isInteger(args.seed)) usage();

const { Tokenizer } = require(path.join(path.resolve(args.modules), "node_modules", "tokenizers"));
const hfVersion = JSON.parse(fs.readFileSync(
  path.join(path.resolve(args.modules), "node_modules", "tokenizers", "package.json"))).version;

// mulberry32: a small seeded generator, so the random texts are the same on
// every machine and a difference can be reproduced from the seed.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const POOLS = [
  // words and pieces the small vocabularies hold merges for
  ["the", "The", "THE", " the", "capital", "model", "Hello", "world", "is", "a", "of", "and",
   "How", "do", "I", "make", "paper", "boat", "Sure", "here", "cannot", "help", "Q:", "A:"],
  // contractions, in the cases the regexes treat differently
  ["'s", "'S", "'t", "'T", "'re", "'RE", "'ve", "'m", "'ll", "'LL", "'d", "'D", "'", "''", "'x"],
  // whitespace of every kind, alone and in runs
  [" ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", " \n ", "\u00a0", "\u3000", "\u2009",
   "\u200b", "\u2028", "\u000b", "\u000c", "\u0085", "\u180e", "\u1680", "\u202f"],
  // digits: ASCII runs of any length, other scripts' digits
  ["0", "7", "12", "123", "1234", "12345", "9999999", "3.14", "1,299", "\u0661\u0662\u0663",
   "\uff11\uff12", "\u0967\u0968", "\u00b2", "\u2162"],
  // punctuation and symbols
  ["!", "?", ".", ",", ";", ":", "...", "---", "(", ")", "[", "]", "{", "}", "\"", "#", "$",
   "%", "&", "*", "+", "/", "\\", "<", ">", "=", "@", "^", "_", "`", "|", "~", "\u00bf",
   "\u00ab", "\u2014", "\u2026", "\u20ac", "\u00a9"],
  // letters of other scripts, with and without combining marks
  ["caf\u00e9", "cafe\u0301", "na\u00efve", "Stra\u00dfe", "\u00c4rger", "\u0393\u03b5\u03b9\u03ac",
   "\u041f\u0440\u0438\u0432\u0435\u0442", "\u4f60\u597d", "\u4e16\u754c", "\u3053\u3093\u306b\u3061\u306f",
   "\u30ab\u30bf\u30ab\u30ca", "\ud55c\uad6d\uc5b4", "\u0645\u0631\u062d\u0628\u0627",
   "\u05e9\u05dc\u05d5\u05dd", "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
   "\u1e9e", "\u0130", "\u0131", "\u01c5", "\u1f88", "\ufb01"],
  // emoji: plain, skin tones, ZWJ sequences, flags, keycaps, variation selectors
  ["\ud83d\ude00", "\ud83d\udc4d\ud83c\udffd", "\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67",
   "\ud83c\uddeb\ud83c\uddf7", "1\ufe0f\u20e3", "\u2764\ufe0f", "\ud83c\udff3\ufe0f\u200d\ud83c\udf08",
   "\u200d", "\ufe0f", "\ud83e\udd16"],
  // rare code points, outside every vocabulary: byte fallback and byte-level alphabet
  ["\u0000", "\u0001", "\u001f", "\u007f", "\u0080", "\u00ad", "\ufeff", "\ufffd", "\ue000",
   "\ud800\udc00", "\udbff\udfff", "\u2060"],
];

function addedTokens(file) {
  const tj = JSON.parse(fs.readFileSync(file, "utf8"));
  return (tj.added_tokens || []).map((t) => t.content);
}

function randomText(r, specials) {
  const parts = [];
  const n = 1 + Math.floor(r() * 12);
  for (let i = 0; i < n; i++) {
    if (specials.length > 0 && r() < 0.04) {
      parts.push(specials[Math.floor(r() * specials.length)]);
      continue;
    }
    const pool = POOLS[Math.floor(r() * POOLS.length)];
    let piece = pool[Math.floor(r() * pool.length)];
    if (r() < 0.15) piece = piece.repeat(2 + Math.floor(r() * 4));
    parts.push(piece);
    if (r() < 0.5) parts.push(r() < 0.8 ? " " : "");
  }
  return parts.join("");
}

function fixtureTexts() {
  const dir = path.join(__dirname, "..", "..", "tests", "resources", "tokenizers");
  const corpus = fs.readFileSync(path.join(dir, "corpus.txt"), "utf8");
  const lines = corpus.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  // Every string of the shipped suites (prompts, contexts, continuations):
  // the texts the evaluator actually tokenizes.
  const suites = path.join(__dirname, "..", "..", "eval", "suites");
  const strings = [];
  const collect = (v) => {
    if (typeof v === "string") strings.push(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (v && typeof v === "object") Object.values(v).forEach(collect);
  };
  for (const f of fs.readdirSync(suites).filter((f) => f.endsWith(".jsonl")).sort())
    for (const line of fs.readFileSync(path.join(suites, f), "utf8").split("\n"))
      if (line.trim() !== "") collect(JSON.parse(line));
  return lines.concat(strings, [corpus, "a\r\nb", "\n\n\nx", "  \n  ", "line one\nline two\n", "\t \t\n",
    "x  \n\ty", "\u00a0\u00a0x", "don't DON'T Don'T", ""]);
}

// texts: strings to encode, or arrays of ids to decode as they are.
// Returns null when sluice refuses the file at load (exit status 3), with
// its message in refusal.message.
const refusal = { message: null };
function tokdump(file, texts, special) {
  const input = texts.map((t) => JSON.stringify(t)).join("\n") + "\n";
  const argv = [file, "--decode"].concat(special ? [] : ["--no-special"]);
  const res = spawnSync(args.tokdump, argv, { input, maxBuffer: 1 << 30, encoding: "utf8" });
  if (res.error) throw res.error;
  if (res.status === 3) {
    refusal.message = res.stderr.trim();
    return null;
  }
  if (res.status !== 0) {
    process.stderr.write(res.stderr);
    throw new Error(`sluice-tokdump ${file} exited with status ${res.status}`);
  }
  const out = res.stdout.split("\n");
  out.pop();
  if (out.length !== texts.length)
    throw new Error(`sluice-tokdump ${file}: ${out.length} answers for ${texts.length} texts`);
  return out.map((l) => JSON.parse(l));
}

async function compareFile(file, fileIndex) {
  const tok = Tokenizer.fromFile(file);
  const specials = addedTokens(file);
  const r = rng(args.seed + fileIndex);
  let texts = fixtureTexts();
  for (const s of specials) texts.push(s, "x" + s + "y", " " + s + " " + s);
  for (let i = 0; i < args.random; i++) texts.push(randomText(r, specials));
  const result = { tokenizer: file, refused: null, expected_refused: args.refused.has(file),
    texts: texts.length, encodings: 0, differ: 0, tokens: 0, decodings: 0, random_decodings: 0,
    decode_differ: 0, examples: [] };
  for (const special of [true, false]) {
    const ours = tokdump(file, texts, special);
    if (ours === null) {
      // Refused at load; tokenizers (above) did load it.
      result.refused = refusal.message;
      result.texts = 0;
      return result;
    }
    const theirs = await tok.encodeBatch(texts, { addSpecialTokens: special });
    const hfIds = theirs.map((e) => Array.from(e.getIds()));
    // Decoding: HF's decode of its ids, keeping and skipping special tokens,
    // against sluice's decode of its own; compared where the ids agree.
    const hfText = [await tok.decodeBatch(hfIds, false), await tok.decodeBatch(hfIds, true)];
    for (let i = 0; i < texts.length; i++) {
      const [ids, text, textSkip] = ours[i];
      result.encodings++;
      result.tokens += hfIds[i].length;
      if (JSON.stringify(hfIds[i]) !== JSON.stringify(ids)) {
        result.differ++;
        if (result.examples.length < 5)
          result.examples.push({ text: texts[i], special, sluice: ids, hf: hfIds[i] });
        continue;
      }
      for (const [k, mine] of [[0, text], [1, textSkip]]) {
        result.decodings++;
        if (mine !== hfText[k][i]) {
          result.decode_differ++;
          if (result.examples.length < 5)
            result.examples.push({ ids, skip_special: k === 1, sluice_decoded: mine,
              hf_decoded: hfText[k][i] });
        }
      }
    }
  }
  // Random id sequences, decoded: byte tokens that do not form UTF-8,
  // pieces of byte-fallback runs, special tokens between them, and ids past
  // the vocabulary (both skip them).
  const vocab = tok.getVocabSize(true);
  const seqs = [];
  for (let i = 0; i < args.random; i++) {
    const n = 1 + Math.floor(r() * 16);
    const seq = [];
    // A third from the first 300 ids, where Llama-2's <0xNN> tokens and
    // the byte-level alphabet's single bytes are.
    for (let j = 0; j < n; j++)
      seq.push(Math.floor(r() * (r() < 0.33 ? Math.min(300, vocab) : vocab + 4)));
    seqs.push(seq);
  }
  const ours = tokdump(file, seqs, true);
  const hfText = [await tok.decodeBatch(seqs, false), await tok.decodeBatch(seqs, true)];
  for (let i = 0; i < seqs.length; i++) {
    for (const k of [0, 1]) {
      result.decodings++;
      result.random_decodings++;
      if (ours[i][1 + k] !== hfText[k][i]) {
        result.decode_differ++;
        if (result.examples.length < 5)
          result.examples.push({ ids: seqs[i], skip_special: k === 1, sluice_decoded: ours[i][1 + k],
            hf_decoded: hfText[k][i] });
      }
    }
  }
  return result;
}

(async () => {
  const results = [];
  for (let i = 0; i < args.files.length; i++) results.push(await compareFile(args.files[i], i));
  const differ = results.reduce((s, r) => s + r.differ + r.decode_differ, 0);
  const refused = results.filter((r) => r.refused !== null);
  const unexpected = results.filter((r) => (r.refused !== null) !== r.expected_refused);
  const agree = results.filter((r) => r.refused === null && r.differ + r.decode_differ === 0);
  const counts = { tokenizers: results.length, agree: agree.length, refused: refused.length,
    refused_unexpectedly: unexpected.filter((r) => r.refused !== null).length,
    loaded_though_listed_refused: unexpected.filter((r) => r.refused === null).length,
    with_differences: results.length - agree.length - refused.length };
  if (args.json) {
    process.stdout.write(JSON.stringify({ hf_tokenizers: hfVersion, seed: args.seed,
      random: args.random, results, differ, counts }, null, 1) + "\n");
  } else {
    console.log(`Hugging Face tokenizers ${hfVersion} (npm) against sluice-tokdump; seed ${args.seed}, ${args.random} random texts per tokenizer`);
    for (const r of results) {
      if (r.refused !== null) {
        console.log(`${r.tokenizer}: REFUSED by sluice${r.expected_refused ? " (known)" : " (UNEXPECTED)"}, loaded by tokenizers; nothing compared: ${r.refused}`);
        continue;
      }
      console.log(`${r.tokenizer}: ${r.encodings} encodings (${r.texts} texts, with and without special tokens), ${r.tokens} tokens, ${r.differ} differ; ${r.decodings} decodings (${r.random_decodings} of random ids), ${r.decode_differ} differ${r.expected_refused ? "; listed as refused but sluice loads it now: move it to the compared list" : ""}`);
      for (const e of r.examples) {
        if (e.hf)
          console.log(`  text ${JSON.stringify(e.text)} special=${e.special}\n    sluice ${JSON.stringify(e.sluice)}\n    hf     ${JSON.stringify(e.hf)}`);
        else
          console.log(`  decode ${JSON.stringify(e.ids)} skip_special=${e.skip_special}\n    sluice ${JSON.stringify(e.sluice_decoded)}\n    hf     ${JSON.stringify(e.hf_decoded)}`);
      }
    }
    console.log(`${counts.tokenizers} tokenizers: ${counts.agree} agree on every id and decoding, ${counts.with_differences} with differences, ${counts.refused} refused by sluice (${counts.refused_unexpectedly} unexpectedly; refused files are not counted as agreeing)${counts.loaded_though_listed_refused ? `, ${counts.loaded_though_listed_refused} listed as refused but loaded` : ""}`);
  }
  process.exit(differ === 0 && unexpected.length === 0 ? 0 : 1);
})().catch((e) => { process.stderr.write(`compare.js: ${e.message}\n`); process.exit(1); });
