#!/usr/bin/env bash
# Rollback when someone changed an entry after the run, and the journal commands. On the demo
# jenkins_home: a real run writes its journal (dir 0700, file 0600, named by UTC time with
# milliseconds and the volume); `journal show` prints the run's changes exactly as the dry run
# printed them; after a chown of one file to 1234:1234, `rollback` leaves that file alone,
# reports it and exits 1 while restoring the rest; `rollback --force` restores it too (exit 0);
# a third rollback changes nothing. `journal list` (text and --json) tells complete, rolled
# back and interrupted (a run SIGKILLed mid-way) apart. --journal FILE and --journal-dir DIR
# put the journal where they say; --no-journal writes none and warns. The host's
# /var/lib/volprep is never touched.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
JD=$VOLPREP_JOURNAL_DIR
host_state() { find /var/lib/volprep -printf '%p %y %m %s %T@\n' 2>/dev/null | LC_ALL=C sort || true; }
host_state >"$T/host.before"

mkdir "$T/a"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/a")
manifest "$vol" >"$T/m.before"

# --- a real run: the journal, and `journal show` = the dry run ------------------------------
vp "$vol" --as 1000 "${MAP[@]}" --dry-run >"$T/dry.out" 2>/dev/null
[ "$(grep -c "^$vol" "$T/dry.out")" -eq 19 ] || fail "dry run: $(cat "$T/dry.out")"
[ ! -e "$JD" ] || fail "a dry run created the journal directory"
vp "$vol" --as 1000 "${MAP[@]}" >"$T/run.out" 2>"$T/run.err" || { cat "$T/run.err" >&2; fail "prepare failed"; }
[ "$(find "$JD" -name "*.vpj" | wc -l)" -eq 1 ] || fail "want one journal in $JD, have: $(ls -la "$JD")"
J=$(ls "$JD"/*.vpj)
[ "$(stat -c %a "$JD")" = 700 ] || fail "journal directory mode $(stat -c %a "$JD"), want 700"
[ "$(stat -c %a "$J")" = 600 ] || fail "journal file mode $(stat -c %a "$J"), want 600"
vol_name=$(echo "${vol#/}" | tr / -)
# (The milliseconds' three digits are checked at the end, with a clock that makes them 005.)
[[ "${J##*/}" =~ ^[0-9]{8}T[0-9]{6}\.[0-9]{1,3}Z-${vol_name//./\\.}\.vpj$ ]] ||
  fail "journal name ${J##*/} is not YYYYMMDDTHHMMSS.mmmZ-$vol_name.vpj"

# A rerun has nothing to change, so nothing to undo: it leaves no journal (and says so).
vp -v "$vol" --as 1000 "${MAP[@]}" >"$T/rerun.out" 2>"$T/rerun.err" || fail "rerun failed: $(cat "$T/rerun.err")"
[ "$(find "$JD" -name "*.vpj" | wc -l)" -eq 1 ] || fail "a rerun that changed nothing wrote a journal: $(ls "$JD")"
grep -q 'no rollback journal written' "$T/rerun.err" || fail "rerun did not say it wrote no journal: $(cat "$T/rerun.err")"

vp journal show "$J" >"$T/show.out" || fail "journal show exited $?"
grep "^$vol" "$T/dry.out" >"$T/dry.lines"
grep -v '^#' "$T/show.out" | grep -v '^scanned' >"$T/show.lines"
diff "$T/dry.lines" "$T/show.lines" >&2 || fail "journal show's changes differ from the dry run's"
grep -qx "$vol/secrets/master.key  owner 1000:1000 -> 501000:501000  mode 0600" "$T/show.lines" ||
  fail "journal show lacks the contract's example line"
grep -qx '# status complete' "$T/show.out" || fail "journal show: no '# status complete': $(cat "$T/show.out")"
grep -qx 'scanned 19, changed 19, failed 0' "$T/show.out" || fail "journal show: no end summary"

