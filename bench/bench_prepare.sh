#!/usr/bin/env bash
# Benchmark `volprep PATH --as UID --map ...` on the tree shapes users have, each against the
# tool a user would run instead: `chown -R`, `setfacl -R`, and a `find -printf` walk.
# Run by hand, as root (not a test). See bench/README.md for what it measures and how to read it.
#
# Shapes (SHAPES, default all four, in this order):
#   standard  bench/mktree.py: 220001 entries, 99 levels deep on average, 600-byte paths
#   kernel    bench/mkkernel.py: the Linux source from Debian's linux-source (83731 entries)
#   flat      bench/mkflat.py: one directory of 200000 files
#   slow      the first SLOW_ENTRIES entries of the kernel tree, through bench/slowfs.c: a FUSE
#             passthrough that waits SLOW_DELAY_US (default 1000) before answering each request
# Scenarios, for every shape, alternating within each round:
#   full change   volprep (journal on), volprep --no-journal, chown -R, the floor (floor.cc: stat
#                 and chown by name), the pinned floor (floor.cc pin: the safe path's calls) and
#                 the written-ahead floor (floor.cc journal: the pinned floor, each batch of 1024
#                 changes made only after its records are durable: the floor of the journal)
#   rerun         volprep on the prepared tree, find -printf '%U %G %m\n', the floor (statx only)
#   --acl         volprep --acl (journal on) vs setfacl -R -m u:H:rwX,d:u:H:rwX, on a stripped tree
#
# Environment:
#   VOLPREP    binary (default: build-bench/volprep beside this script's repo)
#   BASELINE   another volprep binary (an older build) timed in the same rounds (every scenario)
#   BENCH_DIR  scratch dir for the trees (default /var/tmp/volprep-bench; the root fs, like volumes)
#   SHAPES     which shapes (default "standard kernel flat slow")
#   ROUNDS     timed runs of each command per scenario (default 5; SLOW_ROUNDS for slow, default 3)
#   FILES      files in the standard tree (default 200000); FLAT_FILES (default 200000)
#   SLOW_ENTRIES  entries of the kernel tree behind slowfs (default 20000); SLOW_DELAY_US (1000)
#   THREADS    pass --threads N to volprep (default: volprep's own default)
#   ACL=0      skip the --acl scenario
#   BIG=1      also measure volprep's peak RSS on a ~1M-inode tree (5 x mktree.py 182000)
#   PROFILE=1  also count syscalls per entry (strace -c -f), one full change and one rerun each
#   WAIT_QUIET=S  before each timed run, wait up to S s for the other processes to go quiet
#   NICE=-20   run the timed commands at that nice level, in their own autogroup (a busy machine)
#   KEEP=1     keep the trees afterwards; REUSE=1 reuses trees a KEEP=1 run left
#   VOLPREP_SUBCMD=prepare  run `volprep -q prepare PATH ...` instead of `volprep -q PATH ...`
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
VOLPREP=${VOLPREP:-$repo/build-bench/volprep}
BENCH_DIR=${BENCH_DIR:-/var/tmp/volprep-bench}
SHAPES=${SHAPES:-standard kernel flat slow}
ROUNDS=${ROUNDS:-5}
SLOW_ROUNDS=${SLOW_ROUNDS:-3}
FILES=${FILES:-200000}
FLAT_FILES=${FLAT_FILES:-200000}
SLOW_ENTRIES=${SLOW_ENTRIES:-20000}
SLOW_DELAY_US=${SLOW_DELAY_US:-1000}
BIG_FILES=${BIG_FILES:-910000}   # in BIG_PARTS standard trees: 5 x 182000 files = 1001006 inodes
BIG_PARTS=${BIG_PARTS:-5}
MAP=(--map 0:500000:65536)
AS=1000                  # container uid:gid 1000 -> host 501000:501000 under MAP
PREPARED=501000          # what volprep makes every entry
OTHER=600000             # what chown -R makes every entry in the full-change scenario

