#!/usr/bin/env bash
# Set-id bits and capabilities go back only onto the content decided about. The kernel clears
# them on chown, and volprep puts them back after it; a file's new owner could rewrite it in
# between, and rollback (which trusts the ctime journaled after the change) would then give
# the rewritten content back to root with its setuid bit. strace holds volprep 2 s at that
# chmod:
#  1. prepare: uid 501000 (the container's) appends to its new setuid file meanwhile. Its
#     write waits until volprep is done (a read lease), clears the bit as any write does, and
#     rollback gives the file back to root without it, saying so.
#  2. rollback: uid 501000 opened the file for writing after prepare and keeps it open; it
#     writes through it while rollback is held. Rollback leaves that file as it is (exit 4,
#     "open for writing") rather than give root a setuid file someone can still write.
#  3. rollback: container root writes a capability file after rollback decided to re-arm it
#     and before its hold (below).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/held_lib.bash"  # lock_fcntls
command -v strace >/dev/null && command -v setcap >/dev/null || fail "strace or setcap missing (./dev test installs them)"
chmod 755 "$T"
vol=$T/vol
mkdir -p "$vol"
make_suid() { cp /bin/true "$vol/suid" && chown 0:0 "$vol/suid" && chmod 4755 "$vol/suid"; }
# LeakSanitizer cannot run under strace (ptrace): off for the runs strace holds.
held_chmod() { # held_chmod OUT ARGS...: volprep ARGS with its first fchmod held 2 s, in the background
  local out=$1; shift
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -o /dev/null -e trace=fchmod -e inject=fchmod:delay_enter=2000000:when=1 \
    "$VOLPREP" "$@" >"$out" 2>&1 &
}
root_setuid() { [ "$(stat -c %u "$1")" = 0 ] && [ $(( 0$(stat -c %a "$1") & 04000 )) -ne 0 ]; }

# --- 1. prepare --------------------------------------------------------------------------------
make_suid
held_chmod "$T/prep.out" "$vol" --as 1000 "${MAP[@]}" --journal "$T/run1.vpj"
pid=$!
for _ in $(seq 250); do [ "$(stat -c %u "$vol/suid")" = 501000 ] && break; sleep 0.02; done
[ "$(stat -c %u "$vol/suid")" = 501000 ] || fail "prepare did not reach the chown"
setpriv --reuid 501000 --regid 501000 --clear-groups sh -c "echo 'id -u' >>'$vol/suid'" ||
  fail "the container's uid could not write its file"
wait "$pid" || { cat "$T/prep.out" >&2; fail "prepare failed"; }
tail -c 6 "$vol/suid" | grep -q 'id -u' || fail "test bug: the write did not land"
rc=0; vp rollback "$T/run1.vpj" --no-journal >"$T/rb.out" 2>"$T/rb.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "rollback 1 exited $rc"; }
! root_setuid "$vol/suid" || fail "1: content written between prepare's chown and chmod is root's and setuid after rollback: $(stat -c '%u:%g %a' "$vol/suid")"
grep -q "suid: changed after the run: set-id bits and capabilities not put back" "$T/rb.err" ||
  { cat "$T/rb.err" >&2; fail "1: rollback did not say why the bit stays off"; }
echo "1: prepare held at its chmod, the file written meanwhile: after rollback $(stat -c '%u:%g %a' "$vol/suid"), said"

# --- 2. rollback ---------------------------------------------------------------------------------
rm -f "$vol/suid" && make_suid
vp "$vol" --as 1000 "${MAP[@]}" --journal "$T/run2.vpj" >/dev/null 2>&1 || fail "prepare 2 failed"
[ "$(stat -c '%u %a' "$vol/suid")" = "501000 4755" ] || fail "prepare 2 left $(stat -c '%u %a' "$vol/suid")"
# The container's process: opens its file for writing, waits for rollback's chown, writes.
mkdir -m 0777 "$T/w"
setpriv --reuid 501000 --regid 501000 --clear-groups /usr/bin/python3 - "$vol/suid" "$T/w/wrote" "$T/w/opened" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
open(sys.argv[3], "w").close()
end = time.monotonic() + 20
while os.stat(sys.argv[1]).st_uid != 0 and time.monotonic() < end:
    time.sleep(0.01)
