#!/usr/bin/env bash
# An engine that never answers cannot hold `volprep compose` for good: each request waits at
# most 30 s, connect() and send() included. Two root-served sockets, asked side by side for an
# image's user (a service without `user:`):
#  - "silent" accepts the connection and reads nothing, answers nothing;
#  - "full" never accepts, and its listen queue (backlog 0) is full from the start, so
#    connect() itself blocks (before SO_SNDTIMEO it blocked forever).
# Each run must fail within 29-45 s saying which request was not answered in time, and
# change nothing.
source "$(dirname "$0")/lib.sh"
python3 - "$T/silent.sock" "$T/full.sock" <<'PY' &
import signal, socket, sys, time
silent = socket.socket(socket.AF_UNIX); silent.bind(sys.argv[1]); silent.listen(8)
full = socket.socket(socket.AF_UNIX); full.bind(sys.argv[2]); full.listen(0)
filler = socket.socket(socket.AF_UNIX); filler.connect(sys.argv[2])  # the one place in the queue
held = []
silent.settimeout(1)
end = time.monotonic() + 120
while time.monotonic() < end:
    try:
        held.append(silent.accept()[0])
    except socket.timeout:
        pass
PY
on_exit "kill $! 2>/dev/null"
for _ in $(seq 300); do [ -S "$T/silent.sock" ] && [ -S "$T/full.sock" ] && break; sleep 0.1; done
[ -S "$T/full.sock" ] || fail "the servers did not start"
mkdir -p "$T/p/d" && chown 1234:1234 "$T/p/d"
printf 'services:\n  app:\n    image: busybox\n    volumes: ["./d:/d"]\n' >"$T/p/compose.yaml"
run() { # run NAME: volprep compose against $T/NAME.sock, timed, in the background
  (
    cd "$T/p" || exit 1
    s=$(date +%s%N) rc=0
    DOCKER_HOST=unix://$T/$1.sock timeout 90 "$VOLPREP" compose "${MAP[@]}" --compose-cli never \
      >"$T/$1.out" 2>"$T/$1.err" || rc=$?
    echo "$rc $(( ($(date +%s%N) - s) / 1000000 ))" >"$T/$1.rc"
  ) &
}
run silent
run full
wait_for() { for _ in $(seq 500); do [ -s "$T/$1.rc" ] && return 0; sleep 0.2; done; fail "$1: no result"; }
for name in silent full; do
  wait_for "$name"
  read -r rc ms <"$T/$name.rc"
  [ "$rc" -ne 124 ] || fail "$name: volprep was still waiting after 90 s"
  [ "$rc" -ne 0 ] || fail "$name: an engine that never answers gave the image's user"
  grep -q "did not answer GET /images/busybox/json in time" "$T/$name.err" ||
    { cat "$T/$name.err" >&2; fail "$name: not said which request timed out"; }
  [ "$ms" -ge 29000 ] && [ "$ms" -le 45000 ] || fail "$name: gave up after $ms ms, want 29-45 s"
  echo "$name: exit $rc after $ms ms: $(grep -o 'did not answer.*' "$T/$name.err")"
done
[ "$(stat -c %u:%g "$T/p/d")" = 1234:1234 ] || fail "the bind source was changed"
echo ok
