#!/usr/bin/env bash
# migrate-volumes' copies refused before anything changes, and rollback of a copy:
# 1. a volume 5000 directories deep: -n and the real run refuse it cleanly (no crash), the
#    data root as it was;
# 2. a copy that does not fit the target: refused with the data root byte-identical (no
#    volumes or volprep-copies directory made);
# 3. a dockerd holding the store: --force goes on for a rename, never for a copy;
# 4. rollback of a copy whose original the user removed says that no dockerd has the volume,
#    and where the copy is; the labels report reads the store the original stayed in.
if [ -z "${VOLPREP_PRIVATE_MOUNTS:-}" ]; then
  exec env VOLPREP_PRIVATE_MOUNTS=1 unshare --mount --propagation private -- bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
D=$T/data
R=$D/500000.500000
mkdir -p -m 0701 "$D/volumes/deep/_data" "$D/volumes/fat/_data"
touch "$D/volumes/metadata.db"
python3 - "$D/volumes/deep/_data" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for _ in range(5000):
    os.mkdir("d", dir_fd=fd)
    nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
os.close(fd)
EOF
head -c 3M /dev/zero >"$D/volumes/fat/_data/f"
state() { (cd "$D" && find . -path ./volumes/deep/_data -prune -o -printf '%P %y %u:%g %m %s %T@\n' | sort); }
state >"$T/s0"
# Runs volprep, output in $T/out; true when it exits 5 (refused).
refused() { local rc=0; "$@" >"$T/out" 2>&1 || rc=$?; [ "$rc" = 5 ] || { echo "exit $rc" >>"$T/out"; return 1; }; }
MV=(migrate-volumes "${MAP[@]}" --data-root "$D")

# 1. Too deep: refused, never a crash, under -n and for real.
for n in -n ""; do
  refused vp "${MV[@]}" --copy --volume deep $n || fail "deep $n: $(tail -3 "$T/out")"
  grep -q "deep/_data/d/.*: deeper than 1024 directory levels" "$T/out" || fail "deep $n: $(tail -3 "$T/out")"
  state | cmp -s - "$T/s0" || fail "deep $n: the data root changed: $(state | diff "$T/s0" -)"
done

# 2. No room: a 1 MiB tmpfs as the remapped root; refused before volumes or volprep-copies
# is made there.
mkdir -m 0710 "$R"
mount -t tmpfs -o size=1m,mode=0710,gid=500000 volprep-target "$R"
state >"$T/s1"
refused vp "${MV[@]}" --volume fat || fail "no room: $(tail -3 "$T/out")"
grep -q "copying needs 3.0 MiB in $R/volprep-copies, which has 1.0 MiB free; nothing changed" "$T/out" ||
  fail "no room: $(tail -3 "$T/out")"
state | cmp -s - "$T/s1" || fail "a refused copy changed the data root: $(state | diff "$T/s1" -)"
[ -z "$(ls -A "$R")" ] || fail "a refused copy made $(ls -A "$R")"
umount "$R" && rmdir "$R"

# 3. A dockerd holds the store (its flock on metadata.db): --force does not make a copy.
state >"$T/s0"
python3 -c 'import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(60)' \
  "$D/volumes/metadata.db" </dev/null >/dev/null 2>&1 &
holder=$!
on_exit "kill $holder 2>/dev/null || true"
for _ in $(seq 100); do flock -n "$D/volumes/metadata.db" true || break; sleep 0.1; done
refused vp "${MV[@]}" --copy --force --volume fat || fail "held: $(tail -3 "$T/out")"
grep -q "is not made while a dockerd holds the store, even with --force" "$T/out" || fail "held: $(tail -3 "$T/out")"
state | cmp -s - "$T/s0" || fail "held: the data root changed: $(state | diff "$T/s0" -)"
kill "$holder" && wait "$holder" 2>/dev/null || true

# 4. Labels: the store of Docker's small fixture (volume "web", labelled); copied, the
# original removed, rolled back.
cp "$VOLPREP_SRC/fixtures/docker/metadata-small.db" "$D/volumes/metadata.db"
mkdir -p -m 0701 "$D/volumes/web/_data" && echo w >"$D/volumes/web/_data/f"
vp "${MV[@]}" --copy --volume web >"$T/out" 2>&1 || fail "--copy web: $(cat "$T/out")"
journal=$(ls "$VOLPREP_JOURNAL_DIR"/*.vpj)
vp rollback -n "$journal" >"$T/out" 2>&1 || fail "rollback -n: $(cat "$T/out")"
grep -q "volume web: the dockerd on $D lists it with its labels com.example.app=web" "$T/out" ||
  fail "the labels report of a copy: $(cat "$T/out")"
grep -q "volprep-copies/metadata.db" "$T/out" && fail "the labels report read the copies directory: $(cat "$T/out")"
grep -q "is not there" "$T/out" && fail "the original is there: $(cat "$T/out")"
mv "$D/volumes/web" "$T/web-removed"
vp rollback "$journal" >"$T/out" 2>&1 || fail "rollback: $(cat "$T/out")"
aside=$(ls -d "$R/volprep-copies"/web.*)
grep -q "volume web: its copy is set aside at $aside, and its original $D/volumes/web is not there" "$T/out" ||
  fail "rollback did not say the volume is nowhere: $(cat "$T/out")"
[ "$(cat "$aside/_data/f")" = w ] || fail "the copy aside: $(ls -lR "$aside")"
echo "ok: too deep, no room and a held store refused with nothing changed; a copy rolled back without its original said"
