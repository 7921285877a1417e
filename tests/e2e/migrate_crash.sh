#!/usr/bin/env bash
# migrate-volumes killed (SIGKILL) at a range of moments leaves every volume whole in its old
# place or its new one, never both or neither; a rerun refuses while the killed migration's
# journal is unfinished, and rollback of that journal gives back the data root of before, byte
# for byte (owners, modes, ACLs). A data root of Docker's shape, no dockerd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
D=$T/data
R=$D/500000.500000
mkdir -p -m 0701 "$D/volumes"
touch "$D/volumes/metadata.db"
for v in alpha beta gamma; do
  mkdir -m 0701 "$D/volumes/$v"
  mkdir "$D/volumes/$v/_data"
  for d in $(seq 1 20); do
    mkdir "$D/volumes/$v/_data/d$d"
    (cd "$D/volumes/$v/_data/d$d" && touch $(seq -f f%g 1 100))
  done
  chown -R 1000:1000 "$D/volumes/$v/_data/d1"
  chown -R 33:33 "$D/volumes/$v/_data/d2"
  setfacl -m u:1000:rwx "$D/volumes/$v/_data/d3"
done
manifest "$D" >"$T/m0"
MV=(migrate-volumes "${MAP[@]}" --data-root "$D")

# One kill more, not timed: the timed ones land where this machine's speed and load put them
# (a fast machine ends the run before the later ones), this one after alpha's rename.
killed=0 midway=0
for delay in 0.01 0.03 0.06 0.1 0.15 0.2 0.3 0.45 alpha-moved; do
  rm -rf "$VOLPREP_JOURNAL_DIR"
  when=$delay
  [ "$delay" != alpha-moved ] || when=$R/volumes/alpha
  kill_after "$when" -- "$VOLPREP" "${MV[@]}" && killed=$((killed + 1))
  for v in alpha beta gamma; do
    n=0
    [ -d "$D/volumes/$v/_data" ] && n=$((n + 1))
    [ -d "$R/volumes/$v/_data" ] && n=$((n + 1))
    [ "$n" -eq 1 ] || fail "killed after ${delay}s: $v is in $n places"
  done
  journal=$(ls "$VOLPREP_JOURNAL_DIR"/*.vpj 2>/dev/null || true)
  # A kill between the journal's creation and its header: nothing was changed, and a rerun
  # rightly passes over the empty journal ("has no header ... ignored"), as does this loop.
  if [ -n "$journal" ] && [ "$(vpj info "$journal" | grep -o 'header=[01]')" = header=0 ]; then
    echo "killed after ${delay}s: the journal has no header yet"
    journal=
  fi
  if [ -n "$journal" ]; then
    if ! "$VOLPREP" journal list | grep -q complete; then
      midway=$((midway + 1))
      rc=0; vp "${MV[@]}" >/dev/null 2>"$T/err" || rc=$?
      [ "$rc" -eq 5 ] && grep -q "did not finish" "$T/err" || fail "rerun after a kill: exit $rc: $(cat "$T/err")"
    fi
    vp rollback "$journal" >"$T/out" 2>&1 || fail "rollback after ${delay}s: $(cat "$T/out")"
  fi
  # What rollback leaves of the remapped root are the directories it made, as dockerd would.
  manifest "$D" | grep -v '^500000\.500000' | cmp -s - <(grep -v '^500000\.500000' "$T/m0") ||
    fail "killed after ${delay}s, then rolled back: the data root differs: $(manifest "$D" | diff "$T/m0" - | head)"
done
[ "$midway" -ge 1 ] || fail "no kill landed between the first rename and the end"
echo "killed $killed of 9 runs, $midway after a rename and before the end; each volume in one place, each rolled back whole"
