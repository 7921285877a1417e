#!/usr/bin/env bash
# `rollback --last PATH` takes the newest run on PATH. When that run's journal names another
# device than PATH is on now, with PATH's inode, it is either this filesystem remounted or
# another one that was mounted there; where no birth time tells which (FUSE, NFS, a journal
# older than format 6), it is refused, saying why. An older run that matches PATH as it is now
# must not be undone in its place in silence: that would leave the newer run's changes and
# undo the ones beneath them.
# Here: a FUSE filesystem (bench/slowfs.c; no birth time; inode numbers passed through) of a
# directory at vol, run A on it; the owners set back, and a second FUSE mount of the same
# directory over vol for a while (the same root inode, another device), run B on it, then
# unmounted. `rollback --last vol` must refuse (exit 5), name both journals, change nothing.
# Where birth times tell the newer run to be of another filesystem (two tmpfs), it is passed
# over and the older run undone (a kernel whose tmpfs keeps none: refused as untold).
source "$(dirname "$0")/lib.sh"
mkdir -p "$VOLPREP_JOURNAL_DIR"
cc -std=gnu11 -O2 -o "$T/slowfs" "$VOLPREP_SRC/bench/slowfs.c" $(pkg-config --cflags --libs fuse3) ||
  fail "cannot build bench/slowfs.c (libfuse3-dev)"
pids=()
# Each server unmounts its own mount when it ends: the top one first.
on_exit 'for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; wait "${pids[i]}" 2>/dev/null; done'
slowfs() { # BACK: mounted over $T/vol
  local before
  before=$(awk -v m="$T/vol" '$5 == m' /proc/self/mountinfo | wc -l)
  "$T/slowfs" --delay-us 0 --attr-cache-s 0 "$1" "$T/vol" 2>>"$T/slowfs.log" &
  pids+=($!)
  for _ in $(seq 100); do
    [ "$(awk -v m="$T/vol" '$5 == m' /proc/self/mountinfo | wc -l)" -gt "$before" ] && return
    sleep 0.05
  done
  fail "slowfs did not mount: $(cat "$T/slowfs.log")"
}
mkdir -p "$T/back/d" "$T/vol"
echo a >"$T/back/d/f"
chown -R 1000:1000 "$T/back"
owners() { stat -c %u:%g "$T/back/d/f" "$T/back/d" "$T/back" | sort -u; }

slowfs "$T/back"
devA=$(stat -c %d "$T/vol") inoA=$(stat -c %i "$T/vol")
vp "$T/vol" --as 1000 "${MAP[@]}" -q >/dev/null
chown -R 1000:1000 "$T/back"
slowfs "$T/back"
devB=$(stat -c %d "$T/vol") inoB=$(stat -c %i "$T/vol")
[ "$devA" != "$devB" ] && [ "$inoA" = "$inoB" ] || fail "want two devices, one root inode: $devA/$inoA, $devB/$inoB"
vp "$T/vol" --as 1000 "${MAP[@]}" -q >/dev/null
# The second server unmounts its own mount on SIGTERM (an umount here as well would take
# the first one too: libfuse unmounts its mount point's path when it ends).
kill "${pids[1]}"; wait "${pids[1]}" || true
[ "$(stat -c %d "$T/vol")" = "$devA" ] || fail "vol is not the first mount again: $devA $devB now $(stat -c %d "$T/vol"); $(grep "$T/vol" /proc/self/mountinfo)"
[ "$(owners)" = 501000:501000 ] || fail "the runs did not change the tree: $(owners)"
jA=$(ls "$VOLPREP_JOURNAL_DIR" | sort | head -1) jB=$(ls "$VOLPREP_JOURNAL_DIR" | sort | tail -1)
[ "$(ls "$VOLPREP_JOURNAL_DIR" | wc -l)" = 2 ] && [ "$jA" != "$jB" ] || fail "want two journals: $(ls "$VOLPREP_JOURNAL_DIR")"

# --last: refused, both named, nothing changed, no rollback journal written.
rc=0
vp rollback --last "$T/vol" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 5 ] || fail "rollback --last exited $rc, want 5 (it undid the older run in the newer one's place?): $(cat "$T/out" "$T/err")"
grep -qF "the newest run on $T/vol ($VOLPREP_JOURNAL_DIR/$jB) is not undone here" "$T/err" ||
  fail "the newer run is not named: $(cat "$T/err")"
grep -qF "An older run ($VOLPREP_JOURNAL_DIR/$jA)" "$T/err" || fail "the older run is not named: $(cat "$T/err")"
grep -q "birth time" "$T/err" || fail "why it cannot be told is not said: $(cat "$T/err")"
[ "$(owners)" = 501000:501000 ] || fail "the tree changed: $(owners)"
[ "$(ls "$VOLPREP_JOURNAL_DIR" | wc -l)" = 2 ] || fail "a journal was written: $(ls "$VOLPREP_JOURNAL_DIR")"

# Told apart: a tmpfs (birth times kept) at m, run A; another tmpfs over it for a while (the
# same root inode), run B; unmounted. B is of another filesystem, not this one remounted: --last
# passes over it and undoes A, the newest run on m as it is now.
mkdir -p "$T/m"
mount -t tmpfs -o size=1m,mode=0755 volprep-e2e-a "$T/m"
echo a >"$T/m/f"
vp "$T/m" --as 1000 "${MAP[@]}" -q >/dev/null
mount -t tmpfs -o size=1m,mode=0755 volprep-e2e-b "$T/m"
btime=$(stat -c %W "$T/m")  # 0: this kernel's tmpfs keeps none, and B is untold as on FUSE
vp "$T/m" --as 1000 "${MAP[@]}" -q >/dev/null
umount "$T/m"
rc=0
vp rollback --last "$T/m" -q >"$T/out" 2>"$T/err" || rc=$?
if [ "$btime" = 0 ]; then
  [ "$rc" -eq 5 ] && grep -q "cannot be told" "$T/err" ||
    fail "rollback --last, tmpfs without birth times, exited $rc, want 5 (untold): $(cat "$T/err")"
else
  [ "$rc" -eq 0 ] || fail "rollback --last with the newer run told to be another filesystem exited $rc: $(cat "$T/err")"
  [ "$(stat -c %u:%g "$T/m" "$T/m/f" | sort -u)" = 0:0 ] || fail "run A was not undone: $(stat -c '%n %u:%g' "$T/m" "$T/m/f")"
fi
echo "ok: rollback_last_untold"
