#!/usr/bin/env bash
# Rollback after a remount that gave the filesystem another device number (loop and LVM minors
# are handed out in activation order, btrfs subvolumes get an anonymous device at mount time):
# the journal's root found at its path with the same inode and birth time is the same
# filesystem, so `rollback --last` and `rollback JOURNAL` undo the run there, and say so once.
# A run that left the root as it was (owned as the run would make it already: a second run,
# or one after a partial one) holds no record of the root, but (journal format 6) its birth
# time in the header: the same. A different filesystem mounted at that path (an ext4 root is
# always inode 2) is refused: its root's birth time differs; nothing changes.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
command -v mkfs.ext4 >/dev/null || fail "mkfs.ext4 missing"
mnt=$T/mnt
mkdir -m 700 "$VOLPREP_JOURNAL_DIR"
mkdir "$mnt"
# Every loop device attached, one a line in $T/loops: attach runs in $(...), a subshell, where
# an array it grew would be lost (and the devices left attached). Detached on exit (while
# mounted, once unmounted: the lazy unmounts of lib.sh's cleanup follow).
on_exit 'while read -r l; do losetup -d "$l" 2>/dev/null; done <"$T/loops"'
: >"$T/loops"
attach() { local l; l=$(losetup -f --show "$1") || fail "no loop device for $1"; echo "$l" >>"$T/loops"; echo "$l"; }
devno() { stat -c '%Hd:%Ld' "$1"; }
# rolled_back_after_remount FS HOW JOURNAL OLD NEW [BEFORE]: `rollback --last` (HOW last) or
# `rollback JOURNAL` on $mnt, now device NEW, of a run that journaled it as OLD: done, said
# once, and the tree as BEFORE (a manifest; $T/before if not given).
rolled_back_after_remount() {
  local fs=$1 how=$2 j=$3 old=$4 new=$5 want=${6:-$T/before}
  [ "$old" != "$new" ] || fail "the $fs remount kept device $old"
  if [ "$how" = last ]; then
    vp rollback --last "$mnt" >"$T/rb.out" 2>"$T/rb.err" || fail "$fs rollback --last refused: $(cat "$T/rb.err")"
  else
    vp rollback "$j" >"$T/rb.out" 2>"$T/rb.err" || fail "$fs rollback JOURNAL refused: $(cat "$T/rb.err")"
  fi
  grep -q "$mnt was device $old when the run journaled it, now $new (remounted): the same filesystem" "$T/rb.err" ||
    fail "$fs: the device change was not said: $(cat "$T/rb.err")"
  [ "$(grep -c 'when the run journaled it' "$T/rb.err")" = 1 ] || fail "$fs: said more than once: $(cat "$T/rb.err")"
  manifest "$mnt" | diff "$want" - || fail "$fs rollback ($how) did not restore the tree"
}
tree() { # a small tree on the mounted filesystem $1, owned by root
  mkdir -p "$1/d/e" && echo a >"$1/f" && echo b >"$1/d/e/g" && ln -s f "$1/l" && chmod 4755 "$1/f"
}

# ext4 on a loop device, mounted again on another one (the first still attached, so the
# second one cannot be the same).
truncate -s 16M "$T/a.img" && mkfs.ext4 -q -F "$T/a.img"
l1=$(attach "$T/a.img")
mount "$l1" "$mnt"
tree "$mnt"
manifest "$mnt" >"$T/before"
remount_ext4() {
  umount "$mnt"
  local l2; l2=$(attach "$T/a.img")
  mount "$l2" "$mnt"
}
for how in last journal; do
  j=$VOLPREP_JOURNAL_DIR/ext4-$how.vpj
  vp "$mnt" --as 1000 "${MAP[@]}" --journal "$j" >/dev/null
  [ "$(stat -c %u "$mnt/d/e/g")" = 501000 ] || fail "prepare did not chown"
  old=$(devno "$mnt")
  remount_ext4
  rolled_back_after_remount ext4 "$how" "$j" "$old" "$(devno "$mnt")"
done
# The root owned as the run makes it already: the run changes only what is below it.
chown 501000:501000 "$mnt"
manifest "$mnt" >"$T/before-owned"
for how in journal last; do
  j=$VOLPREP_JOURNAL_DIR/ext4-owned-$how.vpj
  root_ctime=$(stat -c %z "$mnt")
  vp "$mnt" --as 1000 "${MAP[@]}" --journal "$j" >/dev/null
  [ "$(stat -c %u "$mnt/d/e/g")" = 501000 ] || fail "prepare did not chown below the root"
  [ "$(stat -c %z "$mnt")" = "$root_ctime" ] || fail "prepare changed the root, which was as it should be"
  old=$(devno "$mnt")
  remount_ext4
  rolled_back_after_remount ext4-owned-root "$how" "$j" "$old" "$(devno "$mnt")" "$T/before-owned"
