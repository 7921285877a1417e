#!/usr/bin/env bash
# The rollback journal survives a crash: on a tree of over 50,000 entries (mktree.py, plus
# setuid/setgid files, POSIX ACLs, file capabilities, a symlink, hard links, a fifo), volprep
# prepare is SIGKILLed at ten moments: before it starts, before its first change, and at
# growing fractions of a full run (measured by the size its journal reaches in a full run, so
# most kills land mid-run). After each kill `volprep rollback --last` must bring back exactly
# the tree as it was: the manifest (owner, group, mode, every xattr of every entry) byte for
# byte, with "restored N" equal to the number of entries the killed run had changed. A full
# run (first, to measure it) must leave every entry 501000:501000 with its mode and xattrs,
# and its rollback the tree as before; a second rollback of that journal changes nothing.
# Last, on a small tree, the window no timed kill hits: between the kernel's chown (which
# clears setuid/setgid and file capabilities) and volprep putting them back, in a prepare and
# in a rollback.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
MKTREE=${MKTREE:-$VOLPREP_SRC/bench/mktree.py}
[ -f "$MKTREE" ] || fail "mktree.py not found at $MKTREE"
command -v setcap >/dev/null && command -v getcap >/dev/null ||
  fail "setcap/getcap missing: add libcap2-bin to dev's test_packages"
command -v setfacl >/dev/null || fail "setfacl missing: add acl to dev's test_packages"
SECONDS=0

# The tree and the journals live on a tmpfs of their own; the other journal_* scenarios keep
# their journals on disk.
scratch_tmpfs journal-crash

# --- the tree ---------------------------------------------------------------------------
tree=$T/fs/vol
"$PY" "$MKTREE" "$tree" 46000 >/dev/null
make_specials() { # make_specials DIR: setuid/setgid files, ACLs, file capabilities, links, a fifo
  local s=$1
  mkdir -p "$s/sgid-dir" "$s/acl-dir/sub" "$s/private"
  touch "$s/suid-root" "$s/sgid-www" "$s/suid-sgid" "$s/sgid-noexec" "$s/acl-file" \
    "$s/cap-file" "$s/cap-suid" "$s/sgid-dir/inner" "$s/acl-dir/sub/f" "$s/private/key"
  chown 0:0 "$s/suid-root" && chmod 4755 "$s/suid-root"
  chown 0:33 "$s/sgid-www" && chmod 2755 "$s/sgid-www"
  chown 1000:1000 "$s/suid-sgid" && chmod 6750 "$s/suid-sgid"
  chown 1000:0 "$s/sgid-noexec" && chmod 2644 "$s/sgid-noexec"  # setgid without g+x: kept by chown
  chown 1000:1000 "$s/sgid-dir" && chmod 2775 "$s/sgid-dir"
  chown 33:33 "$s/acl-file" && chmod 0640 "$s/acl-file"
  setfacl -m u:33:rw,g:1000:r,m::rw "$s/acl-file" || fail "setfacl failed: no POSIX ACLs on $T's filesystem?"
  setfacl -m u:1000:rwx "$s/acl-dir" && setfacl -d -m u:1000:rwx,g:33:rx "$s/acl-dir" "$s/acl-dir/sub"
  chown 1000:1000 "$s/cap-file" && chmod 0755 "$s/cap-file"
  setcap cap_net_bind_service+ep "$s/cap-file" || fail "setcap failed on $T's filesystem"
  chown 0:0 "$s/cap-suid" && chmod 4755 "$s/cap-suid" && setcap cap_net_bind_service,cap_chown+ep "$s/cap-suid"
  chown 1000:1000 "$s/private" "$s/private/key" && chmod 0700 "$s/private" && chmod 0600 "$s/private/key"
  ln -s ../suid-root "$s/sgid-dir/link" && chown -h 33:33 "$s/sgid-dir/link"
  ln "$s/suid-sgid" "$s/hardlink-1" && ln "$s/suid-sgid" "$s/private/hardlink-2"
  mkfifo "$s/fifo" && chown 1000:33 "$s/fifo"
}
s=$tree/special
make_specials "$s"
getcap "$s/cap-file" | grep -q cap_net_bind_service || fail "getcap does not show the capability"

