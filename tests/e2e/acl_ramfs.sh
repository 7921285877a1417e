#!/usr/bin/env bash
# volprep --acl on a filesystem without POSIX ACLs (ramfs): the run stops before any change,
# exit 3, with a message that names the filesystem type and its mount point and suggests the
# ownership mode; owners, modes and ctimes stay as they were and no journal is written. The
# same when PATH is the mount point itself, with --dry-run and --json, and when the ramfs is
# mounted below an ext4 volume (also at a name with a space) and --cross-filesystems takes the
# walk into it.
source "$(dirname "$0")/lib.sh"
state() { find "$1" -printf '%P %U:%G %m %C@ %y\n' | LC_ALL=C sort; }

mkdir "$T/ram"
mount -t ramfs ramfs "$T/ram" || fail "cannot mount a ramfs"
on_exit "umount -l '$T/ram'"
[ "$(stat -f -c %T "$T/ram")" = ramfs ] || fail "test bug: $T/ram is $(stat -f -c %T "$T/ram"), not ramfs"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/ram")
setfattr -n system.posix_acl_access -v 0x02000000 "$vol/config.xml" 2>/dev/null &&
  fail "test bug: this ramfs takes ACLs"
state "$T/ram" >"$T/state.before"
sleep 0.05   # a change now would show in the ctimes

# refused CASE args...: exit 3, the message names ramfs, the mount point, the ownership mode.
refused() {
  local what=$1 rc=0 out err; shift
  out=$(vp "$@" "${MAP[@]}" 2>"$T/err") || rc=$?
  err=$(cat "$T/err")
  [ "$rc" -eq 3 ] || fail "$what: exit $rc, want 3; stdout: $out; stderr: $err"
  grep -q 'ramfs' <<<"$err" || fail "$what: the message does not name the filesystem type (ramfs): $err"
  grep -qF "mounted at $T/ram)" <<<"$err" || fail "$what: the message does not name the mount point $T/ram: $err"
  grep -qE -- "--as 1000(:1000)?, without --acl" <<<"$err" || fail "$what: the message does not suggest the ownership mode: $err"
  grep -q 'nothing changed' <<<"$err" || fail "$what: the message does not say that nothing changed: $err"
  [ -z "$out" ] || fail "$what: printed a plan for a run it refuses: $out"
  state "$T/ram" | diff "$T/state.before" - >"$T/state.diff" || fail "$what changed the ramfs: $(cat "$T/state.diff")"
  [ -z "$(ls -A "$VOLPREP_JOURNAL_DIR" 2>/dev/null)" ] || fail "$what wrote a journal: $(ls -A "$VOLPREP_JOURNAL_DIR")"
}
refused "--acl inside a ramfs" "$vol" --as 1000 --acl
refused "--acl on the mount point" "$T/ram" --as 1000 --acl
refused "--acl --dry-run" "$vol" --as 1000 --acl --dry-run
refused "--acl --check" "$vol" --as 1000 --acl --check
refused "--acl --json" "$vol" --as 1000:1000 --acl --acl-perms rX --json
refused "--acl on a file" "$vol/config.xml" --as 1000 --acl
not vp rollback --last "$vol" >/dev/null 2>&1   # no journal: nothing to undo
state "$T/ram" | diff "$T/state.before" - >/dev/null || fail "rollback --last changed the ramfs"

# The ownership mode works there, as the message says.
vp "$vol" --as 1000 "${MAP[@]}" >/dev/null || fail "the ownership mode on ramfs exited $?"
[ -z "$(find "$vol" ! -user 501000 -o ! -group 501000)" ] || fail "the ownership mode left entries on ramfs unchanged"

# inner_ramfs DIR NAME: a demo volume in $T/DIR with a ramfs mounted at its entry NAME and a
# file in it; $vol is the volume. --acl --cross-filesystems stops there before any change, on
# ext4 as well, and names the mount.
inner_ramfs() {
  mkdir "$T/$1"
  vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/$1")
  [ "$(stat -f -c %T "$vol")" != ramfs ] || fail "test bug: $T is on ramfs"
  mkdir "$vol/$2"
  mount -t ramfs ramfs "$vol/$2" || fail "cannot mount the ramfs at $vol/$2"
  on_exit "umount -l '$vol/$2'"
  echo cached >"$vol/$2/entry"
  state "$vol" >"$T/$1.before"
  getfattr -R -h -d -m - -e hex --absolute-names "$vol" 2>/dev/null >"$T/$1.xattr.before" || true
  sleep 0.05
  local rc=0 out
  out=$(vp "$vol" --as 1000 --acl --cross-filesystems "${MAP[@]}" 2>&1) || rc=$?
  [ "$rc" -eq 3 ] || fail "--acl --cross-filesystems into a ramfs at '$2': exit $rc, want 3 (stopped before any change): $out"
  grep -qF "mounted at $vol/$2)" <<<"$out" || fail "--cross-filesystems: the message does not name the ramfs mount '$vol/$2': $out"
  state "$vol" | diff "$T/$1.before" - >"$T/state.diff" ||
    fail "--acl --cross-filesystems changed entries before stopping at '$2': $(head -20 "$T/state.diff")"
  getfattr -R -h -d -m - -e hex --absolute-names "$vol" 2>/dev/null | diff "$T/$1.xattr.before" - >/dev/null ||
    fail "--acl --cross-filesystems wrote ACLs before stopping at '$2'"
}
# A ramfs below an ext4 volume: with --cross-filesystems the run stops; without it the walk
# stays on ext4 and the run works.
inner_ramfs mix cache
vp "$vol" --as 1000 --acl "${MAP[@]}" >/dev/null || fail "--acl without --cross-filesystems exited $? (the ramfs mount is skipped)"
getfacl -cp "$vol/config.xml" | grep -qx 'user:501000:rw-' || fail "--acl on the ext4 part granted nothing"
# The same where the mount point's name holds a space (mountinfo writes it as \040).
inner_ramfs spaced "my cache"
echo "ok: acl_ramfs"
