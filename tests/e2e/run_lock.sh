#!/usr/bin/env bash
# One changing run per tree at a time. A shift is held (strace) in the fdatasync of its
# journal's first records: the journal is on disk, no change is made yet, the run is going.
# Meanwhile a second shift of the tree (which took the first for one that did not finish, and
# finished it alongside), a prepare of it, and `rollback --last` of it are refused (exit 5,
# nothing changed, the same words); a dry run says so and plans; a tree nothing runs on is
# not held up. The held shift then ends, every id shifted once. A run killed -9 leaves no lock:
# the next run goes ahead. The lock file is root's alone, in the journal directory.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/held_lib.bash"

# expect_err WANT cmd...: the command's exit status must be WANT; its stderr in $T/err.
expect_err() {
  local want=$1 rc=0; shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$T/out" "$T/err" >&2; fail "expected exit $want, got $rc: $*"; }
}
owners() { find "$1" -printf '%U:%G %P\n' | sort; }

mkdir -p "$T/vol/a" "$T/vol/b" "$T/other"
for i in $(seq 20); do echo "$i" >"$T/vol/a/f$i"; echo "$i" >"$T/vol/b/g$i"; done
chown -R 1000:1000 "$T/vol/b"
touch "$T/other/x"

# The held shift, and what is tried while it is held.
held_volprep fdatasync "$T/s1.out" shift "$T/vol" "${MAP[@]}"
wait_held || fail "the shift ended before its first sync: $(cat "$T/s1.out")"
before=$(owners "$T/vol")
busy="$T/vol is being changed by another volprep now (a prepare, compose, shift or rollback of it that is still running): let it finish, then run this again"
expect_err 5 vp shift "$T/vol" "${MAP[@]}"
grep -qxF "volprep: error: $busy; nothing changed" "$T/err" || fail "second shift: $(cat "$T/err")"
expect_err 5 vp "$T/vol" --as 1000 "${MAP[@]}"
grep -qxF "volprep: error: $busy; nothing changed" "$T/err" || fail "prepare: $(cat "$T/err")"
expect_err 5 vp rollback --last "$T/vol"
grep -qxF "volprep: error: $busy; nothing restored" "$T/err" || fail "rollback --last: $(cat "$T/err")"
expect_err 0 vp shift "$T/vol" "${MAP[@]}" -n
grep -qF "volprep: warning: $busy (this plan is of the tree as that run has left it so far)" "$T/err" ||
  fail "shift -n: $(cat "$T/err")"
[ "$(grep -c 'being changed' "$T/err")" = 1 ] || fail "shift -n: said more than once: $(cat "$T/err")"
expect_err 0 vp "$T/other" --as 1000 "${MAP[@]}"  # another tree
in_hold 3 || fail "what was tried while the shift was held ended after its hold (a loaded machine?)"
[ "$(owners "$T/vol")" = "$before" ] || fail "the tree changed while its shift was held"
rc=0; wait "$held_pid" || rc=$?
[ "$rc" = 0 ] || fail "the held shift exited $rc: $(cat "$T/s1.out")"
[ "$(find "$T/vol/a" "$T/vol" -maxdepth 0 -printf '%U:%G\n' | sort -u)" = 500000:500000 ] ||
  fail "root's entries not shifted once"
[ "$(find "$T/vol/a" -type f -printf '%U:%G\n' | sort -u)" = 500000:500000 ] || fail "a/: $(owners "$T/vol/a")"
[ "$(find "$T/vol/b" -printf '%U:%G\n' | sort -u)" = 501000:501000 ] || fail "b/: $(owners "$T/vol/b")"
[ "$(stat -c %u:%g "$T/other/x")" = 501000:501000 ] || fail "the other tree was not prepared"

# After it, the tree is free: rollback --last undoes the shift.
vp rollback --last "$T/vol" >/dev/null 2>&1 || fail "rollback --last after the shift ended"
[ "$(find "$T/vol/a" -printf '%U\n' | sort -u)" = 0 ] || fail "not rolled back: $(owners "$T/vol/a")"

# A run killed -9 while it holds the lock: the kernel drops the lock with it.
held_volprep fdatasync "$T/p1.out" "$T/vol" --as 1000 "${MAP[@]}"
wait_held || fail "the prepare ended before its first sync: $(cat "$T/p1.out")"
pids=$(held_volprep_pids)
[ -n "$pids" ] || fail "no volprep under strace"
kill -9 $pids
{ wait "$held_pid"; } 2>/dev/null || true
expect_err 0 vp "$T/vol" --as 1000 "${MAP[@]}"
[ "$(find "$T/vol" -printf '%U:%G\n' | sort -u)" = 501000:501000 ] || fail "the run after the kill: $(owners "$T/vol")"

# The lock file: in the journal directory, this user's alone.
[ "$(stat -c '%U %a %F' "$VOLPREP_JOURNAL_DIR/.runs.lock")" = "root 600 regular empty file" ] ||
  fail "lock file: $(stat -c '%U %a %F' "$VOLPREP_JOURNAL_DIR/.runs.lock")"
echo "ok: run_lock"
