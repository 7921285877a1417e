#!/usr/bin/env bash
# `volprep mount` is constant time: time it (and umount) on the standard tree, beside
# `volprep prepare` of the same tree, to show the point of the mode. Run by hand, as root.
#   VOLPREP    binary (default build/volprep beside this script's repo)
#   BENCH_DIR  scratch dir (default /var/tmp/volprep-bench-mount)
#   FILES      files in the tree (default 200000 -> 220001 inodes)
#   PARTS      standard trees of FILES files each side by side (PARTS=5 FILES=182000: ~1M inodes)
#   ROUNDS     timed mounts (default 9)
#   TREE       an existing tree to mount instead of making one (left as it is: owners too;
#              e.g. the ~1M-inode tree a `BIG=1 KEEP=1 bench/bench_prepare.sh` run left)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VOLPREP=${VOLPREP:-$here/../build/volprep}
BENCH_DIR=${BENCH_DIR:-/var/tmp/volprep-bench-mount}
FILES=${FILES:-200000}
PARTS=${PARTS:-1}
ROUNDS=${ROUNDS:-9}
MAP=(--map 0:500000:65536)
rm -rf "$BENCH_DIR"; mkdir -p "$BENCH_DIR/dst"
trap 'umount "$BENCH_DIR/dst" 2>/dev/null; rm -rf "$BENCH_DIR"' EXIT
tree=${TREE:-$BENCH_DIR/tree}
if [ -n "${TREE:-}" ]; then
  [ -d "$tree" ] || { echo "bench_mount: TREE=$tree is not a directory" >&2; exit 1; }
elif [ "$PARTS" -eq 1 ]; then
  python3 "$here/mktree.py" "$tree" "$FILES" >/dev/null
  chown -R 1000:1000 "$tree"
else  # mktree's trees are deep: a bigger one would pass PATH_MAX
  for ((i = 0; i < PARTS; i++)); do python3 "$here/mktree.py" "$tree/part$i" "$FILES" 10 "$i" >/dev/null; done
  chown -R 1000:1000 "$tree"
fi
entries=$(find "$tree" | wc -l)
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mounts=() umounts=()
for ((i = 0; i < ROUNDS; i++)); do
  t0=$(now); "$VOLPREP" -q mount "$tree" "$BENCH_DIR/dst" --as 1000 "${MAP[@]}" >/dev/null; t1=$(now)
  "$VOLPREP" -q umount "$BENCH_DIR/dst" >/dev/null; t2=$(now)
  mounts+=("$(echo "$t1 - $t0" | bc)") umounts+=("$(echo "$t2 - $t1" | bc)")
done
# prepare changes the tree: a TREE given is only dry-run (every entry planned, none changed).
prep=(--no-journal) label=prepare; [ -n "${TREE:-}" ] && prep=(--dry-run) label="prepare --dry-run"
t0=$(now); "$VOLPREP" -q "$tree" --as 1000 "${MAP[@]}" "${prep[@]}" >/dev/null; t1=$(now)
m=$(printf '%s\n' "${mounts[@]}" | median); u=$(printf '%s\n' "${umounts[@]}" | median)
p=$(echo "$t1 - $t0" | bc)
printf '%d entries: volprep mount %.1f ms (median of %d; target < 50 ms), umount %.1f ms; %s %.0f ms (%.0fx the mount)\n' \
  "$entries" "$(echo "$m * 1000" | bc)" "$ROUNDS" "$(echo "$u * 1000" | bc)" "$label" "$(echo "$p * 1000" | bc)" "$(echo "$p / $m" | bc)"
