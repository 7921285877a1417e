#!/usr/bin/env bash
# volprep umount checks that the mount at DST is volprep's, then unmounts what DST names. A
# mount stacked at DST between the two (here a tmpfs, while strace holds volprep at umount2)
# is what gets unmounted: volprep says so (exit 4), and keeps the record of its own mount,
# which stays, so that a second volprep umount removes it. It never says "unmounted" for a
# mount it did not remove.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/held_lib.bash"
export VOLPREP_MOUNT_DIR=$T/mounts
mkdir -p "$T/src" "$T/dst"
chown 1000:1000 "$T/src"
vp mount "$T/src" "$T/dst" --as 1000 "${MAP[@]}" >/dev/null

held_volprep umount2 "$T/out" umount "$T/dst"
wait_held || fail "volprep was never held in umount2: $(cat "$T/out")"
mount -t tmpfs volprep-e2e-stacked "$T/dst"
rc=0; wait "$held_pid" || rc=$?
[ "$rc" -eq 4 ] && grep -q 'another mount' "$T/out" && ! grep -q '^unmounted' "$T/out" || fail "rc $rc: $(cat "$T/out")"
grep " $T/dst " /proc/self/mountinfo | grep -q idmapped || fail "volprep's mount is gone?"
vp umount "$T/dst" >/dev/null || fail "the record of volprep's mount was lost"
! grep -q " $T/dst " /proc/self/mountinfo || fail "a mount stayed at DST"
echo "mount_umount_stacked: a mount stacked at DST during umount is named; volprep's stays recorded"
