#!/usr/bin/env bash
# Docker 20.10 reads subuid numbers with Go's strconv.Atoi: "+500000" and "065536" are 500000
# and 65536, and dockerd starts with that map; volprep map gives the map the daemon's
# containers get (issue 17 item 3).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/docker_lib.bash"
docker_require
case $("$DOCKERD_BIN" --version) in
  *" 20.10."* | *" 2[1-7]."*) ;;
  *) echo "skip: this dockerd reads subuid numbers leniently"; exit 0 ;;
esac
prepare_hostroot "$T/hostroot" dockremap +500000:065536 0500000:+65536
start_dockerd "$T/hostroot" --userns-remap=default
make_busybox_image volprep-busybox
maps=$(docker_cmd run --rm --network none volprep-busybox \
  sh -c 'cat /proc/self/uid_map && echo -- && cat /proc/self/gid_map' | proc_map_lines | paste -sd' ')
[ "$maps" = "0:500000:65536 0:500000:65536" ] || fail "the container has maps $maps"
json=$(vp map --host-root "$T/hostroot" --dockerd-pid "$DOCKERD_PID" --json)
got="$(json_map_lines uid_map <<<"$json") $(json_map_lines gid_map <<<"$json")"
[ "$got" = "$maps" ] || fail "volprep gave $got, the container has $maps: $json"
[ "$(jq -r .data_root <<<"$json")" = "$DOCKER_DATA_ROOT/500000.500000" ] || fail "data_root in $json"
stop_dockerd || fail "dockerd did not stop cleanly"
echo "ok: volprep reads +500000 and 065536 as dockerd $("$DOCKERD_BIN" --version | awk '{print $3}' | tr -d ,) does"
