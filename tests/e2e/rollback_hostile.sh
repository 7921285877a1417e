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
#     its chown (held 2 s): the entry fails (exit 4) and keeps no set-id bit; so does a link
#     out followed by the removal of the name in the tree (the count of links is the same).
#  3. An ACL the run did not set is not journaled. After prepare, 501000 gives itself a default
#     ACL on its directory (the directory's mode does not change) and container root's uid an
#     entry on a group-writable file (its mask the group bits it had): rollback gave both back
#     to 1000 with the ACLs on, exit 0, and 501000 kept writing there. An ACL naming an id the
#     run gave the container, on an entry rollback takes back from it, is a change since the
#     run: left alone and said (exit 1); --force gives the owner back and says the ACL stays.
#  4. The tree's owner mounts a FUSE filesystem of its own (fusermount3) over the volume root
#     it owns, and its server never answers: rollback stat'ed the root through the mount and
#     hung for good. It is refused (exit 5) from the kernel's cache and mountinfo, as prepare
#     refuses it, before any request reaches the server.
#  5. Two rollbacks of one journal at once (an operator's retry while the first is slow): both
#     restored every entry, both said so and both journaled it as theirs. The second is refused
#     (exit 5) while the first holds the journal.
#  6. A volume root moved away and a symlink to it put in its place: refused (exit 5)
#     as before, but the message said "no longer the tree the run changed (inode N, the
#     journal says M)", N the symlink's: now it says it is a symlink.
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
# In a directory the container made (the run changes nothing there): it can unlink names in it
# whatever order rollback takes.
mkdir -p "$vol/own" && chown 501000:501000 "$vol/own"
for how in link link-unlink; do
rm -f "$out/suid" && cp /bin/true "$vol/own/suid" && chown 0:0 "$vol/own/suid" && chmod 4755 "$vol/own/suid"
vp "$vol" --as 1000 "${MAP[@]}" --journal "$T/run2$how.vpj" >/dev/null || fail "2: prepare failed"
[ "$(stat -c '%u %a %h' "$vol/own/suid")" = "501000 4755 1" ] || fail "2: prepare left $(stat -c '%u %a %h' "$vol/own/suid")"
ino=$(stat -c %i "$vol/own/suid")
held fchownat "$T/rb2.out" rollback "$T/run2$how.vpj" --no-journal
pid=$!
# Rollback's lease on the file: its last check comes right after, then its chown (held).
for _ in $(seq 500); do grep -q "LEASE.*:$ino " /proc/locks && break; sleep 0.01; done
grep -q "LEASE.*:$ino " /proc/locks || fail "2 $how: rollback did not take its lease"
sleep 0.3
as_501000 ln "$vol/own/suid" "$out/suid" || fail "2 $how: 501000 could not link its file"
[ "$how" = link ] || as_501000 rm "$vol/own/suid" || fail "2 $how: 501000 could not remove its name"
rc=0; wait "$pid" || rc=$?
! root_setuid "$out/suid" ||
  fail "2 $how: a link made during rollback is root's and setuid after it: $(stat -c '%u:%g %a' "$out/suid")"
[ "$rc" -eq 4 ] || { cat "$T/rb2.out" >&2; fail "2 $how: rollback exited $rc, want 4"; }
grep -q "suid: check it was not linked meanwhile" "$T/rb2.out" || { cat "$T/rb2.out" >&2; fail "2 $how: not said"; }
echo "2: $how out during rollback: exit 4, the link left $(stat -c '%u:%g %a' "$out/suid")"
done

# --- 3. an ACL the container gave itself since the run -----------------------------------------
command -v setfacl >/dev/null || fail "setfacl missing (acl; ./dev test installs it)"
vol3=$T/vol3
mkdir -p "$vol3/d" && echo data >"$vol3/d/f"
chmod 775 "$vol3/d" && chmod 664 "$vol3/d/f" && chown -R 1000:1000 "$vol3"
vp "$vol3" --as 1000 "${MAP[@]}" --journal "$T/run3.vpj" >/dev/null || fail "3: prepare failed"
as_501000 setfacl -d -m u:501000:rwx "$vol3/d" || fail "3: 501000 could not set a default ACL"
as_501000 setfacl -m u:500000:rw-,m::rw- "$vol3/d/f" || fail "3: 501000 could not set an ACL"
[ "$(stat -c '%u %a' "$vol3/d" "$vol3/d/f" | tr '\n' ' ')" = "501000 775 501000 664 " ] ||
  fail "3: the ACLs changed the modes: $(stat -c '%u %a %n' "$vol3/d" "$vol3/d/f")"
