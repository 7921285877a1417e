#!/usr/bin/env bash
# volprep mount --persist that cannot finish leaves nothing of itself: a unit it wrote but
# could not link as systemctl enable would (here docker.service.requires is a file) is removed
# again, with no link, no temporary file and no mount, and the error says so (exit 3). A unit
# half there would still be wanted at boot by multi-user.target and mount what the user was
# told had failed.
source "$(dirname "$0")/lib.sh"
export VOLPREP_MOUNT_DIR=$T/mounts
mkdir -p "$T/src" "$T/dst" "$T/units"
chown 1000:1000 "$T/src"
: >"$T/units/docker.service.requires"   # where the second link goes: not a directory

rc=0; err=$(vp mount "$T/src" "$T/dst" --as 1000 "${MAP[@]}" --persist --unit-dir "$T/units" 2>&1) || rc=$?
[ "$rc" -eq 3 ] && grep -q 'cannot link .*docker.service.requires.*; nothing mounted' <<<"$err" || fail "rc $rc: $err"
left=$(cd "$T/units" && find . -name 'volprep-mount-*' -o -name '.volprep-*')
[ -z "$left" ] || fail "a refused --persist left $left"
! grep -q " $T/dst " /proc/self/mountinfo || fail "a refused --persist mounted"

# Once the links can be made, the same command works and umount --persist takes it all away.
rm "$T/units/docker.service.requires"
vp mount "$T/src" "$T/dst" --as 1000 "${MAP[@]}" --persist --unit-dir "$T/units" >/dev/null
[ "$(cd "$T/units" && find . -name 'volprep-mount-*' | wc -l)" -eq 3 ] || fail "want a unit and two links: $(ls -RA "$T/units")"
[ -z "$(find "$T/units" -name '.volprep-*')" ] || fail "a temporary file stayed: $(ls -RA "$T/units")"
vp umount "$T/dst" --persist --unit-dir "$T/units" >/dev/null
[ -z "$(find "$T/units" -name 'volprep-mount-*')" ] || fail "umount --persist left $(ls -RA "$T/units")"
echo "mount_persist_halfway: a --persist that cannot link its unit leaves no unit, link or mount"
