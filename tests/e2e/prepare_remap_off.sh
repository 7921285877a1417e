#!/usr/bin/env bash
# With remapping off (daemon.json without userns-remap), prepare gives the tree to the
# container ids themselves, which is right, and says so in one line on stderr, since whoever
# runs volprep most likely expected remap on. -q says nothing. A data root daemon.json names
# that does not resolve is not known, no error; `map` prints the one that does.
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

# Remapping off needs no data root: one daemon.json names that is no directory is not known
# (a detail says why), never an error.
echo x >"$T/host/notadir"
echo '{"data-root": "/notadir"}' >"$T/host/etc/docker/daemon.json"
vp "$T/vol" --as 1000 --host-root "$T/host" --dry-run >"$T/out" 2>"$T/err" ||
  fail "prepare with remapping off and a data root that is no directory: $(cat "$T/err")"
vp map --host-root "$T/host" >"$T/map" 2>&1 || fail "map: $(cat "$T/map")"
grep -q "data root not known: .*notadir" "$T/map" && grep -q "^data root: -$" "$T/map" || fail "map: $(cat "$T/map")"
# One that resolves is the data root `map` prints, as its detail says.
mkdir -p "$T/host/srv/real" "$T/host/var/lib" && ln -s /srv/real "$T/host/var/lib/dk2"
echo '{"data-root": "/var/lib/dk2"}' >"$T/host/etc/docker/daemon.json"
vp map --host-root "$T/host" >"$T/map" 2>&1 || fail "map: $(cat "$T/map")"
grep -q "data root /var/lib/dk2 resolves to /srv/real" "$T/map" && grep -q "^data root: /srv/real$" "$T/map" ||
  fail "map: the data root line does not agree with the detail: $(cat "$T/map")"
echo "ok: prepare_remap_off"
