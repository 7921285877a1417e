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
