#!/usr/bin/env bash
# Under --host-root DIR, the engine's socket is DIR's var/run/docker.sock with var/run
# resolved inside DIR: Debian's var/run -> /run (an absolute symlink) leads to DIR/run, never
# to this machine's /run. A listener there (root's, closing at once) is the engine reached.
source "$(dirname "$0")/lib.sh"
H=$T/host
mkdir -p "$H/run" "$H/var" "$T/p/d"
ln -s /run "$H/var/run"
python3 - "$H/run/docker.sock" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(5); s.settimeout(30)
try:
    while True:
        c, _ = s.accept(); c.close()
except OSError:
    pass
PY
on_exit "kill $! 2>/dev/null"
for _ in $(seq 50); do [ -S "$H/run/docker.sock" ] && break; sleep 0.1; done
printf 'services:\n  app:\n    image: busybox\n    volumes: ["./d:/d"]\n' >"$T/p/compose.yaml"
rc=0
(cd "$T/p" && env -u DOCKER_HOST "$VOLPREP" compose "${MAP[@]}" --host-root "$H" --compose-cli never --dry-run) \
  >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -ne 0 ] || fail "an engine that closes at once gave images"
grep -q "/proc/self/fd/[0-9]*/docker.sock" "$T/err" || { cat "$T/err"; fail "not the socket below the host root"; }
! grep -qi "no such file\|$H/var/run" "$T/err" || { cat "$T/err"; fail "the socket was looked up outside the host root"; }
echo ok
