#!/usr/bin/env bash
# Rollback and journals as an admin uses them:
# 1. `rollback --last` after a rollback and a run with --no-journal undoes the rolled-back run
#    again (what it picks: the newest journal of a run on PATH), but first warns, naming that
#    journal and the rollback that undid it, and that the later run wrote no journal; a journal
#    named that was rolled back already is warned of too.
# 2. A rollback that restores nothing writes no journal of its own when the run was rolled back
#    already; the first rollback of a run writes one even so (0 entries), marking it rolled back.
# 3. A journal named by the bare file name `journal list` prints ("rollback of NAME") is found
#    in the journal directory by `journal show` and `rollback`, from any directory; a file of
#    that name in the current directory comes first; a symlink there is still refused.
# 4. `rollback --journal FILE --no-journal` is a usage error (exit 2), as for prepare.
source "$(dirname "$0")/lib.sh"
JD=$VOLPREP_JOURNAL_DIR
mkdir -p "$T/w/jh/a" "$T/elsewhere"
echo x >"$T/w/jh/a/f"
cd "$T/w"
owner() { stat -c %u "$T/w/jh/a/f"; }
journals() { find "$JD" -name '*.vpj' | wc -l; }

# 1.
vp ./jh --as 1000 "${MAP[@]}" >/dev/null 2>&1 || fail "prepare failed"
J1=$(ls "$JD"/*.vpj)
vp rollback --last ./jh >/dev/null 2>&1 || fail "the first rollback failed"
R1=$(ls "$JD"/*.vpj | grep -vxF "$J1")
[ "$(owner)" = 0 ] || fail "the first rollback left owner $(owner)"
vp ./jh --as 1000 "${MAP[@]}" --no-journal >/dev/null 2>&1 || fail "prepare --no-journal failed"
vp rollback --last ./jh >"$T/out" 2>"$T/err" || fail "rollback --last failed: $(cat "$T/err")"
grep -qF "warning: the newest journaled run, $J1 (started" "$T/err" && grep -qF "rolled back already by $R1" "$T/err" &&
  grep -qF "no run on it since is journaled (one with --no-journal" "$T/err" || fail "no warning naming both journals: $(cat "$T/err")"
grep -q '^restored 3,' "$T/out" && [ "$(owner)" = 0 ] || fail "rollback --last: $(cat "$T/out"), owner $(owner)"
R2=$(ls -t "$JD"/*.vpj | head -1)
vp ./jh --as 1000 "${MAP[@]}" --no-journal >/dev/null 2>&1 || fail "prepare --no-journal failed"
vp rollback "$J1" >"$T/out" 2>"$T/err" || fail "rollback of the journal named failed: $(cat "$T/err")"
grep -qF "warning: $J1 (started" "$T/err" && grep -qF "rolled back already by $R2" "$T/err" ||
  fail "no warning that the journal named was rolled back already: $(cat "$T/err")"
[ "$(owner)" = 0 ] || fail "rollback of the journal named left owner $(owner)"

# 2. Nothing left to restore: no journal; the list shows no 0-entry rollback.
n=$(journals)
vp rollback "$J1" >"$T/out" 2>"$T/err" || fail "a rollback with nothing to restore failed: $(cat "$T/err")"
grep -q '^restored 0, already as before 3' "$T/out" || fail "unexpected summary: $(cat "$T/out")"
[ "$(journals)" = "$n" ] || fail "a rollback that restored nothing wrote a journal: $(vp journal list)"
! vp journal list 2>/dev/null | grep -q ' 0 entries' || fail "journal list shows a 0-entry journal"

# The first rollback of a run whose entries are back already (by hand): a 0-entry journal,
# and the run listed as rolled back.
vp ./jh --as 1000 "${MAP[@]}" >/dev/null 2>&1 || fail "prepare failed"
J3=$(ls -t "$JD"/*.vpj | head -1)
chown -R 0:0 jh
n=$(journals)
vp rollback "$J3" >"$T/out" 2>"$T/err" || fail "rollback of a run undone by hand failed: $(cat "$T/err")"
[ "$(journals)" = $((n + 1)) ] || fail "the first rollback of $J3 wrote no journal"
vp journal list | grep -qF "rolled back  $J3" || fail "$J3 not listed as rolled back: $(vp journal list)"

# 3. The bare name journal list prints, from another directory.
name=${J1##*/}
vp journal list | grep -qF "(rollback of $name)" || fail "journal list does not name $name"
cd "$T/elsewhere"
vp journal show "$name" >"$T/show" 2>"$T/err" || fail "journal show $name failed: $(cat "$T/err")"
grep -qF "# volume $T/w/jh" "$T/show" || fail "journal show $name: $(head -3 "$T/show")"
vp rollback "$name" --dry-run >"$T/out" 2>"$T/err" || fail "rollback $name --dry-run failed: $(cat "$T/err")"
grep -q '^to restore 0, already as before 3' "$T/out" || fail "rollback $name --dry-run: $(cat "$T/out")"
# --journal-dir is where it is looked for; a name in neither place says the path it tried.
rc=0; vp journal show "$name" --journal-dir "$T/nowhere" 2>"$T/err" >/dev/null || rc=$?
[ "$rc" != 0 ] && grep -qF "$T/nowhere/$name" "$T/err" || fail "journal show --journal-dir: rc $rc, $(cat "$T/err")"
# A file of that name here comes first (here: not a journal).
echo junk >"$name"
! vp journal show "$name" >/dev/null 2>&1 || fail "journal show took the journal directory's file over the one here"
rm "$name"
# Whatever path is opened, a symlink is refused, as ever.
ln -s "$J1" "$JD/link.vpj"
rc=0; vp journal show link.vpj >/dev/null 2>"$T/err" || rc=$?
[ "$rc" != 0 ] || fail "journal show opened a symlink in the journal directory"
rc=0; vp rollback link.vpj --dry-run >/dev/null 2>"$T/err" || rc=$?
[ "$rc" != 0 ] || fail "rollback opened a symlink in the journal directory"
rm "$JD/link.vpj"
cd "$T/w"

# 4. Its own journal and none: a usage error, nothing changed, no file made.
vp ./jh --as 1000 "${MAP[@]}" >/dev/null 2>&1 || fail "prepare failed"
J2=$(ls -t "$JD"/*.vpj | head -1)
rc=0; vp rollback "$J2" --journal "$T/own.vpj" --no-journal >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 2 ] || fail "rollback --journal FILE --no-journal exited $rc: $(cat "$T/err")"
[ ! -e "$T/own.vpj" ] && [ "$(owner)" = 501000 ] || fail "rollback --journal FILE --no-journal changed something"
vp rollback "$J2" --journal "$T/own.vpj" >/dev/null 2>&1 && [ -f "$T/own.vpj" ] && [ "$(owner)" = 0 ] ||
  fail "rollback --journal FILE failed"
echo "ok: ux_rollback"
