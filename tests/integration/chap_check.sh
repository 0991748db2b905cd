#!/usr/bin/env bash
# tests/integration/chap_check.sh - CHAP against a real initiator (libiscsi's
# iscsi-inq / iscsi-ls, credentials in the URL), run inside with_sgvd.sh
# with chap.toml: right credentials log in (one-way, mutual, discovery),
# wrong or missing ones are refused, the open target still takes None, and
# no secret reaches sgvd's log.
# usage: chap_check.sh ISCSI-INQ ISCSI-LS
set -u
inq=$1 ls=$2
p=$SGVD_PORTAL
chap=iqn.2026-11.io.sgv:chap
open=iqn.2026-11.io.sgv:open
fail=0
check() {  # check ok|refused WHAT -- command...
  local want=$1 what=$2; shift 3
  local out st
  out=$(timeout 20 "$@" 2>&1); st=$?
  if { [ "$want" = ok ] && [ "$st" -eq 0 ]; } || { [ "$want" = refused ] && [ "$st" -ne 0 ] && [ "$st" -ne 124 ]; }; then
    echo "ok   $what ($want, status $st)"
  else
    echo "FAIL $what: status $st, want $want; output: $out"; fail=1
  fi
}
check ok      "one-way CHAP"            -- "$inq" "iscsi://ini-user%initiator-secret-1@$p/$chap/0"
check refused "no credentials"          -- "$inq" "iscsi://$p/$chap/0"
check refused "wrong secret"            -- "$inq" "iscsi://ini-user%initiator-secret-2@$p/$chap/0"
check refused "wrong user"              -- "$inq" "iscsi://someone%initiator-secret-1@$p/$chap/0"
check ok      "mutual CHAP"             -- "$inq" "iscsi://ini-user%initiator-secret-1@$p/$chap/0?target_user=tgt-user&target_password=target-secret-222"
check refused "mutual, wrong target secret" -- "$inq" "iscsi://ini-user%initiator-secret-1@$p/$chap/0?target_user=tgt-user&target_password=target-secret-999"
check ok      "open target, no CHAP"    -- "$inq" "iscsi://$p/$open/0"
check ok      "discovery with CHAP"     -- sh -c "'$ls' 'iscsi://disc-user%discovery-secret-1@$p' | tee /dev/stderr | grep -qF '$chap'"
check refused "discovery, no credentials" -- "$ls" "iscsi://$p"
check refused "discovery, target's credentials" -- "$ls" "iscsi://ini-user%initiator-secret-1@$p"
# The start-up hint for the first target (a CHAP one) names its user and
# leaves the secret out.
if grep -qF "try: iscsi-inq iscsi://ini-user%<secret>@" "$SGVD_WORK/sgvd.log"; then
  echo "ok   start-up hint names the CHAP user, not the secret"
else
  echo "FAIL start-up hint without the CHAP user:"; grep "try:" "$SGVD_WORK/sgvd.log"; fail=1
fi
if grep -qE 'secret-[0-9]' "$SGVD_WORK/sgvd.log"; then
  echo "FAIL a secret is in sgvd's log:"; cat "$SGVD_WORK/sgvd.log"; fail=1
else
  echo "ok   no secret in sgvd's log"
fi
exit $fail
