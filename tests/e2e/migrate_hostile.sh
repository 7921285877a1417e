#!/usr/bin/env bash
# migrate-volumes against what the owner of a volume's content can make (forward, remapping
# off: the container user is a host user):
# 1. a FUSE mount it serves (fusermount3 with user_allow_other) whose server never answers,
#    on _data itself: -n and the real run refuse the volume, named, from the kernel's cache,
#    without a request to the server (a request read is waited for even through SIGKILL);
# 2. such a mount inside _data: the copy (--copy, or across filesystems) refuses it as a
#    mount point, again without a request; the rename leaves it alone, as shift does;
# 3. such a mount made on _data after the volumes are listed (strace holds volprep at its
#    first read of metadata.db, after the dynamic loader's two, between the listing and the
#    opening of each volume; the mount made once strace's log shows the hold, and checked to
#    be made within it): refused when the volume is opened, again without a request;
# 4. a hardlink to a file outside the volume (its owner can link in a file it cannot read
#    where fs.protected_hardlinks is 0; root links it here): the copy refuses it, naming it,
#    rather than give the container's root a copy of it; the rename leaves it to its owner.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fuse_lib.bash"
D=$T/data
R=$D/500000.500000
mkdir -p -m 0701 "$D/volumes" && touch "$D/volumes/metadata.db"
for v in ondata inside; do
  mkdir -p -m 0701 "$D/volumes/$v" && mkdir -p "$D/volumes/$v/_data/sub/fuse"
  echo x >"$D/volumes/$v/_data/sub/f"
  chown -R 1000:1000 "$D/volumes/$v/_data"
done
mount_silent "$D/volumes/ondata/_data:dir:1000" "$D/volumes/inside/_data/sub/fuse:dir:1000"
MV=(migrate-volumes "${MAP[@]}" --data-root "$D")
no_request() { ! grep -q request "$T/server.err" || fail "$1 sent the silent server a request: $(cat "$T/server.err")"; }

# 1. On _data: refused, -n and the real run, whichever volumes are chosen.
for args in "-n" "" "--volume ondata" "--volume ondata --copy"; do
  # shellcheck disable=SC2086
  watched run "${MV[@]}" $args
  [ "$rc" = 5 ] || fail "migrate-volumes $args exited $rc: $(cat "$T/run.err")"
  grep -q "$D/volumes/ondata (_data is a FUSE mount served for uid 1000" "$T/run.err" ||
    fail "migrate-volumes $args: $(cat "$T/run.err")"
  no_request "migrate-volumes $args"
done
[ ! -e "$R" ] || fail "a refused run made $R"

# 2. Inside _data: the copy refuses the mount point (the partial copy removed, nothing moved).
watched copy "${MV[@]}" --volume inside --copy
[ "$rc" = 3 ] || fail "--copy exited $rc: $(cat "$T/copy.err")"
grep -q "$D/volumes/inside/_data/sub/fuse: a mount point (another filesystem is mounted there" "$T/copy.err" ||
  fail "--copy: $(cat "$T/copy.err")"
no_request "--copy"
[ -z "$(ls -A "$R/volumes" | grep -v metadata.db)" ] && [ -z "$(ls -A "$R/volprep-copies")" ] ||
  fail "the refused copy left $(ls -R "$R")"
[ "$(stat -c %u "$D/volumes/inside/_data/sub/f")" = 1000 ] || fail "the refused copy changed the original"
# The rename leaves the mount point alone and moves the rest.
watched move "${MV[@]}" --volume inside
[ "$rc" = 0 ] || fail "the rename exited $rc: $(cat "$T/move.err")"
grep -q "_data/sub/fuse: mount point: left alone" "$T/move.err" || fail "the rename: $(cat "$T/move.err")"
no_request "the rename"
[ "$(stat -c %u "$R/volumes/inside/_data/sub/f")" = 501000 ] || fail "the rename did not shift the volume"

# 3. Mounted on _data between the listing and the opening.
abort_fuse
source "$(dirname "$0")/held_lib.bash"  # strace, wait_traced, in_hold
# held_run K: volprep held 3K s at that read, the mount made once strace's log shows it
# held there; $late set if it was made only after the hold (a loaded machine).
held_run() {
  local hold=$((3 * $1))
  mkdir -p -m 0701 "$D/volumes/late/_data" && chown 1000:1000 "$D/volumes/late/_data"
  head -c 4096 /dev/urandom >"$D/volumes/metadata.db"
  # LeakSanitizer cannot work under ptrace: off for this run of an ASan build.
  # An empty journal directory: no journal is read before the store.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" VOLPREP_JOURNAL_DIR=$T/none \
    strace -f -ttt -o "$T/trace.$hold" -e trace=pread64 -e inject=pread64:delay_enter=$((hold * 1000000)):when=3 \
    "$VOLPREP" "${MV[@]}" --volume late -n >"$T/late.out" 2>"$T/late.err" &
  held_pid=$!
  wait_traced "$T/trace.$hold" 3 ' pread64\(' || fail "volprep ended before its third pread64: $(cat "$T/late.err")"
  mount_silent_in_hold "$hold" "$D/volumes/late/_data:dir:1000"
}
retry_held "the mount on _data" held_run
watch_pid late "$held_pid"
[ "$rc" = 5 ] || fail "mounted on _data while listed: exited $rc: $(cat "$T/late.err")"
grep -q "$D/volumes/late/_data is a FUSE mount served for uid 1000" "$T/late.err" ||
  fail "mounted on _data while listed: $(cat "$T/late.err")"
no_request "a run with _data mounted on after the listing"
abort_fuse

# 4. Linked from outside.
mkdir -p -m 0701 "$D/volumes/linked/_data" && chown 1000:1000 "$D/volumes/linked/_data"
echo 'root:$6$secret' >"$T/shadow" && chmod 600 "$T/shadow"
ln "$T/shadow" "$D/volumes/linked/_data/loot"
rc=0; vp "${MV[@]}" --volume linked --copy >"$T/out" 2>&1 || rc=$?
[ "$rc" = 5 ] || fail "--copy of a link from outside exited $rc: $(cat "$T/out")"
grep -q "$D/volumes/linked/_data/loot: has 2 links, 1 of them in the volume: a file linked from outside it" "$T/out" ||
  fail "--copy of a link from outside: $(cat "$T/out")"
[ ! -e "$R/volumes/linked" ] && [ -z "$(ls -A "$R/volprep-copies")" ] || fail "the refused copy left $(ls -R "$R")"
vp "${MV[@]}" --volume linked >"$T/out" 2>&1 || fail "the rename of a link from outside: $(cat "$T/out")"
[ "$(stat -c %u:%g "$T/shadow")" = 0:0 ] || fail "the rename changed the owner of the file outside"
echo "ok: migrate_hostile"
