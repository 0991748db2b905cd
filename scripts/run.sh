#!/usr/bin/env bash
# Builds sgvd and starts it in the foreground with the given arguments.
# Without arguments it serves one 1 GiB RAM LUN as iqn.2026-11.io.sgv:default
# on 127.0.0.1:3260.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build build/release -j "$(nproc)" --target sgvd
exec build/release/apps/sgvd "$@"
