#!/usr/bin/env bash
# bench/compare/run.sh - side-by-side benchmark of sgvd against the two
# user-space iSCSI targets Debian ships, tgt (tgtd) and istgt, in one run on
# this machine: same LUN sizes, same workloads (sgvbench), targets alternated
# every round, medians of ROUNDS rounds, plus each target's CPU per I/O, peak
# RSS and minor page faults, and the loopback TCP ceiling measured alongside.
#
# Usage: bench/compare/run.sh            full run (~10 min)
#        SHORT=1 bench/compare/run.sh    smoke run (1 round, 1 s per workload, ~1.5 min)
# Environment: BUILD (build dir, default build-compare, configured and built
# if sgvd/sgvbench are missing), OUT (results dir), ROUNDS (3; SHORT: 1),
# TIME (s per workload, 3; SHORT: 1), RAMP (untimed warm-up s before each, 1), SIZE (LUN size, 256M), TARGETS ("sgvd tgt istgt"), LUNS
# ("ram file"), ONLY (a bash regex: run only the workloads whose name matches,
# e.g. ONLY=1m for the 1 MiB rows), PORT_BASE (3270: tgt, +1 istgt, +2 istgt
# control, +3 sgvd).
# Needs root only to apt-get install tgt/istgt when they are missing.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$SRC/build-compare}
OUT=${OUT:-/tmp/sgv-compare-$(date +%Y%m%d-%H%M%S)}
SHORT=${SHORT:-0}
if [ "$SHORT" = 1 ]; then TIME=${TIME:-1} ROUNDS=${ROUNDS:-1}; else TIME=${TIME:-3} ROUNDS=${ROUNDS:-3}; fi
# Untimed warm-up run of the same workload before each measured one, like
# fio's ramp_time: a minute of other workloads lies between two runs of a
# cell, long enough for sgvd's idle purge (60 s by default) to return its
# 1 MiB vectors, which the next run would otherwise re-fault inside the
# measured window (0.24-0.31 faults per 1 MiB write at 06:33 without it).
RAMP=${RAMP:-1}
SIZE=${SIZE:-256M}
TARGETS=${TARGETS:-"sgvd tgt istgt"}
LUNS=${LUNS:-"ram file"}
ONLY=${ONLY:-}
PORT_BASE=${PORT_BASE:-3270}
TGT_PORT=$PORT_BASE
ISTGT_PORT=$((PORT_BASE + 1))
ISTGT_CTL_PORT=$((PORT_BASE + 2))
SGVD_PORT=$((PORT_BASE + 3))
TGT_CTL=$((PORT_BASE % 1000 + 20))   # tgtd's management channel number
IQN_BASE=iqn.2026-11.io.sgv
SHM=/dev/shm/sgv-compare-$$

mkdir -p "$OUT" "$SHM"
log() { echo "[compare] $*" >&2; }

