# Shared by the silent-FUSE scenarios (source it after lib.sh): mounts whose server answers
# INIT and then nothing (fuse_silent.py), the hostile mount a tree's owner can make with
# fusermount3. A request the server has read is waited for even through SIGKILL, so volprep is
# watched and, if still running after 30 s, the connections are aborted to free it.
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
[ -c /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -c /dev/fuse ] || fail "no /dev/fuse here"
_fuse_server= _fuse_mounts=()

# abort_fuse: ends every request of the silent mounts (their waiters get ENOTCONN), kills the
# server, and unmounts.
abort_fuse() {
  local m dev
  for m in "${_fuse_mounts[@]}"; do
    # mountinfo, not stat: a stat of the mount point would wait on the server too.
    dev=$(awk -v m="$m" '$5 == m { split($3, d, ":"); print d[2] }' /proc/self/mountinfo)
    [ -n "$dev" ] && [ -w "/sys/fs/fuse/connections/$dev/abort" ] && echo 1 >"/sys/fs/fuse/connections/$dev/abort"
  done
  if [ -n "$_fuse_server" ]; then kill "$_fuse_server" 2>/dev/null; wait "$_fuse_server" 2>/dev/null || true; fi
  _fuse_server=
  for m in "${_fuse_mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
on_exit abort_fuse

# mount_silent MOUNTPOINT:dir|file[:UID]...: one server for all of them (UID: the user it
# serves, as fusermount3 run by that user would mount it); its stderr in $T/server.err.
mount_silent() {
  local arg
  for arg in "$@"; do _fuse_mounts+=("${arg%%:*}"); done
  rm -f "$T/ready"  # a server of an earlier call wrote it
  "$PY" "$VOLPREP_SRC/tests/e2e/fuse_silent.py" "$T/ready" "$@" 2>"$T/server.err" &
  _fuse_server=$!
  for _ in $(seq 100); do [ -s "$T/ready" ] && break; kill -0 "$_fuse_server" 2>/dev/null || break; sleep 0.1; done
  [ -s "$T/ready" ] || fail "the silent FUSE server did not start: $(cat "$T/server.err")"
}

# mount_silent_in_hold HOLD MOUNTPOINT...: mount_silent while strace holds volprep HOLD s
# ($held_pid; held_lib's $traced_at); where the mount was made after the hold, $late is set
# and the run freed (abort_fuse) and waited for.
mount_silent_in_hold() {
  local hold=$1; shift
  mount_silent "$@"
  late=0
  in_hold "$hold" && return
  late=1
  abort_fuse
  wait "$held_pid" || true
}

# watch_pid NAME PID: waits for PID at most 30 s; fails (after freeing it) if it is still
# running then. Sets $rc to its exit code.
watch_pid() {
  local name=$1 pid=$2 i
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "volprep $name still running after 30 s; server: $(tail -3 "$T/server.err")" >&2
    abort_fuse
    wait "$pid" 2>/dev/null || true
    fail "volprep $name hung on the silent FUSE mount"
  fi
  rc=0; wait "$pid" || rc=$?
}

# watched NAME args...: volprep in the background, its output in $T/NAME.out and .err, watched.
watched() {
  local name=$1; shift
  "$VOLPREP" "$@" >"$T/$name.out" 2>"$T/$name.err" &
  watch_pid "$name" $!
}
