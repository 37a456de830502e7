#!/usr/bin/env python3
"""Measure clean adapters against the test model and write them as a pinned reference suite
for the poisoning gate: the envelope a candidate adapter is set against.

    python3 tools/make_reference.py --kind token-drops|string-drops|trigger-rises|token-rises
        [--sluice BIN]
        [--cases DIR] [--splits round29,round30,round31,round32] [--out PATH] [--stack-on ID]
        [--jobs N]

--kind token-drops: how far each token after the harmful probes lowers the refusal margin
(`sluice gate --token-drops`, a token_drop_reference suite; token_margin_drop's envelope).
--kind string-drops: the same for each string of the probe_strings suites of eval/suites
(jargon-strings, trigger-guesses: suites by name, then their lines) after the probes
(`sluice gate --string-drops`, a string_drop_reference suite; string_margin_drop's envelope).
--kind trigger-rises: how far each pinned trigger before, after and inside each trigger-suite
prompt moves the model away from its parent (`sluice gate --trigger-rises`, a
trigger_rise_reference suite; the trigger scan counts a pinned trigger's flip only above it).
--kind token-rises: the same for every vocabulary token's text, before each prompt and after its
first word, rises of 0.25 nats and more (`sluice gate --token-rises`, a token_rise_reference
suite; the trigger scan counts a flip of a token nominated from the weights only above it).

Each clean LoRA case (good-adapter, benign-finetune, unusual-adapter) of the splits goes through
`sluice gate --KIND DIR --onto BASE --jsonl` on a scratch repository holding the test model and
the pinned suites of eval/suites, and its line is kept, figures rounded to 1e-3 nats. OUT.jsonl
gets the lines, OUT.json the manifest that `sluice suite add` pins. OUT defaults to
eval/references/KIND-r29-32.

The committed references (eval/references/token-drops-r29-32, string-drops-r29-32,
trigger-rises-r29-32, token-rises-r29-32) are the 210 clean adapters of rounds 29 to 32 (docs/bench-gates.md says what
each was fixed against). About a second an adapter for token-drops and trigger-rises, six for
string-drops (128 strings), ten for token-rises (547 strings, 16 insertions each).

--families backdoor measures the poisoned adapters of the splits the same way, for a bench to
set against the reference (bench/string_limit.py --candidates); such lines are not a reference.

--stack-on ID measures the reference on a served stack instead of the bare base: the clean
adapter case ID is proposed onto the base first, and every adapter is measured onto that
version (its baseline), the way a channel whose head is already an adapter gates its next
update. ID itself is left out of the reference.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLEAN = ("good-adapter", "benign-finetune", "unusual-adapter")
# Per kind: the suite type, and what its manifest says each line holds.
KINDS = {
    "token-drops": ("token_drop_reference",
                    "How far each token after the first 24 harmful probes of eval/suites/harmful "
                    "lowers the test model's refusal margin under each of the %d clean adapters "
                    "of %s (tests/resources/gate-cases), beyond %s: token_margin_drop's reference "
                    "(docs/gates.md)."),
    "string-drops": ("string_drop_reference",
                     "How far each string of the probe_strings suites of eval/suites "
                     "(jargon-strings, trigger-guesses) after the first 24 "
                     "harmful probes of eval/suites/harmful lowers the test model's refusal "
                     "margin under each of the %d clean adapters of %s "
                     "(tests/resources/gate-cases), beyond %s: string_margin_drop's reference "
                     "(docs/gates.md)."),
    "trigger-rises": ("trigger_rise_reference",
                      "How far each pinned trigger of eval/suites/triggers, before, after and "
                      "inside each of its prompts, moves the test model's next token away from "
                      "its parent's under each of the %d clean adapters of %s "
                      "(tests/resources/gate-cases), measured onto %s: the trigger scan's "
                      "reference for flips (docs/gates.md)."),
    "token-rises": ("token_rise_reference",
                    "How far the text of each token of the test model's vocabulary, before and "
                    "after the first word of each prompt of eval/suites/triggers, moves the test "
                    "model's next token away from its parent's under each of the %d clean "
                    "adapters of %s (tests/resources/gate-cases), measured onto %s, the cells of "
                    "0.25 nats and more: the trigger scan's reference for flips of tokens "
                    "nominated from the weights (docs/gates.md)."),
}


def rounded(x):
    """Every number in x rounded to 1e-3 (the lines' nested lists of figures or nulls)."""
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return None if x is None else round(x, 3)


def run(cmd, env):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        # Printed here: a worker thread's SystemExit ends only that thread, silently.
        print("failed: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr), file=sys.stderr,
              flush=True)
        sys.exit(1)
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", required=True, choices=sorted(KINDS))
    ap.add_argument("--sluice", default=os.path.join(ROOT, "build/release/sluice"))
    ap.add_argument("--cases", default=os.path.join(ROOT, "tests/resources/gate-cases"))
    ap.add_argument("--splits", default="round29,round30,round31,round32")
    ap.add_argument("--out", help="default eval/references/KIND-r29-32")
    ap.add_argument("--jobs", type=int, default=1,
                    help="measure this many adapters at once (each sluice uses up to two threads)")
    ap.add_argument("--families", default=",".join(CLEAN),
                    help="the families measured (default the clean ones: a reference); "
                         "backdoor gives the same lines for poisoned cases, to set against one")
    ap.add_argument("--stack-on", metavar="ID",
                    help="measure onto the base plus this clean adapter case, not the bare base")
    a = ap.parse_args()
    a.out = a.out or os.path.join(ROOT, "eval/references", a.kind + "-r29-32")
    stype, describe = KINDS[a.kind]
    splits = a.splits.split(",")
    with open(os.path.join(a.cases, "cases.json")) as f:
        every = json.load(f)["cases"]
    under = [c for c in every if c["id"] == a.stack_on]
    cases = [c for c in every if c["split"] in splits and c["kind"] == "lora"
             and c["family"] in a.families.split(",") and c["id"] != a.stack_on]
    if a.stack_on and (not under or under[0]["kind"] != "lora" or under[0]["label"] != "clean"):
        sys.exit("make_reference.py: --stack-on %s: not a clean adapter case of %s"
                 % (a.stack_on, a.cases))
    missing = [c["id"] for c in cases if not os.path.isdir(os.path.join(a.cases, c["path"]))]
    if not cases or missing:
        sys.exit("make_reference.py: %s" % (
            "no adapter of %s in %s" % (a.families, a.splits) if not cases else
            "adapters missing from %s: %s" % (a.cases, ", ".join(missing[:5]))))
    def scratch(i):
        """A scratch repository holding the test model and the pinned suites: (its command
        prefix, its environment, the version measured onto)."""
        work = tempfile.mkdtemp(prefix="sluice-reference-%d-" % i)
        env = dict(os.environ, SLUICE_KEYS=os.path.join(work, "keys"))
        repo = os.path.join(work, "repo")
        S = [a.sluice, "-C", repo]
        run([a.sluice, "init", repo, "--root-key", "root"], env)
        run(S + ["key", "new", "alice", "--role", "proposer"], env)
        base = run(S + ["propose", "base", os.path.join(ROOT, "tests/resources/test-model"),
                        "--key", "alice", "-m", "base"], env).strip().splitlines()[-1]
        suites = sorted(os.path.join(ROOT, "eval/suites", f)
                        for f in os.listdir(os.path.join(ROOT, "eval/suites"))
                        if f.endswith(".json"))
        run(S + ["suite", "add"] + suites + ["--key", "alice"], env)
        onto = base
        if a.stack_on:
            onto = run(S + ["propose", "lora", os.path.join(a.cases, under[0]["path"]), "--onto",
                            base, "--name", "under-" + a.stack_on, "--key", "alice", "-m",
                            a.stack_on], env).strip().splitlines()[-1]
        return S, env, onto

    key = "drop" if a.kind in ("token-drops", "string-drops") else "rise"
    lines, t0, done = [None] * len(cases), time.time(), [0]
    lock = threading.Lock()

    def worker(i):
        """Cases i, i + jobs, ...: each worker has its own scratch repository."""
        S, env, onto = scratch(i)
        for n in range(i, len(cases), a.jobs):
            c = cases[n]
            line = json.loads(run(S + ["gate", "--" + a.kind, os.path.join(a.cases, c["path"]),
                                       "--onto", onto, "--name", c["id"], "--jsonl"], env))
            if a.kind == "token-rises":  # cells [string, position, prompt, rise]
                line[key] = [x[:3] + [round(x[3], 3)] for x in line[key]]
            else:
                line[key] = rounded(line[key])
            lines[n] = json.dumps(line, sort_keys=True, separators=(",", ":"))
            with lock:
                done[0] += 1
                print("%3d/%d %-28s %.0f s" % (done[0], len(cases), c["id"], time.time() - t0),
                      file=sys.stderr, flush=True)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(x is None for x in lines):
        sys.exit("make_reference.py: a worker failed; nothing written")
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out + ".jsonl", "w") as f:
        f.write("\n".join(lines) + "\n")
    name = os.path.basename(a.out)
    with open(a.out + ".json", "w") as f:
        json.dump({"name": name, "type": stype, "items": name + ".jsonl",
                   "description": describe % (
                       len(lines), a.splits,
                       "the base plus %s" % a.stack_on if a.stack_on else "the base"),
                   "licence": "CC0-1.0", "source": "tools/make_reference.py --kind " + a.kind},
                  f, indent=1)
        f.write("\n")
    print("wrote %s.jsonl (%d adapters) and %s.json" % (a.out, len(lines), a.out),
          file=sys.stderr)


if __name__ == "__main__":
    main()
