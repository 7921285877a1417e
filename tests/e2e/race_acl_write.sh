#!/usr/bin/env bash
# --acl writes the ACL it planned onto the inode it planned it for, whatever the name holds
# when the write comes. volprep is held right after its last statx naming the victim (its
# index found by tracing an identical run with one thread); the tree's owner then renames a
# hardlink to root's 0600 secret outside the tree over that name. The secret must keep its
# ACL and mode (a by-name write after a by-name check gave it the container's ACL, and a
# group class of rw-: mode 0660). The swap is made once strace's log shows the hold, and
# checked to be done within it.
# On a FUSE filesystem (VOLPREP_E2E_FUSE) the swap comes once v is planned and journaled, in
# the hold of the fdatasync that covers its record, and is an exchange: a path-based server
# (slowfs, as sshfs) has no name for an inode renamed over, so through the pin nothing more is
# done to it (a swap right after the lookup: its stat fails, ESTALE, and v is never planned; a
# rename over it after the plan: its chown fails), and no write comes, by descriptor or by
# name. Exchanged, v's inode keeps a name and gets the ACL planned for it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/race_lib.bash"
chmod 755 "$T"
protected_hardlinks 0
out=$T/outside
mkdir "$out"
echo secret >"$out/secret" && chmod 600 "$out/secret"
before=$(getfacl -cp "$out/secret"; stat -c '%u:%g %a' "$out/secret")

make_tree() { mkdir -p "$1/a" && echo data >"$1/a/v" && echo data >"$1/a/w" && chown -R 1000:1000 "$1"; }
run=(--as 1000 "${MAP[@]}" --acl --threads 1)

# The last lookup of the name a/v (a statx or an openat2), and its index among the calls of
# that syscall, in a run on an identical tree (not needed on FUSE).
if [ -z "${VOLPREP_E2E_FUSE:-}" ]; then
  make_tree "$T/probe"
  probe_last_lookup v "$T/probe" "${run[@]}" --journal-dir "$T/j-probe"
fi

# held_run K: the run on a fresh tree, held K * HOLD s after that lookup, the name swapped once
# strace's log shows it held; $late set if the swap was done only after the hold (a loaded
# machine: the run wrote before the swap, which tests nothing).
held_run() {
  local hold=$((HOLD * $1))
  vol=$T/vol$hold
  make_tree "$vol"
  renamed_over_when_held "$hold" "$T/held.out" "$out/secret" "$vol/a/v" "$vol" "${run[@]}" --journal-dir "$T/j$hold"
  finish_held 0 4
}
if [ -n "${VOLPREP_E2E_FUSE:-}" ]; then
  # held_run K: the run on a fresh tree, each fdatasync held K s (race_lib's held), the name
  # swapped once v is planned (wait_planned); $late set if the swap was done after the hold.
  held_run() {
    local HOLD=$1
    vol=$T/vol$HOLD
    make_tree "$vol"
    chmod 777 "$vol/a"   # still the owner's to rename in: a/ is changed before v is planned
    late=0
    held "$T/held.out" "$vol" "${run[@]}" --journal-dir "$T/j$HOLD"
    wait_planned "$T/j$HOLD" "$vol/a/v"
    act "$HOLD" as_user 1000 ln "$out/secret" "$vol/a/.l"
    act "$HOLD" exchange 1000 "$vol/a/.l" "$vol/a/v"
    finish_held 0 4
  }
fi
retry_held "the swap" held_run
after=$(getfacl -cp "$out/secret"; stat -c '%u:%g %a' "$out/secret")
[ "$before" = "$after" ] || fail "the secret outside changed: before: $before; after: $after"
[ -z "${VOLPREP_E2E_FUSE:-}" ] || getfacl -cp "$vol/a/.l" | grep -q '^user:501000:rw' ||
  fail "v's inode, exchanged out, did not get its ACL: $(cat "$T/held.out")"
getfacl -cp "$vol/a/w" | grep -q '^user:501000:rw' || fail "the tree was not prepared: $(cat "$T/held.out")"
echo "ok: race_acl_write"
