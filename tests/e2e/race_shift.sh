#!/usr/bin/env bash
# `volprep shift` against the owner of part of the tree (uid 1000) acting while it runs, in
# its two windows: between its census and its first change (CENSUS_HOLD), and between its
# journaled plan and its changes (the fdatasync hold). The map is LXD's (0:1000000:1000000000),
# whose host range lies inside its container range: every id translates twice, so only the
# run itself can keep an inode from being shifted twice. Claims:
# - what was never in the tree (root's 0600 secret with an ACL and a v2-capability binary,
#   hardlinked in (protected_hardlinks=0), or exchanged in for a planned file; a directory
#   reached through a symlink swapped in; the owner's own file exchanged in once its directory
#   was walked) keeps owner, mode, ACL and xattrs;
# - each inode of the tree is shifted once: one exchanged for another, a directory moved
#   from the first tree of the command into the second after the first was shifted;
# - an ACL added between the census and the walk is translated (the census's "read without
#   attributes" does not outlive the inode's ctime);
# - a rerun after the attack refuses (the owner's new file makes the ids read as unshifted,
#   the journal says shifted); rollback puts the tree back and touches nothing outside;
# - shift --reverse with container root acting (Docker's map): no file becomes root's with
#   a set-id bit or a capability, and root's secret linked in is left alone.
# The same on a FUSE filesystem (VOLPREP_E2E_FUSE), with 64 requests in flight, where each
# directory's batch is journaled and changed on its own: the second window is the one of the
# names attacked (wait_planned), not the first record. Each case runs with its holds K times
# as long, K = 1, 2, 4 (retry_held), until every attack was made inside its window, checked
# against strace's log (act, and the open of the second tree's directory): late, it tests
# nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
source "$(dirname "$0")/race_lib.bash"
command -v setcap >/dev/null || fail "setcap is missing (libcap2-bin; ./dev test installs it)"
chmod 755 "$T"
HOLD=1
LXD=(--map 0:1000000:1000000000)
# Every case is checked, each failure reported; the end fails if any did.
failures=0
bad() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
owner() { stat -c %u:%g "$1"; }
expect_owner() { # expect_owner WHAT PATH UID:GID
  [ "$(owner "$2")" = "$3" ] || bad "$1: $2 is $(owner "$2"), want $3"
}

out=$T/out
mkdir -p "$out/dir"
echo secret >"$out/secret" && chmod 600 "$out/secret" && setfacl -m u:33:r "$out/secret"
echo y >"$out/dir/y"
cp /bin/true "$out/cap" && setcap cap_net_raw+ep "$out/cap"
manifest "$out" >"$T/out.before"
outside_untouched() { # outside_untouched WHAT
  manifest "$out" | cmp -s "$T/out.before" - && return 0
  diff "$T/out.before" <(manifest "$out") >&2 || true
  bad "$1: something outside the tree changed"
}
protected_hardlinks 0

