#!/usr/bin/env bash
# stop_dockerd finds what is left of a daemon by its mount namespace's number. The kernel gives
# a freed namespace's number to the next one made, so once a daemon's namespace is gone its
# number can name a daemon another scenario is starting (a CI run lost a dockerd that way).
# _pin_mntns keeps the namespace, and so its number, while stop_dockerd uses it. No dockerd
# needed: a process in a fresh mount namespace stands for one.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/docker_lib.bash"
command -v unshare >/dev/null || fail "needs unshare (apt-get install util-linux)"
DOCKER_DIR=$T/d && mkdir -p "$DOCKER_DIR"

fresh_ns() { unshare --mount readlink /proc/self/ns/mnt; }
pids=()
on_exit 'kill "${pids[@]}" 2>/dev/null'

# What the pin guards against: without it, the number comes back at once.
unshare --mount sleep 60 </dev/null >/dev/null 2>&1 &
pid=$!
pids+=("$pid")
until [ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ]; do sleep 0.01; done
unpinned=$(readlink "/proc/$pid/ns/mnt")
kill "$pid" && { wait "$pid" 2>/dev/null || true; }
reused=0
for _ in 1 2 3 4 5; do [ "$(fresh_ns)" = "$unpinned" ] && reused=1; done
[ "$reused" = 1 ] || echo "note: this kernel did not hand out $unpinned again; the check below still holds"

# With the pin, the number stays that namespace's after its last process is gone.
unshare --mount sleep 60 </dev/null >/dev/null 2>&1 &
pid=$!
pids+=("$pid")
until [ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ]; do sleep 0.01; done
_pin_mntns "$pid" || fail "_pin_mntns failed"
pinned=$_PINNED_MNTNS
[ "$pinned" = "$(readlink "/proc/$pid/ns/mnt")" ] || fail "pinned $pinned, the process is in $(readlink "/proc/$pid/ns/mnt")"
grep -Fqx "mntns=$pinned" "$DOCKER_DIR/state" && grep -q "^holder=" "$DOCKER_DIR/state" ||
  fail "state: $(cat "$DOCKER_DIR/state")"
kill "$pid" && { wait "$pid" 2>/dev/null || true; }
for _ in 1 2 3 4 5; do
  n=$(fresh_ns)
  [ "$n" != "$pinned" ] || fail "a new namespace got the pinned number $pinned"
done
# stop_dockerd lets it go. The daemon's pid is another process's by then (pid_max is 32768
# on small machines): stop_dockerd leaves that one alone, it is not in the daemon's namespace.
sleep 60 >/dev/null 2>&1 &
bystander=$!
pids+=("$bystander")
printf 'pid=%s\ncgroup_parent=volprep-e2e.%s.mntns\n' "$bystander" "${T##*.}" >>"$DOCKER_DIR/state"
holder=$(sed -n 's/^holder=//p' "$DOCKER_DIR/state")
pids+=("$holder")
stop_dockerd "$DOCKER_DIR" || fail "stop_dockerd"
kill -0 "$bystander" 2>/dev/null || fail "stop_dockerd killed pid $bystander, which its daemon no longer had"
for _ in $(seq 50); do kill -0 "$holder" 2>/dev/null || break; sleep 0.02; done
! kill -0 "$holder" 2>/dev/null || fail "stop_dockerd left the holder $holder running"
echo "ok: a stopped daemon's mount namespace number cannot name another's while it is cleaned up"
