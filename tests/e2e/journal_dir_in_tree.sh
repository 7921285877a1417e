#!/usr/bin/env bash
# A tree that holds the journal directory in use (--journal-dir, $VOLPREP_JOURNAL_DIR), or
# would once it is made, or the directory a --journal is written in, is refused (exit 5)
# before anything changes, with a message naming both, by prepare, shift and compose, dry runs
# too: its run would give root's journals to the container (and rollback refuses journals root
# does not own). So is a tree that holds volprep's lock directory (/run with
# --allow-system-path, as a dry run). A journal directory beside the tree is fine.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
chmod 755 "$T"
mkdir -p "$T/t1/data" "$T/t1/deeper/more"
chown -R 1000:1000 "$T/t1"
manifest "$T/t1" >"$T/m0"

# refused WHAT PATTERN volprep-args...: exit 5, the error matching PATTERN, nothing changed.
refused() {
  local what=$1 pattern=$2 rc=0; shift 2
  (cd "$T" && vp "$@") >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq 5 ] || { cat "$T/err"; fail "$what: exit $rc, want 5: volprep $*"; }
  grep -Eq "$pattern" "$T/err" || { cat "$T/err"; fail "$what: no error matching: $pattern"; }
  manifest "$T/t1" | cmp -s - "$T/m0" || { manifest "$T/t1" | diff "$T/m0" - || true; fail "$what: the tree changed"; }
}
in_tree="refusing t1: it (would hold|holds) the journal directory t1/journals: the container would get root's journals"

# The journal directory not made yet, then made (by root, as volprep makes it).
refused "prepare, journal directory to be made" "$in_tree" t1 --as 1000 "${MAP[@]}" --journal-dir t1/journals
[ ! -e "$T/t1/journals" ] || fail "the refused run made the journal directory"
refused "dry run" "$in_tree" t1 --as 1000 "${MAP[@]}" --journal-dir t1/journals -n
mkdir -m 700 "$T/t1/journals"
manifest "$T/t1" >"$T/m0"
refused "prepare" "$in_tree" t1 --as 1000 "${MAP[@]}" --journal-dir t1/journals
refused "--check" "$in_tree" t1 --as 1000 "${MAP[@]}" --journal-dir t1/journals --check
refused "--no-journal, the directory there" "$in_tree" t1 --as 1000 "${MAP[@]}" --journal-dir t1/journals --no-journal
VOLPREP_JOURNAL_DIR=$T/t1/journals refused "\$VOLPREP_JOURNAL_DIR" \
  "refusing t1: it holds the journal directory $T/t1/journals" t1 --as 1000 "${MAP[@]}"
refused "shift" "$in_tree" shift t1 "${MAP[@]}" --journal-dir t1/journals
refused "shift -n" "$in_tree" shift t1 "${MAP[@]}" --journal-dir t1/journals -n
refused "--journal" "refusing t1: it would hold the journal t1/deeper/run.vpj: the container would get root's journal" \
  t1 --as 1000 "${MAP[@]}" --journal t1/deeper/run.vpj
# Deeper in the tree, with more than the last component to make: a default directory.
VOLPREP_JOURNAL_DIR=$T/t1/deeper/more/j refused "deeper" \
  "refusing t1: it would hold the journal directory $T/t1/deeper/more/j" t1 --as 1000 "${MAP[@]}"

# compose: the bind source holds the journal directory.
mkdir "$T/p"
printf 'services:\n  app:\n    image: busybox\n    user: "1000:1000"\n    volumes: ["%s:/d"]\n' "$T/t1" >"$T/p/compose.yaml"
rc=0; (cd "$T/p" && vp compose "${MAP[@]}" --compose-cli never --allow-source "$T/t1" --journal-dir "$T/t1/journals") >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 5 ] || { cat "$T/err"; fail "compose: exit $rc, want 5"; }
grep -q "it holds the journal directory $T/t1/journals" "$T/err" || { cat "$T/err"; fail "compose: no refusal naming both"; }
manifest "$T/t1" | cmp -s - "$T/m0" || fail "compose: the tree changed"

