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
# The URL twice: a second path to the same LUN, so the multipath tests
# (MultipathIO, reservations and COMPARE AND WRITE across paths) run too.
timeout -k 5 "$limit" iscsi-test-cu --dataloss -i iqn.2026-11.io.sgv:test-cu \
  -I iqn.2026-11.io.sgv:test-cu-2 "${select[@]}" "$SGVD_URL/0" "$SGVD_URL/0" >"$out" 2>&1
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
# Assertions of libiscsi 1.19 that contradict the standard, by file:line.
# Each fails against any conforming target; every other failure counts.
#   test_get_lba_status_unmap_single.c:135 - GetLBAStatus.UnmapSingle asks
#     GET LBA STATUS for LBA i+1 and wants the first descriptor to start at
#     i + (logical blocks per physical block), 16 for our 512-byte LUNs; SBC-3
#     5.6 wants it to start at the LBA in the CDB (i+1), which sgvd returns.
#     The test's other checks (deallocated after UNMAP, mapped next to it)
#     pass. Upstream correct only when there is one block per physical block.
known_bad="test_get_lba_status_unmap_single.c:135"
# CUnit lists each failed assertion as "  N. file.c:LINE  - message".
fails=$(awk '/^ *[0-9]+\. [^ ]+\.c:[0-9]+ +- / {print $2}' "$out")
unknown=0; known=0
for f in $fails; do
  case " $known_bad " in *" $f "*) known=$((known + 1)); echo "run_test_cu: known libiscsi defect: $f" ;;
                         *) unknown=$((unknown + 1)) ;; esac
done
echo "cu-summary $family ran=$ran passed=$passed failed=$failed skipped=$skipped inactive=$inactive known_libiscsi_defects=$known"
[ "$st" -eq 124 ] && { echo "run_test_cu: timed out after $limit s" >&2; exit 1; }
# A failed test must be explained by known defects only (and CUnit's count
# must not exceed the failures it listed).
[ "$ran" -gt 0 ] && [ "$ran" -eq "$total" ] && [ "$unknown" -eq 0 ] && [ "$failed" -le "$known" ]
