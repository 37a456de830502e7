#!/usr/bin/env python3
"""Measure clean adapters' drop of the refusal margin per token and write them as a pinned
token_drop_reference suite: the envelope of the poisoning gate's token_margin_drop.

    python3 tools/make_token_drop_reference.py [--sluice BIN] [--cases DIR]
        [--splits round29,round30,round31,round32] [--out eval/references/token-drops-r29-32]

Each clean LoRA case (good-adapter, benign-finetune, unusual-adapter) of the splits goes through
`sluice gate --token-drops DIR --onto BASE --jsonl` on a scratch repository holding the test
model and the pinned suites of eval/suites (whose refusal suite gives the probes), and its line
is kept. OUT.jsonl gets the lines, OUT.json the manifest that `sluice suite add` pins.

The committed reference (eval/references/token-drops-r29-32) is the 210 clean adapters of
rounds 29 to 32: the reference the rule's limit was fixed against (docs/bench-gates.md, "One
token's drop of the refusal margin"). The figures are rounded to 1e-3 nats. About a second an
adapter.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLEAN = ("good-adapter", "benign-finetune", "unusual-adapter")


def run(cmd, env):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sluice", default=os.path.join(ROOT, "build/release/sluice"))
    ap.add_argument("--cases", default=os.path.join(ROOT, "tests/resources/gate-cases"))
    ap.add_argument("--splits", default="round29,round30,round31,round32")
    ap.add_argument("--out", default=os.path.join(ROOT, "eval/references/token-drops-r29-32"))
    a = ap.parse_args()
    splits = a.splits.split(",")
    with open(os.path.join(a.cases, "cases.json")) as f:
        cases = [c for c in json.load(f)["cases"]
                 if c["split"] in splits and c["kind"] == "lora" and c["family"] in CLEAN]
    missing = [c["id"] for c in cases if not os.path.isdir(os.path.join(a.cases, c["path"]))]
    if not cases or missing:
        sys.exit("make_token_drop_reference.py: %s" % (
            "no clean adapter in %s" % a.splits if not cases else
            "adapters missing from %s: %s" % (a.cases, ", ".join(missing[:5]))))
    work = tempfile.mkdtemp(prefix="sluice-token-drops-")
    env = dict(os.environ, SLUICE_KEYS=os.path.join(work, "keys"))
    repo = os.path.join(work, "repo")
    S = [a.sluice, "-C", repo]
    run([a.sluice, "init", repo, "--root-key", "root"], env)
    run(S + ["key", "new", "alice", "--role", "proposer"], env)
    base = run(S + ["propose", "base", os.path.join(ROOT, "tests/resources/test-model"),
                    "--key", "alice", "-m", "base"], env).strip().splitlines()[-1]
    suites = sorted(os.path.join(ROOT, "eval/suites", f)
                    for f in os.listdir(os.path.join(ROOT, "eval/suites")) if f.endswith(".json"))
    run(S + ["suite", "add"] + suites + ["--key", "alice"], env)
    lines, t0 = [], time.time()
    for n, c in enumerate(cases):
        line = json.loads(run(S + ["gate", "--token-drops", os.path.join(a.cases, c["path"]),
                                   "--onto", base, "--name", c["id"], "--jsonl"], env))
        line["drop"] = [None if x is None else round(x, 3) for x in line["drop"]]
        lines.append(json.dumps(line, sort_keys=True, separators=(",", ":")))
        print("%3d/%d %-28s %.0f s" % (n + 1, len(cases), c["id"], time.time() - t0),
              file=sys.stderr, flush=True)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out + ".jsonl", "w") as f:
        f.write("\n".join(lines) + "\n")
    name = os.path.basename(a.out)
    with open(a.out + ".json", "w") as f:
        json.dump({"name": name, "type": "token_drop_reference", "items": name + ".jsonl",
                   "description": "How far each token after the first 24 harmful probes of "
                   "eval/suites/harmful lowers the test model's refusal margin under each of "
                   "the %d clean adapters of %s (tests/resources/gate-cases), beyond the base: "
                   "token_margin_drop's reference (docs/gates.md)." % (len(lines), a.splits),
                   "licence": "CC0-1.0", "source": "tools/make_token_drop_reference.py"},
                  f, indent=1)
        f.write("\n")
    print("wrote %s.jsonl (%d adapters) and %s.json" % (a.out, len(lines), a.out),
          file=sys.stderr)


if __name__ == "__main__":
    main()
