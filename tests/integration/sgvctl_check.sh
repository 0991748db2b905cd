#!/usr/bin/env bash
# tests/integration/sgvctl_check.sh - sgvctl against a running sgvd (inside
# with_sgvd.sh, sgvd started with --admin-socket @WORK@/admin.sock): every
# command answers, and the answers describe the configured LUNs.
# usage: sgvctl_check.sh SGVCTL SOCKET
set -u
ctl=$1 sock=$2
fail=0
run() {  # run PATTERN command
  local pat=$1 out st; shift
  out=$(timeout 10 "$ctl" --socket "$sock" "$@" 2>&1); st=$?
  if [ "$st" -ne 0 ] || ! grep -qE -- "$pat" <<<"$out"; then
    echo "FAIL sgvctl $*: status $st, output: $out"; fail=1
  else
    echo "ok   sgvctl $*"
  fi
}
run '^sgv [0-9]' version
run "^$SGVD_TARGET 0 ram 67108864 512" luns
run "name = \"$SGVD_TARGET\"" config
run '=' stats
run "^lun=0 generation=0 type=none holder=- reserve6=- registrations=0$" reservations
out=$("$ctl" --socket "$sock" bogus 2>&1); st=$?
if [ "$st" -ne 1 ] || ! grep -q "unknown command" <<<"$out"; then echo "FAIL sgvctl bogus: $st $out"; fail=1; else echo "ok   sgvctl bogus"; fi
exit $fail
