#!/usr/bin/env bash
# `volprep shift` against the owner of part of the tree (uid 1000) acting while it runs, in
# its two windows: between its census and its first change (CENSUS_HOLD), and between its
# journaled plan and its changes (the fdatasync hold). The map is LXD's (0:1000000:1000000000),
# whose host range lies inside its container range: every id translates twice, so only the
# run itself can keep an inode from being shifted twice. Claims:
# - what was never in the tree (root's 0600 secret with an ACL and a v2-capability binary,
#   hardlinked in (protected_hardlinks=0); a directory reached through a symlink swapped in;
#   the owner's own file exchanged in after the walk) keeps owner, mode, ACL and xattrs;
# - each inode of the tree is shifted once: one exchanged for another, a directory moved
#   from the first tree of the command into the second after the first was shifted;
# - an ACL added between the census and the walk is translated (the census's "read without
#   attributes" does not outlive the inode's ctime);
# - a rerun after the attack refuses (the owner's new file makes the ids read as unshifted,
#   the journal says shifted); rollback puts the tree back and touches nothing outside;
# - shift --reverse with container root acting (Docker's map): no file becomes root's with
#   a set-id bit or a capability, and root's secret linked in is left alone.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
source "$(dirname "$0")/race_lib.bash"
command -v setcap >/dev/null || fail "setcap is missing (libcap2-bin; ./dev test installs it)"
chmod 755 "$T"
HOLD=2
LXD=(--map 0:1000000:1000000000)
# Every case is checked, each failure reported; the end fails if any did.
failures=0
bad() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
owner() { stat -c %u:%g "$1"; }
expect_owner() { # expect_owner WHAT PATH UID:GID
  [ "$(owner "$2")" = "$3" ] || bad "$1: $2 is $(owner "$2"), want $3"
}

out=$T/out home=$T/home
mkdir -p "$out/dir" "$home"
echo secret >"$out/secret" && chmod 600 "$out/secret" && setfacl -m u:33:r "$out/secret"
echo y >"$out/dir/y"
cp /bin/true "$out/cap" && setcap cap_net_raw+ep "$out/cap"
echo mine >"$home/h" && chown -R 1000:1000 "$home"
manifest "$out" >"$T/out.before"
outside_untouched() { # outside_untouched WHAT
  manifest "$out" | cmp -s "$T/out.before" - && return 0
  diff "$T/out.before" <(manifest "$out") >&2 || true
  bad "$1: something outside the tree changed"
}
protected_hardlinks 0

# --- forward, one tree, both windows -------------------------------------------------------
vol=$T/vol
mkdir -p "$vol/own/d" "$vol/own/k" "$vol/own/x" "$vol/own/pub" "$vol/www"
for f in f1 f2 f3 f4 g y d/z k/z x/z; do echo data >"$vol/own/$f"; done
echo w >"$vol/www/index" && chown -R 33:33 "$vol/www"
chown -R 1000:1000 "$vol/own" && chmod 1777 "$vol/own/pub"
cp /bin/true "$vol/ping" && setcap cap_net_raw+ep "$vol/ping"
manifest "$vol" >"$T/vol.before"
h_ino=$(stat -c %i "$home/h")

CENSUS_HOLD=1 held "$T/held.fwd" shift "$vol" "${LXD[@]}" --journal-dir "$T/j"
held_in mkdirat  # the census is taken, nothing changed yet
as_user 1000 ln "$out/secret" "$vol/own/.l" && as_user 1000 mv -f "$vol/own/.l" "$vol/own/f1"
as_user 1000 ln "$out/cap" "$vol/own/cap"
as_user 1000 mv "$vol/own/d" "$vol/own/d.away" && as_user 1000 ln -s "$out/dir" "$vol/own/d"
as_user 1000 setfacl -m u:1000:rw "$vol/own/f3"
exchange 1000 "$vol/own/f4" "$vol/own/x"   # a file and a directory change places
wait_recorded "$T/j"  # planned, journaled, not changed
as_user 1000 ln "$out/secret" "$vol/own/.l" && as_user 1000 mv -f "$vol/own/.l" "$vol/own/f2"
as_user 1000 mv "$vol/own/k" "$vol/own/k.away" && as_user 1000 ln -s "$out/dir" "$vol/own/k"
exchange 1000 "$vol/own/g" "$home/h"         # the owner's file outside comes in
finish_held 0
grep -q "own/f1: has 2 links, 1 inside the tree: left alone" "$T/held.fwd" || bad "forward: f1 not reported: $(cat "$T/held.fwd")"
outside_untouched "forward"
[ "$(stat -c %i:%u:%g "$vol/own/g")" = "$h_ino:1000:1000" ] || bad "forward: the owner's file outside changed: $(stat -c %i:%u:%g "$vol/own/g")"
expect_owner "forward, the planned file moved out" "$home/h" 1001000:1001000
for p in own own/f3 own/f4 own/f4/z own/x own/d own/d.away/z own/k.away own/k.away/z; do
  expect_owner forward "$vol/$p" 1001000:1001000