done
chown 0:0 "$mnt"
manifest "$mnt" | diff "$T/before" - || fail "the root given back to root is not the tree as before"

# shift across a remount: the forward shift's journal is still this tree's, so --reverse with
# remapping switched off (a host root without userns-remap) takes the map from it, as without
# the remount (else it had no map, and refused); --keep-setid, for the tree exactly as before.
cp -a "$VOLPREP_SRC/fixtures/host" "$T/host"
echo '{"log-driver": "json-file"}' >"$T/host/etc/docker/daemon.json"
vp shift "$mnt" "${MAP[@]}" >/dev/null
[ "$(stat -c %u "$mnt/d/e/g")" = 500000 ] || fail "shift did not shift"
old=$(devno "$mnt")
remount_ext4
[ "$old" != "$(devno "$mnt")" ] || fail "the remount kept device $old"
vp shift --reverse --keep-setid "$mnt" --host-root "$T/host" >"$T/sh.out" 2>"$T/sh.err" ||
  fail "shift --reverse after the remount: $(cat "$T/sh.err")"
grep -q "map from the forward shift's journal" "$T/sh.err" || fail "the map was not taken from the forward shift's journal: $(cat "$T/sh.err")"
manifest "$mnt" | diff "$T/before" - || fail "shift --reverse after the remount did not give the tree back"

# A different ext4 at that path, with the same tree: its root is inode 2 too, but was born
# at another time. Refused, both ways, and nothing changes.
j=$VOLPREP_JOURNAL_DIR/ext4-other.vpj
vp "$mnt" --as 1000 "${MAP[@]}" --journal "$j" >/dev/null
a_born=$(stat -c %W "$mnt")
umount "$mnt"
# mkfs.ext4 gives a root a birth time in whole seconds: B's must not be A's.
while [ "$(date +%s)" -le "$a_born" ]; do sleep 0.1; done
truncate -s 16M "$T/b.img" && mkfs.ext4 -q -F "$T/b.img"
mount "$(attach "$T/b.img")" "$mnt"
tree "$mnt"
vp "$mnt/d" --as 1000 "${MAP[@]}" --no-journal >/dev/null   # as the run left it, but not the run's
[ "$(stat -c %i "$mnt")" = 2 ] || fail "ext4 root is not inode 2"
manifest "$mnt" >"$T/other"
expect_rc 5 vp rollback --last "$mnt" 2>"$T/rb.err"
grep -q "born at another time" "$T/rb.err" || fail "--last: why not said: $(cat "$T/rb.err")"
expect_rc 5 vp rollback "$j" 2>"$T/rb.err"
grep -q "born at another time" "$T/rb.err" || fail "JOURNAL: why not said: $(cat "$T/rb.err")"
expect_rc 5 vp rollback "$j" --dry-run 2>"$T/rb.err"
manifest "$mnt" | diff "$T/other" - || fail "a refused rollback changed the other filesystem"
umount "$mnt"

# btrfs: each mount of a subvolume takes an anonymous device; a tmpfs mounted in between
# takes the one it had.
if command -v mkfs.btrfs >/dev/null; then
  truncate -s 128M "$T/c.img" && mkfs.btrfs -q -f "$T/c.img" >/dev/null
  mount -o loop "$T/c.img" "$mnt"
  tree "$mnt"
  manifest "$mnt" >"$T/before"
  mkdir "$T/tmp"
  for how in last journal; do
    j=$VOLPREP_JOURNAL_DIR/btrfs-$how.vpj
    vp "$mnt" --as 1000 "${MAP[@]}" --journal "$j" >/dev/null
    old=$(devno "$mnt")
    umount "$mnt"
    # tmpfs mounts until one takes the number btrfs had (anonymous numbers go lowest first).
    for i in 1 2 3 4 5 6 7 8; do
      mkdir -p "$T/tmp/$i"
      mount -t tmpfs volprep-e2e-devmoved "$T/tmp/$i"
      [ "$(devno "$T/tmp/$i")" != "$old" ] || break
    done
    mount -o loop "$T/c.img" "$mnt"
    for m in "$T"/tmp/*; do umount "$m"; done
    rolled_back_after_remount btrfs "$how" "$j" "$old" "$(devno "$mnt")"
  done
  umount "$mnt"
else
  fail "mkfs.btrfs is missing (btrfs-progs; ./dev test installs it)"
fi
echo "ok: rollback_device_moved"
