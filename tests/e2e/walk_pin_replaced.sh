#!/usr/bin/env bash
# A file the walk has just pinned (opened O_PATH by name, not yet stat'ed through the pin) is
# replaced by its owner: another file renamed over its name. On ext4 or tmpfs the pin still
# reaches the inode it opened, which is stat'ed, planned and changed, unlinked as it is; on
# NFS or a path-based FUSE filesystem (VOLPREP_E2E_FUSE: bench/slowfs.c, libfuse's high-level
# API, as sshfs and bindfs) the server has no name for it any more and answers ESTALE. Either
# way the run ends well (exit 0): an entry gone from the tree is vanished, not failed, as the
# apply counts it (shift_pin_replaced.sh). The file renamed in is left alone: the run never
# looked it up.
# volprep is held right after the last lookup naming the victim (its index found by tracing an
# identical run with one thread), and the rename is made once strace's log shows the hold.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/held_lib.bash"  # not race_lib: fs.protected_hardlinks is not this scenario's
chmod 755 "$T"
HOLD=1
make_tree() { mkdir -p "$1/a" && echo data >"$1/a/v" && echo data >"$1/a/w" && chown -R 1000:1000 "$1" && chmod 777 "$1/a"; }
run=(--as 1000 "${MAP[@]}" --threads 1)

make_tree "$T/probe"  # which call is the last lookup of a/v: held_lib's probe
probe_last_lookup v "$T/probe" "${run[@]}" --journal-dir "$T/j-probe"
held_run() {  # K: held K * HOLD s there, another file of the owner's renamed over a/v meanwhile
  local hold=$((HOLD * $1))
  vol=$T/vol$hold
  make_tree "$vol"
  echo other >"$T/other$hold" && chown 1000:1000 "$T/other$hold"
  renamed_over_when_held "$hold" "$T/held.out" "$T/other$hold" "$vol/a/v" "$vol" "${run[@]}" --journal-dir "$T/j$hold"
  rc=0
  wait "$held_pid" || rc=$?
}
retry_held "the rename over a/v" held_run
[ "$rc" = 0 ] || fail "volprep exited $rc after a pinned file was replaced (want 0: it vanished): $(cat "$T/held.out")"
grep -q 'failed 0\b' "$T/held.out" || fail "the replaced file counted as failed: $(cat "$T/held.out")"
[ "$(stat -c %u:%g "$vol/a/v")" = 1000:1000 ] || fail "the file renamed in over a/v was changed: $(stat -c %u:%g "$vol/a/v")"
[ "$(stat -c %u:%g "$vol/a/w")" = 501000:501000 ] || fail "the tree was not prepared: $(cat "$T/held.out")"
echo "ok: walk_pin_replaced"
