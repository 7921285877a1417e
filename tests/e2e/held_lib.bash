# Shared by scenarios that hold volprep in one syscall while something changes under it
# (source it after lib.sh): `held_volprep SYSCALL OUT volprep-args...` runs volprep in the
# background under strace, which delays SYSCALL 3 s and stops volprep at no other
# (--seccomp-bpf); $held_pid is strace's, $held_trace its log. `wait_held` returns once
# volprep is stopped there.
command -v strace >/dev/null || fail "strace is missing (./dev test installs it)"

held_volprep() {
  local syscall=$1 out=$2; shift 2
  held_syscall=$syscall held_trace=$out.strace
  # LeakSanitizer cannot work under ptrace: off for this run of an ASan build.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f --seccomp-bpf -ttt -o "$held_trace" -e trace="$syscall" -e inject="$syscall":delay_enter=3000000 \
    timeout 60 "$VOLPREP" "$@" >"$out" 2>&1 &
  held_pid=$!
}

# The pids of volprep under $held_pid: strace -> timeout -> volprep, the grandchildren.
held_volprep_pids() {
  local p
  for p in $(cat /proc/"$held_pid"/task/*/children 2>/dev/null || true); do
    cat /proc/"$p"/task/*/children 2>/dev/null || true
  done
}

# Waits until volprep is stopped in the delayed syscall: strace logs the call on entering it,
# before the delay (a stopped state seen twice 50 ms apart may also be a clone's stop, strace
# slow to resume it on a loaded machine). False if it ends first; fails after 60 s.
wait_held() {
  wait_traced "$held_trace" 1 " $held_syscall\\("
}

# Whether what a scenario did to a held run was done inside the hold. strace (with -ttt) writes
# a call's line, stamped with the time it entered the call, before it delays the call (on entry
# or on exit), so a delay of D seconds lasts at least until that stamp + D:
#   wait_traced LOG N PATTERN: waits (at most 60 s) until strace's LOG has N lines matching
#     PATTERN (grep -E); $traced_at is the stamp of the Nth. False if $held_pid ends first.
#   in_hold D: true while the time is before $traced_at + D seconds. Checked after an action,
#     it says the action was done inside the hold; where it was not (a loaded machine), the
#     scenario did not test what it says, and runs again with a longer hold.
wait_traced() {
  local log=$1 n=$2 pattern=$3 i line
  for ((i = 0; i < 6000; i++)); do
    line=$(grep -E "$pattern" "$log" 2>/dev/null | sed -n "${n}p") || line=
    if [ -n "$line" ]; then
      traced_at=$(awk '{ print ($1 ~ /^[0-9]+$/ && $2 ~ /\./) ? $2 : $1 }' <<<"$line")
      [[ $traced_at =~ ^[0-9]+\.[0-9]{6}$ ]] || fail "wait_traced: no -ttt stamp in: $line"
      return 0
    fi
    kill -0 "$held_pid" 2>/dev/null || return 1
    sleep 0.01
  done
  fail "wait_traced: no line $n matching $pattern in $log within 60 s"
}
in_hold() {
  local now=${EPOCHREALTIME/[.,]/} at=${traced_at/./}
  ((10#$now < 10#$at + $1 * 1000000))
}
#   act D CMD...: CMD, done to a run held D s; where it fails or ends after the hold, $late is
#     set (a late rename fails once the run has given the tree away) and later acts of the
#     case do nothing. A failure inside the hold fails the scenario.
act() {
  local hold=$1; shift
  [ "$late" = 1 ] && return 0
  if "$@" && in_hold "$hold"; then return 0; fi
  in_hold "$hold" && fail "failed within the hold: $*"
  late=1
}
#   retry_held WHAT CMD ARGS...: runs CMD K ARGS... for K = 1, 2, 4 (CMD makes its holds K
#     times as long) until CMD leaves $late 0: WHAT, done to the held run, was done in time.
retry_held() {
  local what=$1 k; shift
  for k in 1 2 4; do
    "$1" "$k" "${@:2}"
    [ "$late" = 1 ] || return 0
    echo "$what: too late for the hold (holds x$k): again, held longer" >&2
  done
  fail "$what: too late for the hold three times"
}

# Holding volprep right after its last lookup of one name (a statx or an openat2 naming it):
#   probe_last_lookup NAME TREE volprep-args...: runs volprep on TREE (an identical tree, to
#     be thrown away) under strace and sets $lookup_call (statx or openat2) and $lookup_n, the
#     index of that last lookup among the calls of that syscall.
#   held_after_lookup HOLD OUT volprep-args...: volprep in the background, delayed HOLD s on
#     leaving that call; $held_pid, its output in OUT, strace's log in OUT.trace. Then
#     `wait_traced OUT.trace 1 '\(DELAYED\)$'` waits for the hold.
probe_last_lookup() {
  local name=$1 tree=$2; shift 2
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq -o "$tree.trace" -e trace=statx,openat2 "$VOLPREP" "$tree" "$@" >/dev/null 2>&1
  lookup_call=$(grep -oE "(statx|openat2)\([^,]*, \"$name\"" "$tree.trace" | tail -1 | cut -d'(' -f1)
  [ -n "$lookup_call" ] || fail "the probe run looked the name $name up with neither statx nor openat2"
  lookup_n=$(grep "$lookup_call(" "$tree.trace" | grep -n "\"$name\"" | tail -1 | cut -d: -f1)
}
held_after_lookup() {
  local hold=$1 out=$2; shift 2
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -ttt -o "$out.trace" -e trace="$lookup_call" \
    -e "inject=$lookup_call:delay_exit=$((hold * 1000000)):when=$lookup_n" \
    timeout 120 "$VOLPREP" "$@" >"$out" 2>&1 &
  held_pid=$!
}
#   renamed_over_when_held HOLD OUT FILE DEST volprep-args...: held_after_lookup, then, once
#     the hold shows, the tree's owner (uid 1000) renames a link to FILE over DEST; $late set
#     if that was done only after the hold (a loaded machine: it tests nothing then).
renamed_over_when_held() {
  local hold=$1 out=$2 file=$3 dest=$4; shift 4
  held_after_lookup "$hold" "$out" "$@"
  wait_traced "$out.trace" 1 '\(DELAYED\)$' || fail "volprep ended before it was held: $(cat "$out")"
  as_user 1000 ln "$file" "$dest.l"
  as_user 1000 mv -f "$dest.l" "$dest"
  late=0
  in_hold "$hold" || late=1
}

# The tree's owner, unprivileged: as_user UID cmd args...
as_user() { local u=$1; shift; setpriv --reuid "$u" --regid "$u" --clear-groups -- "$@"; }

# The fcntl calls a run makes to lock the tree DIR before anything else (run_lock.h): an
# F_OFD_SETLK for each directory above DIR, shared, then one for DIR. For a scenario that
# holds volprep at its Nth fcntl: lock_fcntls DIR.
lock_fcntls() {
  local part parts n=1
  IFS=/ read -ra parts <<<"$(realpath "$1")"
  for part in "${parts[@]}"; do [ -z "$part" ] || n=$((n + 1)); done
  echo "$n"
}
