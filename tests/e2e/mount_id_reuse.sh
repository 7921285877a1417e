#!/usr/bin/env bash
# volprep umount and --list know volprep's mount by an id no later mount gets. The kernel
# hands a freed mount id (mountinfo's) to the next mount: volprep's mount at DST unmounted by
# hand leaves its record, and another idmapped mount made at DST after it (by another tool;
# here volprep with another record directory) gets the same mountinfo id. That mount is not
# volprep's: umount refuses it without --force (exit 5) and --list does not give it the old
# record's map.
source "$(dirname "$0")/lib.sh"
export VOLPREP_MOUNT_DIR=$T/mounts
mkdir -p "$T/src" "$T/other" "$T/dst"
chown 1000:1000 "$T/src"
mount_id() { awk -v d="$1" '$5 == d { id = $1 } END { print id }' /proc/self/mountinfo; }

vp mount "$T/src" "$T/dst" --as 1000 "${MAP[@]}" >/dev/null
first=$(mount_id "$T/dst")
umount "$T/dst"   # by hand: the record stays
VOLPREP_MOUNT_DIR=$T/other-records vp mount "$T/other" "$T/dst" --as 0 --map 0:0:65536 >/dev/null
[ "$(mount_id "$T/dst")" = "$first" ] || echo "note: the kernel gave the new mount another id ($(mount_id "$T/dst"), was $first)" >&2

list=$(vp mount --list)
grep -q "map not recorded" <<<"$list" && ! grep -q "uid map (disk id, shown as, count): 1000 501000 1" <<<"$list" ||
  fail "--list gives another mount the old record's map: $list"
expect_rc 5 vp umount "$T/dst" 2>/dev/null
grep -q " $T/dst " /proc/self/mountinfo || fail "umount removed a mount volprep did not make"
vp umount "$T/dst" --force >/dev/null
! grep -q " $T/dst " /proc/self/mountinfo || fail "umount --force left the mount"
echo "mount_id_reuse: a mount given the id of volprep's old mount is not taken for it"