status_of() { # status_of JOURNAL: its status in `journal list --json`
  vp journal list --json | "$PY" -c '
import json, sys
for line in sys.stdin:
    j = json.loads(line)
    if j["journal"] == sys.argv[1]:
        print(j["status"]); break
else:
    print("(not listed)")' "$1"
}
[ "$(status_of "$J")" = complete ] || fail "journal list: run is '$(status_of "$J")', want complete"
vp journal list >"$T/list.txt"
grep -q "  $vol  19 entries  complete  $J\$" "$T/list.txt" || fail "journal list (text): $(cat "$T/list.txt")"

# --- someone changes one file after the run -----------------------------------------------
chown 1234:1234 "$vol/secrets/master.key"
listed=$(ls "$JD")
rc=0; vp rollback "$J" >"$T/rb.out" 2>"$T/rb.err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "rollback with a changed file exited $rc, want 1"; }
grep -qx 'restored 18, already as before 0, changed since the run 1, missing 0, failed 0' "$T/rb.out" ||
  { cat "$T/rb.out" >&2; fail "rollback with a changed file: unexpected summary"; }
grep -q "$vol/secrets/master.key.*changed since the run" "$T/rb.err" ||
  { cat "$T/rb.err" >&2; fail "rollback does not report secrets/master.key as changed since the run"; }
[ "$(stat -c '%u:%g %a' "$vol/secrets/master.key")" = "1234:1234 600" ] ||
  fail "rollback touched the changed file: $(stat -c '%u:%g %a' "$vol/secrets/master.key")"
manifest "$vol" >"$T/m.now"
diff "$T/m.before" "$T/m.now" >"$T/m.diff" || true
[ "$(grep -c '^[<>]' "$T/m.diff")" -eq 2 ] && grep -qx '> secrets/master.key 1234 1234 100600' "$T/m.diff" ||
  { cat "$T/m.diff" >&2; fail "rollback did not restore everything but secrets/master.key"; }
# The rollback's own journal: in the journal directory, naming the journal it undid.
own=$JD/$(comm -13 <(echo "$listed") <(ls "$JD"))
[ -f "$own" ] || fail "the rollback wrote no journal of its own in $JD"
vp journal show "$own" >"$T/own.show"
grep -qx "# rollback of ${J##*/}" "$T/own.show" || fail "the rollback's journal does not name ${J##*/}"

# --- --force restores it ------------------------------------------------------------------
rc=0; vp rollback "$J" --force >"$T/rb.out" 2>"$T/rb.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "rollback --force exited $rc, want 0"; }
grep -qx 'restored 1, already as before 18, changed since the run 0, missing 0, failed 0' "$T/rb.out" ||
  { cat "$T/rb.out" >&2; fail "rollback --force: unexpected summary"; }
grep -q "$vol/secrets/master.key" "$T/rb.err" || fail "rollback --force does not mention secrets/master.key"
manifest "$vol" | cmp -s - "$T/m.before" || fail "after rollback --force the volume is not as before the run"
[ "$(status_of "$J")" = "rolled back" ] || fail "journal list: run is '$(status_of "$J")', want rolled back"
# A third time: nothing to do.
rc=0; vp rollback "$J" >"$T/rb.out" 2>"$T/rb.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "third rollback exited $rc"; }
grep -qx 'restored 0, already as before 19, changed since the run 0, missing 0, failed 0' "$T/rb.out" ||
  { cat "$T/rb.out" >&2; fail "third rollback: unexpected summary"; }
# A dry run says so too, and writes no journal.
listed=$(ls "$JD")
vp rollback "$J" --dry-run >"$T/rb.out" 2>/dev/null || fail "rollback --dry-run exited $?"
grep -qx 'to restore 0, already as before 19, changed since the run 0, missing 0, failed 0' "$T/rb.out" ||
  { cat "$T/rb.out" >&2; fail "rollback --dry-run: unexpected summary"; }
[ "$(ls "$JD")" = "$listed" ] || fail "rollback --dry-run wrote a journal"

