#!/usr/bin/env bash
# Installs the Debian 12 packages sgv needs to build, test and benchmark.
# Idempotent and quick when everything is present already.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config ccache clang libclang-rt-14-dev
      liburing-dev libgtest-dev libgmock-dev libbenchmark-dev libtoml11-dev
      libiscsi-bin libiscsi-dev libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev
      python3 procps)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
