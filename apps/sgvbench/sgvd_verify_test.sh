#!/usr/bin/env bash
# sgvd_verify_test.sh SGVD SGVBENCH - end-to-end check that sgvd serves data
# correctly under concurrent load: a 64 MiB RAM LUN on a free loopback port,
# sgvbench --verify with two sessions for 2 s on a 4 MiB region (so reads hit
# blocks written earlier in the run); passes when sgvbench exits 0 with I/Os
# done, reads checked and no failures. Then 100 writes to a read-only LUN
# must come back as 100 failures filed under CHECK CONDITION, DATA PROTECT,
# ASC/ASCQ 0x27/0x00, with exit status 1. sgvd is killed whatever happens.
set -u
SGVD=$1
SGVBENCH=$2
IQN=iqn.2026-11.io.sgv:sgvbench-test
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$SGVD" --portal 127.0.0.1:"$port" --target "$IQN" --lun ram:64M --lun ram:16M,ro --log-level warn >"$dir/sgvd.log" 2>&1 &
pid=$!
finish() {
  kill "$pid" 2>/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap finish EXIT

up=0
for _ in $(seq 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then up=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ $up = 0 ]; then
  echo "sgvd did not start listening on $port:"; cat "$dir/sgvd.log"
  exit 1
fi

"$SGVBENCH" --url "iscsi://127.0.0.1:$port/$IQN/0" --sessions 2 --qd 16 --bs 4k \
  --rw randrw --rwmixread 50 --size 4M --verify --time 2 --json >"$dir/out.json" 2>"$dir/err.txt"
rc=$?
cat "$dir/out.json" "$dir/err.txt"
if [ $rc != 0 ]; then
  echo "sgvbench exited $rc"; echo "--- sgvd log"; cat "$dir/sgvd.log"
  exit 1
fi
python3 - "$dir/out.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
e = j["errors"]
problems = []
if not j["iops"] > 0: problems.append("no IOPS")
if e["failures"] or e["verify_errors"]: problems.append("failures or verify errors")
if not e["verified_reads"] > 0: problems.append("no read was checked against a written pattern")
if not j["writes"] > 0: problems.append("no writes")
if problems:
    print("FAIL:", ", ".join(problems)); sys.exit(1)
print("ok: %.0f IOPS, %d reads verified" % (j["iops"], e["verified_reads"]))
PY
[ $? = 0 ] || exit 1

"$SGVBENCH" --url "iscsi://127.0.0.1:$port/$IQN/1" --rw randwrite --qd 4 --ios 100 --time 10 \
  --json >"$dir/ro.json" 2>"$dir/ro.err"
rc=$?
cat "$dir/ro.json"
if [ $rc != 1 ]; then
  echo "sgvbench on a read-only LUN exited $rc, want 1"; cat "$dir/ro.err"
  exit 1
fi
python3 - "$dir/ro.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
e = j["errors"]
want = [{"status": "CHECK_CONDITION", "status_code": 2, "sense_key": 7, "asc": 0x27, "ascq": 0,
         "count": 100}]
if e["failures"] != 100 or j["ios"] != 0 or e["by_status"] != want:
    print("FAIL: want 100 failures, all DATA PROTECT 27/00; got", e); sys.exit(1)
print("ok: read-only LUN refused 100 writes with DATA PROTECT 27/00")
PY
