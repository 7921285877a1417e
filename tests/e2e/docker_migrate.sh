#!/usr/bin/env bash
# volprep migrate-volumes and shift against a real dockerd, one data root throughout: a named
# volume and a bind-mounted tree made without remap (files of 0, 1000 and 33): once dockerd
# runs with --userns-remap=default the volume is gone and the tree not writable; after
# migrate-volumes and shift (dockerd stopped) that dockerd lists the volume, its directory as
# dockerd makes one, and containers as root and as 1000 read and write both, root owning what
# root owned. With remap off again, migrate-volumes --reverse and shift --reverse (its map
# from the forward shift's journal) bring back both trees of before, byte for byte; rollback
# of the volume's reverse, then of the migration, does too. A labelled volume's labels (kept
# in metadata.db, which the move does not carry) are printed by the migration, journaled, and
# reported by the rollbacks; a tmpfs volume's options still mount it under remap (its
# opts.json moves with it); a store that cannot be read is said, and the volumes told by their
# _data. Refused with nothing changed: a dockerd running, a name taken in the target, a
# volume of another driver (a directory without _data; a record in metadata.db of another
# driver, named), no remap. Three dockerd starts in all.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/docker_lib.bash"
. "$(dirname "${BASH_SOURCE[0]}")/manifest.bash"
docker_require

prepare_hostroot "$T/hostroot"
mkdir -p "$T/hostroot/etc/docker"
D=$T/data
R=$D/500000.500000
jq -n --arg d "$D" '{"data-root": $d}' >"$T/hostroot/etc/docker/plain.json"
jq -n --arg d "$D" '{"data-root": $d, "userns-remap": "default"}' >"$T/hostroot/etc/docker/remap.json"
MV=(migrate-volumes "${MAP[@]}" --data-root "$D")
B=$T/bindtree  # the bind-mounted tree
mkdir -m 0755 "$B"
# The tree of the data root and the volumes of both places, for "nothing changed".
state() { manifest "$D"; }
# Expects exit WANT and a message matching PATTERN from `volprep ARGS`, with nothing changed.
refused() { # refused WANT PATTERN ARGS...
  local want=$1 pattern=$2 rc=0 before
  shift 2
  before=$(state)
  vp "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "$*: exit $rc, want $want: $(cat "$T/err")"
  grep -q -- "$pattern" "$T/err" || fail "$*: no \"$pattern\" in: $(cat "$T/err")"
  [ "$(state)" = "$before" ] || fail "$*: refused, but the data root changed"
}

# 1. No remap: the volume and its files, as containers write them.
start_dockerd "$T/hostroot" --config-file /etc/docker/plain.json
make_busybox_image
docker_cmd volume create data >/dev/null
docker_cmd volume create taken >/dev/null
docker_cmd volume create --label com.example.app=db --label owner=ops labelled >/dev/null
docker_cmd volume create --opt type=tmpfs --opt device=tmpfs --opt o=size=1m --label tier=cache cache >/dev/null
docker_cmd volume create byplugin >/dev/null
docker_cmd run --rm --network none -v data:/v -v "$B:/b" volprep-busybox sh -ec '
  echo root >/v/root.txt; mkdir /v/u; echo user >/v/u/f; chown -R 1000:1000 /v/u
  echo www >/v/www; chown 33:33 /v/www; chmod 4755 /v/www
  echo root >/b/root.txt; mkdir /b/u; echo user >/b/u/f; chown -R 1000:1000 /b/u
  echo www >/b/www; chown 33:33 /b/www'
refused 5 "a dockerd is running on this data root: it holds $D/volumes/metadata.db" "${MV[@]}" --volume data
stop_dockerd
# A plugin's volume, without the plugin: its record in the store says another driver (the
# driver's name as long as "local": bbolt keeps no checksum of a page), and it has no directory.
perl -0777 -pi -e 's/("Name":"byplugin","Driver":)"local"/$1"nfsvd"/ or die "no record of byplugin\n"' "$D/volumes/metadata.db"
rm -r "$D/volumes/byplugin"
manifest "$D/volumes/data" >"$T/m0"
sums0=$(cd "$D/volumes/data/_data" && find . -type f -exec sha256sum {} + | sort)
manifest "$B" >"$T/b0"
bsums0=$(cd "$B" && find . -type f -exec sha256sum {} + | sort)

