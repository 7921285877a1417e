# Shared by the race scenarios (source it after lib.sh): volprep held in the window between
# its plan and its changes, while the tree's owner acts in it.
#
# A real run journals each batch and fdatasyncs it before applying it; strace delays every
# fdatasync by HOLD seconds, so the plan is made and recorded, then nothing is applied for
# HOLD seconds. The scenario waits for the records (wait_recorded), acts, then waits for
# volprep (finish_held). Where volprep decides on the names it later changes, what the
# owner did in the window lands; where it holds a descriptor of each inode, it cannot.
source "$(dirname "${BASH_SOURCE[0]}")/held_lib.bash"  # strace, held_volprep_pids
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
HOLD=${HOLD:-3}

# as_user UID cmd args...: held_lib's.

# Exchanges two names atomically (renameat2 RENAME_EXCHANGE), as UID: exchange UID A B.
exchange() {
  as_user "$1" "$PY" -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) != 0:
    sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))' "$2" "$3"
}

# fs.protected_hardlinks set for the scenario, put back as it was on exit.
_saved_protected_hardlinks=$(cat /proc/sys/fs/protected_hardlinks)
on_exit 'echo "$_saved_protected_hardlinks" >/proc/sys/fs/protected_hardlinks'
protected_hardlinks() { echo "$1" >/proc/sys/fs/protected_hardlinks; }

