#!/usr/bin/env bash
# migrate-volumes --reverse after remapping was switched off takes the map, and the data root
# when none is named, from the forward migration's journal: volumes migrated with --map, then
# a daemon.json without userns-remap, `migrate-volumes --reverse` with no map gives back the
# data root of before byte for byte (owners, modes, ACLs, contents) and says which journal (and
# its date) the map and the data root came from; a reverse of some volumes (--volume) leaves
# the forward migration standing for the rest. A named map wins and its differing from the
# journal's is said, and the data root is then not the journal's (asked for); a data root daemon.json names must be the journal's; a journal that might
# be an unfinished migration of the data root and cannot be read refuses (exit 5); once the
# forward migration is rolled back (or reversed already) there is no map to take: refused
# (exit 3), naming what to give; forward migrations of two data roots and none named: refused
# (exit 2). Nothing changes on a refusal. A data root of Docker's shape, no dockerd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
JD=$VOLPREP_JOURNAL_DIR
mkdir -p "$JD"
cp -a "$VOLPREP_SRC/fixtures/host" "$T/host"
echo '{"log-driver": "json-file"}' >"$T/host/etc/docker/daemon.json"  # remapping off
H=(--host-root "$T/host")
D=$T/data
R=$D/500000.500000
mkdir -p -m 0701 "$D/volumes"
touch "$D/volumes/metadata.db"
for v in alpha beta; do
  mkdir -m 0701 "$D/volumes/$v"
  mkdir -p "$D/volumes/$v/_data/u" "$D/volumes/$v/_data/shared"
  echo root >"$D/volumes/$v/_data/root.txt"
  echo user >"$D/volumes/$v/_data/u/f" && chown -R 1000:1000 "$D/volumes/$v/_data/u"
  echo www >"$D/volumes/$v/_data/www" && chown 33:33 "$D/volumes/$v/_data/www" && chmod 4755 "$D/volumes/$v/_data/www"
  setfacl -m u:1000:rwx "$D/volumes/$v/_data/shared" && setfacl -d -m u:33:rx "$D/volumes/$v/_data/shared"
done
# The data root as it is, less the remapped root the forward migration makes (as dockerd
# would, and which the way back leaves); and the contents.
state() { manifest "$D" | grep -v '^500000\.500000'; (cd "$D" && find volumes -type f -exec sha256sum {} + | sort); }
state >"$T/s0"
since() { # since FILE: what changed from FILE's state, for a failure's message
  state | diff "$1" - | head
}

