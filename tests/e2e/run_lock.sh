#!/usr/bin/env bash
# One changing run per tree at a time, the trees it is in and the trees in it included. A run
# is held (strace) in the fdatasync of its journal's first records (or, with --no-journal, in
# its first fchownat): it is going, nothing changed yet. Meanwhile, with --no-wait:
# 1. held shift of top/vol: a second shift of it (which took the first for one that did not
#    finish, and finished it alongside), a prepare of it, of a tree in it and of the tree it
#    is in, `rollback --last` of it: each refused (exit 5, nothing changed, the same words);
#    a dry run says so and plans; a tree beside it runs. Without --no-wait a second shift
#    says it waits, and once the held one has ended finds the tree shifted (exit 1). Every id
#    is shifted once, and rollback --last undoes it.
# 2. held prepare --no-journal (no journal directory at all): a shift of it refused.
# 3. held prepare of a Compose source: compose of it with a missing source is refused before
#    the missing one is made; rollback of the project's journal (two roots) restores neither;
#    held prepare of a directory a missing source would be made in: compose refused, nothing made.
# 4. held prepare of a named volume's _data, then of the remapped root's volumes directory:
#    migrate-volumes (rename, and --copy) refused before anything is made; held prepare of the
#    volumes directory a migration is undone into: its rollback refused, nothing moved back.
# 5. held prepare --cross-filesystems of a tree with a bind mount in it: a run on the bind
#    mount's source (another path to the same tree) refused.
# 6. a run killed -9 while it holds its locks: the next run goes ahead.
# The lock file is root's alone: /run/volprep/runs.lock, 0600.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/held_lib.bash"

# expect_err WANT cmd...: the command's exit status must be WANT; stdout in $T/out, stderr in $T/err.
expect_err() {
  local want=$1 rc=0; shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$T/out" "$T/err" >&2; fail "expected exit $want, got $rc: $*"; }
}
owners() { find "$1" -printf '%U:%G %P\n' | sort; }
busy() { echo "$1 is being changed by another volprep now (a prepare, compose, shift, migrate-volumes or rollback of it, of a tree it is in, or of a tree in it, still running)"; }
# refused WHO cmd...: exit 5, with the words for WHO.
refused() {
  local who=$1; shift
  expect_err 5 "$@"
  grep -qxF "volprep: error: $(busy "$who"): let it finish, then run this again; nothing changed" "$T/err" || fail "$*: $(cat "$T/err")"
}
# held_done WHAT: the held run ends well, its acts inside its hold.
held_done() {
  in_hold 3 || fail "$1: what was tried while the run was held ended after its hold (a loaded machine?)"
  local rc=0
  wait "$held_pid" || rc=$?
  [ "$rc" = 0 ] || fail "$1: the held run exited $rc: $(cat "$held_trace" | tail -3)"
}

vol=$T/top/vol
mkdir -p "$vol/a" "$vol/b" "$T/other"
for i in $(seq 20); do echo "$i" >"$vol/a/f$i"; echo "$i" >"$vol/b/g$i"; done
chown -R 1000:1000 "$vol/b"
touch "$T/other/x"

# --- 1. a shift held --------------------------------------------------------------------------
held_volprep fdatasync "$T/s1.out" shift "$vol" "${MAP[@]}"
wait_held || fail "the shift ended before its first sync: $(cat "$T/s1.out")"
before=$(owners "$T/top")
refused "$vol" vp shift "$vol" "${MAP[@]}" --no-wait
refused "$vol" vp "$vol" --as 1000 "${MAP[@]}" --no-wait
refused "$vol/b" vp "$vol/b" --as 1000 "${MAP[@]}" --no-wait  # a tree in it
refused "$T/top" vp "$T/top" --as 1000 "${MAP[@]}" --no-wait  # the tree it is in
expect_err 5 vp rollback --last "$vol" --no-wait
grep -qxF "volprep: error: $(busy "$vol"): let it finish, then run this again; nothing changed" "$T/err" || fail "rollback --last: $(cat "$T/err")"
expect_err 0 vp shift "$vol" "${MAP[@]}" -n
grep -qxF "volprep: warning: $(busy "$vol"): let it finish, then run this again (this plan is of the tree as that run has left it so far)" "$T/err" ||
  fail "shift -n: $(cat "$T/err")"
