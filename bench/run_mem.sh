#!/bin/sh
# run_mem.sh - run every command-buffer cycle benchmark (SGV cache + ideal
# floor, glibc, glibc tuned, jemalloc, tcmalloc, mimalloc) in one go and print
# one merged table with ratios against the ideal floor and the best general
# allocator, and which of the libsgv targets each row meets.
#
# usage: bench/run_mem.sh [build-dir] [min-time-seconds]
#   build-dir defaults to ./build (configured without sanitizers);
#   min time per benchmark defaults to 0.05 s (whole run: about a minute).
# Environment: SGV_BENCH_OUT=dir keeps the JSON files (default: a temp dir).
#   SGV_BENCH_ROUNDS=n    run every executable n times, alternating (round 1 of
#                         all, then round 2, ...), so each subject sees the same
#                         minutes of machine load; the table shows medians and
#                         the per-round figures (default 1).
#   SGV_BENCH_FILTER=re   only the benchmarks matching re (Google Benchmark's
#                         --benchmark_filter, e.g. 'cycle/.*/1t|mixed/1t').
#   SGV_BENCH_CPU=n       pin every run to CPU n (taskset), so a run does not
#                         migrate between the cores mid-benchmark.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
mintime=${2:-0.05}
out=${SGV_BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"

cmake --build "$build" --target bench_mem_sgv bench_mem_glibc bench_mem_glibc_tuned \
  $(for a in jemalloc tcmalloc mimalloc; do
      [ -n "$(cmake --build "$build" --target help 2>/dev/null | grep "bench_mem_$a")" ] && echo bench_mem_$a
    done) >/dev/null

rounds=${SGV_BENCH_ROUNDS:-1}
filter=${SGV_BENCH_FILTER:-.}
pin=
[ -n "${SGV_BENCH_CPU:-}" ] && pin="taskset -c $SGV_BENCH_CPU"
r=1
while [ "$r" -le "$rounds" ]; do
  for exe in "$build"/bench/bench_mem_*; do
    [ -x "$exe" ] || continue
    name=$(basename "$exe")
    echo "round $r: running $name ..." >&2
    $pin "$exe" --benchmark_min_time="$mintime" --benchmark_filter="$filter" --benchmark_format=json \
      --benchmark_out="$out/$name.r$r.json" --benchmark_out_format=json >/dev/null
  done
  r=$((r + 1))
done

python3 "$here/merge_mem.py" "$out"/bench_mem_*.json
