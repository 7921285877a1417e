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
# fdatasync (1 s) for the second. Each exchange is made once strace's log shows its window open.
# The same on a FUSE filesystem (VOLPREP_E2E_FUSE): the tree on bench/slowfs.c over the tmpfs
# (whose listing order it passes on), where each directory's batch is journaled and changed on
# its own: the first record is the tree's top alone, before v is even listed, so the second
# window is the hold of the fdatasync that covers v's record (wait_planned).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/race_lib.bash"
command -v setcap >/dev/null || fail "setcap is missing (libcap2-bin; ./dev test installs it)"
chmod 755 "$T"
# Every case is checked, each failure reported; the end fails if any did.
failures=0
bad() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
if [ -z "${VOLPREP_E2E_FUSE:-}" ]; then
  mkdir "$T/fs" && mount -t tmpfs -o mode=0755 volprep-race "$T/fs"
else
  mkdir "$T/fs" "$T/fs.back" && mount -t tmpfs -o mode=0755 volprep-race "$T/fs.back"
  cc -std=gnu11 -O2 -o "$T/slowfs" "$VOLPREP_SRC/bench/slowfs.c" $(pkg-config --cflags --libs fuse3) ||
    fail "cannot build bench/slowfs.c (libfuse3-dev)"
  "$T/slowfs" --delay-us 0 --attr-cache-s 0 --posix-acl 1 "$T/fs.back" "$T/fs" 2>"$T/slowfs.log" &
  on_exit 'umount "$T/fs" 2>/dev/null || umount -l "$T/fs"; wait '$!' || true'
  for _ in $(seq 100); do [[ $(stat -f -c %T "$T/fs") == fuse* ]] && break; sleep 0.05; done
  [[ $(stat -f -c %T "$T/fs") == fuse* ]] || fail "slowfs did not mount: $(cat "$T/slowfs.log")"
fi

make_tree() { # make_tree NAME: $T/fs/NAME/vol with 3000 files, and $T/fs/NAME/own (the owner's)
  local top=$T/fs/$1
  mkdir -p "$top/vol" "$top/own"
  (cd "$top/vol" && touch $(seq -f 'f%04g' 0 2999))
  chown -R 1000:1000 "$top"
  chmod 777 "$top/vol"   # still the owner's to exchange in once changed: on FUSE before v is planned
}

# Each case runs with its windows K times as long, K = 1, 2, 4 (retry_held), until both
# exchanges were done inside them (a loaded machine may be slower), checked from strace's log: the first
# once the walk has looked v up (its openat2 or openat) and before the plan reads it, the second
# inside the hold of the fdatasync that covers v's record. Late, they test nothing.
# The walk lists a chunk of names (walk.h: 1024, on FUSE 16), stats each of them on one thread,
# v first, then plans them there: an exchange made before that thread's statx of the chunk's
# middle name came before v was read. On FUSE each statx is 40 ms late, not 1 ms, so that this
# window stays about as long.
HOLD=1 CHUNK=1024 STATX_US=1000
[ -z "${VOLPREP_E2E_FUSE:-}" ] || CHUNK=16 STATX_US=40000
in_walk() { # in_walk: true if $exchanged_at is before v's thread's statx of the chunk's middle name
  local mid
  mid=$(awk -v n=$((CHUNK / 2)) '!tid && / openat2?\([0-9]+, "v",/ { tid = $1 }
    tid && $1 == tid && / statx\(/ && ++seen == n { print $2; exit }' "$held_trace")
  [ -n "$mid" ] && ((10#${exchanged_at/./} < 10#${mid/./}))
}
# hold_and_exchange K VOL OTHER JOURNALS volprep-args...: the held run, the exchanges in its
# windows; $late set if one was not.
hold_and_exchange() {
  local k=$1 vol=$2 other=$3 j=$4 HOLD=$((HOLD * $1)); shift 4
  late=0
  TRACE_ALSO=openat2,openat STATX_DELAY_US=$((STATX_US * k)) held "$T/held.${j##*/}" "$vol" "$@" --journal-dir "$j"
  wait_traced "$held_trace" 1 ' openat2?\([0-9]+, "v",' || fail "volprep ended before its walk reached v"
  exchange 1000 "$vol/v" "$other" || late=1   # failing, it came too late (the run changed v)
  exchanged_at=$EPOCHREALTIME
  wait_planned "$j" "$vol/v"
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