# Remap on: the forward migration, its map named.
vp migrate-volumes "${MAP[@]}" --data-root "$D" >"$T/out" 2>&1 || fail "migrate-volumes: $(cat "$T/out")"
[ -d "$R/volumes/alpha/_data" ] && [ -d "$R/volumes/beta/_data" ] || fail "the volumes did not move"
fwd=$(ls "$JD"/*.vpj)
state >"$T/s1"

# A named map wins, and differing from the journal's is said (the remapped root of that map
# is not there: refused).
rc=0; vp migrate-volumes --reverse "${H[@]}" --map 0:600000:65536 --data-root "$D" >"$T/out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "--reverse through another map than the volumes went through succeeded"
grep -q "$D: its forward migration (journal $fwd of [-0-9: ]*Z) ran through uid map 0 500000 65536 and gid map 0 500000 65536, not this map" "$T/out" ||
  fail "no word that the journal's map differs: $(cat "$T/out")"
state | cmp -s - "$T/s1" || fail "the refused reverse changed the data root: $(since "$T/s1")"

# A named map and no data root named: the journal's data root is not taken (exit 2, asking
# for --data-root).
rc=0; vp migrate-volumes --reverse "${H[@]}" "${MAP[@]}" >"$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "names no Docker data root: give it with --data-root" "$T/out" ||
  fail "a named map and no data root: exit $rc, want 2 asking for --data-root: $(cat "$T/out")"
state | cmp -s - "$T/s1" || fail "the refused reverse changed the data root: $(since "$T/s1")"

# A relative --data-root is refused before any journal is read (exit 2); one named with "//"
# and "/./" is the journal's all the same (the dry run finds the forward migration).
rc=0; vp migrate-volumes --reverse "${H[@]}" --data-root data >"$T/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--data-root data: not an absolute path" "$T/out" ||
  fail "a relative --data-root: exit $rc, want 2: $(cat "$T/out")"
vp migrate-volumes --reverse "${H[@]}" --data-root "${D/\/data//.//data}/" -n >"$T/out" 2>&1 ||
  fail "--data-root with // and /./: $(cat "$T/out")"
state | cmp -s - "$T/s1" || fail "the dry run changed the data root: $(since "$T/s1")"

# A data root daemon.json names is the one the journal must be of.
cp "$T/host/etc/docker/daemon.json" "$T/plain.json"
echo "{\"data-root\": \"$T/elsewhere\"}" >"$T/host/etc/docker/daemon.json"
rc=0; vp migrate-volumes --reverse "${H[@]}" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] || fail "daemon.json names another data root: exit $rc, want 3: $(cat "$T/err")"
grep -q "no finished migration of $T/elsewhere stands in $JD to take the map it went through from: name the map that was in use (--userns-remap default, --map 0:500000:65536, ...)" "$T/err" ||
  fail "$(cat "$T/err")"
state | cmp -s - "$T/s1" || fail "the refused reverse changed the data root: $(since "$T/s1")"
# One daemon.json names that is no directory cannot be used: said, asking for --data-root.
echo x >"$T/host/notadir"
echo '{"data-root": "/notadir"}' >"$T/host/etc/docker/daemon.json"
rc=0; vp migrate-volumes --reverse "${H[@]}" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] && grep -q "notadir.*: the data root dockerd's configuration names cannot be used; give it with --data-root" "$T/err" ||
  fail "daemon.json names a data root that is no directory: exit $rc, want 3: $(cat "$T/err")"
state | cmp -s - "$T/s1" || fail "the refused reverse changed the data root: $(since "$T/s1")"
cp "$T/plain.json" "$T/host/etc/docker/daemon.json"

# A journal that might be an unfinished migration of the data root (no end record), damaged
# amid its records, refuses as before (exit 5).
cp "$fwd" "$JD/damaged.vpj"
end=$(vpj records "$JD/damaged.vpj" | awk '$2 == "E" { print $1 }')
truncate -s "$end" "$JD/damaged.vpj"
mid=$(vpj records "$JD/damaged.vpj" | awk '$2 == "C" { c[n++] = $1 } END { print c[int(n / 2)] }')
vpj flip "$JD/damaged.vpj" $((mid + 7))
rc=0; vp migrate-volumes --reverse "${H[@]}" 2>"$T/err" || rc=$?
[ "$rc" -eq 5 ] || fail "a damaged journal of the data root: exit $rc, want 5: $(cat "$T/err")"
grep -q "$D: an earlier migration of it (journal $JD/damaged.vpj of [-0-9: ]*Z) did not finish, and its journal cannot be read" "$T/err" ||
  fail "$(cat "$T/err")"
state | cmp -s - "$T/s1" || fail "the refused reverse changed the data root: $(since "$T/s1")"
rm "$JD/damaged.vpj"

# The way back through the journal's map, to the journal's data root: the data root of
# before, byte for byte.
vp migrate-volumes --reverse --keep-setid "${H[@]}" -n >"$T/plan" 2>&1 || fail "--reverse -n: $(cat "$T/plan")"
state | cmp -s - "$T/s1" || fail "the dry run changed the data root: $(since "$T/s1")"
# A reverse of one volume (--volume) leaves the other in the remapped root: it does not use up
# the forward migration, whose map and data root the next --reverse takes still.
vp migrate-volumes --reverse --keep-setid "${H[@]}" --volume alpha >"$T/out" 2>&1 || fail "--reverse --volume alpha: $(cat "$T/out")"
[ -d "$D/volumes/alpha/_data" ] && [ -d "$R/volumes/beta/_data" ] && [ ! -e "$R/volumes/alpha" ] ||
  fail "--reverse --volume alpha did not move alpha back alone: $(since "$T/s1")"
vp migrate-volumes --reverse --keep-setid "${H[@]}" >"$T/out" 2>&1 || fail "--reverse: $(cat "$T/out")"
grep -q "data root $D from the forward migration's journal $fwd (the options name no data root)" "$T/out" ||
  fail "the way back does not say its data root came from the journal: $(cat "$T/out")"
grep -q "moving volumes from $R/volumes to $D/volumes, shifting back through uid map 0 500000 65536 and gid map 0 500000 65536 (map from the forward migration's journal $fwd of [-0-9: ]*Z)" "$T/out" ||
  fail "the way back does not say its map came from the journal: $(cat "$T/out")"
state | cmp -s - "$T/s0" || fail "migrate-volumes, then --reverse with remap off, is not the data root it started from: $(since "$T/s0")"

# The forward migration is used up: a second --reverse has no map to take.
rc=0; vp migrate-volumes --reverse "${H[@]}" --data-root "$D" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] && grep -q "no finished migration of $D stands in $JD" "$T/err" ||
  fail "a second --reverse: exit $rc, want 3: $(cat "$T/err")"

# Migrated again, then rolled back: no forward migration stands, and --reverse with no map
# refuses, naming what to give.
vp migrate-volumes "${MAP[@]}" --data-root "$D" >"$T/out" 2>&1 || fail "migrate-volumes again: $(cat "$T/out")"
again=$(ls -t "$JD"/*.vpj | head -1)
vp rollback "$again" >"$T/out" 2>&1 || fail "rollback: $(cat "$T/out")"
state | cmp -s - "$T/s0" || fail "rollback of the migration: $(since "$T/s0")"
rc=0; vp migrate-volumes --reverse "${H[@]}" --data-root "$D" 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] || fail "--reverse after the rollback: exit $rc, want 3: $(cat "$T/err")"
grep -q "remapping is off (Docker: userns-remap is not set .*), and no finished migration of $D stands in $JD to take the map it went through from: name the map that was in use (--userns-remap default, --map 0:500000:65536, ...)" "$T/err" ||
  fail "$(cat "$T/err")"
state | cmp -s - "$T/s0" || fail "the refused reverse changed the data root: $(since "$T/s0")"
# Forward migrations of two data roots standing, and none named: refused (exit 2), naming
# both; --data-root picks one.
D2=$T/data2
mkdir -p -m 0701 "$D2/volumes/gamma" && mkdir "$D2/volumes/gamma/_data" && echo g >"$D2/volumes/gamma/_data/g"
chown 1000:1000 "$D2/volumes/gamma/_data/g"
manifest "$D2" >"$T/d2.0"
vp migrate-volumes "${MAP[@]}" --data-root "$D" >"$T/out" 2>&1 || fail "migrate-volumes of $D: $(cat "$T/out")"
vp migrate-volumes --map 0:600000:65536 --data-root "$D2" >"$T/out" 2>&1 || fail "migrate-volumes of $D2: $(cat "$T/out")"
d2fwd=$(ls -t "$JD"/*.vpj | head -1)
state >"$T/s2"
rc=0; vp migrate-volumes --reverse "${H[@]}" 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] || fail "two data roots: exit $rc, want 2: $(cat "$T/err")"
grep -q "finished migrations of 2 data roots stand in $JD ($D: journal .*; $D2: journal $d2fwd): name the data root with --data-root" "$T/err" ||
  fail "$(cat "$T/err")"
state | cmp -s - "$T/s2" || fail "the refused reverse changed the data root: $(since "$T/s2")"
vp migrate-volumes --reverse "${H[@]}" --data-root "$D2" >"$T/out" 2>&1 || fail "--reverse of $D2: $(cat "$T/out")"
grep -q "shifting back through uid map 0 600000 65536 and gid map 0 600000 65536 (map from the forward migration's journal $d2fwd of " "$T/out" ||
  fail "the way back of $D2 does not take its journal's map: $(cat "$T/out")"
manifest "$D2" | grep -v '^600000\.600000' | cmp -s - "$T/d2.0" || fail "$D2 is not as it was: $(manifest "$D2" | diff "$T/d2.0" - | head)"
state | cmp -s - "$T/s2" || fail "the reverse of $D2 changed $D: $(since "$T/s2")"
echo "ok: migrate_remap_off"
