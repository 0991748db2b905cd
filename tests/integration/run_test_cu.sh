#!/usr/bin/env bash
# tests/integration/run_test_cu.sh - runs one libiscsi iscsi-test-cu family
# against $SGVD_URL LUN 0 (inside with_sgvd.sh) and fails unless CUnit
# reports every test run and none failed. Prints "cu-summary FAMILY ran=N
# passed=N failed=N skipped=N" for the report.
#
# usage: run_test_cu.sh FAMILY|ALL [timeout-seconds]   (ALL: the whole suite)
set -u
family=$1
limit=${2:-240}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
select=(-t "$family")
[ "$family" = ALL ] && select=()
timeout -k 5 "$limit" iscsi-test-cu --dataloss -i iqn.2026-11.io.sgv:test-cu \
  -I iqn.2026-11.io.sgv:test-cu-2 "${select[@]}" "$SGVD_URL/0" >"$out" 2>&1
st=$?
cat "$out"
# CUnit: "               tests     12     12     10      2        0"
#                                  Total   Ran Passed Failed Inactive
read -r total ran passed failed inactive < <(awk '$1 == "tests" && NF >= 6 { print $2, $3, $4, $5, $6 }' "$out" | tail -n 1)
# Skipped: tests that printed a [SKIPPED] line (some print two), not
# counting the PERSISTENT RESERVE IN note libiscsi prints as each suite starts.
skipped=$(awk '/^  Test: /{n++} /\[SKIPPED\]/ && !/PERSISTENT RESERVE IN/ {if (n) s[n]=1}
               END{c=0; for (k in s) c++; print c}' "$out")
if [ -z "${total:-}" ]; then
  echo "run_test_cu: no CUnit summary (iscsi-test-cu exit $st)" >&2; exit 1
fi
echo "cu-summary $family ran=$ran passed=$passed failed=$failed skipped=$skipped inactive=$inactive"
[ "$st" -eq 124 ] && { echo "run_test_cu: timed out after $limit s" >&2; exit 1; }
[ "$ran" -gt 0 ] && [ "$failed" -eq 0 ] && [ "$ran" -eq "$total" ]
