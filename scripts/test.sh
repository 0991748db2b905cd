#!/usr/bin/env bash
# Builds sgv and runs every test: the release build with warnings as errors
# (unit, integration against libiscsi's tools, fuzz-corpus replay), then the
# unit tests under ASan+UBSan, then the concurrency tests under TSan.
# Usage: scripts/test.sh [--quick]   (--quick: release build only)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

build() {  # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "${launcher[@]}" -DSGV_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

echo "== release build"
build build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo
ctest --test-dir build/release --output-on-failure -j "$jobs" --timeout 900
[ "${1:-}" = "--quick" ] && exit 0

echo "== ASan+UBSan build"
build build/asan -DCMAKE_BUILD_TYPE=Debug -DSGV_SANITIZE=address,undefined -DSGV_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/asan --output-on-failure -j "$jobs" --timeout 900 -LE integration

echo "== TSan build (concurrency tests)"
build build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSGV_SANITIZE=thread -DSGV_BENCH=OFF
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build/tsan --output-on-failure -j "$jobs" --timeout 900 -L concurrency
