#!/usr/bin/env bash
# tests/integration/with_sgvd.sh - the fixture every integration test runs
# in: starts the real sgvd on a free loopback port, waits until it serves,
# runs one command against it, and always stops sgvd (trap EXIT), failing
# the test when sgvd crashed or did not exit cleanly on SIGTERM.
#
# usage: with_sgvd.sh SGVD [sgvd flags...] -- COMMAND [args...]
# In sgvd flags and the command, @WORK@ becomes a scratch directory that
# holds lun.img (a 64 MiB sparse file), and @SHM@ one on tmpfs (/dev/shm)
# holding the same, for the file backend's tmpfs paths (inline I/O, READs
# from a mapping); a test that names @SHM@ is skipped (77) where /dev/shm
# is not tmpfs. The command sees SGVD_HOST,
# SGVD_PORT, SGVD_PORTAL (host:port), SGVD_TARGET (first target served),
# SGVD_URL (iscsi://portal/target), SGVD_PORTALS (every bound portal,
# space-separated), SGVD_WORK and SGVD_PID.
set -u
sgvd=$1; shift
work=$(mktemp -d "${TMPDIR:-/tmp}/sgv-it.XXXXXX")
shm=""
if [[ " $* " == *@SHM@* ]]; then
  if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" != tmpfs ]; then
    echo "with_sgvd: /dev/shm is not tmpfs; skipping" >&2; rm -rf "$work"; exit 77
  fi
  shm=$(mktemp -d /dev/shm/sgv-it.XXXXXX)
  truncate -s 64M "$shm/lun.img"
fi
args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do a=${1//@WORK@/$work}; args+=("${a//@SHM@/$shm}"); shift; done
[ $# -gt 0 ] && shift
cmd=()
for a in "$@"; do a=${a//@WORK@/$work}; cmd+=("${a//@SHM@/$shm}"); done
truncate -s 64M "$work/lun.img"
log=$work/sgvd.log
pid=""

stop_sgvd() {  # 0 if sgvd was alive and exited 0 on SIGTERM
  [ -n "$pid" ] || return 0
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"; local st=$?
    echo "with_sgvd: sgvd died during the test (status $st)" >&2
    pid=""; return 1
  fi
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "with_sgvd: sgvd ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""; return 1
  fi
  wait "$pid"; local st=$?; pid=""
  if [ "$st" -ne 0 ]; then echo "with_sgvd: sgvd exited with status $st after SIGTERM" >&2; return 1; fi
  return 0
}
cleanup() {
  local rc=$?
  [ -n "$pid" ] && { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  if [ "$rc" -ne 0 ] && [ -f "$log" ]; then
    echo "---- sgvd log (last 40 lines) ----" >&2; tail -n 40 "$log" >&2
  fi
  rm -rf "$work"
  [ -n "$shm" ] && rm -rf "$shm"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 124' INT TERM

"$sgvd" --portal 127.0.0.1:0 "${args[@]}" >"$log" 2>&1 &
pid=$!
line=""
for _ in $(seq 200); do  # 20 s
  line=$(grep -m1 '^sgvd: serving ' "$log" 2>/dev/null || true)
  [ -n "$line" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"; st=$?; pid=""
    echo "with_sgvd: sgvd exited with status $st before serving" >&2; exit 1
  fi
  sleep 0.1
done
if [ -z "$line" ]; then echo "with_sgvd: sgvd did not start serving within 20 s" >&2; exit 1; fi
# "sgvd: serving TARGET LUN ... on HOST:PORT[, HOST:PORT...]"
target=$(sed -E 's/^sgvd: serving ([^ ]+) .*/\1/' <<<"$line")
portal=$(sed -E 's/.* on ([^ ,]+).*/\1/' <<<"$line")
portals=$(sed -E 's/.* on //; s/,//g' <<<"$line")
export SGVD_TARGET=$target SGVD_PORTAL=$portal SGVD_HOST=${portal%:*} SGVD_PORT=${portal##*:}
export SGVD_URL="iscsi://$portal/$target" SGVD_WORK=$work SGVD_PID=$pid SGVD_PORTALS=$portals
if [ "$SGVD_PORT" = "0" ] || [ -z "$SGVD_PORT" ]; then
  echo "with_sgvd: sgvd did not report its bound port: $line" >&2; exit 1
fi

"${cmd[@]}"
rc=$?
stop_sgvd || { [ "$rc" -eq 0 ] && rc=1; }
exit "$rc"
