#!/usr/bin/env bash
# `rollback --last` of a shift that a rerun finished undoes both journals, and what stops it
# says so: a file made immutable fails the first shift (unfinished), the rerun finishes it.
# --journal FILE with two journals to undo is refused, nothing changed; an entry of the rerun
# changed since (exit 1, left alone) does not keep the interrupted shift's entries shifted;
# rolling back both journals by name, the older first, says nothing stands. And a reverse shift
# that takes set-id bits off a file it cannot lease says that rollback will withhold them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
source "$(dirname "$0")/shift_lib.bash"
JD=$VOLPREP_JOURNAL_DIR
mkdir -p "$JD"
vol=$T/vol

interrupted_then_finished() { # the first shift fails on $vol/d1/stuck, the rerun finishes it
  rm -rf "$vol" "$JD"/*
  mkdir -p "$vol/d0" "$vol/d1"
  for i in 1 2 3 4 5; do echo "$i" >"$vol/d0/f$i"; done
  echo stuck >"$vol/d1/stuck"
  chown -R 1000:1000 "$vol"
  manifest "$vol" >"$T/before"
  chattr +i "$vol/d1/stuck" || fail "chattr +i: the test needs a filesystem with immutable files under $T"
  rc=0; vp shift "$vol" "${MAP[@]}" >/dev/null 2>"$T/err" || rc=$?
  chattr -i "$vol/d1/stuck"
  [ "$rc" -eq 4 ] || fail "the shift of an immutable file exited $rc, want 4: $(cat "$T/err")"
  interrupted=$(ls "$JD"/*.vpj)
  vp shift "$vol" "${MAP[@]}" >/dev/null 2>"$T/err" || fail "the rerun: $(cat "$T/err")"
  grep -q "finishing the shift that did not finish" "$T/err" || fail "the rerun finished nothing: $(cat "$T/err")"
  rerun=$(ls -t "$JD"/*.vpj | head -1)
  [ "$(stat -c %u "$vol/d1/stuck")" = 501000 ] && [ "$(stat -c %u "$vol/d0/f1")" = 501000 ] || fail "not shifted"
}

# --- --journal FILE: one file cannot hold two rollbacks --------------------------------------
interrupted_then_finished
manifest "$vol" >"$T/shifted"
rc=0; vp rollback --last "$vol" --journal "$T/own.vpj" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "finished the shift that did not finish in $interrupted" "$T/err" ||
  fail "--journal with two journals to undo: exit $rc: $(cat "$T/err")"
manifest "$vol" | cmp -s - "$T/shifted" || fail "the refused rollback changed the tree"
[ ! -e "$T/own.vpj" ] || fail "the refused rollback wrote its journal"

# --- an entry of the rerun changed since: left alone, the older journal still undone --------
chmod 600 "$vol/d1/stuck"
rc=0; vp rollback --last "$vol" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] || fail "rollback --last with an entry changed since: exit $rc, want 1: $(cat "$T/err")"
grep -q "undoing that one too" "$T/err" || fail "the interrupted shift was not undone: $(cat "$T/err")"
[ "$(stat -c %u:%g "$vol/d1/stuck")" = 501000:501000 ] || fail "the entry changed since was not left alone"
for i in 1 2 3 4 5; do [ "$(stat -c %u:%g "$vol/d0/f$i")" = 1000:1000 ] || fail "d0/f$i still shifted"; done

# --- both by name, the older first: nothing stands -------------------------------------------
interrupted_then_finished
vp rollback "$interrupted" >/dev/null 2>"$T/err" || fail "rollback of the interrupted: $(cat "$T/err")"
vp rollback "$rerun" >/dev/null 2>"$T/err" || fail "rollback of the rerun: $(cat "$T/err")"
not grep -q "changes stand" "$T/err"
manifest "$vol" | diff "$T/before" - >&2 || fail "rolling back both by name is not the tree as it was"
# Then --last: the interrupted shift, rolled back by name, is not undone again with it.
vp rollback --last "$vol" --journal "$T/own2.vpj" >/dev/null 2>"$T/err" || fail "--last after both by name: $(cat "$T/err")"
not grep -q "undoing that one too" "$T/err"
# The rerun's alone, by name: it says the interrupted shift's changes stand.
interrupted_then_finished
vp rollback "$rerun" >/dev/null 2>"$T/err" || fail "rollback of the rerun: $(cat "$T/err")"
grep -q "finished the shift that did not finish in $interrupted: that one's changes stand" "$T/err" ||
  fail "no word of the interrupted shift: $(cat "$T/err")"
# --- a reverse shift that takes set-id bits off a file open for writing says so ----------------
rm -rf "$vol" "$JD"/*
mkdir "$vol"; cp /bin/true "$vol/su"; chmod 4755 "$vol/su"
vp shift "$vol" "${MAP[@]}" >/dev/null 2>&1 || fail "forward shift"
exec 3>>"$vol/su"  # open for writing: no read lease to be had
vp shift "$vol" "${MAP[@]}" --reverse >/dev/null 2>"$T/err" || fail "reverse shift: $(cat "$T/err")"
exec 3>&-
grep -q "su: its set-id bits or capabilities are off, and no state of it after that is journaled" "$T/err" ||
  fail "the reverse shift did not say rollback will withhold the bits: $(cat "$T/err")"
echo "ok: rollback_finished_shift"
