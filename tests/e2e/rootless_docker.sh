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
engine() { as_user timeout 120 docker -H "unix://$sock" "$@"; }
for ((i = 0; i < 300; i++)); do
  engine version >/dev/null 2>&1 && break
  jobs -r %1 >/dev/null || fail "rootless dockerd exited: $(tail -5 "$T/dockerd.log")"
  sleep 0.1
done
engine info --format '{{.SecurityOptions}}' | grep -q rootless || fail "dockerd is not rootless: $(tail -5 "$T/dockerd.log")"

rootless_images

rootless_checks --rootless
engine rm -f vp-sleeper >/dev/null

# fake_engine UID SOCKET MODE [ARG]: an engine served by UID (logging what it is asked to
# $SOCKET.log). MODE deep: every answer an image whose USER is 2000:2000, with an array nested
# 400,000 deep in its config. MODE swap: an image whose USER is app (so volprep creates a
# container to read /etc/passwd); once it has answered the create, it renames a symlink to
# ARG over its own socket's name, then answers the rest itself.
cat >"$T/fake_engine.py" <<'PY'
import os, socket, sys
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path); s.listen(8)
log = open(path + ".log", "a", buffering=1)
deep = b'{"Config": {"User": "2000:2000", "Deep": ' + b"[" * 400000 + b"]" * 400000 + b"}}"
def answer(req):
    if mode == "deep":
        return b"200 OK", deep
    if req.startswith(b"GET /images/"):
        return b"200 OK", b'{"Config": {"User": "app"}}'
    if req.startswith(b"POST /containers/create"):
        return b"201 Created", b'{"Id": "' + b"a" * 64 + b'"}'
    if req.startswith(b"DELETE "):
        return b"204 No Content", b""
    return b"404 Not Found", b'{"message": "no such file"}'
while True:
    c, _ = s.accept()
    try:
        req = c.recv(65536)
        log.write(req.split(b"\r\n")[0].decode() + "\n")
        status, body = answer(req)
        c.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        if mode == "swap" and req.startswith(b"POST /containers/create"):
            os.symlink(sys.argv[3], path + ".new")
            os.rename(path + ".new", path)
    except OSError:  # volprep may close first
        pass
    c.close()
PY
fake_engine() {
  setpriv --reuid "$1" --regid "$1" --clear-groups -- /usr/bin/python3 "$T/fake_engine.py" "${@:2}" &
  local pid=$!
  on_exit "kill -KILL $pid 2>/dev/null"
  for ((i = 0; i < 50; i++)); do [ -S "$2" ] && return 0; sleep 0.1; done
  fail "the fake engine made no socket"
}
compose_via() { # compose_via SOCKET ARGS...: volprep compose of the project through SOCKET
  (cd "$H/proj" && DOCKER_HOST=unix://$1 vp compose --rootless "$RL_NAME" --compose-cli never "${@:2}")
}
chmod 1777 "$T"
# Another user's engine is refused (exit 5), the rootless user's or not.
getent passwd 4244 >/dev/null && fail "uid 4244 is taken: pick another"
fake_engine 4244 "$T/other.sock" deep
rc=0
compose_via "$T/other.sock" -q >"$T/out" 2>&1 || rc=$?
[ "$rc" = 5 ] && grep -q "runs as uid 4244, not root nor the rootless engine's user" "$T/out" ||
  fail "another user's engine: exit $rc, $(cat "$T/out")"
# The user's own engine is heard, but its answers are untrusted input: nesting deeper than any
# the API has is dropped, not built (copying it would recurse 400,000 frames deep).
fake_engine "$RL_UID" "$T/own.sock" deep
compose_via "$T/own.sock" -n >"$T/out" 2>&1 || fail "the user's engine with a deep answer: $(tail -3 "$T/out")"
grep -q "img: ./img -> /data (rw, own 2000:2000" "$T/out" || fail "the deep answer's USER: $(cat "$T/out")"
# Its socket's name swapped, between requests, for a symlink to root's engine: volprep keeps
# talking to the socket it pinned, and root's engine is asked nothing (a container id of the
# user's choosing would have been force-removed there).
fake_engine 0 "$T/root.sock" deep
fake_engine "$RL_UID" "$RL_RUN/swap.sock" swap "$T/root.sock"
rc=0
compose_via "$RL_RUN/swap.sock" -n >"$T/out" 2>&1 || rc=$?
[ ! -s "$T/root.sock.log" ] || fail "root's engine was asked: $(cat "$T/root.sock.log")"
grep -q "^DELETE /containers/a\{64\}" "$RL_RUN/swap.sock.log" ||
  fail "the swapped engine's conversation: exit $rc, $(cat "$T/out"; cat "$RL_RUN/swap.sock.log")"
echo "PASS"
