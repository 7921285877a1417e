#!/usr/bin/env bash
# A hardlinked file whose links were all inside the tree when the walk saw them is changed
# after the walk, in one pass over such files. A link made outside in between must leave it
# alone: the link count is taken again. strace holds volprep at the start of that pass (its
# second fcntl(F_DUPFD_CLOEXEC); the walk's root is the first) while the link is made. Where
# openat2 is missing, opening the volume takes one more and the link is made before the walk
# instead: the file must be left alone all the same.
source "$(dirname "$0")/lib.sh"
command -v strace >/dev/null || fail "strace is missing (./dev test installs it)"
vol=$T/vol outside=$T/outside
mkdir -p "$vol/a" "$vol/b" "$outside"
echo x >"$vol/a/f" && ln "$vol/a/f" "$vol/b/f"   # gets a link outside during the run
echo y >"$vol/a/g" && ln "$vol/a/g" "$vol/b/g"   # stays inside: changed
chown -R 1000:1000 "$vol" "$outside"

# LeakSanitizer cannot work under ptrace: off for this run of an ASan build.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
  strace -f -o /dev/null -e trace=fcntl -e inject=fcntl:delay_enter=3000000:when=2 \
  timeout 60 "$VOLPREP" "$vol" --as 1000 "${MAP[@]}" >"$T/run.out" 2>&1 &
pid=$!
sleep 1
ln "$vol/a/f" "$outside/f"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "volprep exited $rc: $(cat "$T/run.out")"
[ "$(stat -c %u:%g "$outside/f")" = 1000:1000 ] ||
  fail "a file given a link outside the tree during the run was changed: $(stat -c %u:%g "$outside/f")"
grep -Eq "a/f: has 3 links( now)?, 2 (of them found )?inside the tree: left alone" "$T/run.out" ||
  fail "the file left alone is not reported: $(cat "$T/run.out")"
[ "$(stat -c %u:%g "$vol/a/g")" = 501000:501000 ] || fail "the hardlink pair inside was not changed"
echo "ok: prepare_links_race"