# held OUT volprep-args...: volprep in the background, every fdatasync HOLD seconds late
# (and each statx STATX_DELAY_US microseconds late where that is set; with CENSUS_HOLD set,
# its first mkdirat after the census HOLD seconds late too: shift makes (or finds) the
# directory of its locks, /run/volprep, before its census, a mkdirat for each of its two
# components, and the journal directory right after the census, before the walk that
# changes; see held_logged); $held_pid. strace's log (-ttt, with the
# calls of TRACE_ALSO too where that is set) is $held_trace, for held_lib's in_hold.
held() {
  local out=$1; shift
  held_trace=$T/strace.${out##*/}
  local trace=fdatasync${TRACE_ALSO:+,$TRACE_ALSO} inject=(-e "inject=fdatasync:delay_enter=$((HOLD * 1000000))")
  if [ -n "${STATX_DELAY_US:-}" ]; then
    trace+=,statx inject+=(-e "inject=statx:delay_enter=$STATX_DELAY_US")
  fi
  census_hold_n=3  # the locks' two first
  if [ -n "${CENSUS_HOLD:-}" ]; then
    trace+=,mkdirat inject+=(-e "inject=mkdirat:delay_enter=$((HOLD * 1000000)):when=$census_hold_n")
  fi
  # LeakSanitizer cannot work under ptrace: off for this run of an ASan build.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -ttt -o "$held_trace" -e trace="$trace" "${inject[@]}" timeout 120 "$VOLPREP" "$@" >"$out" 2>&1 &
  held_pid=$!
}

# Waits until the held volprep is stopped on entering the syscall NAME (mkdirat: held by
# CENSUS_HOLD), at most 60 s: held_in NAME. /proc/PID/syscall shows its number; $traced_at
# is the call's (in_hold $HOLD after acting).
held_in() {
  local nr i pid f call
  case "$(uname -m)-$1" in
    x86_64-mkdirat) nr=258 ;;
    aarch64-mkdirat) nr=34 ;;
    *) fail "held_in: no syscall number for $1 on $(uname -m)" ;;
  esac
  for ((i = 0; i < 600; i++)); do
    for pid in $(held_volprep_pids); do
      for f in /proc/"$pid"/task/*/syscall; do
        call=$(cat "$f" 2>/dev/null) || continue
        [ "${call%% *}" = "$nr" ] && wait_traced "$held_trace" 1 " $1\\(" && return 0
      done
    done
    kill -0 "$held_pid" 2>/dev/null || fail "volprep ended before it was held in $1: $(cat "$T"/held.* 2>/dev/null)"
    sleep 0.1
  done
  fail "volprep was not held in $1 within 60 s"
}

# Waits until a journal in DIR holds change records (volprep has planned and is held), at
# most 60 s: wait_recorded DIR. A run's journal is created by its first batch's records,
# which its first fdatasync holds: $traced_at is that call's (in_hold $HOLD after acting).
wait_recorded() {
  local i f
  for ((i = 0; i < 600; i++)); do
    for f in "$1"/*.vpj; do
      [ -s "$f" ] && wait_traced "$held_trace" 1 ' fdatasync\(' && return 0
    done
    kill -0 "$held_pid" 2>/dev/null || fail "volprep ended before it was held: $(cat "$T"/held.* 2>/dev/null)"
    sleep 0.1
  done
  fail "volprep recorded nothing in 60 s"
}

# Waits for the held volprep; its exit code must be one of the given ones.
finish_held() {
  local rc=0 want
  wait "$held_pid" || rc=$?
  for want in "$@"; do [ "$rc" -eq "$want" ] && return 0; done
  fail "volprep exited $rc (want $*)"
}

# Waits until the journal in DIR records a change of each PATH (as `volprep journal show`
# names them), at most 60 s: wait_planned DIR PATH... Then the run has planned them and holds
# them pinned, unchanged until an fdatasync that covers their records returns. wait_recorded's
# first record is not that on a network or FUSE filesystem: there each directory's batch is
# journaled and applied on its own, as soon as it is durable, so the first fdatasync can come
# before the walk has even listed their directory. $traced_at is the stamp of the first
# fdatasync entered after the last look at the journal that found none of them: that one or
# a later one covers them, so they stay unchanged until at least $traced_at + HOLD (in_hold
# $HOLD after acting). Found at the first look, they may have been written any time: the
# run's first fdatasync.
wait_planned() {
  local dir=$1 i f p shown ok any missing since=0 before
  shift
  for ((i = 0; i < 600; i++)); do
    before=$EPOCHREALTIME shown= ok=1 any=0 missing=0
    for f in "$dir"/*.vpj; do
      [ -e "$f" ] || continue  # no journal yet: nothing recorded
      shown+=$("$VOLPREP" journal show "$f" 2>/dev/null)$'\n' || ok=0
    done
    for p in "$@"; do
      if awk -v p="$p" '$1 == p { found = 1 } END { exit !found }' <<<"$shown"; then any=1; else missing=1; fi
    done
    [ "$missing" = 0 ] && break
    [ "$any" = 0 ] && [ "$ok" = 1 ] && since=$before  # none yet: theirs are written after this
    kill -0 "$held_pid" 2>/dev/null || fail "volprep ended before it recorded $*: $(cat "$T"/held.* 2>/dev/null)"
    sleep 0.05
  done
  [ "$missing" = 0 ] || fail "volprep did not record $* in 60 s"
  for ((i = 0; i < 6000; i++)); do
    traced_at=$(awk -v s="${since/[.,]/}" '/ fdatasync\(/ {
        t = ($1 ~ /^[0-9]+$/ && $2 ~ /\./) ? $2 : $1; u = t; sub(/\./, "", u)
        if (u + 0 > s + 0) { print t; exit } }' "$held_trace")
    [ -n "$traced_at" ] && return 0
    kill -0 "$held_pid" 2>/dev/null || fail "volprep ended before the fdatasync that covers $*"
    sleep 0.01
  done
  fail "no fdatasync after the records of $* within 60 s"
}

# held_in from strace's log alone, which logs the call on entering it, before its delay:
# held_logged NAME; $traced_at is the call's. On FUSE volprep runs 64 threads, whose /proc
# syscall files held_in reads with a cat each, every 0.1 s: on a loaded machine most of a
# 1 s hold was gone before it returned.
held_logged() {
  local n=1
  [ "$1" != mkdirat ] || n=$census_hold_n  # the lock's come first
  wait_traced "$held_trace" "$n" " $1\\(" || fail "volprep ended before it was held in $1: $(cat "$T"/held.* 2>/dev/null)"
}
