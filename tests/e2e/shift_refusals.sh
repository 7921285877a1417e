#!/usr/bin/env bash
# volprep shift refuses, with a message naming what is wrong and nothing changed: ids the map
# cannot translate (exit 3, listed with counts and paths; --unmapped=skip and nobody go on), a
# second shift (exit 1, "already shifted", by its ids or by its journal; --check says 0,
# --force goes on), no active remapping (exit 3), a PATH inside another (exit 2), and a volume
# whose earlier shift did not finish, rerun the other way (exit 5, until it is rolled back;
# shift_resume.sh finishes one), and a journal that might be an unfinished shift of the tree
# but cannot be read (exit 5).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
mkdir -p "$VOLPREP_JOURNAL_DIR"
vol=$T/vol
mkdir -p "$vol/sub"
touch "$vol/a" "$vol/sub/b" "$vol/sub/c"
chown 1000:1000 "$vol/a"
chown 70000:33 "$vol/sub/b"
chown 1000:80000 "$vol/sub/c"
setfacl -m u:70000:r "$vol/a"

# --- ids the map cannot translate ----------------------------------------------------------
manifest "$vol" >"$T/m0"
rc=0; vp shift "$vol" "${MAP[@]}" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] || fail "unmapped ids: exit $rc, want 3: $(cat "$T/err")"
grep -qx "volprep: error: $vol: uid 70000: 2 times ($vol/a, $vol/sub/b)" "$T/err" || fail "uid 70000: $(cat "$T/err")"
grep -qx "volprep: error: $vol: gid 80000: 1 time ($vol/sub/c)" "$T/err" || fail "gid 80000: $(cat "$T/err")"
grep -q "2 ids the map cannot translate (0 500000 65536.*nothing changed. --unmapped=skip" "$T/err" || fail "$(cat "$T/err")"
manifest "$vol" | cmp -s - "$T/m0" || fail "the refused shift changed the tree"
expect_rc 3 vp shift "$vol" "${MAP[@]}" -n  # the dry run says the same
# skip leaves them; nobody gives them the id the container sees as 65534.
vp shift "$vol" "${MAP[@]}" --unmapped=skip -n >"$T/plan" 2>&1 || fail "--unmapped=skip -n: $(cat "$T/plan")"
grep -q "^$vol/sub/b  owner 70000:33 -> 70000:500033" "$T/plan" || fail "skip: $(cat "$T/plan")"
vp shift "$vol" "${MAP[@]}" --unmapped=nobody -n >"$T/plan" 2>&1 || fail "--unmapped=nobody -n: $(cat "$T/plan")"
grep -q "^$vol/sub/c  owner 1000:80000 -> 501000:565534" "$T/plan" || fail "nobody: $(cat "$T/plan")"
grep -q "^$vol/a  .*acl +u:565534:r--" "$T/plan" || fail "nobody in the ACL: $(cat "$T/plan")"
expect_rc 2 vp shift "$vol" "${MAP[@]}" --unmapped=maybe
vp shift "$vol" "${MAP[@]}" --unmapped=skip >/dev/null 2>&1 || fail "--unmapped=skip"
[ "$(stat -c %u:%g "$vol/sub/b")" = 70000:500033 ] || fail "skip: $(stat -c %u:%g "$vol/sub/b")"

# --- a second shift ----------------------------------------------------------------------------
rm -f "$vol/sub/b" "$vol/sub/c"; setfacl -b "$vol/a"   # every id now in the host range
manifest "$vol" >"$T/m1"
rc=0; vp shift "$vol" "${MAP[@]}" --unmapped=nobody >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] || fail "second shift: exit $rc, want 1: $(cat "$T/err")"
grep -q "$vol: already shifted: all of its 6 ids lie in the map's host range (0 500000 65536); nothing changed (--force shifts it again)" "$T/err" ||
  fail "$(cat "$T/err")"
manifest "$vol" | cmp -s - "$T/m1" || fail "the refused second shift changed the tree"
expect_rc 0 vp shift "$vol" "${MAP[@]}" --check  # nothing would change
# Already shifted comes before the unmapped ids (every id here is past the range as a container id).
rc=0; vp shift "$vol" "${MAP[@]}" 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "already shifted" "$T/err" || fail "verdict order: exit $rc: $(cat "$T/err")"
# Reversed, a tree with no id in the range is shifted back already.
mkdir "$T/plain"; chown 1000:1000 "$T/plain"
rc=0; vp shift "$T/plain" "${MAP[@]}" --reverse 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "already shifted back: none of its 2 ids lies in the map's host range" "$T/err" ||
  fail "reverse: exit $rc: $(cat "$T/err")"