# --- an interrupted run: SIGKILLed once its first batch of changes is in the journal --------
tree=$T/big
"$PY" - "$tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(120):  # 12,000 files in 120 directories: more than a 4096-change batch a thread
    os.makedirs(os.path.join(root, "d%02d" % d))
    for f in range(100):
        open(os.path.join(root, "d%02d" % d, "f%03d" % f), "w").close()
PY
chown -R 1000:1000 "$tree"
manifest "$tree" >"$T/big.before"
listed=$(ls "$JD")
"$PY" - "$JD" "$VOLPREP" "$tree" --as 1000 "${MAP[@]}" --threads 2 <<'PY' >"$T/kill.out"
import os, signal, subprocess, sys, time
jd, cmd = sys.argv[1], sys.argv[2:]
old = set(os.listdir(jd))
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.monotonic() + 30
while time.monotonic() < deadline and p.poll() is None:
    new = [n for n in os.listdir(jd) if n not in old]
    # The header record is under 400 bytes; past that, the first batch is being written.
    if new and os.stat(os.path.join(jd, new[0])).st_size > 1000:
        os.kill(p.pid, signal.SIGKILL)
        break
    time.sleep(0.0002)
p.wait()
print("killed" if p.returncode == -signal.SIGKILL else "finished %d" % p.returncode)
PY
grep -qx killed "$T/kill.out" || fail "the run to interrupt was not killed: $(cat "$T/kill.out")"
K=$JD/$(comm -13 <(echo "$listed") <(ls "$JD"))
[ -f "$K" ] || fail "the killed run left no journal"
[[ "$(vpj info "$K")" == *end=0* ]] || fail "the killed run's journal has an end record: $(vpj info "$K")"
[ "$(status_of "$K")" = interrupted ] || fail "journal list: killed run is '$(status_of "$K")', want interrupted"
vp journal list >"$T/list.txt"
grep -q "  $tree  [0-9]* entries  interrupted  $K\$" "$T/list.txt" || fail "journal list (text): killed run not interrupted"
vp journal show "$K" >"$T/k.show"
grep -q '^# status interrupted' "$T/k.show" || fail "journal show: killed run not interrupted"
rc=0; vp rollback --last "$tree" >"$T/rb.out" 2>"$T/rb.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/rb.out" "$T/rb.err" >&2; fail "rollback of the killed run exited $rc"; }
grep -qi 'interrupted\|torn' "$T/rb.err" || fail "rollback of the killed run does not say it was interrupted"
manifest "$tree" | cmp -s - "$T/big.before" || fail "rollback of the killed run: tree not as before"
[ "$(status_of "$K")" = "rolled back" ] || fail "journal list: killed run is '$(status_of "$K")' after its rollback"
# Every rollback journal is listed as complete, naming the run it undid.
vp journal list --json | "$PY" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert set(rows[0]) == {"journal", "volume", "started", "entries", "status"}, rows[0]
for r in rows:
    if r["status"].startswith("complete (rollback of "):
        assert r["status"].endswith(".vpj)"), r
    else:
        assert r["status"] == "rolled back", r' || fail "journal list --json: unexpected rows"

# --- --journal FILE, --journal-dir DIR -----------------------------------------------------
listed=$(ls "$JD")
vp "$vol" --as 1000 "${MAP[@]}" --journal "$T/mine.vpj" >/dev/null 2>&1 || fail "--journal FILE run failed"
[ -f "$T/mine.vpj" ] && [ "$(stat -c %a "$T/mine.vpj")" = 600 ] || fail "--journal FILE: no file, or not 0600"
[ "$(ls "$JD")" = "$listed" ] || fail "--journal FILE also wrote into $JD"
vp rollback "$T/mine.vpj" --journal-dir "$T/jd2" >"$T/rb.out" 2>&1 || fail "rollback of --journal FILE's journal failed"
grep -qx 'restored 19, already as before 0, changed since the run 0, missing 0, failed 0' "$T/rb.out" ||
  fail "rollback of --journal FILE's journal: $(cat "$T/rb.out")"