declare -A PID URL
cleanup() {
  # tgtd ignores SIGTERM while it has targets; ask it to shut down first.
  [ -n "${PID[tgt]:-}" ] && tgtadm -C "$TGT_CTL" --lld iscsi --mode target --op delete --force --tid 1 >/dev/null 2>&1
  for t in "${!PID[@]}"; do
    kill "${PID[$t]}" 2>/dev/null
  done
  for _ in 1 2 3 4 5; do
    alive=0
    for t in "${!PID[@]}"; do kill -0 "${PID[$t]}" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  for t in "${!PID[@]}"; do
    kill -9 "${PID[$t]}" 2>/dev/null
    wait "${PID[$t]}" 2>/dev/null
  done
  rm -rf "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------
SGVBENCH=$BUILD/apps/sgvbench/sgvbench
SGVD=$BUILD/apps/sgvd
SGVCTL=$BUILD/apps/sgvctl
if [ ! -x "$SGVBENCH" ] || { [[ " $TARGETS " == *" sgvd "* ]] && [ ! -x "$SGVD" ]; }; then
  log "building sgvd, sgvctl and sgvbench in $BUILD"
  cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSGV_TESTS=OFF >"$OUT/cmake.log" 2>&1 &&
    cmake --build "$BUILD" -j2 --target sgvbench >>"$OUT/cmake.log" 2>&1
  cmake --build "$BUILD" -j2 --target sgvd sgvctl >>"$OUT/cmake.log" 2>&1 || true
fi
[ -x "$SGVBENCH" ] || { log "no sgvbench at $SGVBENCH (see $OUT/cmake.log)"; exit 2; }
if [[ " $TARGETS " == *" sgvd "* ]] && [ ! -x "$SGVD" ]; then
  log "no sgvd at $SGVD: comparing the peers only"
  TARGETS=${TARGETS//sgvd/}
fi
need_pkgs=""
[[ " $TARGETS " == *" tgt "* ]] && ! command -v tgtd >/dev/null && need_pkgs+=" tgt"
[[ " $TARGETS " == *" istgt "* ]] && ! command -v istgt >/dev/null && need_pkgs+=" istgt"
if [ -n "$need_pkgs" ]; then
  log "installing$need_pkgs"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi
  $SUDO apt-get install -y $need_pkgs >"$OUT/apt.log" 2>&1 || { log "apt-get failed, see $OUT/apt.log"; exit 2; }
fi

port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
wait_port() {  # PORT PID: until something listens, or the process died
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
for p in $TGT_PORT $ISTGT_PORT $ISTGT_CTL_PORT $SGVD_PORT; do
  port_free "$p" || { log "port $p is taken; set PORT_BASE"; exit 2; }
done

# --- LUN files: RAM for the peers is a /dev/shm file; the file LUN of all
# three is one more /dev/shm file each (same filesystem for everyone) ---------
for t in $TARGETS; do
  truncate -s "$SIZE" "$SHM/$t-file.img"
  [ "$t" = sgvd ] || truncate -s "$SIZE" "$SHM/$t-ram.img"
done

# --- heap allocation counter (LD_PRELOAD shim, same for every target) --------
COUNT_ALLOCS=${COUNT_ALLOCS:-1}
PRELOAD=()
if [ "$COUNT_ALLOCS" = 1 ]; then
  if cc -O2 -shared -fPIC -o "$SHM/malloc_count.so" "$HERE/malloc_count.c" 2>"$OUT/malloc_count.log"; then
    PRELOAD=(env LD_PRELOAD="$SHM/malloc_count.so" SGV_MALLOC_COUNT_DIR="$SHM")
  else
    log "could not build the malloc counter (see $OUT/malloc_count.log); heap allocations not counted"
  fi
fi
allocs() {  # PID -> heap allocations so far, or -1 when not counted
  local f="$SHM/malloc-count.$1"
  if [ -f "$f" ]; then od -An -tu8 -N8 "$f" | tr -d ' '; else echo -1; fi
}

# --- targets -----------------------------------------------------------------
start_sgvd() {
  "${PRELOAD[@]}" "$SGVD" --portal 127.0.0.1:$SGVD_PORT --target $IQN_BASE:compare-sgvd \
    --lun ram:$SIZE --lun file:$SHM/sgvd-file.img --admin-socket "$SHM/sgvd.sock" \
    --log-level warn >"$OUT/sgvd.log" 2>&1 &
  PID[sgvd]=$!
  URL[sgvd.ram]=iscsi://127.0.0.1:$SGVD_PORT/$IQN_BASE:compare-sgvd/0
  URL[sgvd.file]=iscsi://127.0.0.1:$SGVD_PORT/$IQN_BASE:compare-sgvd/1
  wait_port $SGVD_PORT "${PID[sgvd]}"
}
start_tgt() {
  "${PRELOAD[@]}" tgtd -f -C $TGT_CTL --iscsi portal=127.0.0.1:$TGT_PORT >"$OUT/tgtd.log" 2>&1 &
  PID[tgt]=$!
  wait_port $TGT_PORT "${PID[tgt]}" || return 1
  local a="tgtadm -C $TGT_CTL --lld iscsi"
  $a --mode target --op new --tid 1 --targetname $IQN_BASE:compare-tgt &&
    $a --mode logicalunit --op new --tid 1 --lun 1 --bstype rdwr --backing-store "$SHM/tgt-ram.img" &&
    $a --mode logicalunit --op new --tid 1 --lun 2 --bstype rdwr --backing-store "$SHM/tgt-file.img" &&
    $a --mode target --op bind --tid 1 --initiator-address ALL || return 1
  URL[tgt.ram]=iscsi://127.0.0.1:$TGT_PORT/$IQN_BASE:compare-tgt/1
  URL[tgt.file]=iscsi://127.0.0.1:$TGT_PORT/$IQN_BASE:compare-tgt/2
}
start_istgt() {
  local mb=$(( $(numfmt --from=iec "$SIZE") / 1048576 ))
  : >"$SHM/istgt-auth.conf"
  mkdir -p "$SHM/istgt-media"
  cat >"$SHM/istgt.conf" <<EOF
[Global]
  NodeBase "$IQN_BASE"
  PidFile $SHM/istgt.pid
  AuthFile $SHM/istgt-auth.conf
  MediaDirectory $SHM/istgt-media
  LogFacility "local7"
  Timeout 30
  NopInInterval 20
  DiscoveryAuthMethod None
  MaxSessions 16
  MaxConnections 4
  MaxR2T 32
  MaxOutstandingR2T 16
  DefaultTime2Wait 2
  DefaultTime2Retain 60
  FirstBurstLength 262144
  MaxBurstLength 1048576
  MaxRecvDataSegmentLength 262144
  InitialR2T Yes
  ImmediateData Yes
  DataPDUInOrder Yes
  DataSequenceInOrder Yes
  ErrorRecoveryLevel 0
[UnitControl]
  AuthMethod None
  Portal UC1 127.0.0.1:$ISTGT_CTL_PORT
  Netmask 127.0.0.1
[PortalGroup1]
  Portal DA1 127.0.0.1:$ISTGT_PORT
[InitiatorGroup1]
  InitiatorName "ALL"
  Netmask 127.0.0.1
[LogicalUnit1]
  TargetName compare-istgt
  Mapping PortalGroup1 InitiatorGroup1
  AuthMethod None
  UseDigest Auto
  UnitType Disk
  QueueDepth 64
  LUN0 Storage $SHM/istgt-ram.img ${mb}MB
  LUN1 Storage $SHM/istgt-file.img ${mb}MB
EOF
  "${PRELOAD[@]}" istgt -D -c "$SHM/istgt.conf" >"$OUT/istgt.log" 2>&1 &
  PID[istgt]=$!
  URL[istgt.ram]=iscsi://127.0.0.1:$ISTGT_PORT/$IQN_BASE:compare-istgt/0
  URL[istgt.file]=iscsi://127.0.0.1:$ISTGT_PORT/$IQN_BASE:compare-istgt/1
  wait_port $ISTGT_PORT "${PID[istgt]}"
}

started=""
for t in $TARGETS; do
  if "start_$t"; then
    started+=" $t"
    log "$t up (pid ${PID[$t]})"
  else
    log "$t failed to start, see $OUT/$t*.log; leaving it out"
    kill "${PID[$t]}" 2>/dev/null
    unset "PID[$t]"
  fi
done
TARGETS=$started
[ -n "$TARGETS" ] || { log "no target started"; exit 2; }

# --- measurement helpers -------------------------------------------------------
# /proc/PID/stat after the ")" of comm: field 3 is state; minflt is 10,
# utime 14, stime 15 (1-based over the whole line).
proc_sample() {  # PID -> "ticks minflt vmhwm_kb"
  local pid=$1 s rest
  s=$(cat /proc/"$pid"/stat 2>/dev/null) || { echo "0 0 0"; return; }
  rest=${s##*) }
  # shellcheck disable=SC2086
  set -- $rest
  local minflt=${8} ut=${12} st=${13}
  local hwm
  hwm=$(awk '/^VmHWM:/ {print $2}' /proc/"$pid"/status 2>/dev/null)
  echo "$((ut + st)) $minflt ${hwm:-0}"
}
sgvctl_stats() {  # raw `sgvctl stats` text, if sgvd has it
  [ -x "$SGVCTL" ] && [ -S "$SHM/sgvd.sock" ] && "$SGVCTL" --socket "$SHM/sgvd.sock" stats 2>/dev/null
}

# name | sgvbench arguments
WORKLOADS=(
  "randread-4k-qd32-s1|--rw randread --bs 4k --qd 32 --sessions 1"
  "randread-4k-qd32-s4|--rw randread --bs 4k --qd 32 --sessions 4"
  "randwrite-4k-qd32-s1|--rw randwrite --bs 4k --qd 32 --sessions 1"
  "randwrite-4k-qd32-s4|--rw randwrite --bs 4k --qd 32 --sessions 4"
  "read-1m-qd8|--rw read --bs 1m --qd 8 --sessions 1"
  "write-1m-qd8|--rw write --bs 1m --qd 8 --sessions 1"
  "mix70-4k-qd32-s1|--rw randrw --rwmixread 70 --bs 4k --qd 32 --sessions 1"
)

RES=$OUT/runs.tsv
printf "target\tlun\tworkload\tround\tjson\tticks\tminflt\tvmhwm_kb\tallocs\tstats_before\tstats_after\n" >"$RES"
CLK_TCK=$(getconf CLK_TCK)

# Fill every LUN once so reads hit written data, not holes.
size_bytes=$(numfmt --from=iec "$SIZE")
for t in $TARGETS; do
  for l in $LUNS; do
    "$SGVBENCH" --url "${URL[$t.$l]}" --rw write --bs 1m --qd 8 --time 0 \
      --ios $((size_bytes / 1048576)) --no-progress >"$OUT/prefill-$t-$l.txt" 2>&1 ||
      log "prefill of $t $l failed: $(tail -3 "$OUT/prefill-$t-$l.txt")"
  done
done

# The ceiling: one 1 MiB send()/recv() stream over loopback, plain syscalls
# (loopback_tcp.c), measured at the start of every round (the box is shared
# and one sample moved 1.2 -> 1.8 GB/s between runs); the median is the
# ceiling. The CPython figure (loopback_tcp.py, once) is printed beside it.
log "loopback TCP ceiling"
LB_PY=()
python3 "$HERE/loopback_tcp.py" "$TIME" >"$OUT/loopback-py.json" && LB_PY=(--loopback-py "$OUT/loopback-py.json")
LB_C=""
if cc -O2 -o "$OUT/loopback_tcp" "$HERE/loopback_tcp.c" 2>"$OUT/loopback_tcp.log"; then
  LB_C="$OUT/loopback_tcp"
else
  log "could not build loopback_tcp.c (see $OUT/loopback_tcp.log); the ceiling is the Python figure"
fi

read -r -a TARR <<<"$TARGETS"
NT=${#TARR[@]}
for r in $(seq "$ROUNDS"); do
  if [ -n "$LB_C" ]; then
    "$LB_C" "$TIME" >"$OUT/loopback-r$r.json" 2>>"$OUT/loopback_tcp.log"
    # The same stream offered 256 KiB per send(), libiscsi's Data-Out size:
    # what any target can receive from sgvbench's writes (README).
    "$LB_C" "$TIME" 262144 >"$OUT/loopback256k-r$r.json" 2>>"$OUT/loopback_tcp.log"
  fi
  for l in $LUNS; do
    for w in "${WORKLOADS[@]}"; do
      name=${w%%|*}
      args=${w#*|}
      [[ -z "$ONLY" || $name =~ $ONLY ]] || continue
      for i in $(seq 0 $((NT - 1))); do
        t=${TARR[$(((i + r) % NT))]}  # a different target goes first each round
        kill -0 "${PID[$t]}" 2>/dev/null || { log "$t is gone"; continue; }
        j="$OUT/r$r-$t-$l-$name.json"
        if [ "$RAMP" != 0 ]; then
          # shellcheck disable=SC2086
          "$SGVBENCH" --url "${URL[$t.$l]}" $args --time "$RAMP" --no-progress >/dev/null 2>&1
        fi
        sb=""
        [ "$t" = sgvd ] && sb=$(sgvctl_stats | tr '\n\t' '  ')
        read -r tk0 mf0 _ < <(proc_sample "${PID[$t]}")
        al0=$(allocs "${PID[$t]}")
        # shellcheck disable=SC2086
        "$SGVBENCH" --url "${URL[$t.$l]}" $args --time "$TIME" --json --no-progress \
          >"$j" 2>"$j.err"
        rc=$?
        read -r tk1 mf1 hwm < <(proc_sample "${PID[$t]}")
        al1=$(allocs "${PID[$t]}")
        if [ "$al0" -ge 0 ] && [ "$al1" -ge 0 ]; then al=$((al1 - al0)); else al=""; fi
        sa=""
        [ "$t" = sgvd ] && sa=$(sgvctl_stats | tr '\n\t' '  ')
        [ $rc = 0 ] || log "round $r $t $l $name: sgvbench exit $rc ($(tail -1 "$j.err"))"
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$t" "$l" "$name" "$r" "$j" \
          $((tk1 - tk0)) $((mf1 - mf0)) "$hwm" "$al" "$sb" "$sa" >>"$RES"
      done
    done
  done
  log "round $r of $ROUNDS done"
done

# shellcheck disable=SC2046
python3 "$HERE/table.py" --runs "$RES" --loopback $(ls "$OUT"/loopback-r*.json 2>/dev/null ||
  echo "$OUT/loopback-py.json") --loopback-256k $(ls "$OUT"/loopback256k-r*.json 2>/dev/null) \
  "${LB_PY[@]}" --clk-tck "$CLK_TCK" --congestion "$(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null)" \
  --time "$TIME" --rounds "$ROUNDS" | tee "$OUT/results.md"
log "results in $OUT/results.md (raw runs: $RES)"
