#!/usr/bin/env bash
# An interrupted shift is finished by running it again: on a tree of 20,000 entries (mktree.py)
# with the mixed tree's ACLs, v2 and v3 capabilities, setuid files and hardlinks, `volprep
# shift` is SIGKILLed at moments through its run (by the size its journal reaches in a full
# run); the same command run again finishes it, and the tree's manifest equals an
# uninterrupted shift's byte for byte. Rolling back the rerun's journal, then the killed
# run's, gives back the tree as it was. Then the states no timed kill is sure to hit, made by
# hand in the journal of a shift whose end record is cut off: an entry still as it was
# (shifted), one between the chown and the ACL and capability that follow it (finished), one
# changed since by someone else (left alone, and said), and a run with nothing left to do
# (it says the shift is finished, so the next shift is a new one).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
source "$(dirname "$0")/shift_lib.bash"
MKTREE=${MKTREE:-$VOLPREP_SRC/bench/mktree.py}
scratch_tmpfs shift-resume

pristine=$T/fs/pristine
"$PY" "$MKTREE" "$pristine" 20000 >/dev/null
mixed_tree "$pristine/special"
manifest "$pristine" >"$T/m.pristine"

# --- the uninterrupted shift: what every finished one must equal ------------------------------
cp -a "$pristine" "$T/fs/full"
vp shift "$T/fs/full" "${MAP[@]}" >/dev/null 2>&1 || fail "the full shift"
manifest "$T/fs/full" >"$T/m.full"
full_size=$(stat -c %s "$JD"/*full*.vpj)
rm -rf "$T/fs/full" "$JD"/*

# --- kills through the run ----------------------------------------------------------------------
cat >"$T/killer.py" <<'PY'
import os, signal, subprocess, sys, time
value, jd, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[4:]
old = set(os.listdir(jd))
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
start, journal = time.monotonic(), None
while p.poll() is None:
    if journal is None:
        new = [n for n in os.listdir(jd) if n not in old and n.endswith(".vpj")]
        journal = os.path.join(jd, new[0]) if new else None
    try:
        if journal and os.stat(journal).st_size >= value:
            os.kill(p.pid, signal.SIGKILL); p.wait(); print("killed"); sys.exit(0)
    except FileNotFoundError:
        pass
    if time.monotonic() - start > 50:
        sys.exit("killer: the run went on for 50 s")
    time.sleep(0.0002)
print("finished", p.returncode)
PY
vol=$T/fs/vol
killed=0
for f in 0.05 0.4 0.8; do
  rm -rf "$vol" "$JD"/*
  cp -a "$pristine" "$vol"
  outcome=$("$PY" "$T/killer.py" "$(awk -v s="$full_size" -v f="$f" 'BEGIN { printf "%d", s * f }')" "$JD" -- \
    "$VOLPREP" shift "$vol" "${MAP[@]}" --threads 2)
  [ "$outcome" = killed ] && killed=$((killed + 1))
  killed_journal=$(ls "$JD"/*.vpj)
  if [ "$outcome" = killed ]; then
    out=$(vp shift "$vol" "${MAP[@]}" 2>&1) || fail "kill at $f ($outcome): the rerun failed: $out"
    grep -q "finishing the shift that did not finish (journal $killed_journal" <<<"$out" ||
      fail "kill at $f: the rerun does not say it finishes $killed_journal: $out"
  else
    # The run ended before its kill (one of the three may, below): the same command again is
    # refused as a shift of a shifted tree (exit 1), and changes nothing.
    rc=0; out=$(vp shift "$vol" "${MAP[@]}" 2>&1) || rc=$?
    [ "$rc" -eq 1 ] && grep -q "already shifted" <<<"$out" ||
      fail "kill at $f ($outcome): the rerun of a finished shift exited $rc: $out"
  fi
  manifest "$vol" >"$T/m.resumed"
  diff "$T/m.full" "$T/m.resumed" >&2 || fail "kill at $f ($outcome): the finished shift differs from an uninterrupted one"
  # The rerun's journal, then the killed run's: the tree as it was. A kill between the chown of
  # a set-id or capability file and the record of putting them back (the window journal_crash
  # met in CI) leaves that file looking rewritten since: the killed run's rollback gives back
  # its owner and mode without them and says the run may have stopped there, and its rollback
  # --force puts them back. Only those files may be named so, and only after a kill.
  # Once, `rollback --last`: the rerun finished the killed shift, and both are one shift to it.
  if [ "$f" = 0.4 ] && [ "$outcome" = killed ]; then
    rc=0; vp rollback --last "$vol" >"$T/rb.out" 2>"$T/rb.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "kill at $f: rollback --last exited $rc"; }
    grep -q "finished the shift that did not finish in $killed_journal: undoing that one too" "$T/rb.err" ||
      { cat "$T/rb.err" >&2; fail "kill at $f: rollback --last did not undo the killed shift too"; }
  else
    for j in $(ls -r "$JD"/*.vpj); do
      rc=0; vp rollback "$j" >"$T/rb.out" 2>"$T/rb.err" || rc=$?
      [ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "kill at $f: rollback of $j exited $rc"; }
    done
  fi
  disarmed=$(grep "set-id bits and capabilities not put back" "$T/rb.err" || true)  # the killed run's
  if [ -n "$disarmed" ]; then
    [ "$outcome" = killed ] || { cat "$T/rb.err" >&2; fail "kill at $f: a finished run's rollback left set-id bits off"; }
    grep -Evq "/special/(suid|ping|d0/a|d0/b|d3/c|d3/v3cap|d2): changed after the run, or the run stopped between its chown and putting them back: " \
      <<<"$disarmed" && { echo "$disarmed" >&2; fail "kill at $f: set-id bits left off other files, or not said why"; }
    rc=0; vp rollback "$killed_journal" --force --no-journal >"$T/rb.out" 2>"$T/rb.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "kill at $f: rollback --force of the killed run exited $rc"; }
    echo "kill at $f: $(wc -l <<<"$disarmed") file(s) killed between chown and re-arming; rollback --force re-armed them"
  fi
  manifest "$vol" | cmp -s - "$T/m.pristine" || fail "kill at $f: rolling back both runs is not the tree as it was"
  echo "kill at $f of the journal: $outcome; finished, equal to an uninterrupted shift, rolled back"
done
[ "$killed" -ge 2 ] || fail "only $killed of 3 runs were killed mid-run"

# --- states made by hand ------------------------------------------------------------------------
rm -rf "$vol" "$JD"/*
mkdir "$vol"
mixed_tree "$vol"
cp -a "$vol" "$T/fs/small-orig"
cp -a "$vol" "$T/fs/small-full"
vp shift "$T/fs/small-full" "${MAP[@]}" >/dev/null 2>&1 || fail "shift of the copy"
manifest "$T/fs/small-full" >"$T/m.small-full"
vp shift "$vol" "${MAP[@]}" >/dev/null 2>&1 || fail "shift of the small tree"
j=$(ls "$JD"/*-fs-vol.vpj)
end=$(vpj records "$j" | awk '$2 == "E" { print $1 }')
truncate -s "$end" "$j"  # as a kill would leave it: no end record
# Nothing left to do: the rerun changes nothing and says the shift is finished.
out=$(vp shift "$vol" "${MAP[@]}" 2>&1) || fail "rerun with nothing left: $out"
manifest "$vol" | cmp -s - "$T/m.small-full" || fail "the rerun with nothing left changed the tree"
out=$(vp shift "$vol" "${MAP[@]}" 2>&1) && fail "a third shift was not refused as shifted already: $out"
grep -q "already shifted" <<<"$out" || fail "third shift: $out"
# Again, now with entries put back by hand.
rm -f "$JD"/*
vp shift "$vol" "${MAP[@]}" --reverse --keep-setid >/dev/null 2>&1 || fail "shift back"
rm -f "$JD"/*
vp shift "$vol" "${MAP[@]}" >/dev/null 2>&1 || fail "shift again"
j=$(ls "$JD"/*-fs-vol.vpj)
end=$(vpj records "$j" | awk '$2 == "E" { print $1 }')
truncate -s "$end" "$j"
# Still as it was: the owner and the ACL back.
chown --reference="$T/fs/small-orig/d0/sub0/f0" "$vol/d0/sub0/f0"
getfacl -n "$T/fs/small-orig/d0/sub0/f0" 2>/dev/null | setfacl --set-file=- "$vol/d0/sub0/f0"
getfacl -n "$vol/d0/sub0/f0" 2>/dev/null | grep -qx 'user:1000:rw-' || fail "the ACL was not put back by hand"
# Between: the chown made, the capability (which it removes) and set-id bits not yet back.
chown 501000:500033 "$vol/suid"  # the kernel clears set-id bits and the capability
getcap "$vol/suid" | grep -q cap_chown && fail "the chown kept the capability"
# Changed since by someone else: another owner.
chown 4242:4242 "$vol/d3/v3cap"
out=$(vp shift "$vol" "${MAP[@]}" 2>&1) || fail "rerun with states by hand: $out"
grep -q "d3/v3cap: changed since the unfinished shift recorded it: left alone" <<<"$out" ||
  fail "the conflict is not reported: $out"
manifest "$vol" | grep -v 'd3/v3cap' >"$T/m.hand"
grep -v 'd3/v3cap' "$T/m.small-full" | diff - "$T/m.hand" >&2 || fail "the rerun did not finish the states by hand"
[ "$(stat -c %u:%g "$vol/d3/v3cap")" = 4242:4242 ] || fail "the conflict was changed"
echo "ok: shift_resume"