[ "$(grep -c 'being changed' "$T/err")" = 1 ] || fail "shift -n: said more than once: $(cat "$T/err")"
expect_err 0 vp "$T/other" --as 1000 "${MAP[@]}"  # a tree beside it
# Without --no-wait: said, then waited for.
vp shift "$vol" "${MAP[@]}" >"$T/w.out" 2>"$T/w.err" &
waiter=$!
for _ in $(seq 100); do grep -q 'waiting for it to end' "$T/w.err" && break; sleep 0.02; done
grep -qxF "volprep: warning: $(busy "$vol"): waiting for it to end (--no-wait refuses instead)" "$T/w.err" ||
  fail "a second shift did not say it waits: $(cat "$T/w.err")"
kill -0 "$waiter" || fail "the waiting shift ended while the first was held: $(cat "$T/w.err")"
[ "$(owners "$T/top")" = "$before" ] || fail "the tree changed while its shift was held"
held_done shift
rc=0; wait "$waiter" || rc=$?
[ "$rc" = 1 ] && grep -q 'already shifted' "$T/w.err" || fail "the shift that waited: exit $rc: $(cat "$T/w.err")"
[ "$(find "$vol" "$vol/a" -maxdepth 0 -printf '%U:%G\n' | sort -u)" = 500000:500000 ] || fail "root's not shifted once"
[ "$(find "$vol/a" -type f -printf '%U:%G\n' | sort -u)" = 500000:500000 ] || fail "a/: $(owners "$vol/a")"
[ "$(find "$vol/b" -printf '%U:%G\n' | sort -u)" = 501000:501000 ] || fail "b/: $(owners "$vol/b")"
[ "$(stat -c %u:%g "$T/other/x")" = 501000:501000 ] || fail "the tree beside it was not prepared"
vp rollback --last "$vol" >/dev/null 2>&1 || fail "rollback --last after the shift ended"
[ "$(find "$vol/a" -printf '%U\n' | sort -u)" = 0 ] || fail "not rolled back: $(owners "$vol/a")"

# --- 2. --no-journal, no journal directory: locked all the same -------------------------------
mkdir "$T/nj" && echo x >"$T/nj/f"
VOLPREP_JOURNAL_DIR=$T/none held_volprep fchownat "$T/nj.out" "$T/nj" --as 1000 "${MAP[@]}" --no-journal
wait_held || fail "the --no-journal run ended before its first fchownat: $(cat "$T/nj.out")"
refused "$T/nj" vp shift "$T/nj" "${MAP[@]}" --no-wait
held_done "--no-journal"
[ ! -e "$T/none" ] || fail "--no-journal made a journal directory"
[ "$(stat -c %u:%g "$T/nj/f")" = 501000:501000 ] || fail "--no-journal run: $(owners "$T/nj")"

