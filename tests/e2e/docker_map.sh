#!/usr/bin/env bash
# volprep map against a real `dockerd --userns-remap=default`: the maps it computes from the
# daemon's command line (and, in a second run, from its --config-file) must be the maps the
# kernel gives the daemon's containers, and the data root the directory dockerd creates.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/docker_lib.bash"
docker_require
before=$(host_fingerprint)

# Expects `volprep map ... --json` (stdin) to give the maps in files UID_MAP and GID_MAP
# (/proc/PID/uid_map text).
expect_maps() { # expect_maps WHAT UID_MAP GID_MAP < json
  local what=$1 json got want k
  json=$(cat)
  for k in uid_map gid_map; do
    [ $k = uid_map ] && want=$(proc_map_lines <"$2") || want=$(proc_map_lines <"$3")
    got=$(json_map_lines $k <<<"$json")
    [ -n "$want" ] || fail "$what: the container shows no $k"
    [ "$got" = "$want" ] || fail "$what: $k is
$got
but the container has
$want
(volprep said: $json)"
  done
  [ "$(jq '.warnings | length' <<<"$json")" -eq 0 ] || fail "$what: warnings: $json"
}

# Runs a container, saves its uid_map and gid_map as DIR/uid_map and DIR/gid_map; then starts
# one that stays, and checks `volprep map --pid` on it against the same files.
check_against_daemon() { # check_against_daemon DIR
  local dir=$1 cid cpid
  mkdir -p "$dir"
  docker_cmd run --rm --network none volprep-busybox \
    sh -c 'cat /proc/self/uid_map && echo -- && cat /proc/self/gid_map' >"$dir/maps"
  sed '/^--$/,$d' "$dir/maps" >"$dir/uid_map"
  sed '1,/^--$/d' "$dir/maps" >"$dir/gid_map"
  cid=$(docker_cmd run -d --network none volprep-busybox sleep 1000)
  cpid=$(docker_cmd inspect -f '{{.State.Pid}}' "$cid")
  [ "$cpid" -gt 0 ] 2>/dev/null || fail "docker inspect gave pid \"$cpid\" for $cid"
  [ "$(cat "/proc/$cpid/uid_map")" = "$(cat "$dir/uid_map")" ] || fail "containers of one daemon differ in uid_map"
  "$VOLPREP" map --pid "$cpid" --json | expect_maps "volprep map --pid $cpid" "$dir/uid_map" "$dir/gid_map"
  # Left running: stop_dockerd must remove it.
  echo "container uid_map $(proc_map_lines <"$dir/uid_map" | paste -sd' '), gid_map $(proc_map_lines <"$dir/gid_map" | paste -sd' ')"
}

# 1. --userns-remap=default on the command line; dockremap:500000:65536 in subuid and subgid.
prepare_hostroot "$T/hostroot"
start_dockerd "$T/hostroot" --userns-remap=default
make_busybox_image volprep-busybox
check_against_daemon "$T/run1"
grep -q '^         0     500000      65536$' "$T/run1/uid_map" ||
  fail "unexpected container uid_map: $(cat "$T/run1/uid_map")"
json=$("$VOLPREP" map --host-root "$T/hostroot" --dockerd-pid "$DOCKERD_PID" --json)
expect_maps "volprep map --dockerd-pid (flag)" "$T/run1/uid_map" "$T/run1/gid_map" <<<"$json"
want_root=$DOCKER_DATA_ROOT/500000.500000
[ "$(jq -r .data_root <<<"$json")" = "$want_root" ] || fail "data_root: want $want_root in $json"
[ -d "$want_root" ] || fail "dockerd did not create $want_root"
[ "$(stat -c %g "$want_root")" = 500000 ] || fail "$want_root is not group 500000"
# Docker 20.10's strict subid rules, from the daemon's own binary (/proc/PID/exe).
"$VOLPREP" map --host-root "$T/hostroot" --dockerd-pid "$DOCKERD_PID" | grep -q '^  subid rules: .*from /proc/'"$DOCKERD_PID"'/exe --version' ||
  fail "volprep map did not take the subid rules from /proc/$DOCKERD_PID/exe"
# Container ids translate through the same map.
[ "$("$VOLPREP" map --host-root "$T/hostroot" --dockerd-pid "$DOCKERD_PID" 0 1000:1001)" = \
  "500000:500000
501000:501001" ] || fail "volprep map 0 1000:1001 did not translate through 500000"
stop_dockerd || fail "the first dockerd did not stop cleanly"

# 2. userns-remap and data-root in a --config-file (read under --host-root); subuid with two
# ranges, listed out of order, and a subgid range of its own.
prepare_hostroot "$T/hostroot" dockremap 700000:1000,500000:65536 600000:65536
mkdir -p "$T/hostroot/etc/docker"
jq -n --arg d "$T/data-json" '{"userns-remap": "default", "data-root": $d}' \
  >"$T/hostroot/etc/docker/volprep-e2e.json"
start_dockerd "$T/hostroot" --config-file /etc/docker/volprep-e2e.json
make_busybox_image volprep-busybox
check_against_daemon "$T/run2"
json=$("$VOLPREP" map --host-root "$T/hostroot" --dockerd-pid "$DOCKERD_PID" --json)
expect_maps "volprep map --dockerd-pid (config file)" "$T/run2/uid_map" "$T/run2/gid_map" <<<"$json"
uid0=$(awk '$1 == 0 { print $2 }' "$T/run2/uid_map")
gid0=$(awk '$1 == 0 { print $2 }' "$T/run2/gid_map")
want_root=$T/data-json/$uid0.$gid0
[ "$(jq -r .data_root <<<"$json")" = "$want_root" ] || fail "data_root: want $want_root in $json"
[ -d "$want_root" ] || fail "dockerd did not create $want_root"
stop_dockerd || fail "the second dockerd did not stop cleanly"

# Nothing left: no process, no mount under $T, the host's files as they were.
for d in "$T"/dockerd.*; do
  [ -f "$d/state.stopped" ] || fail "$d was not stopped"
done
! grep -q " $T" /proc/self/mountinfo || fail "mounts left under $T: $(grep " $T" /proc/self/mountinfo)"
[ "$(host_fingerprint)" = "$before" ] || fail "host files changed:
$(diff <(echo "$before") <(host_fingerprint))"
echo "ok: volprep map agrees with dockerd $(dockerd --version | awk '{print $3}' | tr -d ,) under userns-remap"