# By its journal too: a file a host user made since reads as unshifted, but the shift that
# shifted the tree stands (--unmapped=nobody would take every shifted id to nobody).
touch "$vol/new" && chown 1000:1000 "$vol/new"
manifest "$vol" >"$T/m3"
rc=0; vp shift "$vol" "${MAP[@]}" --unmapped=nobody 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "$vol: already shifted: its shift of [-0-9: ]*Z (journal $VOLPREP_JOURNAL_DIR/.*, uid map 0 500000 65536) stands: neither a rollback nor a shift the other way undid it; nothing changed (--force shifts it again)" "$T/err" ||
  fail "shifted by its journal: exit $rc: $(cat "$T/err")"
manifest "$vol" | cmp -s - "$T/m3" || fail "the refused shift (by its journal) changed the tree"
expect_rc 0 vp shift "$vol" "${MAP[@]}" --unmapped=nobody --check
rm "$vol/new"
# Shifted back by its journal too: a file a remapped container made since reads as not shifted
# back, but the shift back stands (--unmapped=nobody would take every id to 65534).
rt=$T/rt
mkdir -p "$rt/a" && chown 1000:1000 "$rt/a"
{ vp shift "$rt" "${MAP[@]}" && vp shift "$rt" "${MAP[@]}" --reverse; } >/dev/null 2>&1 || fail "$rt: shift and back"
touch "$rt/a/new" && chown 501000:501000 "$rt/a/new"
manifest "$rt" >"$T/m4"
rc=0; vp shift "$rt" "${MAP[@]}" --reverse --unmapped=nobody 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "$rt: already shifted back: its shift back of [-0-9: ]*Z (journal .*) stands" "$T/err" ||
  fail "shifted back by its journal: exit $rc: $(cat "$T/err")"
manifest "$rt" | cmp -s - "$T/m4" || fail "the refused shift back (by its journal) changed the tree"
vp shift "$rt" "${MAP[@]}" --unmapped=skip -n >/dev/null 2>&1 || fail "a forward shift after the shift back is refused"
# --force goes on: the ids past the range then follow --unmapped.
vp shift "$vol" "${MAP[@]}" --force --unmapped=skip -n >/dev/null 2>&1 || fail "--force"

# --- no active remapping ---------------------------------------------------------------------
mkdir -p "$T/host/etc/docker"
echo '{}' >"$T/host/etc/docker/daemon.json"
rc=0; vp shift "$T/plain" --host-root "$T/host" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] || fail "remap off: exit $rc, want 3: $(cat "$T/err")"
grep -q "remapping is off, so container ids are host ids and there is nothing to shift: name the map containers will get (--userns-remap default, --map 0:500000:65536, ...)" "$T/err" ||
  fail "$(cat "$T/err")"
[ "$(stat -c %u:%g "$T/plain")" = 1000:1000 ] || fail "changed with remap off"

# --- a PATH inside another, or given twice ---------------------------------------------------
mkdir -p "$T/outer/inner"
rc=0; vp shift "$T/outer" "$T/outer/inner" "${MAP[@]}" 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "$T/outer holds $T/outer/inner, another PATH of this command: it would be shifted twice" "$T/err" ||
  fail "nested: exit $rc: $(cat "$T/err")"
rc=0; vp shift "$T/outer" "$T/outer/" "${MAP[@]}" 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "are the same tree" "$T/err" || fail "twice: exit $rc: $(cat "$T/err")"
# The inner PATH first, with an id the map cannot translate: the usage error is said first,
# not the unmapped id the inner tree's census finds before the outer's finds the nesting.
touch "$T/outer/inner/far" && chown 70000 "$T/outer/inner/far"
rc=0; vp shift "$T/outer/inner" "$T/outer" "${MAP[@]}" 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "$T/outer holds $T/outer/inner, another PATH" "$T/err" ||
  fail "nested, inner first, an unmapped id inside: exit $rc: $(cat "$T/err")"
rm "$T/outer/inner/far"
[ "$(stat -c %u "$T/outer")" = 0 ] || fail "nested PATHs changed the tree"

