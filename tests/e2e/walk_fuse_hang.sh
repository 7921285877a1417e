#!/usr/bin/env bash
# A FUSE mount inside the tree whose server never answers (the tree's owner can make one with
# fusermount3) does not hang prepare, --dry-run or check: the walk never sends it a request,
# reports the mount point (a directory and a file) as left alone, and prepares the rest.
# A request the server has read is waited for even through SIGKILL, so each run is watched
# here and, if still running after 30 s, the connection is aborted to free it (and it fails).
source "$(dirname "$0")/lib.sh"
mkdir -p "$VOLPREP_JOURNAL_DIR"
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
[ -c /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -c /dev/fuse ] || fail "no /dev/fuse here"

tree=$T/tree
mkdir -p "$tree/sub/fusedir" "$tree/other"
echo a >"$tree/a"; echo b >"$tree/sub/b"; echo f >"$tree/sub/fusefile"; echo c >"$tree/other/c"
chown -R 1000:1000 "$tree"

# abort_fuse: ends every request of the silent mounts (their waiters get ENOTCONN), kills the
# server, and unmounts.
server=
abort_fuse() {
  local dev
  for m in "$tree/sub/fusedir" "$tree/sub/fusefile"; do
    # mountinfo, not stat: a stat of the mount point would wait on the server too.
    dev=$(awk -v m="$m" '$5 == m { split($3, d, ":"); print d[2] }' /proc/self/mountinfo)
    [ -n "$dev" ] && [ -w "/sys/fs/fuse/connections/$dev/abort" ] && echo 1 >"/sys/fs/fuse/connections/$dev/abort"
  done
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
  server=
  umount -l "$tree/sub/fusedir" 2>/dev/null || true
  umount -l "$tree/sub/fusefile" 2>/dev/null || true
}
on_exit abort_fuse

"$PY" "$VOLPREP_SRC/tests/e2e/fuse_silent.py" "$T/ready" "$tree/sub/fusedir:dir" "$tree/sub/fusefile:file" \
  2>"$T/server.err" &
server=$!
for _ in $(seq 100); do [ -s "$T/ready" ] && break; kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
[ -s "$T/ready" ] || fail "the silent FUSE server did not start: $(cat "$T/server.err")"
n_mounts=$(awk -v t="$tree/sub/" 'index($5, t) == 1 && index($0, " - fuse ")' /proc/self/mountinfo | wc -l)
[ "$n_mounts" = 2 ] || fail "want 2 fuse mounts under the tree, see $n_mounts"

# watched NAME args...: runs volprep in the background; fails (after freeing it) if it is still
# running after 30 s. Sets $rc.
watched() {
  local name=$1 pid i; shift
  "$VOLPREP" "$@" >"$T/$name.out" 2>"$T/$name.err" &
  pid=$!
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "volprep $name still running after 30 s; server: $(tail -3 "$T/server.err")" >&2
    abort_fuse
    wait "$pid" 2>/dev/null || true
    fail "volprep $name hung on the silent FUSE mount"
  fi
  rc=0; wait "$pid" || rc=$?
}

watched dry-run "$tree" --as 1000 "${MAP[@]}" --dry-run
[ "$rc" = 0 ] || fail "--dry-run exited $rc: $(cat "$T/dry-run.err")"
grep -q "$tree/sub/fusedir: mount point" "$T/dry-run.err" || fail "--dry-run does not report the FUSE directory mount: $(cat "$T/dry-run.err")"
grep -q "$tree/sub/fusefile: mount point" "$T/dry-run.err" || fail "--dry-run does not report the FUSE file mount: $(cat "$T/dry-run.err")"
grep -q '^scanned 8, to change 6, unchanged 0, skipped 2 (2 mount point)' "$T/dry-run.out" ||
  fail "--dry-run summary: $(grep scanned "$T/dry-run.out")"

watched check check "$tree" --as 1000 "${MAP[@]}"
case $rc in 0|1) ;; *) fail "check exited $rc: $(cat "$T/check.err")" ;; esac
grep -q '^checked 6,' "$T/check.out" || fail "check summary: $(cat "$T/check.out")"

watched prepare "$tree" --as 1000 "${MAP[@]}"
[ "$rc" = 0 ] || fail "prepare exited $rc: $(cat "$T/prepare.err")"
grep -q "$tree/sub/fusedir: mount point" "$T/prepare.err" || fail "prepare does not report the FUSE mount: $(cat "$T/prepare.err")"
grep -q '^scanned 8, changed 6, unchanged 0, skipped 2 (2 mount point), failed 0' "$T/prepare.out" ||
  fail "prepare summary: $(grep scanned "$T/prepare.out")"
# (find would stat the mount points, and wait on the server like anyone else)
owners=$(cd "$tree" && stat -c %u:%g . a sub sub/b other other/c | sort -u)
[ "$owners" = 501000:501000 ] || fail "prepare left some entries unchanged: $owners"
! grep -q 'request' "$T/server.err" || fail "volprep sent the silent server requests: $(cat "$T/server.err")"

# What lies under the mount points is the tree's too, and untouched.
abort_fuse
[ "$(stat -c %u:%g "$tree/sub/fusedir" "$tree/sub/fusefile" | sort -u)" = 1000:1000 ] ||
  fail "the directories under the mounts changed: $(stat -c '%u:%g %n' "$tree/sub/fusedir" "$tree/sub/fusefile")"
echo "ok: walk_fuse_hang"