[ "$(stat -c %a "$T/jd2")" = 700 ] && [ "$(ls "$T/jd2" | wc -l)" -eq 1 ] ||
  fail "rollback --journal-dir DIR: its own journal not alone in a 0700 DIR"
# Only a given DIR's last component is made (journal_dir_typo tests a missing parent).
mkdir "$T/jd3"
vp "$vol" --as 1000 "${MAP[@]}" --journal-dir "$T/jd3/sub" >/dev/null 2>&1 || fail "--journal-dir run failed"
[ "$(stat -c %a "$T/jd3/sub")" = 700 ] && [ "$(ls "$T/jd3/sub" | wc -l)" -eq 1 ] ||
  fail "--journal-dir DIR: no journal alone in a 0700 DIR"
vp rollback --last "$vol" --journal-dir "$T/jd3/sub" >/dev/null 2>&1 || fail "rollback --last --journal-dir failed"
manifest "$vol" | cmp -s - "$T/m.before" || fail "--journal-dir: volume not as before after its rollback"
[ "$(ls "$JD")" = "$listed" ] || fail "--journal FILE / --journal-dir runs wrote into $JD"

# --- --no-journal ----------------------------------------------------------------------------
rc=0; vp "$vol" --as 1000 "${MAP[@]}" --no-journal >"$T/nj.out" 2>"$T/nj.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/nj.err" >&2; fail "--no-journal run exited $rc"; }
grep -qi 'warn.*no.*journal\|no-journal' "$T/nj.err" || { cat "$T/nj.err" >&2; fail "--no-journal: no warning"; }
[ "$(ls "$JD")" = "$listed" ] || fail "--no-journal wrote a journal into $JD"
[ "$(stat -c %u:%g "$vol/config.xml")" = 501000:501000 ] || fail "--no-journal run changed nothing"
# (Its changes are the first run's: that run's journal undoes them.)
vp rollback --last "$vol" --no-journal >"$T/rb.out" 2>/dev/null || fail "rollback --last after --no-journal: exit $?"
grep -q '^restored 19,' "$T/rb.out" || fail "rollback --last after --no-journal: $(cat "$T/rb.out")"
manifest "$vol" | cmp -s - "$T/m.before" || fail "after --no-journal and a rollback: volume not as before"
# ... and with a journal directory that does not exist: it is not made.
vp "$vol" --as 1000 "${MAP[@]}" --no-journal --journal-dir "$T/never" >/dev/null 2>&1 || fail "--no-journal --journal-dir failed"
[ ! -e "$T/never" ] || fail "--no-journal created the journal directory $T/never"
# That run left the volume prepared with no journal of its own: the first run's undoes it.
vp rollback --last "$vol" --no-journal >/dev/null 2>&1 || fail "rollback --last after the second --no-journal run"
manifest "$vol" | cmp -s - "$T/m.before" || fail "after the second --no-journal run and a rollback: volume not as before"