manifest "$tree" >"$T/m.before"
entries=$(wc -l <"$T/m.before")
[ "$entries" -ge 50000 ] || fail "tree too small: $entries entries"
grep -q '^special/acl-file .*system.posix_acl_access=' "$T/m.before" || fail "test bug: ACL not in manifest"
grep -q '^special/acl-dir .*system.posix_acl_default=' "$T/m.before" || fail "test bug: default ACL not in manifest"
grep -q '^special/cap-suid 0 0 104755 security.capability=' "$T/m.before" ||
  fail "test bug: setuid+capability file not in manifest as expected"
# Hard links: one inode, one change.
inodes=$(find "$tree" -printf '%i\n' | sort -u | wc -l)
[ "$inodes" -eq $((entries - 2)) ] || fail "test bug: $inodes inodes for $entries entries"
echo "tree: $entries entries ($inodes inodes), made in ${SECONDS}s"

# The manifest a full run must leave: every owner 501000:501000, every mode and xattr kept.
sed -E 's/^([^ ]+) [0-9]+ [0-9]+ /\1 501000 501000 /' "$T/m.before" >"$T/m.prepared"

same_as_before() { # same_as_before WHAT
  manifest "$tree" >"$T/m.now"
  if ! cmp -s "$T/m.before" "$T/m.now"; then
    { diff "$T/m.before" "$T/m.now" || true; } | head -20 >&2
    fail "$1: the tree is not as before the run ($({ diff "$T/m.before" "$T/m.now" || true; } | grep -c '^>') entries differ)"
  fi
}
# Entries in a state a run left (owner or group 501000): what a rollback has to restore.
changed_entries() { find "$tree" \( -uid 501000 -o -gid 501000 \) -printf '%i\n' | sort -u | wc -l; }
summary_re='^restored ([0-9]+), already as before ([0-9]+), changed since the run 0, missing 0, failed 0$'

# rollback_last WHAT WANT_RESTORED [JOURNAL]: rollback --last, exit 0, restored WANT_RESTORED,
# the tree as before. A kill between the chown of a set-id or capability file and the record
# of its re-arming (the window the last part of this file makes by hand) leaves that file as
# one rewritten since: rollback gives back its owner and mode without the bits, says so, and
# `rollback --force` of the killed run's JOURNAL puts them back. Only those files may be
# named so, and only when the killed run had not finished.
window_files='special/(suid-root|sgid-www|suid-sgid|sgid-noexec|hardlink-1|private/hardlink-2|cap-file|cap-suid)'
rollback_last() {
  local what=$1 want=$2 journal=${3:-} rc=0
  vp rollback --last "$tree" --threads 2 >"$T/rb.out" 2>"$T/rb.err" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "$what: rollback --last exited $rc"; }
  grep -Eq "$summary_re" "$T/rb.out" || { cat "$T/rb.out" "$T/rb.err" >&2; fail "$what: bad summary"; }
  local got; got=$(grep -E "$summary_re" "$T/rb.out" | sed -E "s/$summary_re/\1/")
  [ "$got" -eq "$want" ] || {
    cat "$T/rb.out" "$T/rb.err" >&2
    fail "$what: rollback restored $got entries, but $want were in the run's after-state"
  }
  local disarmed
  disarmed=$(grep "set-id bits and capabilities not put back" "$T/rb.err" || true)
  if [ -n "$disarmed" ]; then
    [ -n "$journal" ] || { cat "$T/rb.err" >&2; fail "$what: a finished run's rollback left set-id bits off"; }
    grep -Evq "(^|[ /])$window_files: changed after the run, or the run stopped between its chown and putting them back: " \
      <<<"$disarmed" || { echo "$disarmed" >&2; fail "$what: set-id bits left off other files, or not said why"; }
    rc=0
    vp rollback "$journal" --force --no-journal --threads 2 >"$T/rb.out" 2>"$T/rb.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "$what: rollback --force exited $rc"; }
    echo "$what: $(wc -l <<<"$disarmed") file(s) killed between chown and re-arming; rollback --force re-armed them"
  fi
  same_as_before "$what"
}

