#!/usr/bin/env bash
# Hostile host configuration under --host-root is a configuration error (exit 3) naming the
# file, never a hang, an abort or a change: a FIFO in place of daemon.json, subuid or passwd (or
# given as --config-file), 1e400 in daemon.json, and a subuid range onto host id 4294967295
# even with --force. Nothing under the host root is run.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

H=$T/host
mkdir -p "$H/etc/docker" "$H/usr/bin"
cp "$VOLPREP_SRC"/fixtures/host/etc/{passwd,group,subuid,subgid} "$H/etc/"
cp "$VOLPREP_SRC/fixtures/host/etc/docker/daemon.json" "$H/etc/docker/"
printf '#!/bin/sh\ntouch %s/ran\necho "Docker version 20.10.24, build 1"\n' "$T" >"$H/usr/bin/dockerd"
chmod 0755 "$H/usr/bin/dockerd"
mkdir -p "$T/vol/sub"
echo data >"$T/vol/sub/file"
before=$(find "$T/vol" -printf '%p %U:%G %m\n' | sort)

# Runs volprep ARGS with a time limit of its own; expects exit 3 and TEXT in what it says.
expect_config_error() { # expect_config_error TEXT ARGS...
  local text=$1 rc=0 out; shift
  out=$(timeout 20 "$VOLPREP" "$@" 2>&1) || rc=$?
  [ "$rc" -ne 124 ] || fail "volprep $* blocked (killed after 20 s)"
  [ "$rc" -eq 3 ] || fail "volprep $*: expected exit 3, got $rc: $out"
  grep -qF -- "$text" <<<"$out" || fail "volprep $*: no \"$text\" in: $out"
}

vp map --host-root "$H" >/dev/null  # the fixture itself is fine

for f in etc/docker/daemon.json etc/subuid etc/passwd; do
  mv "$H/$f" "$H/$f.real"
  mkfifo "$H/$f"
  expect_config_error "$H/$f is a FIFO, not a regular file" map --host-root "$H"
  expect_config_error "$H/$f is a FIFO" prepare "$T/vol" --as 0 --host-root "$H" --force
  rm "$H/$f"
  mv "$H/$f.real" "$H/$f"
done
# Without --host-root volprep looks for this machine's running dockerd first, and the docker
# scenarios ctest runs meanwhile have theirs: two make it "several dockerd processes are
# running" before daemon.json is read. So this case runs where only its own processes show, a
# pid namespace with its own /proc (alone). The premise, made in such a namespace: two of
# root's programs named dockerd; volprep run there says "several", alone it reads the FIFO.
mkfifo "$T/fifo.json"
printf '#!/bin/sh\nexec unshare --pid --fork --kill-child --mount-proc -- "$@"\n' >"$T/alone"
chmod 755 "$T/alone"
mkdir -m 755 "$T/fake" && cp -L /usr/bin/python3 "$T/fake/dockerd"
out=$("$T/alone" bash -c '
  for _ in 1 2; do "$1/fake/dockerd" -c "import time; time.sleep(60)" & done
  for p in $(jobs -p); do
    for _ in $(seq 300); do [ "$(cat "/proc/$p/comm")" = dockerd ] && break; sleep 0.1; done
  done
  timeout 20 "$2" map --config-file "$1/fifo.json" 2>&1
  echo "--"
  timeout 20 "$1/alone" "$2" map --config-file "$1/fifo.json" 2>&1
  kill $(jobs -p)' _ "$T" "$VOLPREP") || true
grep -q "^volprep: error: several dockerd processes are running" <<<"${out%%--*}" ||
  fail "two dockerd did not make volprep map say several: $out"
grep -qF "$T/fifo.json is a FIFO" <<<"${out#*--}" || fail "alone, volprep map did not read the FIFO: $out"
real=$VOLPREP
VOLPREP=$T/alone expect_config_error "$T/fifo.json is a FIFO" "$real" map --config-file "$T/fifo.json"

cp "$H/etc/docker/daemon.json" "$T/daemon.json.real"
printf '{\n  "userns-remap": "default",\n  "x": [1e400]\n}\n' >"$H/etc/docker/daemon.json"
expect_config_error "$H/etc/docker/daemon.json:3:" map --host-root "$H"
expect_config_error "number overflow parsing '1e400'" prepare "$T/vol" --as 0 --host-root "$H" --force
cp "$T/daemon.json.real" "$H/etc/docker/daemon.json"

echo 'dockremap:4294901760:65536' >"$H/etc/subuid"
expect_config_error "$H/etc/subuid:1: " prepare "$T/vol" --as 0 --host-root "$H" --force
expect_config_error "reach 4294967295" map --host-root "$H"

[ "$(find "$T/vol" -printf '%p %U:%G %m\n' | sort)" = "$before" ] || fail "the volume changed"
[ ! -e "$T/ran" ] || fail "volprep ran the host root's usr/bin/dockerd"
echo "ok: FIFOs, 1e400 and a map onto 4294967295 are configuration errors; nothing ran or changed"