# --- 3. Compose: nothing made, nothing of the project's journal restored -----------------------
p=$T/proj
mkdir -p "$p/d1" "$p/d2"
echo 1 >"$p/d1/f" && echo 2 >"$p/d2/f"
vc() { (cd "$p" && vp compose "${MAP[@]}" --compose-cli never "$@"); }
compose_file() {
  printf 'services:\n  app:\n    image: busybox\n    x-volprep: {as: "1000:1000"}\n    volumes: [%s]\n' "$1" >"$p/compose.yaml"
}
compose_file '"./d1:/d1", "./d2:/d2"'
vc >/dev/null 2>&1 || fail "compose"
journal=$(ls -t "$VOLPREP_JOURNAL_DIR"/*.vpj | head -1)
held_volprep fdatasync "$T/c.out" "$p/d1" --as 2000 "${MAP[@]}"
wait_held || fail "the prepare of d1 ended before its first sync: $(cat "$T/c.out")"
compose_file '"./d1:/d1", "./new1/a:/n1"'
refused "$p/d1" vc --no-wait
[ ! -e "$p/new1" ] || fail "compose made a source, then was refused"
refused "$p/d1" vp rollback "$journal" --no-wait
[ "$(stat -c %u:%g "$p/d2/f")" = 501000:501000 ] || fail "rollback restored d2, then was refused for d1"
held_done "prepare of d1"
mkdir "$p/sub"
held_volprep fdatasync "$T/c2.out" "$p/sub" --as 2000 "${MAP[@]}"
wait_held || fail "the prepare of sub ended before its first sync: $(cat "$T/c2.out")"
compose_file '"./d2:/d2", "./sub/new:/n"'
refused "$p/sub" vc --no-wait
[ ! -e "$p/sub/new" ] || fail "compose made a source in a tree another run holds"
held_done "prepare of sub"

# --- 4. migrate-volumes: nothing made -----------------------------------------------------------
D=$T/data
mkdir -p -m 0701 "$D/volumes/alpha/_data"
touch "$D/volumes/metadata.db"
echo a >"$D/volumes/alpha/_data/f"
state() { (cd "$D" && find . -printf '%P %y %u:%g %m\n' | sort); }
# migrate_refused TREE: with a prepare of TREE held, migrate-volumes (rename, --copy) refused
# naming TREE, the data root as it was.
migrate_refused() {
  local out=$T/m.${1//\//_}  # a log of its own: wait_held reads it
  held_volprep fdatasync "$out" "$1" --as 2000 "${MAP[@]}" --allow-system-path
  wait_held || fail "the prepare of $1 ended before its first sync: $(cat "$out")"
  local s0 copy
  s0=$(state)
  for copy in "" --copy; do
    refused "$1" vp migrate-volumes "${MAP[@]}" --data-root "$D" $copy --no-wait
    [ "$(state)" = "$s0" ] || fail "migrate-volumes $copy with $1 held changed the data root: $(state)"
  done
  held_done "prepare of $1"
}
migrate_refused "$D/volumes/alpha/_data"
mkdir -p -m 0710 "$D/500000.500000/volumes"
migrate_refused "$D/500000.500000/volumes"
rm -rf "$D/500000.500000"  # given to 2000 by that prepare: made again, as Docker makes it
chown -R 0:0 "$D/volumes/alpha/_data"  # given to 2000 by the first
vp migrate-volumes "${MAP[@]}" --data-root "$D" >"$T/mig.out" 2>&1 || fail "migrate-volumes: $(cat "$T/mig.out")"
[ -d "$D/500000.500000/volumes/alpha/_data" ] || fail "not migrated: $(state)"
mj=$(ls -t "$VOLPREP_JOURNAL_DIR"/*.vpj | head -1)
held_volprep fdatasync "$T/m3.out" "$D/volumes" --as 2000 "${MAP[@]}" --allow-system-path
wait_held || fail "the prepare of the volumes directory ended before its first sync: $(cat "$T/m3.out")"
refused "$D/volumes" vp rollback "$mj" --no-wait
[ -d "$D/500000.500000/volumes/alpha/_data" ] && [ ! -e "$D/volumes/alpha" ] ||
  fail "the rollback moved the volume back into a held tree: $(state)"
held_done "prepare of the volumes directory"

# --- 5. --cross-filesystems: another path to a tree mounted in it --------------------------------
mkdir -p "$T/A/m" "$T/src/vol/sub"
echo s >"$T/src/vol/sub/f" && echo a >"$T/A/f"
mount --bind "$T/src/vol" "$T/A/m"
held_volprep fdatasync "$T/x.out" "$T/A" --as 1000 "${MAP[@]}" --cross-filesystems
wait_held || fail "the prepare --cross-filesystems ended before its first sync: $(cat "$T/x.out")"
refused "$T/A/m" vp "$T/A/m" --as 2000 "${MAP[@]}" --no-wait
refused "$T/src/vol" vp "$T/src/vol" --as 2000 "${MAP[@]}" --no-wait
held_done "prepare --cross-filesystems"
umount "$T/A/m"

# --- 6. a run killed -9 while it holds its locks: the kernel drops them with it ----------------
held_volprep fdatasync "$T/k.out" "$vol" --as 1000 "${MAP[@]}"
wait_held || fail "the prepare ended before its first sync: $(cat "$T/k.out")"
pids=$(held_volprep_pids)
[ -n "$pids" ] || fail "no volprep under strace"
kill -9 $pids
{ wait "$held_pid"; } 2>/dev/null || true
expect_err 0 vp "$vol" --as 1000 "${MAP[@]}"
[ "$(find "$vol" -printf '%U:%G\n' | sort -u)" = 501000:501000 ] || fail "the run after the kill: $(owners "$vol")"

[ "$(stat -c '%U %a %F' /run/volprep/runs.lock)" = "root 600 regular empty file" ] ||
  fail "lock file: $(stat -c '%U %a %F' /run/volprep/runs.lock)"
[ "$(stat -c '%U %a' /run/volprep)" = "root 700" ] || fail "lock directory: $(stat -c '%U %a' /run/volprep)"
echo "ok: run_lock"
