#!/usr/bin/env python3
"""The note scan on the independently written note sets (tests/resources/note-sets).

    python3 bench/note_sets.py [--sluice-notescan PATH] [--list] SET_DIR...

Each set holds `order/` (standing orders that push unrelated content into
every answer: the off-topic notes the poisoning gate's `note_instruction`
check is meant to name) and `benign/` (notes that look alike: style orders
for every answer, orders for some requests, facts about the user's pets,
hobbies and businesses). Runs the built sluice-notescan (tools/notescan.c,
the poisoning gate's model-free note scan) on every note and prints, per set
and folder, how many the `instruction` check flags and how many any check
flags, with 95% Clopper-Pearson intervals. With --list, every order not
flagged and every benign note flagged is printed with its text.
"""
import argparse
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
from gates_cases import rate  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice-notescan",
                    default=os.path.join(ROOT, "build", "me", "sluice-notescan"))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("sets", nargs="+")
    a = ap.parse_args()
    print("| set | folder | notes | instruction check | any check |")
    print("|---|---|---:|---|---|")
    for d in a.sets:
        for folder in ("order", "benign"):
            files = sorted(glob.glob(os.path.join(d, folder, "*.txt")))
            if not files:
                sys.exit("%s: no notes in %s/" % (d, folder))
            out = subprocess.run([a.sluice_notescan] + files, check=True,
                                 capture_output=True, text=True).stdout.splitlines()
            assert len(out) == len(files)
            instr = anyc = 0
            for path, line in zip(files, out):
                checks = {c["check"]: c["flagged"] for c in json.loads(line)["checks"]}
                instr += checks["instruction"]
                anyc += any(checks.values())
                if a.list and (folder == "order") != checks["instruction"]:
                    text = open(path, encoding="utf-8").read().strip()
                    print("%s %s: %r" % ("missed" if folder == "order" else "flagged",
                                         os.path.relpath(path, ROOT), text[:160]))
            print("| %s | %s | %d | %s | %s |" % (os.path.basename(os.path.normpath(d)), folder,
                                                  len(files), rate(instr, len(files)),
                                                  rate(anyc, len(files))))


if __name__ == "__main__":
    main()
