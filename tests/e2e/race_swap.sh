#!/usr/bin/env bash
# The tree's owner renames things over names volprep has planned, after the plan and before
# the change (strace holds volprep there): a hardlink to a file outside (protected_hardlinks
# 0: root's 0600 secret; 1: a file the owner may read and write), a link put where a planned
# directory was, a root device node of the tree, a file root also linked outside the tree.
# Then the container user does the same to rollback. volprep changes the inodes it planned,
# through their descriptors: every file outside, and the device node, keep owner and mode.
# The same on a FUSE filesystem (VOLPREP_E2E_FUSE), where each directory's batch is journaled
# and changed on its own, before the walk lists the directories it holds: each rename is made
# once its names are planned (wait_planned), d's while the tree's top batch is held, a/'s while
# a/'s is (the first record, the tree's top alone, comes before either is listed).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/race_lib.bash"
HOLD=1
chmod 755 "$T"  # the unprivileged owner reaches its tree
out=$T/outside
mkdir "$out"
echo secret >"$out/secret" && chmod 600 "$out/secret"
echo shared >"$out/shared" && chown 1234:1234 "$out/shared" && chmod 666 "$out/shared"
echo rooted >"$out/rootlinked" && chmod 644 "$out/rootlinked"
untouched() { stat -c '%u:%g %a %n' "$out/secret" "$out/shared" "$out/rootlinked"; }
untouched >"$T/outside.before"

make_tree() { # make_tree DIR
  mkdir -p "$1/a" "$1/d/sub"
  for f in a/f1 a/f2 a/f3 a/f4 d/sub/x; do echo data >"$1/$f"; done
  chown -R 1000:1000 "$1"
  mknod "$1/null" c 1 3 && chmod 666 "$1/null"   # root's: volprep leaves its owner alone
  ln "$out/rootlinked" "$1/rootlinked"           # root's, linked outside: left alone
  # Still the owner's (and the container's) to rename in once changed: on FUSE the tree's
  # top and a/ are changed before a/'s entries are planned.
  chmod 777 "$1" "$1/a"
}
# Every case is checked, each failure reported; the end fails if any did.
failures=0
bad() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
check_outside() { # check_outside WHAT
  untouched | cmp -s "$T/outside.before" - && return 0
  diff "$T/outside.before" <(untouched) >&2 || true
  bad "$1: a file outside the tree changed"
  # Put back for the next case.
  chown 0:0 "$out/secret" "$out/rootlinked" && chown 1234:1234 "$out/shared"
}

# Each case runs with its hold K times as long, K = 1, 2, 4 (retry_held), until the owner's
# renames were all done inside it (strace's log of the held fdatasync that covers the names
# renamed over says when it began; a loaded machine may be slower): done after it, they test
# nothing.
prepare_case() { # prepare_case K PROTECTED_HARDLINKS
  local HOLD=$((HOLD * $1)) ph=$2 target=$out/secret vol=$T/vol$2.$1
  protected_hardlinks "$ph"
  [ "$ph" -eq 1 ] && target=$out/shared   # what protected_hardlinks=1 still lets it link
  make_tree "$vol"
  held "$T/held.$ph.$HOLD" "$vol" --as 1000 "${MAP[@]}" --journal-dir "$T/j$ph.$HOLD"
  late=0
  wait_planned "$T/j$ph.$HOLD" "$vol/d"
  act "$HOLD" as_user 1000 mv "$vol/d" "$vol/d.away"
  act "$HOLD" as_user 1000 ln "$target" "$vol/d"                 # a link to outside, where a planned directory was
  wait_planned "$T/j$ph.$HOLD" "$vol/a/f1" "$vol/a/f2" "$vol/a/f3"
  act "$HOLD" as_user 1000 ln "$target" "$vol/.l1"
  act "$HOLD" as_user 1000 mv -f "$vol/.l1" "$vol/a/f1"          # ... over a planned file
  act "$HOLD" as_user 1000 mv -f "$vol/null" "$vol/a/f2"         # the device node, over a planned file
  act "$HOLD" as_user 1000 mv -f "$vol/rootlinked" "$vol/a/f3"   # root's linked file, over a planned file
  finish_held 0 4
  check_outside "prepare, protected_hardlinks=$ph"
  [ "$late" = 0 ] || return 0   # what follows depends on the renames
  [ "$(stat -c %u:%g "$vol/a/f2")" = 0:0 ] || bad "prepare, protected_hardlinks=$ph: the device node changed owner"
  [ "$(stat -c %u:%g "$vol/a/f4")" = 501000:501000 ] || fail "prepare, protected_hardlinks=$ph: a/f4 not changed"
  [ "$(stat -c %u:%g "$vol/d.away/sub/x")" = 501000:501000 ] ||
    fail "prepare, protected_hardlinks=$ph: the moved directory's file not changed"
}
for ph in 0 1; do retry_held "prepare, protected_hardlinks=$ph: the renames" prepare_case "$ph"; done

# Rollback: the run gave the tree to 501000; the container (501000) swaps a link to a file
# outside in over a name rollback is about to give back to 1000.
rollback_case() { # rollback_case K PROTECTED_HARDLINKS
  local HOLD=$((HOLD * $1)) ph=$2 target=$out/secret vol=$T/rvol$2.$1
  protected_hardlinks "$ph"
  [ "$ph" -eq 1 ] && target=$out/shared
  make_tree "$vol"
  vp "$vol" --as 1000 "${MAP[@]}" --journal "$T/run$ph.$HOLD.vpj" >/dev/null
  held "$T/held.r$ph.$HOLD" rollback "$T/run$ph.$HOLD.vpj" --journal-dir "$T/rj$ph.$HOLD"
  late=0
  wait_planned "$T/rj$ph.$HOLD" "$vol/a/f1"
  act "$HOLD" as_user 501000 ln "$target" "$vol/.l1"
  act "$HOLD" as_user 501000 mv -f "$vol/.l1" "$vol/a/f1"
  finish_held 0 4
  check_outside "rollback, protected_hardlinks=$ph"
  [ "$late" = 0 ] || return 0
  [ "$(stat -c %u:%g "$vol/a/f4")" = 1000:1000 ] || fail "rollback, protected_hardlinks=$ph: a/f4 not restored"
}
for ph in 0 1; do retry_held "rollback, protected_hardlinks=$ph: the renames" rollback_case "$ph"; done
[ "$failures" -eq 0 ] || fail "$failures checks failed (above)"
echo "ok: race_swap"
