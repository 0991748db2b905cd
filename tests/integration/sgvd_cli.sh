#!/usr/bin/env bash
# tests/integration/sgvd_cli.sh - sgvd's command line as a user meets it:
# --help/--version exit 0, a bad flag or a bad config file exits 2 with a
# message naming the problem (for the file: its line), without serving.
# usage: sgvd_cli.sh SGVD
set -u
sgvd=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/sgv-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
expect() {  # expect STATUS PATTERN -- sgvd args...
  local want=$1 pat=$2; shift 3
  local out st
  out=$(timeout 10 "$sgvd" "$@" 2>&1); st=$?
  if [ "$st" -ne "$want" ] || ! grep -qE -- "$pat" <<<"$out"; then
    echo "FAIL sgvd $*: status $st (want $want), output: $out"; fail=1
  else
    echo "ok   sgvd $*"
  fi
}
expect 0 '--portal HOST:PORT' -- --help
expect 0 '^sgv [0-9]' -- --version
expect 2 "unknown option '--bogus'" -- --bogus
expect 2 "--lun ram:4Q: expected a size" -- --lun ram:4Q
expect 2 "--portal: expected HOST:PORT" -- --portal '::1:3260'
expect 2 "not an iSCSI name" -- --target Disk1
printf '# bad\n[[target]]\nname = "iqn.2026-11.io.sgv:a"\n[[target.lun]]\nsize = "4Q"\n' >"$work/bad.toml"
expect 2 "bad.toml:5: lun.size: expected a size like \"4G\", got \"4Q\"" -- --config "$work/bad.toml"
printf 'mem_limt = "1G"\n' >"$work/typo.toml"
expect 2 "typo.toml:1: mem_limt: unknown key" -- --config "$work/typo.toml"
expect 2 "No such file" -- --config "$work/missing.toml"
expect 2 "lun.block_size|block_size: must be 512 or 4096" -- --lun ram:1G,block_size=1024
exit $fail
