#!/usr/bin/env bash
# Installs what sluice needs to build, test and run its demo on Debian 12,
# from Debian's own packages only. Installs nothing that is already there.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git openssh-client coreutils
  clang clang-format libclang-rt-14-dev
  libgit2-dev libsodium-dev liblmdb-dev lmdb-utils libcurl4-openssl-dev
  libcmocka-dev libjansson-dev libyaml-dev libpcre2-dev libopenblas-dev libopenblas0-pthread
  # Independent checkers the audit tests use: Go's x/mod sumdb note and tlog (checkpoints,
  # proofs), PyNaCl (DSSE attestations), headless Chromium (the HTML report).
  golang-go golang-golang-x-mod-dev python3-nacl chromium
  # ci/sluice-ci.sh reads sluice's --json output with jq; the man page test renders with groff.
  jq groff-base
  # tests/remote and bench/remote.sh serve a chunk store with nginx's WebDAV module
  # (Debian's nginx is built --with-http_dav_module) and git's own protocol with git daemon;
  # git over authenticated HTTP is git http-backend behind nginx through fcgiwrap.
  nginx fcgiwrap
)
# Peers measured by the benchmarks (bench/); not needed to build or test.
if [ "${SLUICE_BENCH_DEPS:-0}" = 1 ]; then
  pkgs+=(git-lfs restic)
fi

# scripts/hf-tokenizers.sh runs Hugging Face's tokenizers through Node and npm. A machine
# with another build of Node (NodeSource's carries npm) keeps it.
if ! command -v npm >/dev/null; then
  pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
