#!/usr/bin/env bash
# Rootless Docker, for real: Debian's dockerd run by a user with two subordinate ranges under
# Debian's RootlessKit (in a private mount and network namespace: --net=host then means this
# scenario's empty network namespace), an image from `docker import`, containers of that user.
# Proves with the kernel that --rootless gives the ids that dockerd's containers get
# (rootless_lib.bash: prepare in either range, --acl, shift, mount, map --pid).
if [ -z "${VOLPREP_PRIVATE_MOUNTS:-}" ]; then
  exec env VOLPREP_PRIVATE_MOUNTS=1 unshare --mount --net --propagation private -- bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rootless_lib.bash"
for tool in dockerd docker rootlesskit newuidmap; do
  command -v "$tool" >/dev/null || fail "$tool is missing (./dev test installs it)"
done
[ -x /bin/busybox ] || fail "/bin/busybox is missing (apt-get install busybox-static)"

rootless_user vp-rootless 4243
sock=$RL_RUN/docker.sock
as_user rootlesskit --net=host --copy-up=/etc --copy-up=/run --propagation=rslave --state-dir="$H/rk" \
  dockerd --iptables=false --ip6tables=false --ip-forward=false --bridge=none \
  --data-root "$H/data" --exec-root "$RL_RUN/docker" --pidfile "$RL_RUN/docker.pid" \
  -H "unix://$sock" >"$T/dockerd.log" 2>&1 &
dk() { as_user timeout 120 docker -H "unix://$sock" "$@"; }
for ((i = 0; i < 300; i++)); do
  dk version >/dev/null 2>&1 && break
  jobs -r %1 >/dev/null || fail "rootless dockerd exited: $(tail -5 "$T/dockerd.log")"
  sleep 0.1
done
dk info --format '{{.SecurityOptions}}' | grep -q rootless || fail "dockerd is not rootless: $(tail -5 "$T/dockerd.log")"

run() { local user=$1 tree=$2; shift 2
  dk run --rm --network none --user "$user" -v "$tree:/data" bb sh -c "$*"
}
running_pid() {
  dk run -d --name vp-sleeper --network none bb sleep 60 >/dev/null
  dk inspect --format '{{.State.Pid}}' vp-sleeper
}
rootless_image_tar | dk import - bb >/dev/null
rootless_image_tar | dk import --change 'USER 2000:2000' - bbu >/dev/null

rootless_checks --rootless
dk rm -f vp-sleeper >/dev/null

# fake_engine UID SOCKET: an engine served by UID that answers every request with an image
# whose USER is 2000:2000 and whose config holds an array nested a million deep.
fake_engine() {
  setpriv --reuid "$1" --regid "$1" --clear-groups -- /usr/bin/python3 - "$2" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
body = b'{"Config": {"User": "2000:2000", "Deep": ' + b"[" * 1000000 + b"]" * 1000000 + b"}}"
while True:
    c, _ = s.accept()
    try:
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    except OSError:  # volprep may close first
        pass
    c.close()
PY
  for ((i = 0; i < 50; i++)); do [ -S "$2" ] && return 0; sleep 0.1; done
  fail "the fake engine made no socket"
}
chmod 1777 "$T"
# Another user's engine is refused (exit 5), the rootless user's or not.
fake_engine 4244 "$T/other.sock"
rc=0
(cd "$H/proj" && DOCKER_HOST=unix://$T/other.sock vp compose --rootless "$RL_NAME" --compose-cli never -q) \
  >"$T/out" 2>&1 || rc=$?
[ "$rc" = 5 ] && grep -q "runs as uid 4244, not root nor the rootless engine's user" "$T/out" ||
  fail "another user's engine: exit $rc, $(cat "$T/out")"
# The user's own engine is heard, but its answers are untrusted input: nesting deeper than any
# the API has is dropped, not built (copying it would recurse a million frames deep).
fake_engine "$RL_UID" "$T/own.sock"
(cd "$H/proj" && DOCKER_HOST=unix://$T/own.sock vp compose --rootless "$RL_NAME" --compose-cli never -n) \
  >"$T/out" 2>&1 || fail "the user's engine with a deep answer: $(tail -3 "$T/out")"
grep -q "img: ./img -> /data (rw, own 2000:2000" "$T/out" || fail "the deep answer's USER: $(cat "$T/out")"
pkill -KILL -U 4244 || true
echo "PASS"
