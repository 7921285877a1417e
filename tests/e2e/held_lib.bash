# Shared by scenarios that hold volprep in one syscall while something changes under it
# (source it after lib.sh): `held_volprep SYSCALL OUT volprep-args...` runs volprep in the
# background under strace, which delays SYSCALL 3 s and stops volprep at no other
# (--seccomp-bpf); $held_pid is strace's. `wait_held` returns once volprep is stopped there.
command -v strace >/dev/null || fail "strace is missing (./dev test installs it)"

held_volprep() {
  local syscall=$1 out=$2; shift 2
  # LeakSanitizer cannot work under ptrace: off for this run of an ASan build.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f --seccomp-bpf -o /dev/null -e trace="$syscall" -e inject="$syscall":delay_enter=3000000 \
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

# Waits (at most 15 s) until volprep, strace's grandchild under timeout, is seen stopped by
# strace twice in a row 50 ms apart: in the delayed syscall, not passing through its exit.
wait_held() {
  local i q seen=0 stopped
  for ((i = 0; i < 300; i++)); do
    stopped=0
    for q in $(held_volprep_pids); do
      [ "$(awk '{ print $3 }' "/proc/$q/stat" 2>/dev/null || true)" = t ] && stopped=1
    done
    if [ "$stopped" = 1 ]; then seen=$((seen + 1)); else seen=0; fi
    [ "$seen" -ge 2 ] && return 0
    sleep 0.05
  done
  return 1
}