# compose: a missing source that would hold the journal directory is refused before it is made.
mkdir "$T/p2"
printf 'services:\n  app:\n    image: busybox\n    user: "1000:1000"\n    volumes: ["./newsrc:/d"]\n' >"$T/p2/compose.yaml"
rc=0; (cd "$T/p2" && VOLPREP_JOURNAL_DIR=$T/p2/newsrc/j vp compose "${MAP[@]}" --compose-cli never) >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 5 ] || { cat "$T/err"; fail "compose, missing source holding the journal directory: exit $rc, want 5"; }
grep -q "refusing to make $T/p2/newsrc: it would hold the journal directory" "$T/err" || { cat "$T/err"; fail "no word of it"; }
[ ! -e "$T/p2/newsrc" ] || fail "the refused source was made"

# The lock directory: / and /run are refused as system paths; with --allow-system-path, /run
# still is, for the lock directory in it (a dry run: nothing could change anyway).
rc=0; vp /run --as 1000 "${MAP[@]}" --allow-system-path -n >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 5 ] || { head -3 "$T/err"; fail "/run --allow-system-path -n: exit $rc, want 5"; }
grep -Eq "refusing /run: it (would hold|holds) volprep's lock directory /run/volprep" "$T/err" ||
  { cat "$T/err"; fail "/run: no refusal naming the lock directory"; }

# --journal through a symlink into the tree: the symlink is not followed (the check and the
# open reach the same directory), refused, nothing changed, no journal in the tree.
ln -s "$T/t1/data" "$T/lnk"
rc=0; vp "$T/t1" --as 1000 "${MAP[@]}" --journal "$T/lnk/run.vpj" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -ne 0 ] || fail "--journal through a symlink into the tree: exit 0"
grep -q "symlink is on its path" "$T/err" || { cat "$T/err"; fail "--journal through a symlink: no word of it"; }
[ ! -e "$T/t1/data/run.vpj" ] || fail "--journal through a symlink wrote into the tree"
rc=0; vp "$T/t1" --as 1000 "${MAP[@]}" --journal "$T/lnk/run.vpj" -n >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] || { cat "$T/err"; fail "--journal through a symlink, dry run: exit $rc, want 2 as the real run"; }
manifest "$T/t1" | cmp -s - "$T/m0" || fail "--journal through a symlink: the tree changed"

# A tree inside the journal directory (not the default, which is a system path): refused too.
mkdir -p "$T/jd/sub"
for p in "$T/jd/sub" "$T/jd"; do
  rc=0; VOLPREP_JOURNAL_DIR=$T/jd vp "$p" --as 1000 "${MAP[@]}" -n >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq 5 ] || { cat "$T/err"; fail "$p in the journal directory: exit $rc, want 5"; }
done
grep -q "refusing $T/jd/sub: it is inside the journal directory $T/jd, which is volprep's own" <(
  VOLPREP_JOURNAL_DIR=$T/jd vp "$T/jd/sub" --as 1000 "${MAP[@]}" -n 2>&1) || fail "no word of the journal directory"

# Beside the tree: the run goes on, its journal where it was told, and rollback undoes it.
vp "$T/t1" --as 1000 "${MAP[@]}" --journal-dir "$T/beside" >/dev/null 2>"$T/err" || { cat "$T/err"; fail "beside: failed"; }
[ "$(stat -c %u:%g "$T/t1/data")" = 501000:501000 ] || fail "beside: the tree was not prepared"
[ "$(stat -c %u:%a "$T/beside")" = 0:700 ] || fail "beside: journal directory $(stat -c %u:%a "$T/beside")"
vp rollback --last "$T/t1" --journal-dir "$T/beside" >/dev/null 2>"$T/err" || { cat "$T/err"; fail "rollback failed"; }
[ "$(stat -c %u:%g "$T/t1/data")" = 1000:1000 ] || fail "rollback did not restore the tree"
echo ok
