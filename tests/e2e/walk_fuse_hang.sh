#!/usr/bin/env bash
# A FUSE mount inside the tree whose server never answers (the tree's owner can make one with
# fusermount3) does not hang prepare, --dry-run or check: the walk never sends it a request,
# reports the mount point (a directory and a file) as left alone, and prepares the rest.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fuse_lib.bash"
mkdir -p "$VOLPREP_JOURNAL_DIR"
tree=$T/tree
mkdir -p "$tree/sub/fusedir" "$tree/other"
echo a >"$tree/a"; echo b >"$tree/sub/b"; echo f >"$tree/sub/fusefile"; echo c >"$tree/other/c"
chown -R 1000:1000 "$tree"

mount_silent "$tree/sub/fusedir:dir" "$tree/sub/fusefile:file"
n_mounts=$(awk -v t="$tree/sub/" 'index($5, t) == 1 && index($0, " - fuse ")' /proc/self/mountinfo | wc -l)
[ "$n_mounts" = 2 ] || fail "want 2 fuse mounts under the tree, see $n_mounts"

watched dry-run "$tree" --as 1000 "${MAP[@]}" --dry-run
[ "$rc" = 0 ] || fail "--dry-run exited $rc: $(cat "$T/dry-run.err")"
grep -q "$tree/sub/fusedir: mount point" "$T/dry-run.err" || fail "--dry-run does not report the FUSE directory mount: $(cat "$T/dry-run.err")"
grep -q "$tree/sub/fusefile: mount point" "$T/dry-run.err" || fail "--dry-run does not report the FUSE file mount: $(cat "$T/dry-run.err")"
grep -q '^scanned 8, to change 6, unchanged 0, skipped 2 (2 mount point)' "$T/dry-run.out" ||
  fail "--dry-run summary: $(grep scanned "$T/dry-run.out")"

watched check check "$tree" --as 1000 "${MAP[@]}"
case $rc in 0|1) ;; *) fail "check exited $rc: $(cat "$T/check.err")" ;; esac
grep -q '^checked 6,' "$T/check.out" || fail "check summary: $(cat "$T/check.out")"

watched prepare "$tree" --as 1000 "${MAP[@]}"
[ "$rc" = 0 ] || fail "prepare exited $rc: $(cat "$T/prepare.err")"
grep -q "$tree/sub/fusedir: mount point" "$T/prepare.err" || fail "prepare does not report the FUSE mount: $(cat "$T/prepare.err")"
grep -q '^scanned 8, changed 6, unchanged 0, skipped 2 (2 mount point), failed 0' "$T/prepare.out" ||
  fail "prepare summary: $(grep scanned "$T/prepare.out")"
# (find would stat the mount points, and wait on the server like anyone else)
owners=$(cd "$tree" && stat -c %u:%g . a sub sub/b other other/c | sort -u)
[ "$owners" = 501000:501000 ] || fail "prepare left some entries unchanged: $owners"
! grep -q 'request' "$T/server.err" || fail "volprep sent the silent server requests: $(cat "$T/server.err")"

# What lies under the mount points is the tree's too, and untouched.
abort_fuse
[ "$(stat -c %u:%g "$tree/sub/fusedir" "$tree/sub/fusefile" | sort -u)" = 1000:1000 ] ||
  fail "the directories under the mounts changed: $(stat -c '%u:%g %n' "$tree/sub/fusedir" "$tree/sub/fusefile")"
echo "ok: walk_fuse_hang"
