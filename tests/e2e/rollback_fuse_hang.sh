#!/usr/bin/env bash
# A silent FUSE mount made by the tree's owner after the run, over a directory and over a
# file of the volume, does not hang rollback: it reaches neither through a mount (unless
# --cross-filesystems), reports what lies there as left alone, restores the rest and sends
# the server no request.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fuse_lib.bash"
mkdir -p "$VOLPREP_JOURNAL_DIR"
vol=$T/vol
mkdir -p "$vol/a" "$vol/b"
echo f >"$vol/a/f"; echo g >"$vol/a/g"; echo h >"$vol/b/h"
chown -R 1000:1000 "$vol"
vp "$vol" --as 1000 "${MAP[@]}" --journal "$T/run.vpj" >/dev/null
mount_silent "$vol/b:dir" "$vol/a/f:file"

watched rollback rollback "$T/run.vpj" --no-journal
[ "$rc" -eq 0 ] || fail "rollback exited $rc: $(cat "$T/rollback.err")"
grep -q '^restored 3, already as before 0, changed since the run 0, missing 3, failed 0' "$T/rollback.out" ||
  fail "rollback summary: $(cat "$T/rollback.out" "$T/rollback.err")"
grep -q "vol/b: a mount point now: left alone (--cross-filesystems enters it)" "$T/rollback.err" ||
  fail "the mounted directory is not reported: $(cat "$T/rollback.err")"
grep -q "b/h: its directory is gone, or reached through a symlink or a mount now: left alone" "$T/rollback.err" ||
  fail "the entry under the mounted directory is not reported: $(cat "$T/rollback.err")"
! grep -q 'request' "$T/server.err" || fail "rollback sent the silent server requests: $(cat "$T/server.err")"
[ "$(stat -c %u:%g "$vol/a/g" "$vol/a" | sort -u)" = 1000:1000 ] || fail "the rest was not restored"
echo "ok: rollback_fuse_hang"
