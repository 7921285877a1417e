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
# fdatasync for the second. Each exchange is made once strace's log shows its window open.
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

# Each case runs with its windows K times as long, K = 1, 2, 4 (retry_held), until both
# exchanges were done inside them (a loaded machine may be slower), checked from strace's log: the first
# once the walk has looked v up (its openat2 or openat) and before its last statx (the plan
# reads after the walk), the second inside the fdatasync hold. Late, they test nothing.
in_walk() { # in_walk: true if now is before the last statx ahead of the first fdatasync in the log
  local last
  last=$(awk '/ fdatasync\(/ { exit } / statx\(/ { t = $2 } END { print t }' "$held_trace")
  [ -n "$last" ] && ((10#${exchanged_at/./} < 10#${last/./}))
}
# hold_and_exchange K VOL OTHER JOURNALS volprep-args...: the held run, the exchanges in its
# windows; $late set if one was not.
hold_and_exchange() {
  local k=$1 vol=$2 other=$3 j=$4 HOLD=$((3 * $1)); shift 4
  late=0
  TRACE_ALSO=openat2,openat STATX_DELAY_US=$((1000 * k)) held "$T/held.${j##*/}" "$vol" "$@" --journal-dir "$j"
  wait_traced "$held_trace" 1 ' openat2?\([0-9]+, "v",' || fail "volprep ended before its walk reached v"
  exchange 1000 "$vol/v" "$other" || late=1   # after the run, the tree is not the owner's
  exchanged_at=$EPOCHREALTIME
  wait_recorded "$j"
  act "$HOLD" exchange 1000 "$vol/v" "$other"
  finish_held 0 4
  in_walk || late=1
}

# --- capabilities ------------------------------------------------------------------------
caps_case() {
  make_tree "caps$1"
  vol=$T/fs/caps$1/vol own=$T/fs/caps$1/own
  printf '#!/bin/sh\necho mine\n' >"$vol/v" && chown 1000:1000 "$vol/v" && chmod 755 "$vol/v"
  cp /bin/true "$own/root-tool" && chmod 755 "$own/root-tool" && setcap cap_setuid+ep "$own/root-tool"
  hold_and_exchange "$1" "$vol" "$own/root-tool" "$T/j-caps$1" --as 1000 "${MAP[@]}"
  [ "$late" = 0 ] || return 0   # which file is where depends on the exchanges
  [ -z "$(getcap "$vol/v")" ] || bad "capabilities: the owner's binary got root's capabilities: $(getcap "$vol/v")"
  getcap "$own/root-tool" | grep -q cap_setuid || fail "capabilities: root's binary lost its capabilities"
  [ "$(stat -c %u:%g "$own/root-tool")" = 0:0 ] || fail "capabilities: root's binary changed owner"
  [ "$(stat -c %u:%g "$vol/f2999")" = 501000:501000 ] || fail "capabilities: the tree was not prepared"
}
retry_held "capabilities: an exchange" caps_case

# --- ACLs --------------------------------------------------------------------------------
acl_case() {
  make_tree "acl$1"
  vol=$T/fs/acl$1/vol own=$T/fs/acl$1/own
  echo secret >"$vol/v" && chown 0:0 "$vol/v" && chmod 600 "$vol/v"
  echo mine >"$own/mine" && chmod 777 "$own/mine" && setfacl -m u:1000:rwx "$own/mine"
  local acl
  hold_and_exchange "$1" "$vol" "$own/mine" "$T/j-acl$1" --as 1000 "${MAP[@]}" --acl
  [ "$late" = 0 ] || return 0
  # The secret was in the tree when the walk saw it: it may get the container's grant (which
  # sets the mask), never the owner's entry, and others still get nothing.
  acl=$(getfacl -cp "$vol/v")
  if grep -q '^user:1000:' <<<"$acl" || ! grep -qx 'other::---' <<<"$acl"; then
    echo "$acl" >&2
    bad "--acl: root's secret got the owner's ACL"
  fi
  getfacl -cp "$vol/f2999" | grep -q '^user:501000:rw' || fail "--acl: the tree was not prepared"
}
retry_held "--acl: an exchange" acl_case
[ "$failures" -eq 0 ] || fail "$failures checks failed (above)"
echo "ok: race_plan_read"
