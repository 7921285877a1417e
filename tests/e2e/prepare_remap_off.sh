#!/usr/bin/env bash
# With remapping off (daemon.json without userns-remap), prepare gives the tree to the
# container ids themselves, which is right, and says so in one line on stderr, since whoever
# runs volprep most likely expected remap on. -q says nothing.
source "$(dirname "$0")/lib.sh"
mkdir -p "$T/host/etc/docker" "$T/vol"
echo '{}' >"$T/host/etc/docker/daemon.json"
vp "$T/vol" --as 1000 --host-root "$T/host" --dry-run >"$T/out" 2>"$T/err"
[ "$(grep -c 'container ids are host ids, so 1000 is host 1000:1000' "$T/err")" = 1 ] ||
  fail "no one-line notice that remapping is off: $(cat "$T/err")"
grep -q 'remapping is off' "$T/err" || fail "the notice does not say remapping is off: $(cat "$T/err")"
grep -q 'owner 0:0 -> 1000:1000' "$T/out" || fail "the plan is not for host 1000: $(cat "$T/out")"
vp "$T/vol" --as 1000 --host-root "$T/host" --dry-run -q >/dev/null 2>"$T/err.q"
[ ! -s "$T/err.q" ] || fail "-q still prints: $(cat "$T/err.q")"
echo "ok: prepare_remap_off"