die() { echo "bench: $*" >&2; exit 2; }
log() { echo "bench: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "run as root (the trees have owners 0/33/1000 and are chowned)"
[ -x "$VOLPREP" ] || die "no volprep binary at $VOLPREP (build: cmake -S $repo -B $repo/build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build $repo/build-bench -j2)"
[ -x /usr/bin/time ] || die "GNU time missing: ./dev bench installs what the benchmark needs"
command -v setfacl >/dev/null || die "setfacl missing: ./dev bench installs what the benchmark needs"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ && "$SLOW_ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS and SLOW_ROUNDS must be positive integers"
for s in $SHAPES; do case "$s" in standard|kernel|flat|slow) ;; *) die "unknown shape $s" ;; esac; done
case "$BENCH_DIR" in /|/tmp|/var|/var/tmp|/root|/home|"") die "BENCH_DIR must be a dedicated scratch dir, not $BENCH_DIR" ;; esac
[ -z "${BASELINE:-}" ] || [ -x "$BASELINE" ] || die "BASELINE=$BASELINE is not an executable"

PREPARE_SUB=()
[ -n "${VOLPREP_SUBCMD:-}" ] && PREPARE_SUB=("$VOLPREP_SUBCMD")
THREADS_ARG=()
[ -n "${THREADS:-}" ] && THREADS_ARG=(--threads "$THREADS")

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
work=$BENCH_DIR/run.$$
mkdir "$work" "$work/journals"
SLOW_MNT=$BENCH_DIR/slow SLOW_BACK=$BENCH_DIR/slow.back
slowfs_pid=
unmount_slow() {  # only the mount this run made (another run may share BENCH_DIR)
  [ -n "$slowfs_pid" ] || return 0
  if mountpoint -q "$SLOW_MNT" 2>/dev/null; then umount "$SLOW_MNT" 2>/dev/null || umount -l "$SLOW_MNT"; fi
  wait "$slowfs_pid" 2>/dev/null || true
  slowfs_pid=
}
cleanup() {
  unmount_slow
  rm -rf "$work"
  if [ "${KEEP:-0}" = 1 ]; then
    log "KEEP=1: leaving the trees in $BENCH_DIR"
  else
    rm -rf "$BENCH_DIR"/tree-* "$BENCH_DIR"/*.ok "$SLOW_BACK" "$SLOW_MNT"
    rmdir "$BENCH_DIR" 2>/dev/null || true
  fi
}
trap cleanup EXIT

fstype=$(findmnt -no FSTYPE -T "$BENCH_DIR" 2>/dev/null || df --output=fstype "$BENCH_DIR" | tail -1)
[ "$fstype" = tmpfs ] && log "WARNING: $BENCH_DIR is on tmpfs; volumes usually are not (set BENCH_DIR)"

usecs_to_s() { printf '%d.%03d' $(( $1 / 1000000 )) $(( $1 % 1000000 / 1000 )); }

# make_tree SHAPE DIR: made once (or reused with REUSE=1 after KEEP=1); every generator is
# deterministic.
make_tree() {
  local shape=$1 dir=$2 spec i
  case "$shape" in
    standard) spec="mktree $FILES" ;;
    big) spec="mktree $BIG_FILES/$BIG_PARTS" ;;
    kernel) spec="kernel" ;;
    flat) spec="flat $FLAT_FILES" ;;
    slow) spec="kernel $SLOW_ENTRIES" ;;
  esac
  if [ "${REUSE:-0}" = 1 ] && [ -d "$dir" ] && [ "$(cat "$dir.ok" 2>/dev/null)" = "$spec" ]; then
    log "reusing $dir ($spec)"
    return
  fi
  rm -rf "$dir" "$dir.ok"
  local t0=$EPOCHREALTIME
  log "making $dir: $spec"
  case "$shape" in
    standard) python3 "$here/mktree.py" "$dir" "$FILES" >&2 ;;
    big)
      mkdir "$dir"
      for ((i = 1; i <= BIG_PARTS; i++)); do
        python3 "$here/mktree.py" "$dir/p$i" $((BIG_FILES / BIG_PARTS)) 10 "$i" >&2
      done ;;
    kernel) python3 "$here/mkkernel.py" "$dir" ;;
    flat) python3 "$here/mkflat.py" "$dir" "$FLAT_FILES" >&2 ;;
    slow) python3 "$here/mkkernel.py" "$dir" "$SLOW_ENTRIES" ;;
  esac
  log "made in $(usecs_to_s $(( ${EPOCHREALTIME/./} - ${t0/./} )))s"
  echo "$spec" >"$dir.ok"
}

# every_owner_is DIR ID: every entry (the root too) has uid and gid ID, or the bench stops.
every_owner_is() {
  local bad
  bad=$(find "$1" \( ! -uid "$2" -o ! -gid "$2" \) -printf '%u:%g %p\n' -quit)
  [ -z "$bad" ] || die "after $3: expected every entry to be $2:$2, found $bad"
}

busy_ticks() {
  local _cpu u n s _idle _iow irq sirq steal _rest
  read -r _cpu u n s _idle _iow irq sirq steal _rest </proc/stat
  echo $(( u + n + s + irq + sirq + steal ))
}
HZ=$(getconf CLK_TCK)
NICE_CMD=()
[ -n "${NICE:-}" ] && NICE_CMD=(setsid -w bash -c \
  'echo "$0" >/proc/self/autogroup 2>/dev/null; exec nice -n "$0" "$@"' "$NICE")

wait_quiet() {
  local limit=${WAIT_QUIET:-0} waited=0 b0 b1
  [ "$limit" -gt 0 ] || return 0
  while [ "$waited" -lt "$limit" ]; do
    b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
    [ $(( (b1 - b0) * 10 )) -lt $(( HZ * $(nproc) )) ] && return 0
    waited=$((waited + 1))
  done
  log "WAIT_QUIET: still busy after ${limit}s; timing anyway"
}

# slowfs's request count so far (its own stats request included).
slow_requests() { getfattr --only-values -n user.slowfs.stats "$SLOW_MNT" 2>/dev/null | awk '{print $2}'; }

# timed LABEL CMD...: sync (so no earlier run's dirty inodes are written back during this one),
# run CMD under GNU time, append "LABEL wall_s user_s sys_s maxrss_kib other_cpu_s requests" to
# $work/times (requests: slowfs requests during the run, or -). On the slow filesystem it first
# waits for the kernel's 1 s attribute and entry caches to expire, so no run reuses the last's.
timed() {
  local label=$1; shift
  sync
  [ "$shape" = slow ] && sleep 1.1
  wait_quiet
  local b0 b1 t0 t1 rc=0 r0=- r1=-
  [ "$shape" = slow ] && r0=$(slow_requests)
  b0=$(busy_ticks)
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%U %S %M' -o "$work/time.out" "${NICE_CMD[@]}" "$@" >"$work/stdout" 2>"$work/stderr" || rc=$?
  t1=$EPOCHREALTIME
  b1=$(busy_ticks)
  [ "$shape" = slow ] && r1=$(slow_requests)
  if [ "$rc" -ne 0 ]; then
    cat "$work/stderr" >&2
    die "$label: exit $rc: $*"
  fi
  local wall usr sys rss other req=-
  wall=$(usecs_to_s $(( ${t1/./} - ${t0/./} )))
  read -r usr sys rss < <(tail -1 "$work/time.out")
  other=$(awk -v b="$(( b1 - b0 ))" -v hz="$HZ" -v u="$usr" -v s="$sys" \
    'BEGIN { o = b / hz - u - s; printf "%.2f", o < 0 ? 0 : o }')
  [ "$r0" != - ] && [ -n "$r0" ] && [ -n "$r1" ] && req=$(( r1 - r0 - 1 ))
  echo "$shape:$label $wall $usr $sys $rss $other $req" >>"$work/times"
  [ -s "$work/stdout" ] && tail -1 "$work/stdout" >"$work/last-summary.$shape:$label"
  local j
  j=$(ls -t "$work/journals" | head -1)
  if [ -n "$j" ]; then
    stat -c %s "$work/journals/$j" >"$work/journal-bytes.$shape:$label"
    rm -f "$work/journals/$j"
  fi
  printf '  %-22s %ss  (cpu %s+%s s; other processes %s s%s)\n' "$shape:$label" "$wall" "$usr" "$sys" "$other" \
    "$([ "$req" = - ] || echo "; $req requests")" >&2
}

# volprep LABEL BINARY [extra args...]: one prepare run on $TREE.
volprep() {
  local label=$1 bin=$2; shift 2
  local journal=(--journal-dir "$work/journals")
  [[ " $* " == *" --no-journal "* ]] && journal=()
  timed "$label" "$bin" -q "${PREPARE_SUB[@]}" "$TREE" --as "$AS" "${MAP[@]}" "${THREADS_ARG[@]}" "${journal[@]}" "$@"
}

# The owners of the whole tree, set behind slowfs's back on the slow shape (the backing tree;
# timed() waits for the kernel's caches to expire before the next run).
reset_owner() { chown -R "$1:$1" "$BACK"; }
strip_acls() { setfacl -R -b "$BACK"; }

echo "== volprep prepare benchmark =="
echo "date:       $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "host:       nproc=$(nproc), $(uname -sr), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), open files $(ulimit -Hn)"
echo "volprep:    $("$VOLPREP" --version 2>&1 | head -1), commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "binary:     $VOLPREP"
[ -z "${BASELINE:-}" ] || echo "baseline:   $BASELINE ($("$BASELINE" --version 2>&1 | head -1)), timed in the same rounds"
echo "load:       $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
echo "command:    volprep -q ${PREPARE_SUB[*]} TREE --as $AS ${MAP[*]} ${THREADS_ARG[*]} --journal-dir SCRATCH (or --no-journal)"
echo "tools:      $(chown --version | head -1); setfacl $(setfacl --version 2>&1 | awk '{print $2}'); $(find --version | head -1)"
echo "scratch:    $BENCH_DIR on $fstype ($(findmnt -no SOURCE -T "$BENCH_DIR" 2>/dev/null || echo '?'))"
if [ -n "${NICE:-}" ]; then echo "priority:   nice $NICE for the timed commands"; else echo "priority:   normal (NICE unset)"; fi
echo "caches:     NOT dropped; one untimed warm-up of each command first; sync before every timed run;"
echo "            timed runs alternate within each round"

# floor.cc and slowfs.c, built with the system's compilers.
FLOOR=$work/floor
if ! c++ -std=c++20 -O2 -pthread -o "$FLOOR" "$here/floor.cc"; then
  log "could not build floor.cc; no floor rows"
  FLOOR=""
fi
SLOWFS=$work/slowfs
if [[ " $SHAPES " == *" slow "* ]]; then
  cc -std=gnu11 -O2 -o "$SLOWFS" "$here/slowfs.c" $(pkg-config --cflags --libs fuse3) ||
    die "could not build slowfs.c (libfuse3-dev: ./dev bench installs it)"
fi

: >"$work/shapes"
for shape in $SHAPES; do
  R=$ROUNDS FLOOR_THREADS=${THREADS:-$(nproc)} FLOOR_CHUNK=256
  case "$shape" in
    slow)
      R=$SLOW_ROUNDS FLOOR_THREADS=${THREADS:-64} FLOOR_CHUNK=4
      make_tree slow "$SLOW_BACK"
      mkdir -p "$SLOW_MNT"
      "$SLOWFS" --delay-us "$SLOW_DELAY_US" "$SLOW_BACK" "$SLOW_MNT" 2>"$work/slowfs.err" &
      slowfs_pid=$!
      for _ in $(seq 50); do mountpoint -q "$SLOW_MNT" && break; sleep 0.1; done
      mountpoint -q "$SLOW_MNT" || die "slowfs did not mount: $(cat "$work/slowfs.err")"
      TREE=$SLOW_MNT BACK=$SLOW_BACK
      # It really waits: one stat of an entry not in the kernel's cache is one request.
      probe=$(cd "$BACK" && find . -maxdepth 1 -type f -printf '%P\n' | sort | head -1)
      t0=$EPOCHREALTIME; stat "$TREE/$probe" >/dev/null; t1=$EPOCHREALTIME
      echo "slowfs:     $(head -1 "$work/slowfs.err"); one stat of a name not cached: $(usecs_to_s $(( ${t1/./} - ${t0/./} )))s"
      ;;
    *) TREE=$BENCH_DIR/tree-$shape BACK=$TREE; make_tree "$shape" "$TREE" ;;
  esac
  entries=$(find "$BACK" | wc -l) dirs=$(find "$BACK" -type d | wc -l)
  echo "$shape $entries $dirs $R" >>"$work/shapes"
  echo "tree:       $shape: $entries entries ($dirs directories) at $TREE, $R rounds"

  # --- Full change: every timed run changes the owner of every entry. -------------------------
  # volprep takes every entry OTHER -> PREPARED, chown -R every entry PREPARED -> OTHER; the
  # floor OTHER -> PREPARED too. Checked after every run (through the mount, on slowfs).
  log "$shape: full change: reset to $OTHER:$OTHER, warm up"
  reset_owner "$OTHER"
  volprep warm-volprep "$VOLPREP"
  timed warm-chown chown -R "$OTHER:$OTHER" "$TREE"
  [ -z "$FLOOR" ] || { timed warm-floor "$FLOOR" "$TREE" "$PREPARED" "$FLOOR_THREADS" "$FLOOR_CHUNK"; reset_owner "$OTHER"; }
  for ((i = 1; i <= R; i++)); do
    log "$shape: full change, round $i/$R"
    volprep full-volprep "$VOLPREP"; every_owner_is "$BACK" "$PREPARED" "volprep round $i"
    timed full-chown chown -R "$OTHER:$OTHER" "$TREE"; every_owner_is "$BACK" "$OTHER" "chown round $i"
    volprep full-nojournal "$VOLPREP" --no-journal; every_owner_is "$BACK" "$PREPARED" "volprep --no-journal round $i"
    if [ -n "${BASELINE:-}" ]; then
      reset_owner "$OTHER"
      volprep full-base "$BASELINE"; every_owner_is "$BACK" "$PREPARED" "baseline round $i"
    fi
    if [ -n "$FLOOR" ]; then
      reset_owner "$OTHER"
      timed full-floor "$FLOOR" "$TREE" "$PREPARED" "$FLOOR_THREADS" "$FLOOR_CHUNK"; every_owner_is "$BACK" "$PREPARED" "floor round $i"
      reset_owner "$OTHER"
      timed full-pinfloor "$FLOOR" "$TREE" "$PREPARED" "$FLOOR_THREADS" "$FLOOR_CHUNK" pin
      every_owner_is "$BACK" "$PREPARED" "pinned floor round $i"
      reset_owner "$OTHER"
      timed full-jfloor "$FLOOR" "$TREE" "$PREPARED" "$FLOOR_THREADS" "$FLOOR_CHUNK" journal "$work/journals/floor"
      every_owner_is "$BACK" "$PREPARED" "written-ahead floor round $i"
    fi
    reset_owner "$OTHER"
  done

  # --- Rerun on a prepared tree: nothing to change; find -printf stats every entry too. -------
  log "$shape: rerun"
  reset_owner "$PREPARED"
  volprep warm-volprep "$VOLPREP"
  timed warm-find find "$TREE" -printf '%U %G %m\n'
  for ((i = 1; i <= R; i++)); do
    log "$shape: rerun, round $i/$R"
    volprep rerun-volprep "$VOLPREP"
    [ -z "${BASELINE:-}" ] || volprep rerun-base "$BASELINE"
    timed rerun-find find "$TREE" -printf '%U %G %m\n'
    [ -z "$FLOOR" ] || timed rerun-floor "$FLOOR" "$TREE" "$PREPARED" "$FLOOR_THREADS" "$FLOOR_CHUNK"
  done
  every_owner_is "$BACK" "$PREPARED" "rerun rounds"

  # --- --acl against setfacl -R, each on a tree without ACLs. -------------------------------
  if [ "${ACL:-1}" = 1 ]; then
    log "$shape: --acl"
    strip_acls
    SETFACL=(setfacl -R -m "u:$PREPARED:rwX,d:u:$PREPARED:rwX" "$TREE")
    timed warm-setfacl "${SETFACL[@]}"; strip_acls
    volprep warm-acl "$VOLPREP" --acl; strip_acls
    for ((i = 1; i <= R; i++)); do
      log "$shape: --acl, round $i/$R"
      timed acl-setfacl "${SETFACL[@]}"; strip_acls
      volprep acl-volprep "$VOLPREP" --acl; strip_acls
      [ -z "${BASELINE:-}" ] || { volprep acl-base "$BASELINE" --acl; strip_acls; }
    done
  fi

  # --- Syscalls per entry (PROFILE=1). ------------------------------------------------------
  if [ "${PROFILE:-0}" = 1 ]; then
    for scenario in full rerun; do
      reset_owner "$([ $scenario = full ] && echo "$OTHER" || echo "$PREPARED")"
      strace -f -c -o "$work/strace.$shape.$scenario" "$VOLPREP" -q "$TREE" --as "$AS" "${MAP[@]}" \
        "${THREADS_ARG[@]}" --no-journal >/dev/null
    done
  fi
  [ "$shape" = slow ] && unmount_slow
  [ "${KEEP:-0}" = 1 ] || rm -rf "$BACK" "$BACK.ok"
done

# --- Peak memory on a ~1M-inode tree (BIG=1). ---------------------------------------------------
if [ "${BIG:-0}" = 1 ]; then
  shape=big TREE=$BENCH_DIR/tree-big BACK=$TREE
  make_tree big "$TREE"
  log "big tree: one full-change volprep run"
  reset_owner "$OTHER"
  volprep full-volprep "$VOLPREP"
  every_owner_is "$TREE" "$PREPARED" "big volprep"
  echo "big $(find "$TREE" | wc -l) 0 1" >>"$work/shapes"
fi

# --- Report. ------------------------------------------------------------------------------------
python3 - "$work" "${PROFILE:-0}" <<'EOF'
import os, re, statistics, sys
work, profile = sys.argv[1], sys.argv[2] == "1"
runs = {}
for line in open(os.path.join(work, "times")):
    label, wall, user, sys_, rss, other, req = line.split()
    runs.setdefault(label, []).append((float(wall), float(user), float(sys_), int(rss), float(other),
                                       None if req == "-" else int(req)))
shapes = [l.split() for l in open(os.path.join(work, "shapes"))]

# Targets of issue 16 (journal on, medians of alternating runs): (scenario, shape) -> max ratio.
TARGETS = {("full", "slow"): 0.05, ("full", "flat"): 0.6, ("full", "kernel"): 0.75,
           ("rerun", "kernel"): 1.1, ("acl", "slow"): 0.05,
           ("journal", "standard"): 1.15, ("journal", "kernel"): 1.15, ("journal", "flat"): 1.15,
           ("journal", "slow"): 1.15, ("rss", "flat"): 32, ("rss", "big"): 64}

failed = False
def med(label, i=0):
    return statistics.median(r[i] for r in runs[label])

def verdict(key, value):
    global failed
    if key not in TARGETS:
        return "", ""
    ok = value <= TARGETS[key]
    failed |= not ok
    return f"<= {TARGETS[key]:g}", "PASS" if ok else "FAIL"

for shape, entries, dirs, rounds in shapes:
    entries = int(entries)
    L = lambda name: f"{shape}:{name}"
    rows = []
    def ratio_row(what, key, a, b):
        if L(a) not in runs or L(b) not in runs:
            return
        va, vb = med(L(a)), med(L(b))
        r = va / vb
        t, v = verdict((key, shape), r) if key else ("", "")
        rows.append((what, f"{va:.3f} s", f"{vb:.3f} s", f"{r:.3f}", t, v))
    if shape != "big":
        ratio_row("full change: volprep / chown -R", "full", "full-volprep", "full-chown")
        ratio_row("full change: volprep --no-journal / chown -R", None, "full-nojournal", "full-chown")
        ratio_row("full change: journal / --no-journal", "journal", "full-volprep", "full-nojournal")
        ratio_row("full change: floor / chown -R", None, "full-floor", "full-chown")
        ratio_row("full change: pinned floor / chown -R", None, "full-pinfloor", "full-chown")
        ratio_row("full change: volprep --no-journal / pinned floor", None, "full-nojournal", "full-pinfloor")
        ratio_row("full change: written-ahead floor / pinned floor", None, "full-jfloor", "full-pinfloor")
        ratio_row("full change: baseline build / chown -R", None, "full-base", "full-chown")
        ratio_row("full change: volprep / baseline build", None, "full-volprep", "full-base")
        ratio_row("rerun: volprep / find -printf", "rerun", "rerun-volprep", "rerun-find")
        ratio_row("rerun: floor (statx only) / find -printf", None, "rerun-floor", "rerun-find")
        ratio_row("rerun: baseline build / find -printf", None, "rerun-base", "rerun-find")
        ratio_row("--acl: volprep / setfacl -R -m", "acl", "acl-volprep", "acl-setfacl")
        ratio_row("--acl: baseline build / setfacl -R -m", None, "acl-base", "acl-setfacl")
    # CPU time is what a busy machine disturbs least: volprep's wall time can at best approach
    # its CPU time / nproc (chown -R, find and setfacl are one thread: wall ~ CPU).
    for a, b, what in (("full-volprep", "full-chown", "full change"), ("full-floor", "full-chown", "floor, full change"),
                       ("full-pinfloor", "full-chown", "pinned floor, full change"),
                       ("rerun-volprep", "rerun-find", "rerun")):
        if shape != "slow" and L(a) in runs and L(b) in runs:
            ca = statistics.median(r[1] + r[2] for r in runs[L(a)])
            cb = statistics.median(r[1] + r[2] for r in runs[L(b)])
            rows.append((f"{what}: CPU s, best-case wall ratio on {os.cpu_count()} cores", f"{ca:.2f} s", f"{cb:.2f} s",
                         f"{ca / os.cpu_count() / cb:.3f}", "(info)", ""))
    # Both sides of the journal's cost are multi-threaded: CPU against CPU.
    for a, b, what in (("full-volprep", "full-nojournal", "journal / --no-journal"),
                       ("full-jfloor", "full-pinfloor", "written-ahead floor / pinned floor")):
        if shape != "slow" and L(a) in runs and L(b) in runs:
            ca = statistics.median(r[1] + r[2] for r in runs[L(a)])
            cb = statistics.median(r[1] + r[2] for r in runs[L(b)])
            rows.append((f"full change: {what}: CPU s", f"{ca:.2f} s", f"{cb:.2f} s", f"{ca / cb:.3f}", "(info)", ""))
    rss = max(r[3] for r in runs[L("full-volprep")]) / 1024
    t, v = verdict(("rss", shape), rss)
    rows.append(("peak RSS, full change (max of runs)", f"{rss:.1f} MiB", "", "", t, v))
    print()
    print(f"== {shape}: {entries} entries ({dirs} directories), medians of {rounds} timed runs each")
    head = ("what", "median", "against", "ratio", "target", "result")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()
    print(fmt(head))
    print(fmt(["-" * w for w in widths]))
    for r in rows:
        print(fmt(r))
    print("per-run wall s; medians of CPU s (user+sys), of CPU s other processes used meanwhile"
          + (", of requests per entry" if shape == "slow" else "") + ":")
    noisy = []
    for label in sorted(k for k in runs if k.startswith(shape + ":") and ":warm-" not in k):
        walls = [r[0] for r in runs[label]]
        usr, sy, other = med(label, 1), med(label, 2), med(label, 4)
        if other > 0.1 * med(label):
            noisy.append(label)
        reqs = [r[5] for r in runs[label] if r[5] is not None]
        req = f"   requests/entry {statistics.median(reqs) / entries:.2f}" if reqs else ""
        print(f"  {label:24} " + " ".join(f"{w:.3f}" for w in walls)
              + f"   cpu {usr + sy:.2f} (usr {usr:.2f} sys {sy:.2f})   other {other:.2f}"
              + f"   rss {med(label, 3) / 1024:.0f} MiB{req}")
    if noisy:
        print(f"  NOISY: {', '.join(noisy)}: other processes used over 10% of the wall time in CPU")
    for label in (L("full-volprep"), L("rerun-volprep"), L("acl-volprep")):
        p = os.path.join(work, f"last-summary.{label}")
        if os.path.exists(p):
            print(f"  volprep said ({label}): {open(p).read().strip()}")
        p = os.path.join(work, f"journal-bytes.{label}")
        if os.path.exists(p):
            print(f"  rollback journal ({label}): {int(open(p).read()):,} bytes")
    if profile and shape != "big":
        for scenario in ("full", "rerun"):
            calls = {}
            for line in open(os.path.join(work, f"strace.{shape}.{scenario}")):
                f = line.split()
                if len(f) >= 5 and re.fullmatch(r"[\d.]+", f[0]) and f[-1] != "total":
                    calls[f[-1]] = int(f[3])
            total = sum(calls.values())
            print(f"  syscalls, {scenario}, --no-journal, strace -c -f: {total / entries:.2f} per entry: " +
                  ", ".join(f"{n} {c / entries:.2f}" for n, c in sorted(calls.items(), key=lambda kv: -kv[1])
                            if c >= entries / 100))
print()
print("OVERALL:", "FAIL" if failed else "PASS")
sys.exit(1 if failed else 0)
EOF