# 2. Remap on: the volume is gone; `taken` is made in the target too. The bind-mounted tree
# is nobody's in a container, and neither root nor 1000 can write it.
start_dockerd "$T/hostroot" --config-file /etc/docker/remap.json
docker_cmd volume ls -q | grep -qx data && fail "a remapped dockerd lists the volume before the migration"
docker_cmd volume create taken >/dev/null
make_busybox_image
docker_cmd run --rm --network none -v "$B:/b" volprep-busybox sh -c '
  [ "$(stat -c %u:%g /b/root.txt /b/u/f | tr "\n" " ")" = "65534:65534 65534:65534 " ] || exit 2
  echo x >>/b/root.txt || echo x >>/b/new && exit 3; exit 0' || fail "container root could write the bind-mounted tree, or saw its owners: exit $?"
docker_cmd run --rm --network none --user 1000:1000 -v "$B:/b" volprep-busybox sh -c 'echo x >>/b/u/f' 2>/dev/null &&
  fail "container user 1000 could write its file in the bind-mounted tree before the shift"
stop_dockerd
manifest "$B" | cmp -s - "$T/b0" || fail "the remapped containers changed the bind-mounted tree"
echo "dockerd made: $(stat -c '%n %u:%g %a' "$R" "$R/volumes" "$R/volumes/taken" "$R/volumes/taken/_data" | tr '\n' ' ')"

# Refusals, nothing changed: a name in both places (named), another driver's volume, no remap.
refused 5 "already in $R/volumes: taken; a volume of that name exists in both places" "${MV[@]}" --volume taken
refused 5 "$D/volumes/byplugin (driver nfsvd in $D/volumes/metadata.db: its data is the plugin's" "${MV[@]}"
# With no --volume, the volumes missing from the target: one in both places is left alone, said.
grep -q "volume taken: in $D/volumes and in $R/volumes already; left alone" "$T/err" ||
  fail "no --volume: taken not said to be left alone: $(cat "$T/err")"
grep -q "already in $R/volumes: taken" "$T/err" && fail "no --volume: taken refused: $(cat "$T/err")"
refused 5 "$D/volumes/byplugin (driver nfsvd" "${MV[@]}" --volume byplugin
mkdir -m 0701 "$D/volumes/plugin-vol"
refused 5 "$D/volumes/plugin-vol (no _data directory: not the local driver's)" "${MV[@]}" --volume plugin-vol --volume data
mkdir -p "$T/noremap/etc/docker"
echo "{\"data-root\": \"$D\"}" >"$T/noremap/etc/docker/daemon.json"
refused 3 "remapping is off" migrate-volumes --host-root "$T/noremap"
refused 2 "no such volume in $D/volumes" "${MV[@]}" --volume nosuch

# 3. The dry run changes nothing and says what would move and how it is shifted.
before=$(state)
LOST="volume labelled: labels com.example.app=db, owner=ops ($D/volumes/metadata.db): Docker does not carry them with its directory; the dockerd on $R will list it with none"
vp "${MV[@]}" --volume data --volume labelled -n >"$T/plan" 2>"$T/err" || fail "-n: $(cat "$T/err")"
[ "$(state)" = "$before" ] || fail "the dry run changed the data root"
grep -qx "# volume data: $D/volumes/data -> $R/volumes/data" "$T/plan" || fail "-n: $(cat "$T/plan")"
grep -q "^$D/volumes/data/_data/u/f  owner 1000:1000 -> 501000:501000" "$T/plan" || fail "-n: $(cat "$T/plan")"
grep -qF "$LOST" "$T/err" || fail "no word on labels: $(cat "$T/err")"
grep -q "volume data:.*labels" "$T/err" && fail "labels said of a volume without: $(cat "$T/err")"
# A store that cannot be read is said, and the volumes are told by their directories.
cp -p "$D/volumes/metadata.db" "$T/metadata.db"
head -c 8192 /dev/urandom >"$D/volumes/metadata.db"
vp "${MV[@]}" --volume labelled -n >"$T/plan" 2>"$T/err" || fail "-n, store damaged: $(cat "$T/err")"
grep -q "$D/volumes/metadata.db: not a bbolt file Docker wrote: neither meta page is valid" "$T/err" ||
  fail "-n, store damaged: $(cat "$T/err")"
