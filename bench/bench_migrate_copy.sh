#!/usr/bin/env bash
# migrate-volumes --copy of one volume of the standard tree's shape (mktree.py) against
# `cp -a` of the same tree (then `sync -f`: the copy is synced too), same run, same disk.
# usage: bench_migrate_copy.sh [FILES] [DIR]   (root; default 5000 files under /var/tmp)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VOLPREP=${VOLPREP:-$here/../build/volprep}
N=${1:-5000}
T=$(mktemp -d "${2:-/var/tmp}/volprep-bench-copy.XXXXXX")
trap 'rm -rf "$T"' EXIT
D=$T/data
mkdir -p -m 0701 "$D/volumes/vol"
python3 "$here/mktree.py" "$D/volumes/vol/_data" "$N"
find "$D" -type f -exec cat {} + >/dev/null  # both read a warm tree
s=$(date +%s.%N)
cp -a "$D/volumes/vol" "$T/cp" && sync -f "$T/cp"
e=$(date +%s.%N)
echo "cp -a + sync -f: $(echo "$e - $s" | bc) s"
s=$(date +%s.%N)
"$VOLPREP" -v migrate-volumes --map 0:500000:65536 --data-root "$D" --copy --journal-dir "$T/j" 2>&1 |
  grep -o 'copied .* in [0-9.]*s' | sed 's/.* in /volprep copy (copy_tree + syncfs): /'
e=$(date +%s.%N)
echo "volprep migrate-volumes --copy (census, copy, rename, shift, journal): $(echo "$e - $s" | bc) s"
