#!/usr/bin/env bash
# Rollback restores only the inode the run changed, not a new file that got its number: ext4
# hands a freed inode number to the next file made. After prepare, the container deletes
# root's file and writes its own in the same place, until the new one has the old number
# (bounded: 500 tries); rollback must leave it to the container, not give it to root, and say
# why (the journal holds each inode's birth time).
# The number comes back to the next file made in its block group, whoever makes it: on the
# shared /tmp a scenario running meanwhile could take it first and keep it (500 tries then fail),
# so the volume is on a small ext4 of this scenario's own. Where no loop device can be had (a
# container, a kernel without them) it stays on /tmp, as before, with that small risk.
source "$(dirname "$0")/lib.sh"
chmod 755 "$T"
mkdir "$T/fs"
meanwhile=$T/meanwhile
: >"$T/mount.err"
if loop_ext4 16M "$T/fs" 2>"$T/mount.err"; then
  on_exit 'umount "$T/fs"'
else
  echo "note: no ext4 on a loop device ($(cat "$T/mount.err")): the volume stays on $(df --output=target "$T" | tail -1), shared with other scenarios"
  meanwhile=  # a file made there now would take the number this scenario waits for
fi
vol=$T/fs/vol
mkdir -p "$vol"
echo root >"$vol/s" && chmod 644 "$vol/s"
chown 1000:1000 "$vol"
vp "$vol" --as 1000 "${MAP[@]}" --journal "$T/run.vpj" >/dev/null
old=$(stat -c %i "$vol/s")
# Another scenario stands for those ctest runs meanwhile: it makes a file in a directory of
# its own on /tmp right after the first delete (on /tmp, that file took the number).
[ -z "$meanwhile" ] || mkdir -m 1777 "$meanwhile"
setpriv --reuid 501000 --regid 501000 --clear-groups -- bash -c '
  for ((i = 0; i < 500; i++)); do
    rm -f "$1/s"
    [ "$i" != 0 ] || [ -z "$3" ] || : >"$3/file"
    echo mine >"$1/s"
    [ "$(stat -c %i "$1/s")" = "$2" ] && exit 0
    mv "$1/s" "$1/.keep$i"   # hold this number so the next file gets another
  done
  exit 1' _ "$vol" "$old" "$meanwhile" || fail "could not get inode $old again in 500 tries"
rc=0
vp rollback "$T/run.vpj" --no-journal >"$T/rb.out" 2>"$T/rb.err" || rc=$?
[ "$rc" -eq 0 ] || fail "rollback exited $rc: $(cat "$T/rb.err")"
[ "$(stat -c %u:%g "$vol/s")" = 501000:501000 ] ||
  fail "the container's new file (inode $old again) was given to $(stat -c %u:%g "$vol/s")"
grep -q "s: another file has this name now: left alone" "$T/rb.err" || fail "not reported: $(cat "$T/rb.err")"
echo "ok: rollback_inode_reuse"
