#!/usr/bin/env bash
# volprep umount checks that the mount at DST is volprep's, then unmounts what DST names. A
# mount stacked at DST between the two (here a tmpfs, while strace holds volprep at umount2)
# is what gets unmounted: volprep says so (exit 4), and keeps the record of its own mount,
# which stays, so that a second volprep umount removes it. It never says "unmounted" for a
# mount it did not remove.
source "$(dirname "$0")/lib.sh"
command -v strace >/dev/null || fail "strace is missing (./dev test installs it)"
export VOLPREP_MOUNT_DIR=$T/mounts
mkdir -p "$T/src" "$T/dst"
chown 1000:1000 "$T/src"
vp mount "$T/src" "$T/dst" --as 1000 "${MAP[@]}" >/dev/null

ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
  strace -f -o /dev/null -e trace=umount2 -e inject=umount2:delay_enter=3000000 \
  timeout 60 "$VOLPREP" umount "$T/dst" >"$T/out" 2>&1 &
pid=$!
# Held once volprep (strace's grandchild, under timeout) is stopped by strace (in umount2).
children() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }
held=
for ((i = 0; i < 300; i++)); do
  for p in $(children "$pid"); do
    for q in $(children "$p"); do
      [ "$(awk '{ print $3 }' "/proc/$q/stat" 2>/dev/null || true)" = t ] && held=1
    done
  done
  [ -n "$held" ] && break
  sleep 0.05
done
[ -n "$held" ] || fail "volprep was never held at umount2: $(cat "$T/out")"
mount -t tmpfs volprep-e2e-stacked "$T/dst"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 4 ] && grep -q 'another mount' "$T/out" && ! grep -q '^unmounted' "$T/out" || fail "rc $rc: $(cat "$T/out")"
grep " $T/dst " /proc/self/mountinfo | grep -q idmapped || fail "volprep's mount is gone?"
vp umount "$T/dst" >/dev/null || fail "the record of volprep's mount was lost"
! grep -q " $T/dst " /proc/self/mountinfo || fail "a mount stayed at DST"
echo "mount_umount_stacked: a mount stacked at DST during umount is named; volprep's stays recorded"