# --- forward, one tree, both windows -------------------------------------------------------
# The first window: held at its first mkdirat after the census (CENSUS_HOLD), the census
# taken and nothing walked or changed. The second: f2, k and g are planned and journaled (with
# all of own's entries: on 2 threads the whole tree, on FUSE own's batch), not changed.
forward_case() { # forward_case K; the tree $vol, its journals $j
  local HOLD=$((HOLD * $1)) links
  vol=$T/vol$1 home=$T/home$1 j=$T/j$1
  mkdir -p "$vol/own/d" "$vol/own/k" "$vol/own/x" "$vol/own/pub" "$vol/www" "$home"
  for f in f1 f2 f3 f4 g y d/z k/z x/z; do echo data >"$vol/own/$f"; done
  echo w >"$vol/www/index" && chown -R 33:33 "$vol/www"
  chown -R 1000:1000 "$vol/own" && chmod 1777 "$vol/own/pub"
  # Still the owner's to rename in once it is the container's: on FUSE own is changed with
  # its parent's batch, before its entries are planned.
  chmod 777 "$vol/own"
  cp /bin/true "$vol/ping" && setcap cap_net_raw+ep "$vol/ping"
  echo mine >"$home/h" && chown -R 1000:1000 "$home"
  h_ino=$(stat -c %i "$home/h")
  links=$(($(stat -c %h "$out/secret") + 1))   # with f1: a late earlier case's links stay
  late=0
  CENSUS_HOLD=1 held "$T/held.fwd$1" shift "$vol" "${LXD[@]}" --journal-dir "$j"
  held_logged mkdirat  # the census is taken, nothing changed yet
  act "$HOLD" as_user 1000 ln "$out/secret" "$vol/own/.l"
  act "$HOLD" as_user 1000 mv -f "$vol/own/.l" "$vol/own/f1"
  act "$HOLD" as_user 1000 ln "$out/cap" "$vol/own/cap"
  act "$HOLD" as_user 1000 mv "$vol/own/d" "$vol/own/d.away"
  act "$HOLD" as_user 1000 ln -s "$out/dir" "$vol/own/d"
  act "$HOLD" as_user 1000 setfacl -m u:1000:rw "$vol/own/f3"
  act "$HOLD" exchange 1000 "$vol/own/f4" "$vol/own/x"   # a file and a directory change places
  wait_planned "$j" "$vol/own/f2" "$vol/own/k" "$vol/own/g"  # planned, journaled, not changed
  # Root's secret exchanged in for a planned file, which stays the owner's (and reachable: a
  # path-based FUSE server cannot change an inode no name holds any more).
  act "$HOLD" as_user 1000 ln "$out/secret" "$home/s"
  act "$HOLD" exchange 1000 "$home/s" "$vol/own/f2"
  act "$HOLD" as_user 1000 mv "$vol/own/k" "$vol/own/k.away"
  act "$HOLD" as_user 1000 ln -s "$out/dir" "$vol/own/k"
  act "$HOLD" exchange 1000 "$vol/own/g" "$home/h"         # the owner's file outside comes in
  if [ "$late" = 0 ]; then finish_held 0; else finish_held 0 4; fi
  outside_untouched "forward"
  [ "$late" = 0 ] || return 0   # what follows depends on the attacks
  grep -q "own/f1: has $links links, 1 inside the tree: left alone" "$T/held.fwd$1" || bad "forward: f1 not reported: $(cat "$T/held.fwd$1")"
  [ "$(stat -c %i:%u:%g "$vol/own/g")" = "$h_ino:1000:1000" ] || bad "forward: the owner's file outside changed: $(stat -c %i:%u:%g "$vol/own/g")"
  expect_owner "forward, the planned file moved out" "$home/h" 1001000:1001000
  expect_owner "forward, the planned file exchanged for root's secret" "$home/s" 1001000:1001000
  for p in own own/f3 own/f4 own/f4/z own/x own/d own/d.away/z own/k.away own/k.away/z; do
    expect_owner forward "$vol/$p" 1001000:1001000
  done
  expect_owner forward "$vol" 1000000:1000000
  expect_owner forward "$vol/www/index" 1000033:1000033
  getfacl -cpn "$vol/own/f3" | grep -qx 'user:1001000:rw-' || bad "forward: the ACL added after the census not translated: $(getfacl -cpn "$vol/own/f3")"
  getcap -n "$vol/ping" | grep -q 'rootid=1000000' || bad "forward: ping: $(getcap -n "$vol/ping")"
}
retry_held "forward: the owner's attacks" forward_case

# A rerun: the owner's new file reads as unshifted, the journal says shifted.
as_user 1000 touch "$vol/own/pub/new"
manifest "$vol" >"$T/vol.after"
rc=0; vp shift "$vol" "${LXD[@]}" --journal-dir "$j" >"$T/rerun" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "already shifted" "$T/rerun" || bad "rerun: exit $rc: $(cat "$T/rerun")"
manifest "$vol" | cmp -s "$T/vol.after" - || bad "rerun: the tree changed"
# Rollback: back as it was, the owner's renames aside; nothing outside touched.
vp rollback --last "$vol" --journal-dir "$j" >"$T/rollback" 2>&1 || bad "rollback: $(cat "$T/rollback")"
outside_untouched "rollback"
for p in own own/f3 own/f4 own/f4/z own/x own/d own/d.away/z; do
  expect_owner rollback "$vol/$p" 1000:1000
done
expect_owner rollback "$vol" 0:0
expect_owner rollback "$vol/www/index" 33:33
getcap -n "$vol/ping" | grep -q 'rootid' && bad "rollback: ping: $(getcap -n "$vol/ping")"

