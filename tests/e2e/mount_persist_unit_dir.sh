#!/usr/bin/env bash
# volprep umount finds the unit `mount --persist` wrote wherever its --unit-dir put it (a
# relative one too): the mount's record says where. Without --persist, umount warns that the
# unit makes the mount again at boot, naming its real path and the command that removes it;
# with --persist, and no --unit-dir or another one, it removes the unit and its links. No test
# here reaches the host's /etc/systemd: every --unit-dir is below $T.
source "$(dirname "$0")/lib.sh"
export VOLPREP_MOUNT_DIR=$T/mounts   # the records of volprep's mounts, not the host's /run
chmod 755 "$T"
mkdir -p "$T/src" "$T/dst" "$T/units" "$T/elsewhere"
cd "$T"

units_left() { find "$T/units" -name 'volprep-mount-*' | LC_ALL=C sort; }

# umount without --persist: the unit stays, and is warned of where it is.
vp mount src dst --as 1000 "${MAP[@]}" --persist --unit-dir units >/dev/null
name=$(cd units && ls volprep-mount-*.service)
[ "$(units_left | wc -l)" -eq 3 ] || fail "mount --persist wrote $(units_left)"
vp umount dst >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "umount failed"; }
grep -qF "unmounted $T/dst" "$T/out" || fail "umount said: $(cat "$T/out")"
grep -qF "$T/units/$name makes this mount again at boot: volprep umount --persist $T/dst --unit-dir $T/units removes it" \
  "$T/err" || { cat "$T/err"; fail "umount did not warn of the unit where mount --persist wrote it"; }
[ "$(units_left | wc -l)" -eq 3 ] || fail "umount without --persist removed $(units_left)"
# The command it named removes it (the mount gone, its record with it).
vp umount --persist dst --unit-dir "$T/units" >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "umount --persist failed"; }
[ -z "$(units_left)" ] || fail "umount --persist --unit-dir left $(units_left)"

# umount --persist with another --unit-dir: the record says where the unit is.
vp mount src dst --as 1000 "${MAP[@]}" --persist --unit-dir units >/dev/null
vp umount dst --persist --unit-dir "$T/elsewhere" >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "umount --persist failed"; }
grep -qF "removed $T/units/volprep-mount-" "$T/out" || { cat "$T/out" "$T/err"; fail "umount --persist did not say it removed the unit"; }
grep -qF "unmounted $T/dst" "$T/out" || fail "umount --persist did not unmount: $(cat "$T/out")"
[ -z "$(units_left)" ] || fail "umount --persist left $(units_left)"
[ -z "$(ls -A "$T/elsewhere")" ] || fail "umount --persist wrote into $T/elsewhere"
! grep -q " $T/dst " /proc/self/mountinfo || fail "the mount stayed"

# The same directory given two ways (./units/ to mount, the absolute path to umount) is one:
# the unit is warned of once.
vp mount src dst --as 1000 "${MAP[@]}" --persist --unit-dir ./units/ >/dev/null
vp umount dst --unit-dir "$T/units" >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "umount failed"; }
[ "$(grep -c "makes this mount again at boot" "$T/err")" -eq 1 ] || { cat "$T/err"; fail "the unit not warned of once"; }
vp umount --persist dst --unit-dir "$T/units" >/dev/null 2>&1 || fail "umount --persist failed"
echo ok
