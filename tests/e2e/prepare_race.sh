#!/usr/bin/env bash
# volprep prepare racing a hostile container: while volprep runs over a tree of a few thousand
# entries again and again, a background loop keeps swapping directories (and a file) inside
# the tree with symlinks to a directory (and a file) outside: atomically (renameat2
# RENAME_EXCHANGE) and the mv/ln way (rename away, symlink in its place, then back). volprep
# walks by descriptor, so nothing outside may change: owners, modes, ctimes.
source "$(dirname "$0")/lib.sh"
# Rollback journals of real runs stay under $T (made now, so $T itself does not change later).
mkdir -p "$VOLPREP_JOURNAL_DIR"
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
DURATION=${RACE_SECONDS:-8}
tree=$T/tree outside=$T/outside out=$T/out
mkdir "$out"

"$PY" - "$tree" "$outside" <<'PY'
import os, sys
tree, outside = sys.argv[1], sys.argv[2]
def files(d, n):
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        with open(os.path.join(d, "f%03d" % i), "w") as f:
            f.write("x\n")
for i in range(10):
    files(os.path.join(tree, "d%02d" % i), 280)
for v in ("d03/victim", "d07/x/y/victim", "d05/victim"):
    files(os.path.join(tree, v), 40)
    files(os.path.join(tree, v, "inner"), 20)
with open(os.path.join(tree, "fvictim"), "w") as f:
    f.write("v\n")
for d in ("odir", "odir/sub", "odir2"):
    files(os.path.join(outside, d), 15)
with open(os.path.join(outside, "ofile"), "w") as f:
    f.write("o\n")
# The symlinks swapped in: absolute and relative, to a directory and to a file.
os.symlink(os.path.join(outside, "odir"), os.path.join(tree, "d03/.alt"))
os.symlink(os.path.relpath(os.path.join(outside, "odir"), os.path.join(tree, "d07/x/y")),
           os.path.join(tree, "d07/x/y/.alt"))
os.symlink(os.path.join(outside, "odir2"), os.path.join(tree, ".d05alt"))
os.symlink(os.path.join(outside, "ofile"), os.path.join(tree, ".falt"))
PY
chown -R 1000:1000 "$tree"
chown -R 1234:1234 "$outside"
chmod -R u=rwX,g=rX,o= "$outside"
chmod 0750 "$outside/odir/sub"
entries=$(find "$tree" -printf x | wc -c)
[ "$entries" -ge 2000 ] || fail "tree too small: $entries"

snap_outside() { find "$outside" -printf '%U:%G %m %n %C@ %p\n' | LC_ALL=C sort; }
snap_outside >"$out/outside.before"
sleep 0.05

# The swapper: for DURATION seconds, exchange each victim with its symlink, alternating
# renameat2(RENAME_EXCHANGE) and rename-away + rename-symlink-in + back. It ends with every
# victim back in place and prints how many swaps it made.
"$PY" - "$tree" "$DURATION" >"$out/swaps" 2>"$out/swapper.err" <<'PY' &
import ctypes, os, sys, time
tree, duration = sys.argv[1], float(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
def exchange(a, b):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)
pairs = [(os.path.join(tree, a), os.path.join(tree, b)) for a, b in
         (("d03/victim", "d03/.alt"), ("d07/x/y/victim", "d07/x/y/.alt"),
          ("d05", ".d05alt"), ("fvictim", ".falt"))]
swaps, end, n = 0, time.monotonic() + duration, 0
while time.monotonic() < end:
    for real, alt in pairs:
        if n % 2 == 0:
            exchange(real, alt)          # the symlink is now at real's name
            time.sleep(0.0005)
            exchange(real, alt)          # and back
        else:
            os.rename(real, real + ".away")   # mv -T real real.away
            os.rename(alt, real)              # the symlink takes the name (ln -s, then mv)
            time.sleep(0.0005)
            os.rename(real, alt)
            os.rename(real + ".away", real)
        swaps += 2
    n += 1
print(swaps)
PY
swapper=$!
on_exit "kill $swapper 2>/dev/null; wait $swapper 2>/dev/null"

runs=0 rcs=()
sleep 0.2
while kill -0 "$swapper" 2>/dev/null; do
  as=$(( runs % 2 ? 0 : 1000 ))
  threads=()
  (( runs % 3 == 1 )) && threads=(--threads 1)
  rc=0
  timeout 60 "$VOLPREP" "$tree" --as "$as" "${MAP[@]}" "${threads[@]}" >"$out/run.$runs" 2>&1 || rc=$?
  rcs+=("$rc")
  runs=$((runs + 1))
done
wait "$swapper" || fail "the swapper failed: $(cat "$out/swapper.err")"
swaps=$(cat "$out/swaps")

snap_outside >"$out/outside.after"
if ! cmp -s "$out/outside.before" "$out/outside.after"; then
  diff "$out/outside.before" "$out/outside.after" | head -20 >&2 || true
  fail "volprep changed something outside the tree during the race ($runs runs, $swaps swaps)"
fi
[ "$runs" -ge 3 ] || fail "only $runs volprep runs during the race"
[ "$swaps" -ge 100 ] || fail "only $swaps swaps during the race"
for i in "${!rcs[@]}"; do
  case ${rcs[i]} in
    0|4) ;;
    *) fail "run $i during the race exited ${rcs[i]} (want 0, or 4 for entries that failed): $(tail -5 "$out/run.$i")" ;;
  esac
done

# Quiet again: one run makes the whole tree the target's, symlinks included, exit 0.
rc=0; timeout 60 "$VOLPREP" "$tree" --as 1000 "${MAP[@]}" >"$out/final" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "volprep after the race exited $rc: $(tail -5 "$out/final")"
bad=$(find "$tree" ! \( -user 501000 -group 501000 \) -print | head)
[ -z "$bad" ] || fail "after the race and a quiet run, not 501000:501000: $bad"
snap_outside >"$out/outside.final"
cmp -s "$out/outside.before" "$out/outside.final" || fail "the quiet run changed something outside"
hits=$(grep -l -E 'vanished|replaced' "$out"/run.* 2>/dev/null | wc -l)
echo "ok: prepare_race ($runs runs, $swaps swaps, $hits runs saw entries vanish or get replaced;" \
  "exit codes: $(printf '%s\n' "${rcs[@]}" | sort | uniq -c | tr -s ' \n' ' '))"