# --- an earlier shift that did not finish -----------------------------------------------------
vp shift "$T/outer" "${MAP[@]}" >/dev/null 2>&1 || fail "shift of outer"
j=$(ls "$VOLPREP_JOURNAL_DIR"/*outer*.vpj)
# As a kill would leave it: no end record.
end=$(vpj records "$j" | awk '$2 == "E" { print $1 }')
[ -n "$end" ] || fail "no end record in $j"
truncate -s "$end" "$j"
manifest "$T/outer" >"$T/m2"
rc=0; vp shift "$T/outer" "${MAP[@]}" --reverse 2>"$T/err" || rc=$?
[ "$rc" -eq 5 ] || fail "unfinished shift: exit $rc, want 5: $(cat "$T/err")"
grep -q "an earlier shift of it did not finish (journal $j).*the other way.*volprep rollback $j" "$T/err" || fail "$(cat "$T/err")"
manifest "$T/outer" | cmp -s - "$T/m2" || fail "the refused shift changed the tree"
vp rollback "$j" >/dev/null 2>&1 || fail "rollback of the unfinished shift"
[ "$(stat -c %u:%g "$T/outer/inner")" = 0:0 ] || fail "rollback did not restore"
vp shift "$T/outer" "${MAP[@]}" >/dev/null 2>&1 || fail "shift after the rollback"

# --- a journal that cannot be read far enough to know it is no unfinished shift of the tree ----
# A shift twice over is what this guards against: exit 5, the file named, nothing changed.
dmg=$T/dmg
mkdir -p "$dmg/d"
for i in $(seq 1 40); do echo "$i" >"$dmg/d/f$i"; done
chown -R 1000:1000 "$dmg/d"
# Expects `volprep shift DIR MAP` to exit 5 with a message matching PATTERN, DIR unchanged.
refused_5() { # refused_5 DIR PATTERN
  local rc=0
  manifest "$1" >"$T/m.before"
  vp shift "$1" "${MAP[@]}" 2>"$T/err" || rc=$?
  [ "$rc" -eq 5 ] || fail "$1: exit $rc, want 5: $(cat "$T/err")"
  grep -q -- "$2" "$T/err" || fail "no \"$2\" in: $(cat "$T/err")"
  manifest "$1" | cmp -s - "$T/m.before" || fail "refused, but the tree changed"
}
# Not a journal at all (its header unread): it might be anyone's.
printf 'junk' >"$VOLPREP_JOURNAL_DIR/junk.vpj"
refused_5 "$dmg" "$dmg: the journal $VOLPREP_JOURNAL_DIR/junk.vpj cannot be read (.*not a volprep journal), so whether it is a shift of this tree that did not finish is unknown.*nothing changed.*move it out of $VOLPREP_JOURNAL_DIR"
rm "$VOLPREP_JOURNAL_DIR/junk.vpj"
# An empty one (a crash between creating a journal and writing its header) recorded no
# change: warned of, and the shift goes on (a dry run here, the tree is wanted as it is).
: >"$VOLPREP_JOURNAL_DIR/empty.vpj"
vp shift "$dmg" "${MAP[@]}" --dry-run >/dev/null 2>"$T/err" || fail "an empty journal refused the shift: $(cat "$T/err")"
grep -q "empty.vpj has no header (0 bytes); ignored" "$T/err" || fail "no warning of the empty journal: $(cat "$T/err")"
rm "$VOLPREP_JOURNAL_DIR/empty.vpj"
# A shift of this tree with no end record, and a record amid its records damaged.
vp shift "$dmg" "${MAP[@]}" >/dev/null 2>&1 || fail "shift of dmg"
j=$(ls "$VOLPREP_JOURNAL_DIR"/*dmg*.vpj)
end=$(vpj records "$j" | awk '$2 == "E" { print $1 }')
truncate -s "$end" "$j"
mid=$(vpj records "$j" | awk '$2 == "C" { c[n++] = $1 } END { print c[int(n / 2)] }')
vpj flip "$j" $((mid + 7))
refused_5 "$dmg" "$dmg: an earlier shift of it (journal $j of [-0-9: ]*Z) did not finish, and its journal cannot be read (journal $j is damaged at offset $mid"
# Another tree's shift is not held up by it.
vp shift "$T/plain" "${MAP[@]}" -n >/dev/null 2>&1 || fail "another tree's shift is refused: $(vp shift "$T/plain" "${MAP[@]}" -n 2>&1)"
echo "ok: shift_refusals"
