#!/usr/bin/env bash
# `volprep mount` is constant time: time it (and umount) on the standard tree, beside
# `volprep prepare` of the same tree, to show the point of the mode. Run by hand, as root.
#   VOLPREP    binary (default build/volprep beside this script's repo)
#   BENCH_DIR  scratch dir (default /var/tmp/volprep-bench-mount)
#   FILES      files in the tree (default 200000 -> 220001 inodes)
#   PARTS      standard trees of FILES files each side by side (PARTS=5 FILES=182000: ~1M inodes)
#   ROUNDS     timed mounts (default 9)
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
if [ "$PARTS" -eq 1 ]; then
  python3 "$here/mktree.py" "$BENCH_DIR/tree" "$FILES" >/dev/null
else  # mktree's trees are deep: a bigger one would pass PATH_MAX
  for ((i = 0; i < PARTS; i++)); do python3 "$here/mktree.py" "$BENCH_DIR/tree/part$i" "$FILES" 10 "$i" >/dev/null; done
fi
chown -R 1000:1000 "$BENCH_DIR/tree"
entries=$(find "$BENCH_DIR/tree" | wc -l)
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mounts=() umounts=()
for ((i = 0; i < ROUNDS; i++)); do
  t0=$(now); "$VOLPREP" -q mount "$BENCH_DIR/tree" "$BENCH_DIR/dst" --as 1000 "${MAP[@]}" >/dev/null; t1=$(now)
  "$VOLPREP" -q umount "$BENCH_DIR/dst" >/dev/null; t2=$(now)
  mounts+=("$(echo "$t1 - $t0" | bc)") umounts+=("$(echo "$t2 - $t1" | bc)")
done
t0=$(now); "$VOLPREP" -q "$BENCH_DIR/tree" --as 1000 "${MAP[@]}" --no-journal >/dev/null; t1=$(now)
m=$(printf '%s\n' "${mounts[@]}" | median); u=$(printf '%s\n' "${umounts[@]}" | median)
p=$(echo "$t1 - $t0" | bc)
printf '%d entries: volprep mount %.1f ms (median of %d; target < 50 ms), umount %.1f ms; prepare %.0f ms (%.0fx the mount)\n' \
  "$entries" "$(echo "$m * 1000" | bc)" "$ROUNDS" "$(echo "$u * 1000" | bc)" "$(echo "$p * 1000" | bc)" "$(echo "$p / $m" | bc)"
