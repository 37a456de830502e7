#!/usr/bin/env bash
# Formats every tracked C file with the repository's .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files '*.c' '*.h' | xargs clang-format -i