done
expect_owner forward "$vol" 1000000:1000000
expect_owner forward "$vol/www/index" 1000033:1000033
getfacl -cpn "$vol/own/f3" | grep -qx 'user:1001000:rw-' || bad "forward: the ACL added after the census not translated: $(getfacl -cpn "$vol/own/f3")"
getcap -n "$vol/ping" | grep -q 'rootid=1000000' || bad "forward: ping: $(getcap -n "$vol/ping")"

# A rerun: the owner's new file reads as unshifted, the journal says shifted.
as_user 1000 touch "$vol/own/pub/new"
manifest "$vol" >"$T/vol.after"
rc=0; vp shift "$vol" "${LXD[@]}" --journal-dir "$T/j" >"$T/rerun" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "already shifted" "$T/rerun" || bad "rerun: exit $rc: $(cat "$T/rerun")"
manifest "$vol" | cmp -s "$T/vol.after" - || bad "rerun: the tree changed"
# Rollback: back as it was, the owner's renames aside; nothing outside touched.
vp rollback --last "$vol" --journal-dir "$T/j" >"$T/rollback" 2>&1 || bad "rollback: $(cat "$T/rollback")"
outside_untouched "rollback"
for p in own own/f3 own/f4 own/f4/z own/x own/d own/d.away/z; do
  expect_owner rollback "$vol/$p" 1000:1000
done
expect_owner rollback "$vol" 0:0
expect_owner rollback "$vol/www/index" 33:33
getcap -n "$vol/ping" | grep -q 'rootid' && bad "rollback: ping: $(getcap -n "$vol/ping")"

# --- forward, two trees: a directory the first run shifted, moved into the second ------------
v1=$T/v1 v2=$T/v2
mkdir -p "$v1/pub/m" "$v2/own"
echo data >"$v1/pub/m/f"
chown -R 1000:1000 "$v1/pub" "$v2/own"
chmod 777 "$v1/pub" "$v1/pub/m"   # still the owner's to move once it is container's
held "$T/held.two" shift "$v1" "$v2" "${LXD[@]}" --journal-dir "$T/j2"
for ((i = 0; i < 600; i++)); do
  [ "$(owner "$v1/pub/m/f")" = 1001000:1001000 ] && break
  sleep 0.05
done
as_user 1000 mv "$v1/pub/m" "$v2/own/m"   # while the first tree's journal is finished
finish_held 0
for p in own own/m own/m/f; do
  expect_owner "two trees" "$v2/$p" 1001000:1001000
done
grep -q "own/m: reached a second time" "$T/held.two" || bad "two trees: the second sighting not reported: $(cat "$T/held.two")"

# --- shift --reverse, container root acting (Docker's map) -------------------------------------
rvol=$T/rvol
mkdir -p "$rvol/app"
for f in tool tool2 tool3; do cp /bin/true "$rvol/app/$f"; done
chown -R 1000:1000 "$rvol/app" && chown 0:0 "$rvol/app/tool" "$rvol/app/tool3"
vp shift "$rvol" "${MAP[@]}" >/dev/null 2>&1 || fail "reverse: the forward shift"
CENSUS_HOLD=1 held "$T/held.rev" shift "$rvol" "${MAP[@]}" --reverse --journal-dir "$T/jr"
held_in mkdirat
as_container 0 0 chmod 4755 "$rvol/app/tool"
as_container 0 0 setcap cap_setuid+ep "$rvol/app/tool2"
as_container 0 0 ln "$out/secret" "$rvol/app/secret"
wait_recorded "$T/jr"
as_container 0 0 chmod 6755 "$rvol/app/tool3"
as_container 0 0 setcap cap_setuid+ep "$rvol/app/tool3"
finish_held 0 4
outside_untouched "reverse"
while read -r path uid _ mode xattrs; do
  [ "$uid" -eq 0 ] && { ((8#$mode & 06000)) || [[ "$xattrs" == *security.capability=* ]]; } &&
    bad "reverse: $path is root's with a set-id bit or a capability: $mode $xattrs"
done < <(manifest "$rvol")
expect_owner reverse "$rvol/app" 1000:1000

[ "$failures" -eq 0 ] || fail "$failures checks failed (above)"
echo "ok: race_shift"
