#!/usr/bin/env bash
# A --journal-dir whose parent does not exist (a typo, more often than not: its journal would
# go where a later `rollback --last` never looks) is an error naming it, exit 2, before
# anything changes, dry runs too; only a --journal-dir's last component is made (0700). A
# --journal whose directory does not exist likewise. $VOLPREP_JOURNAL_DIR, which every run
# reads alike, is made with its parents, as the default directory is.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
mkdir -p "$T/jh/data" "$T/p"
chown -R 1000:1000 "$T/jh"
manifest "$T/jh" >"$T/m0"

# typo RC PATTERN volprep-args...: exit RC, the error matching PATTERN, nothing changed or made.
typo() {
  local want=$1 pattern=$2 rc=0; shift 2
  vp "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$T/err"; fail "exit $rc, want $want: volprep $*"; }
  grep -Eq -e "$pattern" "$T/err" || { cat "$T/err"; fail "no error matching: $pattern"; }
  manifest "$T/jh" | cmp -s - "$T/m0" || fail "the tree changed: volprep $*"
  [ ! -e "$T/nonexistent" ] || fail "a directory was made: $(find "$T/nonexistent")"
}
missing="--journal-dir $T/nonexistent/deep/dir: its parent $T/nonexistent/deep does not exist"
typo 2 "$missing" "$T/jh" --as 1000 "${MAP[@]}" --journal-dir "$T/nonexistent/deep/dir"
typo 2 "$missing" "$T/jh" --as 1000 "${MAP[@]}" --journal-dir "$T/nonexistent/deep/dir" -n
typo 2 "$missing" shift "$T/jh" "${MAP[@]}" --journal-dir "$T/nonexistent/deep/dir"
typo 2 "--journal $T/nonexistent/run.vpj: its directory $T/nonexistent does not exist" \
  "$T/jh" --as 1000 "${MAP[@]}" --journal "$T/nonexistent/run.vpj"
# compose: nothing made either (the missing source is made only after this check).
printf 'services:\n  app:\n    image: busybox\n    user: "1000:1000"\n    volumes: ["./fresh:/d"]\n' >"$T/p/compose.yaml"
rc=0; (cd "$T/p" && vp compose "${MAP[@]}" --compose-cli never --journal-dir "$T/nonexistent/deep/dir") \
  >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] || { cat "$T/err"; fail "compose: exit $rc, want 2"; }
grep -qe "$missing" "$T/err" || { cat "$T/err"; fail "compose: no error naming the parent"; }
[ ! -e "$T/p/fresh" ] && [ ! -e "$T/nonexistent" ] || fail "compose made a directory"
# --no-journal writes no journal: no directory to check.
vp "$T/jh" --as 1000 "${MAP[@]}" --journal-dir "$T/nonexistent/deep/dir" --no-journal -n >/dev/null 2>&1 ||
  fail "--no-journal -n with a missing --journal-dir failed"

# The last component alone is made, 0700, and rollback --last finds the journal there.
vp "$T/jh" --as 1000 "${MAP[@]}" --journal-dir "$T/journals-given" >/dev/null 2>"$T/err" || { cat "$T/err"; fail "run failed"; }
[ "$(stat -c %a "$T/journals-given")" = 700 ] || fail "made $(stat -c %a "$T/journals-given"), want 700"
[ "$(stat -c %u:%g "$T/jh/data")" = 501000:501000 ] || fail "the tree was not prepared"
vp rollback --last "$T/jh" --journal-dir "$T/journals-given" >/dev/null 2>"$T/err" || { cat "$T/err"; fail "rollback failed"; }
[ "$(stat -c %u:%g "$T/jh/data")" = 1000:1000 ] || fail "rollback did not restore the tree"

# $VOLPREP_JOURNAL_DIR: made with its parents.
VOLPREP_JOURNAL_DIR=$T/env/deep/journals vp "$T/jh" --as 1000 "${MAP[@]}" >/dev/null 2>"$T/err" ||
  { cat "$T/err"; fail "a run with a deep \$VOLPREP_JOURNAL_DIR failed"; }
ls "$T/env/deep/journals"/*.vpj >/dev/null || fail "no journal in \$VOLPREP_JOURNAL_DIR"
echo ok