# --- forward, two trees: a directory the first run shifted, moved into the second ------------
# In its window once the first run has shifted it and before the second run's walk opens own
# (the last open of a name "own" in strace's log: the census of both trees comes first).
two_case() { # two_case K
  local HOLD=$((HOLD * $1)) v1=$T/v1.$1 v2=$T/v2.$1 i moved_at opened
  mkdir -p "$v1/pub/m" "$v2/own"
  echo data >"$v1/pub/m/f"
  chown -R 1000:1000 "$v1/pub" "$v2/own"
  chmod 777 "$v1/pub" "$v1/pub/m"   # still the owner's to move once it is container's
  late=0
  TRACE_ALSO=openat2,openat held "$T/held.two$1" shift "$v1" "$v2" "${LXD[@]}" --journal-dir "$T/j2.$1"
  for ((i = 0; i < 600; i++)); do
    [ "$(owner "$v1/pub/m/f")" = 1001000:1001000 ] && break
    kill -0 "$held_pid" 2>/dev/null || break
    sleep 0.05
  done
  [ "$(owner "$v1/pub/m/f")" = 1001000:1001000 ] || fail "two trees: the first tree was not shifted: $(cat "$T/held.two$1")"
  as_user 1000 mv "$v1/pub/m" "$v2/own/m"   # while the first tree's journal is finished
  moved_at=$EPOCHREALTIME
  finish_held 0
  opened=$(grep -E ' openat2?\([0-9]+, "own",' "$held_trace" | tail -n 1 |
    awk '{ print ($1 ~ /^[0-9]+$/ && $2 ~ /\./) ? $2 : $1 }')
  [[ $opened =~ ^[0-9]+\.[0-9]{6}$ ]] || fail "two trees: no open of own in strace's log"
  if ((10#${moved_at/[.,]/} > 10#${opened/./})); then late=1; return 0; fi
  for p in own own/m own/m/f; do
    expect_owner "two trees" "$v2/$p" 1001000:1001000
  done
  grep -q "own/m: reached a second time" "$T/held.two$1" || bad "two trees: the second sighting not reported: $(cat "$T/held.two$1")"
}
retry_held "two trees: the move" two_case

# --- shift --reverse, container root acting (Docker's map) -------------------------------------
# tool3 planned and journaled (with app's other entries), not changed, in the second window.
reverse_case() { # reverse_case K
  local HOLD=$((HOLD * $1)) rvol=$T/rvol$1 path uid mode xattrs
  mkdir -p "$rvol/app"
  for f in tool tool2 tool3; do cp /bin/true "$rvol/app/$f"; done
  chown -R 1000:1000 "$rvol/app" && chown 0:0 "$rvol/app/tool" "$rvol/app/tool3"
  vp shift "$rvol" "${MAP[@]}" >/dev/null 2>&1 || fail "reverse: the forward shift"
  late=0
  CENSUS_HOLD=1 held "$T/held.rev$1" shift "$rvol" "${MAP[@]}" --reverse --journal-dir "$T/jr$1"
  held_logged mkdirat
  act "$HOLD" as_container 0 0 chmod 4755 "$rvol/app/tool"
  act "$HOLD" as_container 0 0 setcap cap_setuid+ep "$rvol/app/tool2"
  act "$HOLD" as_container 0 0 ln "$out/secret" "$rvol/app/secret"
  wait_planned "$T/jr$1" "$rvol/app/tool3"
  act "$HOLD" as_container 0 0 chmod 6755 "$rvol/app/tool3"
  act "$HOLD" as_container 0 0 setcap cap_setuid+ep "$rvol/app/tool3"
  finish_held 0 4
  # Whenever the attacks came: nothing outside changed, nothing became root's and set-id.
  outside_untouched "reverse"
  while read -r path uid _ mode xattrs; do
    [ "$uid" -eq 0 ] && { ((8#$mode & 06000)) || [[ "$xattrs" == *security.capability=* ]]; } &&
      bad "reverse: $path is root's with a set-id bit or a capability: $mode $xattrs"
  done < <(manifest "$rvol")
  expect_owner reverse "$rvol/app" 1000:1000
}
retry_held "reverse: container root's attacks" reverse_case

[ "$failures" -eq 0 ] || fail "$failures checks failed (above)"
echo "ok: race_shift"
