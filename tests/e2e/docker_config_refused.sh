#!/usr/bin/env bash
# A daemon.json the installed dockerd refuses: dockerd exits at once with its reason, and
# `volprep map` exits 3 with the same words instead of printing a map (issue 17 item 7). Each
# dockerd runs in private mount and network namespaces with HOSTROOT/etc over /etc, and stops
# at loading its configuration, before it writes anything.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/docker_lib.bash"
docker_require
prepare_hostroot "$T/hostroot"
mkdir -p "$T/hostroot/etc/docker" "$T/data"
version=$("$DOCKERD_BIN" --version | awk '{print $3}' | tr -d ,)

# dockerd's reason for refusing /etc/docker/NAME (its last log line, after the file name).
dockerd_refusal() { # dockerd_refusal NAME
  local rc=0 out
  out=$(timeout 30 unshare --mount --net --propagation private -- bash -c '
      mount --bind "$1" /etc || exit 99
      shift
      exec "$@"' _ "$T/hostroot/etc" "$DOCKERD_BIN" --config-file "/etc/docker/$1" \
    --data-root "$T/data" --exec-root "$T/exec" --pidfile "$T/dockerd.pid" \
    -H "unix://$T/docker.sock" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "dockerd accepted /etc/docker/$1"
  [ "$rc" -ne 124 ] || fail "dockerd did not exit on /etc/docker/$1"
  sed -n "s|.*unable to configure the Docker daemon with file /etc/docker/$1: ||p" <<<"$out" | tail -1
}

check() { # check NAME CONTENT
  local name=$1 want got rc=0
  printf '%b' "$2" >"$T/hostroot/etc/docker/$name"
  want=$(dockerd_refusal "$name")
  [ -n "$want" ] || fail "dockerd gave no reason for /etc/docker/$name"
  got=$(vp map --host-root "$T/hostroot" --config-file "/etc/docker/$name" \
    --docker-version "$version" 2>&1) || rc=$?
  [ "$rc" -eq 3 ] || fail "volprep map exited $rc on /etc/docker/$name: $got"
  case $got in
    *"unable to configure the Docker daemon with file $T/hostroot/etc/docker/$name: $want"*) ;;
    *) fail "volprep said
$got
dockerd said
$want" ;;
  esac
  echo "/etc/docker/$name: dockerd and volprep: $want"
}

check misspelt.json '{\n  "userns_remap": "default"\n}\n'
case $version in
  20.10.*)
    check empty.json ''
    check bom.json '\xef\xbb\xbf{"userns-remap": "default"}'
    ;;
esac
[ ! -e "$T/data/500000.500000" ] || fail "dockerd went on to create its data root"
echo "ok: volprep refuses what dockerd $version refuses in daemon.json"