relative_journal_dir() {
  # --- a relative --journal-dir is relative to the working directory, like any path: made
  # there (0700; its last component only), nowhere else; and one that is a symlink is refused
  # as an absolute one is.
  # Names starting with "q": a volprep that drops a relative path's first character and roots
  # the rest at / would make /volprep-e2e-rel-$$ (removed on exit, if empty).
  mkdir "$T/cwd" "$T/cwd/real"
  ln -s real "$T/cwd/qvolprep-e2e-link-$$"
  rc=0; (cd "$T/cwd" && vp "$vol" --as 1000 "${MAP[@]}" --journal-dir "qvolprep-e2e-rel-$$") >/dev/null 2>"$T/rel.err" || rc=$?
  [ ! -e "/volprep-e2e-rel-$$" ] || { cat "$T/rel.err" >&2; fail "relative --journal-dir qvolprep-e2e-rel-$$ made /volprep-e2e-rel-$$ at the root (exit $rc)"; }
  [ "$rc" -eq 0 ] || { cat "$T/rel.err" >&2; fail "relative --journal-dir: exit $rc"; }
  [ "$(stat -c %a "$T/cwd/qvolprep-e2e-rel-$$" 2>&1)" = 700 ] && [ "$(ls "$T/cwd/qvolprep-e2e-rel-$$" | wc -l)" -eq 1 ] ||
    fail "relative --journal-dir: no journal alone in a 0700 \$PWD/qvolprep-e2e-rel-$$"
  vp rollback --last "$vol" --journal-dir "$T/cwd/qvolprep-e2e-rel-$$" >/dev/null 2>&1 || fail "rollback after relative --journal-dir"
  rc=0; (cd "$T/cwd" && vp "$vol" --as 1000 "${MAP[@]}" --journal-dir "qvolprep-e2e-link-$$") >/dev/null 2>"$T/rel.err" || rc=$?
  [ ! -e "/volprep-e2e-link-$$" ] || fail "relative --journal-dir qvolprep-e2e-link-$$ made /volprep-e2e-link-$$ at the root"
  [ -z "$(ls "$T/cwd/real")" ] || fail "relative --journal-dir through a symlink: journal written through it (exit $rc)"
  [ "$rc" -ne 0 ] || fail "relative --journal-dir that is a symlink: not refused"
  [ "$(stat -c %u:%g "$vol/config.xml")" = 1000:1000 ] || fail "relative --journal-dir that is a symlink: the volume changed"
  manifest "$vol" | cmp -s - "$T/m.before" || fail "relative --journal-dir: volume not as before"
  [ "$(ls "$JD")" = "$listed" ] || fail "relative --journal-dir runs wrote into $JD"
}

journal_name_ms() {
  # --- the journal name's milliseconds are three digits --------------------------------------
  # A clock whose milliseconds read 005 (LD_PRELOAD over clock_gettime): "…T091812.005Z-…",
  # never "…T091812.5Z-…" (names would then not sort by time).
  cat >"$T/clock5ms.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>
int clock_gettime(clockid_t id, struct timespec* ts) {
  static int (*real)(clockid_t, struct timespec*);
  if (!real) real = (int (*)(clockid_t, struct timespec*))dlsym(RTLD_NEXT, "clock_gettime");
  int r = real(id, ts);
  if (r == 0 && id == CLOCK_REALTIME) ts->tv_nsec = 5000000 + ts->tv_nsec % 1000000;
  return r;
}
C
"${CC:-cc}" -shared -fPIC -O2 -o "$T/clock5ms.so" "$T/clock5ms.c" -ldl || fail "cannot build the clock shim (no C compiler?)"
mkdir "$T/b"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/b")
vol_name=$(echo "${vol#/}" | tr / -)
LD_PRELOAD=$T/clock5ms.so ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
  vp "$vol" --as 1000 "${MAP[@]}" --journal-dir "$T/jd5" >/dev/null 2>&1 || fail "run with the 5 ms clock failed"
name=$(ls "$T/jd5")
[[ "$name" =~ ^[0-9]{8}T[0-9]{6}\.005Z-${vol_name//./\\.}\.vpj$ ]] ||
  fail "journal name '$name' at millisecond 5: want YYYYMMDDTHHMMSS.005Z-$vol_name.vpj (zero-padded)"
}

# The last two checks are independent: both run (in subshells), whatever the other finds.
for d in "/volprep-e2e-rel-$$" "/volprep-e2e-link-$$"; do
  [ ! -e "$d" ] || fail "test bug: $d exists before the test"
  on_exit "rmdir '$d/sub' '$d' 2>/dev/null"
done
failed=0
(relative_journal_dir) || failed=1
(journal_name_ms) || failed=1
host_state | cmp -s - "$T/host.before" || fail "/var/lib/volprep changed"
[ "$failed" -eq 0 ] || exit 1
echo "journal_conflict: ok"
