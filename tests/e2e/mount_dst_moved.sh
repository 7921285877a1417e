#!/usr/bin/env bash
# volprep mount puts its mount where DST names it, or nowhere. DST's directory belongs to
# another user, who renames DST away while volprep is held just before it mounts (strace
# delays move_mount) and makes a directory of their own at its name: the mount, made on the
# directory volprep opened, would sit where that user chose while DST showed their own
# directory to a container. volprep refuses (exit 5), takes its mount away again and writes
# no record or unit.
source "$(dirname "$0")/lib.sh"
command -v strace >/dev/null || fail "strace is missing (./dev test installs it)"
export VOLPREP_MOUNT_DIR=$T/mounts
chmod 755 "$T"
mkdir -p "$T/src" "$T/home/dst" "$T/units"
chown 1000:1000 "$T/src"
chown 1001:1001 "$T/home" "$T/home/dst"   # DST's directory is another user's

# LeakSanitizer cannot work under ptrace: off for this run of an ASan build.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
  strace -f -o /dev/null -e trace=move_mount -e inject=move_mount:delay_enter=3000000 \
  timeout 60 "$VOLPREP" mount "$T/src" "$T/home/dst" --as 1000 "${MAP[@]}" --persist --unit-dir "$T/units" >"$T/out" 2>&1 &
pid=$!
# Held once volprep (strace's grandchild, under timeout) is in move_mount (429 everywhere).
children() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }
held=
for ((i = 0; i < 300; i++)); do
  for p in $(children "$pid"); do
    for q in $(children "$p"); do
      [[ "$(cat "/proc/$q/syscall" 2>/dev/null || true)" == "429 "* ]] && held=1
    done
  done
  [ -n "$held" ] && break
  sleep 0.05
done
[ -n "$held" ] || fail "volprep never reached move_mount: $(cat "$T/out")"
setpriv --reuid 1001 --regid 1001 --clear-groups -- sh -c 'mv "$1/dst" "$1/elsewhere" && mkdir "$1/dst" && echo mine >"$1/dst/planted"' _ "$T/home"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 5 ] && grep -q 'moved while it was being mounted' "$T/out" || fail "rc $rc: $(cat "$T/out")"
! grep -q " $T/" /proc/self/mountinfo || fail "a mount stayed: $(grep " $T/" /proc/self/mountinfo)"
[ -z "$(find "$T/units" -name '*volprep-*')" ] || fail "a unit stayed: $(ls -RA "$T/units")"
[ -z "$(ls -A "$VOLPREP_MOUNT_DIR" 2>/dev/null)" ] || fail "a record stayed: $(ls -A "$VOLPREP_MOUNT_DIR")"
echo "mount_dst_moved: DST renamed away during the mount: refused, nothing mounted anywhere"
