#!/usr/bin/env bash
# Rollback restores only the inode the run changed, not a new file that got its number: ext4
# hands a freed inode number to the next file made. After prepare, the container deletes
# root's file and writes its own in the same place, until the new one has the old number
# (bounded: 500 tries); rollback must leave it to the container, not give it to root, and say
# why (the journal holds each inode's birth time).
source "$(dirname "$0")/lib.sh"
chmod 755 "$T"
vol=$T/vol
mkdir -p "$vol"
echo root >"$vol/s" && chmod 644 "$vol/s"
chown 1000:1000 "$vol"
vp "$vol" --as 1000 "${MAP[@]}" --journal "$T/run.vpj" >/dev/null
old=$(stat -c %i "$vol/s")
setpriv --reuid 501000 --regid 501000 --clear-groups -- bash -c '
  for ((i = 0; i < 500; i++)); do
    rm -f "$1/s"; echo mine >"$1/s"
    [ "$(stat -c %i "$1/s")" = "$2" ] && exit 0
    mv "$1/s" "$1/.keep$i"   # hold this number so the next file gets another
  done
  exit 1' _ "$vol" "$old" || fail "could not get inode $old again in 500 tries"
rc=0
vp rollback "$T/run.vpj" --no-journal >"$T/rb.out" 2>"$T/rb.err" || rc=$?
[ "$rc" -eq 0 ] || fail "rollback exited $rc: $(cat "$T/rb.err")"
[ "$(stat -c %u:%g "$vol/s")" = 501000:501000 ] ||
  fail "the container's new file (inode $old again) was given to $(stat -c %u:%g "$vol/s")"
grep -q "s: another file has this name now: left alone" "$T/rb.err" || fail "not reported: $(cat "$T/rb.err")"
echo "ok: rollback_inode_reuse"
