#!/usr/bin/env bash
# Many requests in flight plan what one thread plans. A flat directory (listed, stat'ed and
# planned in chunks on every thread) and a mixed tree get the same --dry-run output, byte for
# byte, with --threads 1, the default, 8 and 64 threads; on a FUSE filesystem (bench/slowfs.c,
# where volprep keeps 64 requests in flight) too. A real run there changes every entry, keeps
# set-id bits, and rollback (64 requests in flight, restoring what one thread restores) brings
# back every owner.
source "$(dirname "$0")/lib.sh"
mkdir -p "$VOLPREP_JOURNAL_DIR"
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
manifest() { (cd "$1" && find . -printf '%P %U:%G %m %y\n' | LC_ALL=C sort); }

vol=$T/vol
mkdir -p "$vol/flat" "$vol/sub/deeper"
# 3000 files in one directory (three chunks and more), owners mixed as a service volume's.
"$PY" - "$vol/flat" <<'PY'
import os, sys
for i in range(3000):
    p = os.path.join(sys.argv[1], "f%05d" % i)
    open(p, "w").close()
    os.chown(p, (0, 33, 1000, 1000)[i % 4], (0, 1000)[i % 2])
PY
for i in $(seq 40); do echo "$i" >"$vol/sub/deeper/g$i"; done
chown -R 1000:1000 "$vol/sub"
echo x >"$vol/sub/setuid"; chown 1000:1000 "$vol/sub/setuid"; chmod 4755 "$vol/sub/setuid"
ln "$vol/sub/deeper/g1" "$vol/flat/hardlink-to-g1"   # both links inside the tree
ln -s ../flat "$vol/sub/link"
mkfifo "$vol/sub/fifo"

plans() { # plans DIR: --dry-run at 1, default, 8 and 64 threads, all the same as the first
  local dir=$1 t
  vp "$dir" --as 1000 "${MAP[@]}" --dry-run --threads 1 >"$T/plan.1" 2>"$T/plan.1.err" || fail "dry run: $(cat "$T/plan.1.err")"
  for t in default 8 64; do
    local threads=(--threads "$t")
    [ "$t" = default ] && threads=()
    vp "$dir" --as 1000 "${MAP[@]}" --dry-run "${threads[@]}" >"$T/plan.$t" 2>&1 || fail "dry run, $t threads"
    cmp -s "$T/plan.1" "$T/plan.$t" || { diff "$T/plan.1" "$T/plan.$t" | head >&2; fail "$dir: --threads $t plans otherwise than --threads 1"; }
  done
}

# --- a local filesystem ---------------------------------------------------------------------
plans "$vol"
n=$(find "$vol" | wc -l)
grep -q "^scanned $n, to change $n," "$T/plan.1" || fail "the plan does not scan all $n entries: $(tail -1 "$T/plan.1")"
[ "$(grep -c "^$vol/flat/f" "$T/plan.1")" = 3000 ] || fail "the flat directory is not planned whole"

# --- FUSE: bench/slowfs.c over a copy, 64 requests in flight --------------------------------
pkg-config --exists fuse3 || fail "libfuse3-dev missing (./dev test installs it)"
cc -std=gnu11 -O2 -o "$T/slowfs" "$VOLPREP_SRC/bench/slowfs.c" $(pkg-config --cflags --libs fuse3) || fail "cannot build slowfs"
back=$T/back mnt=$T/mnt
cp -a "$vol" "$back"
mkdir "$mnt"
"$T/slowfs" --delay-us 200 "$back" "$mnt" 2>"$T/slowfs.err" &
slowfs=$!
on_exit "umount '$mnt' 2>/dev/null || umount -l '$mnt' 2>/dev/null; wait $slowfs 2>/dev/null"
for _ in $(seq 50); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || fail "slowfs did not mount: $(cat "$T/slowfs.err")"
[ "$(stat -f -c %T "$mnt")" = fuseblk ] || [ "$(stat -f -c %T "$mnt")" = fuse ] || fail "not FUSE: $(stat -f -c %T "$mnt")"
plans "$mnt"
[ "$(grep -c "^$mnt/flat/f" "$T/plan.1")" = 3000 ] || fail "the flat directory is not planned whole on FUSE"

before=$(manifest "$back")
vp "$mnt" --as 1000 "${MAP[@]}" >"$T/real.out" 2>"$T/real.err" || fail "real run on FUSE: $(cat "$T/real.err")"
grep -q "^scanned $n, changed $n, unchanged 0, skipped 0, failed 0" "$T/real.out" || fail "real run: $(cat "$T/real.out")"
bad=$(find "$back" \( ! -uid 501000 -o ! -gid 501000 \) -printf '%p\n' | head -3)
[ -z "$bad" ] || fail "the run on FUSE left entries unchanged: $bad"
[ "$(stat -c %a "$back/sub/setuid")" = 4755 ] || fail "the set-uid bit was lost: $(stat -c %a "$back/sub/setuid")"
# Rollback keeps as many requests in flight as the run did, and restores what one thread does.
vp rollback --last "$mnt" -n --threads 1 >"$T/rollback.1" 2>&1 || fail "rollback -n --threads 1: $(cat "$T/rollback.1")"
vp rollback --last "$mnt" -n >"$T/rollback.64" 2>&1 || fail "rollback -n: $(cat "$T/rollback.64")"
cmp -s "$T/rollback.1" "$T/rollback.64" || { diff "$T/rollback.1" "$T/rollback.64" | head >&2; fail "rollback -n on FUSE differs at 64 threads"; }
vp rollback --last "$mnt" -v >"$T/rollback.out" 2>&1 || fail "rollback: $(cat "$T/rollback.out")"
grep -q "$mnt: fuse.*: 64 requests in flight" "$T/rollback.out" || fail "rollback on FUSE did not keep 64 requests in flight: $(grep 'in flight' "$T/rollback.out")"
[ "$(manifest "$back")" = "$before" ] || { diff <(echo "$before") <(manifest "$back") | head >&2; fail "rollback did not bring back every owner"; }
echo "ok: $n entries planned alike at 1-64 threads, locally and on FUSE; run and rollback on FUSE"
