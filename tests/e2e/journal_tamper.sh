#!/usr/bin/env bash
# volprep rollback verifies a journal before it changes anything. On the prepared demo
# jenkins_home: a flipped byte inside the journal (a record's payload, the header, a record's
# length) is refused naming the offset (exit 3); a torn tail (the last bytes cut) is accepted,
# reported, and the records before the cut are restored; crafted records naming ../etc/shadow
# (or an absolute path) are refused with nothing restored and /etc/shadow (and decoys just
# outside the volume) untouched; a volume root replaced by another directory of the same name
# is refused (exit 5); a journal reached through a symlink is refused (exit 5); a journal of
# format version 6 is refused with a message naming the versions this volprep reads.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
JD=$VOLPREP_JOURNAL_DIR
mkdir -p "$JD" "$T/work"

mkdir "$T/a"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/a")
manifest "$vol" >"$T/m.before"
vp "$vol" --as 1000 "${MAP[@]}" >/dev/null 2>"$T/prep.err" || { cat "$T/prep.err" >&2; fail "prepare failed"; }
J=$(ls "$JD"/*.vpj)
[ "$(echo "$J" | wc -l)" -eq 1 ] || fail "want one journal after one run, have: $J"
manifest "$vol" >"$T/m.prepared"
sed -E 's/^([^ ]+) [0-9]+ [0-9]+ /\1 501000 501000 /' "$T/m.before" | cmp -s - "$T/m.prepared" ||
  fail "prepare did not leave the demo volume 501000:501000"
[ "$(vpj info "$J")" = "version=6 header=1 changes=19 end=1 torn=-" ] || fail "journal: $(vpj info "$J")"
vpj records "$J" >"$T/records"  # OFFSET KIND LENGTH [PATH]

# A refused rollback changes nothing: the volume as the run left it, no journal of its own.
journals_before=$(ls "$JD")
unchanged() { # unchanged WHAT
  manifest "$vol" | cmp -s - "$T/m.prepared" || fail "$1: the volume changed"
  [ "$(ls "$JD")" = "$journals_before" ] || fail "$1: a refused rollback wrote a journal: $(ls "$JD")"
}
# refused WANT_RC WHAT JOURNAL GREP...: rollback exits WANT_RC, stderr matches every GREP
# (extended regexps), nothing changed.
refused() {
  local want=$1 what=$2 j=$3 rc=0 re; shift 3
  vp rollback "$j" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$T/out" "$T/err" >&2; fail "$what: rollback exited $rc, want $want"; }
  for re in "$@"; do
    grep -Eq "$re" "$T/err" || { cat "$T/err" >&2; fail "$what: stderr does not match /$re/"; }
  done
  ! grep -q '^restored' "$T/out" || fail "$what: a refused rollback printed a summary: $(cat "$T/out")"
  unchanged "$what"
}

# --- a flipped byte in the middle: in a change record's payload --------------------------
read -r off _ len path < <(sed -n 10p "$T/records")
[ -n "$path" ] || fail "test bug: record 10 is no change record: $(sed -n 10p "$T/records")"
cp "$J" "$T/work/flip-payload.vpj"
vpj flip "$T/work/flip-payload.vpj" $((off + 4 + len / 2))
refused 3 "flipped byte at $((off + 4 + len / 2)) (record at $off, $path)" "$T/work/flip-payload.vpj" \
  "offset $off\b" "damaged|checksum"

# ... in a change record's checksum
cp "$J" "$T/work/flip-crc.vpj"
vpj flip "$T/work/flip-crc.vpj" $((off + 4 + len + 1))
refused 3 "flipped checksum byte of the record at $off" "$T/work/flip-crc.vpj" "offset $off\b"

# ... in the header record
cp "$J" "$T/work/flip-header.vpj"
vpj flip "$T/work/flip-header.vpj" 40
refused 3 "flipped byte in the header" "$T/work/flip-header.vpj" "offset 12\b"

# ... in the magic
cp "$J" "$T/work/flip-magic.vpj"
vpj flip "$T/work/flip-magic.vpj" 3
refused 3 "flipped byte in the magic" "$T/work/flip-magic.vpj" "not a volprep journal"

# --- version 7 -----------------------------------------------------------------------------
cp "$J" "$T/work/v7.vpj"
vpj setversion "$T/work/v7.vpj" 7
refused 3 "format version 7" "$T/work/v7.vpj" "version 7" "versions 1 to 6" "newer volprep"
vp journal show "$T/work/v7.vpj" >/dev/null 2>&1 && fail "journal show read a version 7 journal"

# --- crafted records: ../etc/shadow, absolute paths ---------------------------------------
# Decoys where the crafted paths lead, each in the state the record says the run left it
# (so a volprep that followed the record would "restore" it to 0:0 mode 0000), and the real
# /etc/shadow, recorded in its current state (so even a broken volprep leaves it alone).
mkdir -p "$T/a/etc"
echo decoy >"$T/a/etc/shadow"; chown 501000:501000 "$T/a/etc/shadow"; chmod 0640 "$T/a/etc/shadow"
echo decoy >"$T/decoy-abs";    chown 501000:501000 "$T/decoy-abs";    chmod 0640 "$T/decoy-abs"
spec_after() { # PATH FILE: FILE recorded as changed from 0:0 0000 to its current state
  "$PY" -c '
import os, sys
st = os.stat(sys.argv[2])
print("|".join(map(str, [sys.argv[1], os.major(st.st_dev), os.minor(st.st_dev), st.st_ino,
                         "%o" % (st.st_mode & 0o170000), 0, 0, "%o" % (st.st_mode & 0o7777),
                         st.st_uid, st.st_gid])))' "$1" "$2"
}
spec_now() { # PATH FILE: FILE recorded with its current state before and after (harmless)
  "$PY" -c '
import os, sys
st = os.stat(sys.argv[2])
print("|".join(map(str, [sys.argv[1], os.major(st.st_dev), os.minor(st.st_dev), st.st_ino,
                         "%o" % st.st_mode, st.st_uid, st.st_gid, "%o" % (st.st_mode & 0o7777),
                         st.st_uid, st.st_gid])))' "$1" "$2"
}
# A genuine record first (config.xml as the run changed it), so "nothing restored" shows the
# whole journal was refused before the first change, not just the bad record skipped.
good=$("$PY" -c '
import os, sys
st = os.stat(sys.argv[1])
print("|".join(map(str, ["config.xml", os.major(st.st_dev), os.minor(st.st_dev), st.st_ino,
                         "100640", 1000, 1000, "640", 501000, 501000])))' "$vol/config.xml")
snap() { stat -c '%u:%g %a %Z %s' /etc/shadow "$T/a/etc/shadow" "$T/decoy-abs"; }
snap >"$T/snap.before"
crafted() { # crafted NAME SPEC...: a journal of J's header and these records; prints its path
  local name=$1; shift
  vpj craft "$J" "$T/work/$name.vpj" "$good" "$@"
  echo "$T/work/$name.vpj"
}
# The offset of the second record (the bad one) in a crafted journal.
second_offset() { vpj records "$1" | sed -n 3p | cut -d' ' -f1; }
[ -e /etc/shadow ] || fail "test bug: no /etc/shadow on this host"
for spec in "$(spec_after ../etc/shadow "$T/a/etc/shadow")" \
            "$(spec_now ../../../../../../../../../../etc/shadow /etc/shadow)" \
            "$(spec_after jobs/../../etc/shadow "$T/a/etc/shadow")" \
            "$(spec_now /etc/shadow /etc/shadow)" \
            "$(spec_after "$T/decoy-abs" "$T/decoy-abs")" \
            "$(spec_after ./../etc/shadow "$T/a/etc/shadow")"; do
  name=evil-$(echo "${spec%%|*}" | tr -c 'a-zA-Z0-9\n' _)
  j=$(crafted "$name" "$spec")
  [ "$(vpj info "$j")" = "version=6 header=1 changes=2 end=0 torn=-" ] || fail "test bug: crafted $name: $(vpj info "$j")"
  refused 3 "crafted record for ${spec%%|*}" "$j" "offset $(second_offset "$j")\b" "outside|absolute|\.\."
  snap | cmp -s - "$T/snap.before" || fail "crafted record for ${spec%%|*}: /etc/shadow or a decoy changed"
  vp journal show "$j" >/dev/null 2>&1 && fail "journal show accepted a record for ${spec%%|*}"
done
# The harness itself: the same crafted journal with a harmless second record is accepted:
# config.xml restored, plugins/git.jpi (recorded in its current state) already as before.
# So the refusals above were for the paths.
j=$(crafted control "$(spec_now plugins/git.jpi "$vol/plugins/git.jpi")")
rc=0; vp rollback "$j" --no-journal >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/out" "$T/err" >&2; fail "control crafted journal: exit $rc"; }
grep -qx 'restored 1, already as before 1, changed since the run 0, missing 0, failed 0' "$T/out" ||
  { cat "$T/out" "$T/err" >&2; fail "control crafted journal: unexpected summary"; }
[ "$(stat -c %u:%g "$vol/config.xml")" = 1000:1000 ] || fail "control crafted journal: config.xml not restored"
chown 501000:501000 "$vol/config.xml"  # back to the run's state
unchanged "control crafted journal (config.xml put back)"

# --- a symlink to a real journal ----------------------------------------------------------
ln -s "$J" "$T/work/link.vpj"
refused 5 "journal given through a symlink" "$T/work/link.vpj" "symlink"
# ... and one in the journal directory is not taken by --last: the real one moved away.
mv "$J" "$T/work/real.vpj"
ln -s "$T/work/real.vpj" "$J"
rc=0; vp rollback --last "$vol" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -ne 0 ] || { cat "$T/out" "$T/err" >&2; fail "rollback --last used a symlink in the journal directory"; }
! grep -q '^restored' "$T/out" || fail "rollback --last through a symlink printed a summary"
grep -F "$J" "$T/err" | grep -q "not considered for --last" ||
  fail "rollback --last did not say it passed over the symlinked journal: $(cat "$T/err")"
unchanged "rollback --last with a symlinked journal"
rm "$J" && mv "$T/work/real.vpj" "$J"

# --- the volume root replaced by another directory of the same name -----------------------
mv "$vol" "$vol.moved"
mkdir "$vol" && chown 501000:501000 "$vol" && chmod 0750 "$vol"
rc=0; vp rollback "$J" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 5 ] || { cat "$T/out" "$T/err" >&2; fail "replaced volume root: rollback exited $rc, want 5"; }
grep -Eq "no longer|inode" "$T/err" || { cat "$T/err" >&2; fail "replaced volume root: no clear message"; }
rc=0; vp rollback --last "$vol" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 5 ] || { cat "$T/out" "$T/err" >&2; fail "replaced volume root: rollback --last exited $rc, want 5"; }
[ "$(stat -c '%u:%g %a' "$vol")" = "501000:501000 750" ] || fail "replaced volume root: the new directory was changed"
[ -z "$(ls -A "$vol")" ] || fail "replaced volume root: something appeared in the new directory"
rmdir "$vol" && mv "$vol.moved" "$vol"
unchanged "replaced volume root (the original moved back)"

# --- a torn tail: the last 10 bytes cut (the end record) -----------------------------------
size=$(stat -c %s "$J")
head -c $((size - 10)) "$J" >"$T/work/torn-end.vpj"
cp "$J" "$T/work/full-1.vpj"
rc=0; vp rollback "$T/work/torn-end.vpj" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/out" "$T/err" >&2; fail "torn tail: rollback exited $rc, want 0"; }
end_off=$(grep ' E ' "$T/records" | cut -d' ' -f1)
grep -qi "torn" "$T/err" || { cat "$T/err" >&2; fail "torn tail: not reported on stderr"; }
grep -q "offset $end_off\b" "$T/err" || { cat "$T/err" >&2; fail "torn tail: the report does not name offset $end_off"; }
grep -qx 'restored 19, already as before 0, changed since the run 0, missing 0, failed 0' "$T/out" ||
  { cat "$T/out" "$T/err" >&2; fail "torn tail: unexpected summary"; }
manifest "$vol" | cmp -s - "$T/m.before" || fail "torn tail: the volume is not as before the run"

# --- a torn tail that cuts the last change record: the records before it are restored ------
listed=$(ls "$JD")
vp "$vol" --as 1000 "${MAP[@]}" >/dev/null 2>"$T/prep.err" || { cat "$T/prep.err" >&2; fail "second prepare failed"; }
J2=$JD/$(comm -13 <(echo "$listed") <(ls "$JD"))
[ -f "$J2" ] || fail "test bug: the second prepare left no single new journal: $J2"
vpj records "$J2" >"$T/records2"
read -r last_off _ last_len last_path < <(grep ' C ' "$T/records2" | tail -1)
head -c $((last_off + 4 + last_len / 2)) "$J2" >"$T/work/torn-change.vpj"
rc=0; vp rollback "$T/work/torn-change.vpj" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/out" "$T/err" >&2; fail "torn change record: rollback exited $rc, want 0"; }
grep -qi "torn" "$T/err" && grep -q "offset $last_off\b" "$T/err" ||
  { cat "$T/err" >&2; fail "torn change record: not reported as torn at offset $last_off"; }
grep -qx 'restored 18, already as before 0, changed since the run 0, missing 0, failed 0' "$T/out" ||
  { cat "$T/out" "$T/err" >&2; fail "torn change record: unexpected summary"; }
# Exactly the cut record's entry is left as the run made it.
manifest "$vol" >"$T/m.now"
{ diff "$T/m.before" "$T/m.now" || true; } | { grep "^>" || true; } | cut -d" " -f2-4 >"$T/left"
want_left=$(grep -E "^${last_path//./\\.} " "$T/m.prepared" | cut -d' ' -f1-3)
[ "$(cat "$T/left")" = "$want_left" ] ||
  fail "torn change record: left changed: '$(cat "$T/left")', want only '$want_left' (the cut record)"
# The whole journal finishes the job: 18 already done, the last one restored.
rc=0; vp rollback "$J2" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/out" "$T/err" >&2; fail "rollback of the whole second journal exited $rc"; }
grep -qx 'restored 1, already as before 18, changed since the run 0, missing 0, failed 0' "$T/out" ||
  { cat "$T/out" "$T/err" >&2; fail "rollback of the whole second journal: unexpected summary"; }
manifest "$vol" | cmp -s - "$T/m.before" || fail "after both rollbacks the volume is not as before"
# --- a flipped byte in the length field of a change record in the middle (last, as a
# volprep that gets it wrong changes the volume): the length now reaches past the end of
# the file, as a torn last record's would, but ten valid records follow it. That is damage,
# not a torn tail: taking it for one silently drops the ten changes after it.
vp "$vol" --as 1000 "${MAP[@]}" >/dev/null 2>&1 || fail "third prepare failed"  # back to 501000
manifest "$vol" | cmp -s - "$T/m.prepared" || fail "third prepare: not as the first left it"
journals_before=$(ls "$JD")
cp "$J" "$T/work/flip-length.vpj"
vpj flip "$T/work/flip-length.vpj" $((off + 1))
refused 3 "flipped byte in the length of the record at $off (of $(wc -l <"$T/records"))" \
  "$T/work/flip-length.vpj" "offset $off\b"

echo "journal_tamper: ok"
