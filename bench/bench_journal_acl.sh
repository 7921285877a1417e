#!/usr/bin/env bash
# Benchmarks for the journal, rollback, --acl and check, each against the tool a user would
# use instead, on the same standard tree in the same run, alternating, medians. Run by hand as
# root (not a test); see bench/README.md.
#
#   VOLPREP    binary (default build-bench/volprep)     BENCH_DIR  scratch (default /var/tmp/volprep-bench2)
#   ROUNDS     timed runs per command (default 3)       FILES      files in the tree (default 200000)
#   KEEP=1     keep the tree; REUSE=1 reuse a kept one  MKTREE     tree generator
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
VOLPREP=${VOLPREP:-$repo/build-bench/volprep}
BENCH_DIR=${BENCH_DIR:-/var/tmp/volprep-bench2}
ROUNDS=${ROUNDS:-3}
FILES=${FILES:-200000}
MKTREE=${MKTREE:-$here/mktree.py}
MAP=(--map 0:500000:65536)
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 2; }
[ -x "$VOLPREP" ] || { echo "no volprep at $VOLPREP" >&2; exit 2; }
command -v setfacl >/dev/null || { echo "setfacl missing: apt-get install acl" >&2; exit 2; }
mkdir -p "$BENCH_DIR"
TREE=$BENCH_DIR/tree J=$BENCH_DIR/journals
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$BENCH_DIR"' EXIT
if [ "${REUSE:-0}" != 1 ] || [ ! -d "$TREE" ]; then
  rm -rf "$TREE"
  /usr/bin/python3 "$MKTREE" "$TREE" "$FILES" >&2
fi
rm -rf "$J"
echo "volprep $(git -C "$repo" rev-parse --short HEAD 2>/dev/null), $(nproc) cores, $(stat -f -c %T "$TREE"), $(find "$TREE" | wc -l) inodes, $ROUNDS rounds, warm cache (one untimed warm-up each), sync before each timed run"

# Each timed command starts after a sync, so none pays for the writeback of the one before.
secs() { local s e; sync; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
row() { # what volprep-median other-median target(op ratio) -> table line
  local ratio; ratio=$(echo "scale=3; $2 / $3" | bc)
  local verdict; verdict=$(echo "$ratio $5 $4" | awk '{ if (($3=="<=" && $1<=$2) || ($3==">=" && $1>=$2)) print "PASS"; else print "FAIL" }')
  printf '%-44s %9.2fs %9.2fs   ratio %6.3f  (target %s %s)  %s\n' "$1" "$2" "$3" "$ratio" "$4" "$5" "$verdict"
}
reset_owner() { chown -R 600000:600000 "$TREE"; }
newest_journal() { ls -t "$J"/*.vpj | head -1; }

# --- journal overhead: full change with and without the journal -------------------------------
reset_owner; "$VOLPREP" -q "$TREE" --as 1000 "${MAP[@]}" --journal-dir "$J" >/dev/null  # warm-up
with=() without=() run=() back=()
for ((i = 0; i < ROUNDS; i++)); do
  reset_owner; with+=("$(secs "$VOLPREP" -q "$TREE" --as 1000 "${MAP[@]}" --journal-dir "$J")")
  run+=("${with[-1]}")
  back+=("$(secs "$VOLPREP" -q rollback "$(newest_journal)" --journal-dir "$J")")
  reset_owner; without+=("$(secs "$VOLPREP" -q "$TREE" --as 1000 "${MAP[@]}" --no-journal)")
  rm -rf "$J"
done
row "full change: journal on vs --no-journal" "$(median "${with[@]}")" "$(median "${without[@]}")" "<=" 1.15
row "rollback vs the run it undoes" "$(median "${back[@]}")" "$(median "${run[@]}")" "<=" 1.5
echo "journal size for $(find "$TREE" | wc -l) entries: $(reset_owner; "$VOLPREP" -q "$TREE" --as 1000 "${MAP[@]}" --journal-dir "$J" >/dev/null; stat -c %s "$(newest_journal)") bytes"
rm -rf "$J"

# --- --acl against setfacl -R ------------------------------------------------------------------
SETFACL=(setfacl -R -m u:501000:rwX,d:u:501000:rwX "$TREE")
strip() { setfacl -R -b "$TREE"; }
strip
acl=() sf=() acl_re=() sf_re=()
for ((i = 0; i < ROUNDS; i++)); do
  sf+=("$(secs "${SETFACL[@]}")")
  sf_re+=("$(secs "${SETFACL[@]}")")                       # setfacl on a granted tree
  strip
  acl+=("$(secs "$VOLPREP" -q "$TREE" --as 1000 --acl "${MAP[@]}" --journal-dir "$J")")
  acl_re+=("$(secs "$VOLPREP" -q "$TREE" --as 1000 --acl "${MAP[@]}" --journal-dir "$J")")
  strip; rm -rf "$J"
done
row "--acl (journal on) vs setfacl -R -m" "$(median "${acl[@]}")" "$(median "${sf[@]}")" "<=" 0.1
row "--acl rerun vs setfacl -R -m, granted tree" "$(median "${acl_re[@]}")" "$(median "${sf_re[@]}")" "<=" 0.1

# --- check against find -printf ------------------------------------------------------------
"$VOLPREP" -q "$TREE" --as 1000 "${MAP[@]}" --no-journal >/dev/null
chk=() fnd=()
"$VOLPREP" -q check "$TREE" --as 1000 "${MAP[@]}" >/dev/null || true
for ((i = 0; i < ROUNDS; i++)); do
  chk+=("$(secs "$VOLPREP" -q check "$TREE" --as 1000 "${MAP[@]}")")
  fnd+=("$(secs find "$TREE" -printf '%U %m\n')")
done
row "check vs find -printf '%U %m\\n'" "$(median "${chk[@]}")" "$(median "${fnd[@]}")" "<=" 0.8
