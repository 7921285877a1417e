#!/usr/bin/env bash
# A hardlinked file whose links were all inside the tree when the walk saw them is changed
# after the walk, in one pass over such files. A link made outside in between must leave it
# alone: the link count is taken again. strace holds volprep at the start of that pass (its
# second F_DUPFD_CLOEXEC after the fcntls that lock the tree, lock_fcntls; the walk's root's
# is the first) while the link is made. Where openat2 is missing, opening the volume takes
# one more and the link is made before the walk instead: the file must be left alone all the
# same. The link is made once strace's log shows the hold, and checked to be made within it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/held_lib.bash"  # strace, wait_traced, in_hold
# held_run K: a fresh tree, volprep held 3K s, the link made once strace's log shows it
# held there; $late set if it was made only after the hold (a loaded machine: the pass ran
# before it, which tests nothing).
held_run() {
  local hold=$((3 * $1))
  vol=$T/vol$hold outside=$T/outside$hold
  mkdir -p "$vol/a" "$vol/b" "$outside"
  echo x >"$vol/a/f" && ln "$vol/a/f" "$vol/b/f"   # gets a link outside during the run
  echo y >"$vol/a/g" && ln "$vol/a/g" "$vol/b/g"   # stays inside: changed
  chown -R 1000:1000 "$vol" "$outside"
  local n=$(($(lock_fcntls "$vol") + 2))
  # LeakSanitizer cannot work under ptrace: off for this run of an ASan build.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -ttt -o "$T/trace.$hold" -e trace=fcntl -e inject=fcntl:delay_enter=$((hold * 1000000)):when=$n \
    timeout 60 "$VOLPREP" "$vol" --as 1000 "${MAP[@]}" >"$T/run.out" 2>&1 &
  held_pid=$!
  wait_traced "$T/trace.$hold" "$n" ' fcntl\(' || fail "volprep ended before its fcntl $n: $(cat "$T/run.out")"
  grep ' fcntl(' "$T/trace.$hold" | sed -n "${n}p" | grep -q F_DUPFD_CLOEXEC ||
    fail "fcntl $n is not the pass's F_DUPFD_CLOEXEC: $(grep ' fcntl(' "$T/trace.$hold")"
  ln "$vol/a/f" "$outside/f"
  late=0
  in_hold "$hold" || late=1
  rc=0; wait "$held_pid" || rc=$?
}
retry_held "the link outside" held_run
[ "$rc" -eq 0 ] || fail "volprep exited $rc: $(cat "$T/run.out")"
[ "$(stat -c %u:%g "$outside/f")" = 1000:1000 ] ||
  fail "a file given a link outside the tree during the run was changed: $(stat -c %u:%g "$outside/f")"
grep -Eq "a/f: has 3 links( now)?, 2 (of them found )?inside the tree: left alone" "$T/run.out" ||
  fail "the file left alone is not reported: $(cat "$T/run.out")"
[ "$(stat -c %u:%g "$vol/a/g")" = 501000:501000 ] || fail "the hardlink pair inside was not changed"
echo "ok: prepare_links_race"
