#!/usr/bin/env bash
# volprep mount puts its mount where DST names it, or nowhere. DST's directory belongs to
# another user, who renames DST away while volprep is held just before it mounts (strace
# delays move_mount) and makes a directory of their own at its name: the mount, made on the
# directory volprep opened, would sit where that user chose while DST showed their own
# directory to a container. volprep refuses (exit 5), takes its mount away again and writes
# no record or unit.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/held_lib.bash"
export VOLPREP_MOUNT_DIR=$T/mounts
chmod 755 "$T"
mkdir -p "$T/src" "$T/home/dst" "$T/units"
chown 1000:1000 "$T/src"
chown 1001:1001 "$T/home" "$T/home/dst"   # DST's directory is another user's

held_volprep move_mount "$T/out" mount "$T/src" "$T/home/dst" --as 1000 "${MAP[@]}" --persist --unit-dir "$T/units"
wait_held || fail "volprep was never held in move_mount: $(cat "$T/out")"
setpriv --reuid 1001 --regid 1001 --clear-groups -- sh -c 'mv "$1/dst" "$1/elsewhere" && mkdir "$1/dst" && echo mine >"$1/dst/planted"' _ "$T/home"
rc=0; wait "$held_pid" || rc=$?
[ "$rc" -eq 5 ] && grep -q 'moved while it was being mounted' "$T/out" || fail "rc $rc: $(cat "$T/out")"
! grep -q " $T/" /proc/self/mountinfo || fail "a mount stayed: $(grep " $T/" /proc/self/mountinfo)"
[ -z "$(find "$T/units" -name '*volprep-*')" ] || fail "a unit stayed: $(ls -RA "$T/units")"
[ -z "$(ls -A "$VOLPREP_MOUNT_DIR" 2>/dev/null)" ] || fail "a record stayed: $(ls -A "$VOLPREP_MOUNT_DIR")"
echo "mount_dst_moved: DST renamed away during the mount: refused, nothing mounted anywhere"
