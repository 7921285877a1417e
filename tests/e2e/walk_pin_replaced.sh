#!/usr/bin/env bash
# A file the walk has just pinned (opened O_PATH by name, not yet stat'ed through the pin) is
# replaced by its owner: another file renamed over its name. On ext4 or tmpfs the pin still
# reaches the inode it opened, which is stat'ed, planned and changed, unlinked as it is; on
# NFS or a path-based FUSE filesystem (VOLPREP_E2E_FUSE: bench/slowfs.c, libfuse's high-level
# API, as sshfs and bindfs) the server has no name for it any more and answers ESTALE. Either
# way the run ends well (exit 0): an entry gone from the tree is vanished, not failed, as the
# apply counts it (shift_pin_replaced.sh). The file renamed in is left alone: the run never
# looked it up.
# volprep is held right after the last lookup naming the victim (its index found by tracing an
# identical run with one thread), and the rename is made once strace's log shows the hold.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/held_lib.bash"  # not race_lib: fs.protected_hardlinks is not this scenario's
as_user() { local u=$1; shift; setpriv --reuid "$u" --regid "$u" --clear-groups -- "$@"; }
chmod 755 "$T"
HOLD=1
make_tree() { mkdir -p "$1/a" && echo data >"$1/a/v" && echo data >"$1/a/w" && chown -R 1000:1000 "$1" && chmod 777 "$1/a"; }
run=(--as 1000 "${MAP[@]}" --threads 1)

# The last lookup of the name a/v (a statx or an openat2), and its index among the calls of
# that syscall, in a run on an identical tree.
make_tree "$T/probe"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
  strace -f -qq -o "$T/probe.trace" -e trace=statx,openat2 "$VOLPREP" "$T/probe" "${run[@]}" \
  --journal-dir "$T/j-probe" >/dev/null 2>&1
call=$(grep -oE '(statx|openat2)\([^,]*, "v"' "$T/probe.trace" | tail -1 | cut -d'(' -f1)
[ -n "$call" ] || fail "the probe run looked the name v up with neither statx nor openat2"
n=$(grep "$call(" "$T/probe.trace" | grep -n '"v"' | tail -1 | cut -d: -f1)

# held_run K: the run on a fresh tree, held K * HOLD s after that lookup, another file of the
# owner's renamed over a/v once strace's log shows the hold; $late set if done after it.
held_run() {
  local hold=$((HOLD * $1))
  vol=$T/vol$hold
  make_tree "$vol"
  echo other >"$T/other$hold" && chown 1000:1000 "$T/other$hold"
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -ttt -o "$T/held.trace.$hold" -e trace="$call" -e "inject=$call:delay_exit=$((hold * 1000000)):when=$n" \
    timeout 120 "$VOLPREP" "$vol" "${run[@]}" --journal-dir "$T/j$hold" >"$T/held.out" 2>&1 &
  held_pid=$!
  wait_traced "$T/held.trace.$hold" 1 '\(DELAYED\)$' || fail "volprep ended before it was held: $(cat "$T/held.out")"
  as_user 1000 ln "$T/other$hold" "$vol/a/.l"
  as_user 1000 mv -f "$vol/a/.l" "$vol/a/v"
  late=0
  in_hold "$hold" || late=1
  rc=0
  wait "$held_pid" || rc=$?
}
retry_held "the rename over a/v" held_run
[ "$rc" = 0 ] || fail "volprep exited $rc after a pinned file was replaced (want 0: it vanished): $(cat "$T/held.out")"
grep -q 'failed 0\b' "$T/held.out" || fail "the replaced file counted as failed: $(cat "$T/held.out")"
[ "$(stat -c %u:%g "$vol/a/v")" = 1000:1000 ] || fail "the file renamed in over a/v was changed: $(stat -c %u:%g "$vol/a/v")"
[ "$(stat -c %u:%g "$vol/a/w")" = 501000:501000 ] || fail "the tree was not prepared: $(cat "$T/held.out")"
echo "ok: walk_pin_replaced"
