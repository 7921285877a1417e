#!/usr/bin/env bash
# shift --reverse after remapping was switched off takes the map from the forward shift's
# journal: a tree shifted through userns-remap "default" (the fixture host root), then
# daemon.json without userns-remap, `shift --reverse` gives back the manifest of before byte
# for byte and says the map came from that journal. A map named on the command line wins over
# the journal, and it says when they differ; with no forward shift in the journals it refuses
# (exit 3) and asks for the map; nothing changed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
source "$(dirname "$0")/shift_lib.bash"
JD=$VOLPREP_JOURNAL_DIR
mkdir -p "$JD"
cp -a "$VOLPREP_SRC/fixtures/host" "$T/host"
H=(--host-root "$T/host")
vol=$T/vol
mixed_tree "$vol"
manifest "$vol" >"$T/before"

# Remap on: the forward shift, its map from daemon.json.
vp shift "$vol" "${H[@]}" -v >"$T/out" 2>&1 || fail "shift: $(cat "$T/out")"
grep -q 'shifting through uid map 0 500000 65536 and gid map 0 500000 65536 (map from Docker userns-remap "default"' "$T/out" ||
  fail "the forward shift does not say its map: $(cat "$T/out")"
fwd=$(ls "$JD"/*.vpj)
manifest "$vol" >"$T/shifted"

# Remap off.
echo '{"log-driver": "json-file"}' >"$T/host/etc/docker/daemon.json"
rc=0; vp shift "$vol" "${H[@]}" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] && grep -q "remapping is off" "$T/err" || fail "a forward shift with remap off: exit $rc: $(cat "$T/err")"

# A named map wins, and differing from the journal's is said (then the census refuses: none
# of the ids is in 600000's range).
rc=0; vp shift --reverse "$vol" "${H[@]}" --map 0:600000:65536 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] || fail "--map 0:600000:65536: exit $rc, want 1: $(cat "$T/err")"
grep -q "$vol: its forward shift (journal $fwd of [-0-9: ]*Z) ran through uid map 0 500000 65536 and gid map 0 500000 65536, not this map" "$T/err" ||
  fail "no word that the journal's map differs: $(cat "$T/err")"
grep -q "map from the command line" "$T/err" || fail "no word of where the map came from: $(cat "$T/err")"
manifest "$vol" | cmp -s - "$T/shifted" || fail "the refused reverse changed the tree"

# No forward shift in the journal directory: refused, asking for the map.
mkdir "$T/aside"
mv "$fwd" "$T/aside/"
rc=0; vp shift --reverse "$vol" "${H[@]}" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] || fail "no journal: exit $rc, want 3: $(cat "$T/err")"
grep -q "no finished shift of $vol stands in $JD to take the map it went through from: name the map that was in use (--userns-remap default, --map 0:500000:65536, ...)" "$T/err" ||
  fail "$(cat "$T/err")"
manifest "$vol" | cmp -s - "$T/shifted" || fail "the refused reverse changed the tree"
mv "$T/aside/${fwd##*/}" "$JD/"

# The way back through the journal's map: the tree of before, byte for byte.
vp shift --reverse --keep-setid "$vol" "${H[@]}" -n >"$T/plan" 2>&1 || fail "--reverse -n: $(cat "$T/plan")"
manifest "$vol" | cmp -s - "$T/shifted" || fail "the dry run changed the tree"
vp shift --reverse --keep-setid "$vol" "${H[@]}" >"$T/out" 2>&1 || fail "--reverse: $(cat "$T/out")"
grep -q "shifting back through uid map 0 500000 65536 and gid map 0 500000 65536 (map from the forward shift's journal $fwd of [-0-9: ]*Z)" "$T/out" ||
  fail "the way back does not say its map came from the journal: $(cat "$T/out")"
manifest "$vol" >"$T/back"
diff "$T/before" "$T/back" >&2 || fail "shift, then --reverse with remap off, is not the tree it started from"
# Its own journal holds the map it went through: rollback shifts the tree forward again.
rev=$(ls -t "$JD"/*.vpj | head -1)
[ "$rev" != "$fwd" ] || fail "the reverse wrote no journal"
vp rollback "$rev" >"$T/out" 2>&1 || fail "rollback of the reverse: $(cat "$T/out")"
manifest "$vol" | cmp -s - "$T/shifted" || fail "rollback of the reverse is not the shifted tree"
echo "ok: shift_remap_off"