rc=0; vp rollback "$T/run3.vpj" --no-journal >"$T/rb3.out" 2>"$T/rb3.err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$T/rb3.out" "$T/rb3.err" >&2; fail "3: rollback exited $rc, want 1 (entries changed since the run)"; }
[ "$(stat -c %u "$vol3/d" "$vol3/d/f" | sort -u)" = 501000 ] || fail "3: an entry with the container's ACL was given back"
grep -q "vol3/d: changed since the run (system.posix_acl_default naming u:501000:rwx, not set by the run)" "$T/rb3.err" &&
  grep -q "vol3/d/f: changed since the run (system.posix_acl_access naming u:500000:rw-, not set by the run)" "$T/rb3.err" ||
  { cat "$T/rb3.err" >&2; fail "3: the ACLs are not said"; }
grep -q '^restored 1, already as before 0, changed since the run 2, missing 0, failed 0' "$T/rb3.out" ||
  fail "3: summary: $(cat "$T/rb3.out")"
rc=0; vp rollback "$T/run3.vpj" --no-journal --force >"$T/rb3f.out" 2>"$T/rb3f.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/rb3f.err" >&2; fail "3: rollback --force exited $rc"; }
[ "$(stat -c %u:%g "$vol3" "$vol3/d" "$vol3/d/f" | sort -u)" = 1000:1000 ] || fail "3: --force did not give the owners back"
grep -q "vol3/d/f: changed since the run (.*; restored anyway (--force): the ACL stays" "$T/rb3f.err" ||
  { cat "$T/rb3f.err" >&2; fail "3: --force does not say the ACL stays"; }
echo "3: ACLs naming the container's ids, set since the run: exit 1, left alone and said; --force gives them back"

# --- 4. a FUSE mount over the root ------------------------------------------------------------
source "$(dirname "$0")/fuse_lib.bash"
vol4=$T/vol4
mkdir -p "$vol4/a" && echo f >"$vol4/a/f" && chown -R 1000:1000 "$vol4"
vp "$vol4" --as 1000 "${MAP[@]}" --journal "$T/run4.vpj" >/dev/null || fail "4: prepare failed"
mount_silent "$vol4:dir:501000"
watched rollback4 rollback "$T/run4.vpj"
[ "$rc" -eq 5 ] || fail "4: rollback exited $rc, want 5: $(cat "$T/rollback4.err")"
grep -q "vol4 is a FUSE mount served for uid 501000" "$T/rollback4.err" || fail "4: not said: $(cat "$T/rollback4.err")"
! grep -q "not answered" "$T/server.err" || fail "4: a request reached the server: $(cat "$T/server.err")"
abort_fuse
[ "$(stat -c %u "$vol4/a/f")" = 501000 ] || fail "4: the tree changed"
echo "4: a FUSE mount over the root: refused (exit 5), no request sent"

# --- 5. two rollbacks at once ----------------------------------------------------------------
vol5=$T/vol5
mkdir -p "$vol5" && echo f >"$vol5/f" && chown -R 1000:1000 "$vol5"
vp "$vol5" --as 1000 "${MAP[@]}" --journal "$T/run5.vpj" >/dev/null || fail "5: prepare failed"
held fchownat "$T/rb5a.out" rollback "$T/run5.vpj"
pid=$!
for _ in $(seq 500); do [ "$(ls "$VOLPREP_JOURNAL_DIR" 2>/dev/null | wc -l)" -ge 1 ] && break; sleep 0.01; done
rc=0; vp rollback "$T/run5.vpj" >"$T/rb5b.out" 2>&1 || rc=$?
wait "$pid" || { cat "$T/rb5a.out" >&2; fail "5: the first rollback failed"; }
[ "$rc" -eq 5 ] || { cat "$T/rb5b.out" >&2; fail "5: a second rollback at once exited $rc, want 5"; }
grep -q "run5.vpj is being rolled back by another volprep" "$T/rb5b.out" || { cat "$T/rb5b.out" >&2; fail "5: not said"; }
[ "$(stat -c %u:%g "$vol5" "$vol5/f" | sort -u)" = 1000:1000 ] || fail "5: the first rollback did not restore the tree"
echo "5: a second rollback while the first runs: refused (exit 5)"

# --- 6. a symlink in the root's place ------------------------------------------------------------
mv "$vol5" "$T/vol5.away" && ln -s "$T/vol5.away" "$vol5"
rc=0; vp rollback "$T/run5.vpj" >"$T/rb6.out" 2>&1 || rc=$?
[ "$rc" -eq 5 ] || { cat "$T/rb6.out" >&2; fail "6: rollback through a symlink exited $rc, want 5"; }
grep -q "vol5 is a symlink now, not the tree the run changed" "$T/rb6.out" || { cat "$T/rb6.out" >&2; fail "6: not said"; }
echo "6: a symlink in the root's place: refused (exit 5), said"
echo "ok: rollback_hostile"
