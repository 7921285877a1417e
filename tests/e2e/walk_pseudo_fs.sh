#!/usr/bin/env bash
# --cross-filesystems enters a tmpfs mounted inside the tree but never changes the root of a
# proc or devpts mount there (nor anything in it): their owners are what they were, and the
# summary counts them as skipped pseudo filesystems. In a private mount and pid namespace, so
# the host's mounts stay as they are.
source "$(dirname "$0")/lib.sh"
mkdir -p "$VOLPREP_JOURNAL_DIR"

tree=$T/tree
mkdir -p "$tree"/{p,pts,t,d}
echo x >"$tree/d/f"
chown -R 1000:1000 "$tree"

unshare --pid --fork --mount --propagation private -- bash -c '
  set -e
  tree=$1 out=$2; shift 2
  mount -t proc -o nosuid,nodev,noexec volprep-e2e-proc "$tree/p"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 volprep-e2e-pts "$tree/pts"
  mount -t tmpfs -o mode=0755,size=1m volprep-e2e-tmpfs "$tree/t"
  echo y >"$tree/t/in-tmpfs"; chown -R 1000:1000 "$tree/t"
  stat -c "%u:%g %a %n" "$tree/p" "$tree/pts" "$tree/pts/ptmx" >"$out/before"
  rc=0; timeout 60 "$@" >"$out/run.out" 2>"$out/run.err" || rc=$?
  echo "$rc" >"$out/rc"
  stat -c "%u:%g %a %n" "$tree/p" "$tree/pts" "$tree/pts/ptmx" >"$out/after"
  stat -c "%u:%g %n" "$tree/t" "$tree/t/in-tmpfs" >"$out/tmpfs"
' _ "$tree" "$T" "$VOLPREP" "$tree" --as 1000 "${MAP[@]}" --cross-filesystems

rc=$(cat "$T/rc")
[ "$rc" = 0 ] || fail "volprep --cross-filesystems exited $rc: $(cat "$T/run.err")"
if ! cmp -s "$T/before" "$T/after"; then
  diff "$T/before" "$T/after" >&2 || true
  fail "--cross-filesystems changed the root of a proc or devpts mount"
fi
grep -Eq '^scanned [0-9]+, changed 5, unchanged 0, skipped 2 \(2 pseudo filesystem\), failed 0' "$T/run.out" ||
  fail "want 2 pseudo filesystems skipped and 5 changes: $(grep scanned "$T/run.out")"
grep -q "$tree/p: a proc mount; never entered" "$T/run.err" || fail "the proc mount is not reported: $(cat "$T/run.err")"
grep -q "$tree/pts: a devpts mount; never entered" "$T/run.err" || fail "the devpts mount is not reported: $(cat "$T/run.err")"
[ "$(awk '{print $1}' "$T/tmpfs" | sort -u)" = 501000:501000 ] ||
  fail "--cross-filesystems did not enter the tmpfs: $(cat "$T/tmpfs")"
# (after the namespace, p, pts and t are the directories that were under the mounts)
wrong=$(find "$tree" -path "$tree/p" -prune -o -path "$tree/pts" -prune -o -path "$tree/t" -prune -o ! \( -user 501000 -group 501000 \) -print)
[ -z "$wrong" ] || fail "left unchanged: $wrong"
echo "ok: walk_pseudo_fs"
