#!/usr/bin/env bash
# What volprep reads to plan a change (file capabilities, ACLs) and what it changes are one
# inode. The tree's owner exchanges a planned name with a file of root's kept in a directory
# of its own, after the walk stat'ed the name and before the plan reads it, and exchanges it
# back while the run is held before its changes:
# - capabilities: root's cap_setuid binary read in place of the owner's own binary must not
#   end up on that binary (a container root with cap_setuid gets host root);
# - --acl: the owner's file with ACL user:1000:rwx read in place of root's 0600 secret must
#   not have that ACL written onto the secret.
# The walk's statx calls are slowed (1 ms each) over a directory of 3000 files listed after
# the victim (tmpfs lists the newest first), which opens the first window; strace holds every
# fdatasync for the second.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/race_lib.bash"
command -v setcap >/dev/null || fail "setcap is missing (libcap2-bin; ./dev test installs it)"
chmod 755 "$T"
# Every case is checked, each failure reported; the end fails if any did.
failures=0
bad() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
mkdir "$T/fs" && mount -t tmpfs -o mode=0755 volprep-race "$T/fs"

make_tree() { # make_tree NAME: $T/fs/NAME/vol with 3000 files, and $T/fs/NAME/own (the owner's)
  local top=$T/fs/$1
  mkdir -p "$top/vol" "$top/own"
  (cd "$top/vol" && touch $(seq -f 'f%04g' 0 2999))
  chown -R 1000:1000 "$top"
}

# --- capabilities ------------------------------------------------------------------------
make_tree caps
vol=$T/fs/caps/vol own=$T/fs/caps/own
printf '#!/bin/sh\necho mine\n' >"$vol/v" && chown 1000:1000 "$vol/v" && chmod 755 "$vol/v"
cp /bin/true "$own/root-tool" && chmod 755 "$own/root-tool" && setcap cap_setuid+ep "$own/root-tool"
STATX_DELAY_US=1000 held "$T/held.caps" "$vol" --as 1000 "${MAP[@]}" --journal-dir "$T/j-caps"
sleep 1.5   # the walk has stat'ed v (listed first) and is stat'ing the 3000 after it
exchange 1000 "$vol/v" "$own/root-tool"
wait_recorded "$T/j-caps"
exchange 1000 "$vol/v" "$own/root-tool"
finish_held 0 4
[ -z "$(getcap "$vol/v")" ] || bad "capabilities: the owner's binary got root's capabilities: $(getcap "$vol/v")"
getcap "$own/root-tool" | grep -q cap_setuid || fail "capabilities: root's binary lost its capabilities"
[ "$(stat -c %u:%g "$own/root-tool")" = 0:0 ] || fail "capabilities: root's binary changed owner"
[ "$(stat -c %u:%g "$vol/f2999")" = 501000:501000 ] || fail "capabilities: the tree was not prepared"

# --- ACLs --------------------------------------------------------------------------------
make_tree acl
vol=$T/fs/acl/vol own=$T/fs/acl/own
echo secret >"$vol/v" && chown 0:0 "$vol/v" && chmod 600 "$vol/v"
echo mine >"$own/mine" && chmod 777 "$own/mine" && setfacl -m u:1000:rwx "$own/mine"
getfacl -cp "$vol/v" >"$T/acl.before"
STATX_DELAY_US=1000 held "$T/held.acl" "$vol" --as 1000 "${MAP[@]}" --acl --journal-dir "$T/j-acl"
sleep 1.5
exchange 1000 "$vol/v" "$own/mine"
wait_recorded "$T/j-acl"
exchange 1000 "$vol/v" "$own/mine"
finish_held 0 4
# The secret was in the tree when the walk saw it: it may get the container's grant (which
# sets the mask), never the owner's entry, and others still get nothing.
acl=$(getfacl -cp "$vol/v")
if grep -q '^user:1000:' <<<"$acl" || ! grep -qx 'other::---' <<<"$acl"; then
  echo "$acl" >&2
  bad "--acl: root's secret got the owner's ACL"
fi
getfacl -cp "$vol/f2999" | grep -q '^user:501000:rw' || fail "--acl: the tree was not prepared"
[ "$failures" -eq 0 ] || fail "$failures checks failed (above)"
echo "ok: race_plan_read"