grep -q "labels and options in $D/volumes/metadata.db, which moving its directory does not carry" "$T/err" ||
  fail "-n, store damaged: $(cat "$T/err")"
cat "$T/metadata.db" >"$D/volumes/metadata.db"

# 4. The migration and the shift (its map from the remap configuration); the remapped
# dockerd lists the volume, root and 1000 read and write it and the bind-mounted tree.
vp "${MV[@]}" --volume data --volume labelled --volume cache >"$T/out" 2>&1 || fail "migrate-volumes: $(cat "$T/out")"
grep -qF "$LOST" "$T/out" || fail "no word on labels: $(cat "$T/out")"
grep -qF "volume cache: labels tier=cache; options device=tmpfs, o=size=1m, type=tmpfs ($D/volumes/metadata.db)" "$T/out" ||
  fail "no word on options: $(cat "$T/out")"
vp shift "$B" --host-root "$T/hostroot" --config-file /etc/docker/remap.json -v >"$T/out" 2>&1 || fail "shift: $(cat "$T/out")"
grep -q "shifting through uid map 0 500000 65536 and gid map 0 500000 65536 (map from Docker userns-remap \"default\"" "$T/out" ||
  fail "shift: $(cat "$T/out")"
shift_journal=$(ls "$VOLPREP_JOURNAL_DIR"/*-bindtree.vpj)
[ "$(stat -c '%u:%g %a' "$R/volumes/data")" = "$(stat -c '%u:%g %a' "$R/volumes/taken")" ] ||
  fail "the volume's directory is $(stat -c '%u:%g %a' "$R/volumes/data"), dockerd makes $(stat -c '%u:%g %a' "$R/volumes/taken")"
[ "$(stat -c '%u:%g' "$R/volumes/data/_data" "$R/volumes/data/_data/u/f" "$R/volumes/data/_data/www" | paste -sd' ')" = \
  "500000:500000 501000:501000 500033:500033" ] || fail "not shifted: $(ls -lnR "$R/volumes/data")"
[ "$(stat -c %a "$R/volumes/data/_data/www")" = 4755 ] || fail "the setuid bit is lost"
start_dockerd "$T/hostroot" --config-file /etc/docker/remap.json
docker_cmd volume ls -q | grep -qx data || fail "the remapped dockerd does not list the migrated volume"
# As the migration said: the labels stay behind, the tmpfs options still mount it.
[ "$(docker_cmd volume inspect labelled --format '{{json .Labels}}')" = null ] ||
  fail "labelled: Docker lists labels $(docker_cmd volume inspect labelled --format '{{json .Labels}}')"
[ "$(docker_cmd run --rm --network none -v cache:/v volprep-busybox stat -f -c %T /v)" = tmpfs ] ||
  fail "the tmpfs volume is not mounted as a tmpfs under remap"
docker_cmd run --rm --network none -v data:/v -v "$B:/b" volprep-busybox sh -ec '
  for d in /v /b; do
    [ "$(stat -c %u:%g $d $d/root.txt $d/u/f $d/www | tr "\n" " ")" = "0:0 0:0 1000:1000 33:33 " ]
    grep -qx root $d/root.txt; echo root >$d/root.txt; echo t >$d/t; rm $d/t
  done' || fail "container root cannot read and write the volume and the bind-mounted tree as their owner"
docker_cmd run --rm --network none --user 1000:1000 -v data:/v -v "$B:/b" volprep-busybox sh -ec '
  for d in /v /b; do grep -qx user $d/u/f; echo user >$d/u/f; echo t >$d/u/t; rm $d/u/t; done' ||
  fail "container user 1000 cannot read and write its files in the volume and the bind-mounted tree"
stop_dockerd

# 5. Remap off: --reverse, back out of the remapped root, and the bind-mounted tree shifted
# back through the map its forward shift's journal holds; both trees of before byte for byte.
vp "${MV[@]}" --reverse --keep-setid --volume data --volume labelled >"$T/out" 2>&1 || fail "--reverse: $(cat "$T/out")"
# The store on the data root still holds its record: nothing lost.
grep -qF "volume labelled: the dockerd on $D lists it with its labels com.example.app=db, owner=ops again" "$T/out" ||
  fail "--reverse: no word on labels: $(cat "$T/out")"
manifest "$D/volumes/data" | cmp -s - "$T/m0" || fail "--reverse did not give back the tree: $(manifest "$D/volumes/data" | diff "$T/m0" - || true)"
[ "$(cd "$D/volumes/data/_data" && find . -type f -exec sha256sum {} + | sort)" = "$sums0" ] || fail "contents changed"
vp shift --reverse "$B" --host-root "$T/hostroot" --config-file /etc/docker/plain.json >"$T/out" 2>&1 ||
  fail "shift --reverse: $(cat "$T/out")"
grep -q "shifting back through uid map 0 500000 65536 and gid map 0 500000 65536 (map from the forward shift's journal $shift_journal of " "$T/out" ||
  fail "shift --reverse does not take the forward shift's map: $(cat "$T/out")"
manifest "$B" | cmp -s - "$T/b0" || fail "shift --reverse did not give back the bind-mounted tree: $(manifest "$B" | diff "$T/b0" - || true)"
[ "$(cd "$B" && find . -type f -exec sha256sum {} + | sort)" = "$bsums0" ] || fail "the bind-mounted tree's contents changed"

# 6. Rollback of the reverse (the project's newest run) puts it in the remapped root again,
# shifted; rollback of the migration (by its journal) then gives back the tree of before.
mapfile -t journals < <(ls "$VOLPREP_JOURNAL_DIR"/*.vpj | grep -v -- '-bindtree\.vpj$')
[ "${#journals[@]}" -eq 2 ] || fail "want one journal per migration, have ${journals[*]}"
vp journal show "${journals[0]}" | grep -qx "# docker volume labelled (driver local): labels com.example.app=db, owner=ops" ||
  fail "journal show: $(vp journal show "${journals[0]}" | grep '^#')"
vp rollback --project "migrate-volumes:$R" >"$T/out" 2>&1 || fail "rollback of the reverse: $(cat "$T/out")"
grep -qF "volume labelled: labels com.example.app=db, owner=ops (journaled by " "$T/out" ||
  fail "rollback of the reverse: no word on labels: $(cat "$T/out")"
grep -qF "the dockerd on $R will list it with" "$T/out" || fail "rollback of the reverse: $(cat "$T/out")"
[ "$(stat -c '%u:%g' "$R/volumes/data/_data/u/f")" = 501000:501000 ] || fail "rollback of --reverse: $(cat "$T/out")"
[ ! -e "$D/volumes/data" ] || fail "rollback of --reverse left $D/volumes/data"
# The reverse and its rollback changed the setuid file after the migration left it: rollback
# puts set-id bits back on such a file only with --force, and says so.
vp rollback "${journals[0]}" -n >"$T/out" 2>&1 || fail "rollback -n of the migration: $(cat "$T/out")"
grep -q "_data/www: changed after the run: set-id bits and capabilities not put back" "$T/out" || fail "$(cat "$T/out")"
vp rollback "${journals[0]}" --force >"$T/out" 2>&1 || fail "rollback of the migration: $(cat "$T/out")"
grep -qF "volume labelled: the dockerd on $D lists it with its labels com.example.app=db, owner=ops again" "$T/out" ||
  fail "rollback of the migration: no word on labels: $(cat "$T/out")"
manifest "$D/volumes/data" | cmp -s - "$T/m0" || fail "rollback did not give back the tree: $(cat "$T/out")"
[ ! -e "$R/volumes/data" ] || fail "rollback left $R/volumes/data"
echo "ok: migrate-volumes and shift, --reverse and rollback with a real dockerd"
