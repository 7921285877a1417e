#!/usr/bin/env bash
# A file planned, pinned and journaled by `volprep shift`, then replaced by its owner (a link
# renamed over it) before its change: the inode the run planned is gone from the tree. On
# ext4 the pin still reaches it and it is shifted; on NFS or a path-based FUSE filesystem
# (VOLPREP_E2E_FUSE: bench/slowfs.c, libfuse's high-level API, as sshfs and bindfs) the server
# answers ESTALE for it. Either way the run ends well (exit 0): an entry gone from the tree is
# vanished, not failed; and a second shift says "already shifted" (exit 1), where a run
# that read as failed made the next one "finish" it. The file linked in is left alone.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/race_lib.bash"
chmod 755 "$T"
HOLD=1
MAP=(--map 0:1000000:1000000000)

attempt() { # attempt K: the case with its hold K times as long
  HOLD=$(($1 * 1))
  rm -rf "$T/vol" "$T/j" "$T/other" "$T/held"
  mkdir -p "$T/vol/own" && echo data >"$T/vol/own/f" && echo other >"$T/other"
  chown -R 1000:1000 "$T/vol/own" "$T/other" && chmod 777 "$T/vol/own"
  held "$T/held" shift "$T/vol" "${MAP[@]}" --journal-dir "$T/j"
  wait_planned "$T/j" "$T/vol/own/f"  # planned, pinned, journaled, not yet changed
  late=0
  act "$HOLD" bash -c 'as_user() { setpriv --reuid "$1" --regid "$1" --clear-groups -- "${@:2}"; }
    as_user 1000 ln "$1/other" "$1/vol/own/.l" && as_user 1000 mv -f "$1/vol/own/.l" "$1/vol/own/f"' _ "$T"
  rc=0
  wait "$held_pid" || rc=$?
}
retry_held "the replacement of own/f" attempt
[ "$rc" = 0 ] || { cat "$T/held"; fail "shift exited $rc after a planned file was replaced (want 0: it vanished)"; }
grep -q 'failed 0' "$T/held" || { cat "$T/held"; fail "the replaced file counted as failed"; }
[ "$(stat -c %u "$T/other")" = 1000 ] || fail "the file linked in over own/f was shifted: $(stat -c %u "$T/other")"
rc=0
vp shift "$T/vol" "${MAP[@]}" --journal-dir "$T/j" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || { cat "$T/err"; fail "a second shift exited $rc (want 1: already shifted)"; }
grep -q 'already shifted' "$T/err" || { cat "$T/err"; fail "a second shift is not refused as already shifted"; }
echo "ok: shift_pin_replaced"