os.write(fd, b"\nid -u\n")
open(sys.argv[2], "w").write("done")
time.sleep(3)
PY
writer=$!
for _ in $(seq 500); do [ -e "$T/w/opened" ] && break; sleep 0.02; done
[ -e "$T/w/opened" ] || fail "2: the writer did not open the file"
held_chmod "$T/rb2.out" rollback "$T/run2.vpj" --no-journal
pid=$!
rc=0; wait "$pid" || rc=$?
kill "$writer" 2>/dev/null || true; wait "$writer" 2>/dev/null || true
! root_setuid "$vol/suid" || fail "2: a file its old owner held open for writing is root's and setuid after rollback: $(stat -c '%u:%g %a' "$vol/suid")"
[ "$rc" -eq 4 ] || { cat "$T/rb2.out" >&2; fail "2: rollback exited $rc, want 4"; }
grep -q "suid: hold it unwritten .*open for writing" "$T/rb2.out" || { cat "$T/rb2.out" >&2; fail "2: not said"; }
[ "$(stat -c '%u %a' "$vol/suid")" = "501000 4755" ] || fail "2: the file was changed: $(stat -c '%u %a' "$vol/suid")"
echo "2: rollback with the file open for writing: exit 4, the file left $(stat -c '%u:%g %a' "$vol/suid")"

# --- 3. rollback: a write between its decision and its hold ---------------------------------------
# Rollback decides to put a file capability back (the ctime is the one the run left), then is
# held before it takes its hold (its first fcntl after those that lock the tree, lock_fcntls:
# F_SETSIG); container root appends to the file
# meanwhile. The write removes the capability and changes neither owner nor mode, so only the
# ctime, checked again under the hold, shows it: the file is left as it is (exit 4), not given
# back to root with a capability on the container's content.
rm -f "$vol/suid"
cp /bin/true "$vol/cap" && chown 0:0 "$vol/cap" && setcap cap_net_raw+ep "$vol/cap" || fail "setcap failed"
vp "$vol" --as 1000 "${MAP[@]}" --journal "$T/run3.vpj" >/dev/null 2>&1 || fail "prepare 3 failed"
getcap "$vol/cap" | grep -q cap_net_raw || fail "prepare 3 did not keep the capability"
n=$(($(lock_fcntls "$vol") + 1))
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -o "$T/trace3" -e trace=fcntl -e inject=fcntl:delay_enter=2000000:when=$n \
  "$VOLPREP" rollback "$T/run3.vpj" --no-journal >"$T/rb3.out" 2>&1 &
pid=$!
for _ in $(seq 500); do grep -q 'F_SETSIG' "$T/trace3" 2>/dev/null && break; sleep 0.02; done
grep -q 'F_SETSIG' "$T/trace3" || fail "3: rollback did not reach its hold"
grep ' fcntl(' "$T/trace3" | sed -n "${n}p" | grep -q F_SETSIG || fail "3: fcntl $n is not F_SETSIG: $(cat "$T/trace3")"
as_container 0 0 sh -c "echo 'id -u' >>'$vol/cap'" || fail "3: container root could not write"
rc=0; wait "$pid" || rc=$?
if [ "$(stat -c %u "$vol/cap")" = 0 ] && getcap "$vol/cap" | grep -q cap_net_raw; then
  fail "3: content written after rollback's decision is root's with a capability: $(getcap "$vol/cap")"
fi
[ "$rc" -eq 4 ] || { cat "$T/rb3.out" >&2; fail "3: rollback exited $rc, want 4"; }
grep -q "cap: changed since it was planned: left alone" "$T/rb3.out" || { cat "$T/rb3.out" >&2; fail "3: not said"; }
echo "3: written between rollback's decision and its hold: exit 4, the file left $(stat -c '%u:%g %a' "$vol/cap")"
echo ok