# --- a full run, measured, and its rollback: the tree as before -------------------------
t0=$(date +%s%N)
vp "$tree" --as 1000 "${MAP[@]}" --threads 2 >"$T/full.out" 2>"$T/full.err" ||
  { cat "$T/full.out" "$T/full.err" >&2; fail "full run failed"; }
t1=$(date +%s%N)
full_ms=$(( (t1 - t0) / 1000000 ))
full_journal=$(ls "$JD"/*.vpj)
[ "$(echo "$full_journal" | wc -l)" -eq 1 ] || fail "the full run left not one journal in $JD: $full_journal"
info=$(vpj info "$full_journal")
[ "$info" = "version=6 header=1 changes=$inodes end=1 torn=-" ] ||
  fail "full run's journal: $info (want $inodes changes and an end record)"
full_size=$(stat -c %s "$full_journal")
manifest "$tree" >"$T/m.full"
cmp -s "$T/m.prepared" "$T/m.full" || {
  { diff "$T/m.prepared" "$T/m.full" || true; } | head -20 >&2
  fail "the full run did not leave every entry 501000:501000 with its mode and xattrs"
}
rollback_last "rollback of the calibration run" "$inodes"
echo "full run: ${full_ms} ms, journal $full_size bytes ($inodes changes); at ${SECONDS}s"

# --- ten kills --------------------------------------------------------------------------
# killer.py MODE VALUE -- CMD...: starts CMD, SIGKILLs it when MODE is met: "time" SECONDS
# after the start, or "size" once the run's new journal in $JD has VALUE bytes. Prints
# "killed" or "finished RC".
cat >"$T/killer.py" <<'PY'
import os, signal, subprocess, sys, time
mode, value, jd, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[5:]
old = set(os.listdir(jd))
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
start = time.monotonic()
journal = None
while True:
    if p.poll() is not None:
        print("finished", p.returncode); sys.exit(0)
    if mode == "time":
        if time.monotonic() - start >= value:
            break
    else:
        if journal is None:
            new = [n for n in os.listdir(jd) if n not in old and n.endswith(".vpj")]
            if new:
                journal = os.path.join(jd, new[0])
        if journal is not None:
            try:
                if os.stat(journal).st_size >= value:
                    break
            except FileNotFoundError:
                pass
    if time.monotonic() - start > 50:
        sys.exit("killer: the run went on for 50 s")
    time.sleep(0.0002 if mode != "time" else min(0.0005, value))
os.kill(p.pid, signal.SIGKILL)
p.wait()
print("killed")
PY

# Moments: before exec; the journal's header only; then fractions of the full journal.
moments=("time 0" "size 1")
for f in 0.03 0.12 0.25 0.40 0.55 0.70 0.85 0.97; do
  moments+=("size $("$PY" -c "print(int($full_size * $f))")")
done
mkdir "$T/fs/old"
mid=0 before_first=0 no_journal=0 completed=0 torn=0
i=0
for m in "${moments[@]}"; do
  i=$((i + 1))
  info=""
  before_list=$(ls "$JD")
  # shellcheck disable=SC2086
  outcome=$("$PY" "$T/killer.py" $m "$JD" -- "$VOLPREP" "$tree" --as 1000 "${MAP[@]}" --threads 2)
  new=$(comm -13 <(echo "$before_list") <(ls "$JD") | head -1)
  state="no journal"
  if [ -n "$new" ]; then
    info=$(vpj info "$JD/$new")
    case "$info" in
      *header=0*) state="torn header" ;;
      *changes=0\ end=0*) state="before the first change"; before_first=$((before_first + 1)) ;;
      *end=1*) state="complete"; completed=$((completed + 1)) ;;
      *) state="mid-run"; mid=$((mid + 1)) ;;
    esac
    case "$info" in *torn=-) ;; *) torn=$((torn + 1)) ;; esac
  else
    no_journal=$((no_journal + 1))
  fi
  now_changed=$(changed_entries)
  echo "kill $i ($m): $outcome; journal: ${new:-none} $info; $state; $now_changed entries changed; at ${SECONDS}s"
  if [ -z "$new" ] && [ "$now_changed" -ne 0 ]; then
    fail "kill $i: no journal was written, but $now_changed entries were changed"
  fi
  rollback_last "kill $i ($m, $state)" "$now_changed" "$([ "$state" = mid-run ] && echo "$JD/$new")"
  if [ -n "$new" ]; then
    case "$info" in
      *torn=-) ;;
      *) grep -qi torn "$T/rb.err" || fail "kill $i: journal has a torn tail, rollback did not say so" ;;
    esac
  fi
  # `rollback --last` and `journal list` read a journal without its end record (a killed run's)
  # in full: keep the directory to the calibration run's pair and this kill's, or the ten 9 MB
  # journals slow each kill down.
  for f in $(comm -13 <(echo "$before_list") <(ls "$JD")); do mv "$JD/$f" "$T/fs/old/"; done
done
echo "kills: $mid mid-run, $before_first before the first change, $no_journal before the journal, $completed after the end record ($torn with a torn tail)"
[ "$mid" -ge 6 ] || fail "only $mid of 10 kills landed mid-run (want >= 6): the tree is too small for this machine"

# --- every killed run is rolled back ----------------------------------------------------
vp journal list --journal-dir "$T/fs/old" --json >"$T/list.json"
"$PY" - "$T/list.json" $((10 - no_journal)) <<'PY' || fail "journal list of the killed runs is wrong"
import json, sys
bad = runs = 0
for line in open(sys.argv[1]):
    j = json.loads(line)
    if "rollback of" in j["status"]:
        continue
    runs += 1
    if j["status"] != "rolled back":
        print("not rolled back:", j, file=sys.stderr); bad = 1
if runs != int(sys.argv[2]):
    print("journal list shows %d killed runs, want %s" % (runs, sys.argv[2]), file=sys.stderr); bad = 1
sys.exit(bad)
PY

# --- a second rollback of the full run's journal changes nothing ---------------------------
rc=0
vp rollback "$full_journal" --threads 2 >"$T/rb2.out" 2>"$T/rb2.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/rb2.out" "$T/rb2.err" >&2; fail "second rollback of $full_journal exited $rc"; }
grep -qx "restored 0, already as before $inodes, changed since the run 0, missing 0, failed 0" "$T/rb2.out" ||
  { cat "$T/rb2.out" >&2; fail "second rollback of the full run's journal was not a no-op"; }
same_as_before "second rollback of the full run"

# --- the window between a chown and the chmod/setcap after it --------------------------------
# The kernel clears setuid, setgid (with g+x) and security.capability on every chown of a
# file; volprep puts them back right after. A SIGKILL between the two leaves the owner changed
# and those gone. The ten kills above almost never land there (5 such files in 50,000), so
# here the state is made as the kernel makes it: by a chown of those files alone (no chmod,
# no setcap). Both ways round: a prepare killed there, and a rollback killed there (it chowns
# back, then restores the bits and the capability). That chown is later than the journal's
# last write, which is also how a file rewritten after the run looks: a plain `rollback`
# restores owners but puts no set-id bit or capability back, and says so; `rollback --force`
# then brings back the tree as before, bits and capabilities included.
mini=$T/fs/mini
make_specials "$mini"
manifest "$mini" >"$T/mini.before"
window=(suid-root sgid-www suid-sgid cap-file cap-suid)
mini_rollback() { # mini_rollback WHAT JOURNAL WANT_SUMMARY [WHY [N]]: WHY the warning says (an extended regexp) N times
  local rc=0 f why=${4:-changed after the run} n=${5:-5}
  vp rollback "$2" --no-journal >"$T/rb.out" 2>"$T/rb.err" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "$1: rollback exited $rc, want 0"; }
  # One warning for each of the five (suid-sgid's under its first link's name).
  [ "$(grep -Ec ": $why: set-id bits and capabilities not put back" "$T/rb.err")" -eq "$n" ] ||
    { cat "$T/rb.out" "$T/rb.err" >&2; fail "$1: re-arming without --force is not refused for each of $n"; }
  for f in "${window[@]}"; do
    [ "$(stat -c %a "$mini/$f")" -lt 1000 ] || fail "$1: $f got its set-id bits back without --force"
    getcap "$mini/$f" | grep -q . && fail "$1: $f got its capabilities back without --force"
  done
  rc=0
  vp rollback "$2" --no-journal --force >"$T/rb.out" 2>"$T/rb.err" || rc=$?
  manifest "$mini" >"$T/mini.now"
  if ! cmp -s "$T/mini.before" "$T/mini.now"; then
    cat "$T/rb.out" "$T/rb.err" >&2
    echo "manifest diff (< before the run, > after the rollback):" >&2
    { diff "$T/mini.before" "$T/mini.now" || true; } >&2
    fail "$1: setuid/setgid bits or file capabilities not as before the run (rollback exit $rc)"
  fi
  [ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "$1: rollback exited $rc, want 0"; }
  grep -Eqx "$3" "$T/rb.out" || { cat "$T/rb.out" "$T/rb.err" >&2; fail "$1: summary is not /$3/"; }
}
mini_entries=$(grep -c . "$T/mini.before")
# A prepare killed after its chown of the five files: they are 501000:501000 without their
# bits and capabilities, everything else as before.
vp "$mini" --as 1000 "${MAP[@]}" --journal "$T/fs/mini1.vpj" >/dev/null 2>&1 || fail "mini prepare failed"
vp rollback "$T/fs/mini1.vpj" --no-journal >/dev/null 2>&1 || fail "mini rollback failed"
manifest "$mini" | cmp -s - "$T/mini.before" || fail "mini: prepare + rollback: not as before"
(cd "$mini" && chown 501000:501000 "${window[@]}")
mini_rollback "a prepare killed between its chown and its chmod/setcap" "$T/fs/mini1.vpj" \
  "restored 5, already as before $((mini_entries - 2 - 5)), changed since the run 0, missing 0, failed 0"
# The same, the run killed there: its journal has no record of a re-arming and no end record
# (both taken out of a finished run's). Its rollback says the run may have stopped there, for
# the five and for sgid-noexec (whose setgid bit the chown kept: without its record, its ctime
# proves nothing either).
vp "$mini" --as 1000 "${MAP[@]}" --journal "$T/fs/mini3.vpj" >/dev/null 2>&1 || fail "mini prepare 3 failed"
vpj records "$T/fs/mini3.vpj" | awk '$2 == "A"' | grep -q . || fail "test bug: mini prepare 3 journaled no re-arming"
vpj drop "$T/fs/mini3.vpj" AE
(cd "$mini" && chown 501000:501000 "${window[@]}")
mini_rollback "a prepare killed between its chown and its chmod/setcap, journal without an end" "$T/fs/mini3.vpj" \
  "restored 6, already as before $((mini_entries - 2 - 6)), changed since the run 0, missing 0, failed 0" \
  "changed after the run, or the run stopped between its chown and putting them back" 6
# A rollback killed after its chown back of the five files: they have their owners of before,
# without their bits and capabilities; everything else is as the run left it.
vp "$mini" --as 1000 "${MAP[@]}" --journal "$T/fs/mini2.vpj" >/dev/null 2>&1 || fail "mini prepare 2 failed"
for f in "${window[@]}"; do
  chown "$(grep "^$f " "$T/mini.before" | cut -d' ' -f2-3 | tr ' ' :)" "$mini/$f"
done
# (Whether the five then count as restored or as already as before is not asserted.)
mini_rollback "a rollback killed between its chown back and its chmod/setcap, run again" "$T/fs/mini2.vpj" \
  "restored [0-9]+, already as before [0-9]+, changed since the run 0, missing 0, failed 0"
got=$(sed -E 's/^restored ([0-9]+), already as before ([0-9]+),.*/\1+\2/' "$T/rb.out")
[ $((got)) -eq $((mini_entries - 2)) ] || fail "mini: rollback 2 counted $got entries, want $((mini_entries - 2))"
echo "journal_crash: ok in ${SECONDS}s"
