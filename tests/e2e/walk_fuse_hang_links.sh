#!/usr/bin/env bash
# A silent FUSE mount made by the tree's owner after the walk, over the directory holding the
# second link of a hardlinked file, does not hang the pass over hardlinked files: it reaches
# each link again without crossing into a mount, so it finds one link fewer and leaves the file
# alone, without a request to the server. strace holds volprep at the start of that pass (its
# second F_DUPFD_CLOEXEC after the fcntls that lock the tree, lock_fcntls; the walk's root's
# is the first) while the mount is made: made once strace's log shows that call, and
# checked to be made within the hold.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fuse_lib.bash"
source "$(dirname "$0")/held_lib.bash"  # strace, wait_traced, in_hold
mkdir -p "$VOLPREP_JOURNAL_DIR"
vol=$T/vol

# held_run K: one run held 3K s, the mount made once strace shows it held there; $late
# set if the mount was made only after the hold (a loaded machine: the pass ran without it).
held_run() {
  local hold=$((3 * $1))
  rm -rf "$vol" && mkdir -p "$vol/a" "$vol/b"
  echo x >"$vol/a/f" && ln "$vol/a/f" "$vol/b/f"
  chown -R 1000:1000 "$vol"
  local n=$(($(lock_fcntls "$vol") + 2))
  # LeakSanitizer cannot work under ptrace: off for this run of an ASan build.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -ttt -o "$T/trace.$hold" -e trace=fcntl -e inject=fcntl:delay_enter=$((hold * 1000000)):when=$n \
    "$VOLPREP" "$vol" --as 1000 "${MAP[@]}" >"$T/run.out" 2>"$T/run.err" &
  held_pid=$!
  wait_traced "$T/trace.$hold" "$n" ' fcntl\(' || fail "volprep ended before its fcntl $n: $(cat "$T/run.err")"
  grep ' fcntl(' "$T/trace.$hold" | sed -n "${n}p" | grep -q F_DUPFD_CLOEXEC ||
    fail "fcntl $n is not the pass's F_DUPFD_CLOEXEC: $(grep ' fcntl(' "$T/trace.$hold")"
  mount_silent_in_hold "$hold" "$vol/b:dir"
}
retry_held "the mount" held_run
watch_pid prepare "$held_pid"
[ "$rc" -eq 0 ] || fail "volprep exited $rc: $(cat "$T/run.err")"
grep -Eq "a/f: has 2 links now, 1 of them found inside the tree: left alone" "$T/run.err" ||
  fail "the file whose second link is under the mount is not reported: $(cat "$T/run.err")"
! grep -q 'request' "$T/server.err" || fail "volprep sent the silent server requests: $(cat "$T/server.err")"
abort_fuse
[ "$(stat -c %u:%g "$vol/a/f")" = 1000:1000 ] || fail "the hardlinked file changed owner"
echo "ok: walk_fuse_hang_links"
