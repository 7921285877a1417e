#!/usr/bin/env bash
# Rollback against the tree's owner (the container, host uid 501000 after prepare), who owns
# the tree between the run and the rollback and during it. Each case is a hole rollback had.
#  1. A link needs no write to the file, so no lease stops it: while a setuid-root binary is
#     the container's (prepare held 2 s between its chown and its chmod), 501000 links it into
#     a directory of its own outside the tree. The ctime journaled for rollback was taken after
#     that, so rollback trusted it and gave root's setuid bit to the link outside too. Now a
#     file linked since the chown gets no such ctime: rollback gives it its owner back without
#     the bit, and says why.
#  2. The same link made during the rollback, after its last check under the lease and before
#     its chown (held 2 s): the entry fails (exit 4) and keeps no set-id bit.
source "$(dirname "$0")/lib.sh"
command -v strace >/dev/null || fail "strace missing (./dev test installs it)"
chmod 755 "$T"
vol=$T/vol out=$T/out
mkdir -p "$vol" "$out"
chmod 777 "$out"  # a directory of 501000's own, outside the tree, on the tree's filesystem
chown 1000:1000 "$vol"
make_suid() { rm -f "$vol/suid" "$out/suid" && cp /bin/true "$vol/suid" && chown 0:0 "$vol/suid" && chmod 4755 "$vol/suid"; }
as_501000() { setpriv --reuid 501000 --regid 501000 --clear-groups "$@"; }
root_setuid() { [ "$(stat -c %u "$1")" = 0 ] && [ $(( 0$(stat -c %a "$1") & 04000 )) -ne 0 ]; }
# LeakSanitizer cannot run under strace (ptrace).
held() { # held SYSCALL OUT ARGS...: volprep ARGS with each SYSCALL held 2 s on entry, in the background
  local call=$1 out=$2; shift 2
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -o /dev/null -e trace="$call" \
    -e inject="$call":delay_enter=2000000 "$VOLPREP" "$@" >"$out" 2>&1 &
}

# --- 1. linked out during prepare -----------------------------------------------------------
make_suid
held fchmod "$T/prep1.out" "$vol" --as 1000 "${MAP[@]}" --journal "$T/run1.vpj"
pid=$!
for _ in $(seq 250); do [ "$(stat -c %u "$vol/suid")" = 501000 ] && break; sleep 0.02; done
as_501000 ln "$vol/suid" "$out/suid" || fail "1: 501000 could not link its file"
wait "$pid" || { cat "$T/prep1.out" >&2; fail "1: prepare failed"; }
[ "$(stat -c '%u %a %h' "$vol/suid")" = "501000 4755 2" ] || fail "1: prepare left $(stat -c '%u %a %h' "$vol/suid")"
rc=0; vp rollback "$T/run1.vpj" --no-journal >"$T/rb1.out" 2>"$T/rb1.err" || rc=$?
! root_setuid "$out/suid" ||
  fail "1: a link outside the tree is root's and setuid after rollback: $(stat -c '%u:%g %a' "$out/suid")"
[ "$rc" -eq 0 ] || { cat "$T/rb1.out" "$T/rb1.err" >&2; fail "1: rollback exited $rc"; }
[ "$(stat -c '%u:%g' "$vol/suid")" = 0:0 ] || fail "1: the owner was not restored"
grep -q "suid: changed after the run: set-id bits and capabilities not put back (--force puts them back)" \
  "$T/rb1.err" || { cat "$T/rb1.err" >&2; fail "1: rollback did not say why the bit stays off"; }
echo "1: linked out during prepare: after rollback $(stat -c '%u:%g %a' "$out/suid"), said"

# --- 2. linked out during rollback ----------------------------------------------------------
make_suid
vp "$vol" --as 1000 "${MAP[@]}" --journal "$T/run2.vpj" >/dev/null || fail "2: prepare failed"
[ "$(stat -c '%u %a %h' "$vol/suid")" = "501000 4755 1" ] || fail "2: prepare left $(stat -c '%u %a %h' "$vol/suid")"
ino=$(stat -c %i "$vol/suid")
held fchownat "$T/rb2.out" rollback "$T/run2.vpj" --no-journal
pid=$!
# Rollback's lease on the file: its last check comes right after, then its chown (held).
for _ in $(seq 500); do grep -q "LEASE.*:$ino " /proc/locks && break; sleep 0.01; done
grep -q "LEASE.*:$ino " /proc/locks || fail "2: rollback did not take its lease"
sleep 0.3
as_501000 ln "$vol/suid" "$out/suid" || fail "2: 501000 could not link its file"
rc=0; wait "$pid" || rc=$?
! root_setuid "$out/suid" ||
  fail "2: a link made during rollback is root's and setuid after it: $(stat -c '%u:%g %a' "$out/suid")"
[ "$rc" -eq 4 ] || { cat "$T/rb2.out" >&2; fail "2: rollback exited $rc, want 4"; }
grep -q "suid: check it was not linked meanwhile" "$T/rb2.out" || { cat "$T/rb2.out" >&2; fail "2: not said"; }
echo "2: linked out during rollback: exit 4, the link left $(stat -c '%u:%g %a' "$out/suid")"
echo "ok: rollback_hostile"
