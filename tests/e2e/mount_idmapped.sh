#!/usr/bin/env bash
# volprep mount, proven in a real user namespace (map 0:500000:65536, as Docker's
# userns-remap runs containers): through an idmapped mount of a tree owned by disk 1000,
# container uid 1000 reads and writes; what it creates is stored as 1000 on disk; no existing
# file's owner, mode or ctime changes; umount leaves the tree as it was. --shift shows a tree
# written without remap to container root and 1000 alike. Refusals change nothing.
source "$(dirname "$0")/lib.sh"
export VOLPREP_MOUNT_DIR=$T/mounts   # the records of volprep's mounts, not the host's /run
chmod 755 "$T"   # the mount's parents must be traversable by the container's ids

# A developer's checkout: disk 1000:1000, with one root-owned file.
mkdir -p "$T/src/sub" "$T/dst"
echo data >"$T/src/file"
echo deep >"$T/src/sub/f"
echo root >"$T/src/rootfile"
chown -R 1000:1000 "$T/src"
chown 0:0 "$T/src/rootfile"
chmod 0750 "$T/src" "$T/src/sub"
chmod 0640 "$T/src/file" "$T/src/sub/f"
manifest() { (cd "$T/src" && find . -printf '%p %U:%G %m %C@\n' | sort); }
before=$(manifest)

# Before: container 1000 is host 501000, which owns nothing here.
not as_container 1000 1000 cat "$T/src/file" 2>/dev/null

# The dry run says what each owner shows as, and mounts nothing.
out=$(vp mount "$T/src" "$T/dst" --as 1000 "${MAP[@]}" -n)
grep -q 'disk 1000:1000  shows as 501000:501000  4 entries' <<<"$out" || fail "dry run: $out"
grep -q 'disk 0:0  shows as 65534:65534 (nobody: outside the mapping)  1 entry$' <<<"$out" || fail "dry run: $out"
! grep -q " $T/dst " /proc/self/mountinfo || fail "the dry run mounted"

vp mount "$T/src" "$T/dst" --as 1000 "${MAP[@]}" >/dev/null
[ "$(stat -c %u:%g "$T/dst/file")" = 501000:501000 ] || fail "through the mount: $(stat -c %u:%g "$T/dst/file")"
list=$(vp mount --list)
grep -q "^$T/dst  $T/src of an ext4 filesystem, idmapped" <<<"$list" || fail "--list: $list"
grep -q "^  uid map (disk id, shown as, count): 1000 501000 1$" <<<"$list" || fail "--list shows no map: $list"
grep -q "^  remap: the command line" <<<"$list" || fail "--list does not say where the map came from: $list"
# The mount is what the container sees: check agrees.
vp check "$T/dst/file" --as 1000 "${MAP[@]}" >/dev/null || fail "check through the mount denies"

as_container 1000 1000 sh -c 'cat "$1/file" >/dev/null && echo more >>"$1/file" && echo new >"$1/sub/new" && mkdir "$1/newdir"' _ "$T/dst" ||
  fail "container uid 1000 cannot read and write through the mount"
[ "$(stat -c %u:%g "$T/src/sub/new")" = 1000:1000 ] || fail "a file created through the mount is $(stat -c %u:%g "$T/src/sub/new") on disk, want 1000:1000"
[ "$(stat -c %u:%g "$T/src/newdir")" = 1000:1000 ] || fail "a directory created through the mount is not 1000:1000 on disk"
# Root's file shows as nobody and stays root's.
not as_container 1000 1000 sh -c 'echo x >>"$1/rootfile"' _ "$T/dst" 2>/dev/null

# Not busy, not mounted twice.
expect_rc 5 vp mount "$T/src" "$T/dst" --as 1000 "${MAP[@]}" 2>/dev/null   # DST not empty now
vp umount "$T/dst" >/dev/null
! grep -q " $T/dst " /proc/self/mountinfo || fail "umount left the mount"
rm -rf "$T/src/sub/new" "$T/src/newdir"
echo data >"$T/src/file"
# Owners and modes of the existing entries never changed (ctime of file changed by the write).
diff <(sed 's/ [0-9.]*$//' <<<"$before") <(manifest | sed 's/ [0-9.]*$//') || fail "owners or modes changed"
grep -v '^\./file \|^\. \|^\./sub ' <<<"$before" >"$T/b"; manifest | grep -v '^\./file \|^\. \|^\./sub ' >"$T/a"
diff "$T/b" "$T/a" || fail "an untouched entry's ctime changed"

# --shift: a tree written without remap (root's and 1000's files) works for both.
mkdir "$T/dst2"
vp mount "$T/src" "$T/dst2" --shift "${MAP[@]}" >/dev/null
as_container 0 0 sh -c 'echo r >>"$1/rootfile"' _ "$T/dst2" || fail "--shift: container root cannot write root's file"
as_container 1000 1000 sh -c 'echo r >>"$1/sub/f"' _ "$T/dst2" || fail "--shift: container 1000 cannot write 1000's file"
[ "$(stat -c %u:%g "$T/src/rootfile")" = 0:0 ] || fail "--shift changed a disk owner"
vp umount "$T/dst2" >/dev/null

# --persist: a unit systemd accepts, linked as systemctl enable would; umount --persist removes it.
mkdir "$T/dst4" "$T/units"
vp mount "$T/src" "$T/dst4" --as 1000 "${MAP[@]}" --persist --unit-dir "$T/units" >/dev/null
unit=$T/units/$(systemd-escape --path "$T/dst4" | sed 's/^/volprep-mount-/; s/$/.service/')
[ -f "$unit" ] || fail "--persist wrote no $unit: $(ls -R "$T/units")"
systemd-analyze verify "$unit" || fail "systemd-analyze verify refuses $(cat "$unit")"
grep -q "^ExecStart=\"$(readlink -f "$VOLPREP")\" mount \"$T/src\" \"$T/dst4\" --as \"1000\" --from 1000:1000 --uid-map 0:500000:65536 --gid-map 0:500000:65536$" "$unit" ||
  fail "unexpected ExecStart in $(cat "$unit")"
[ -L "$T/units/docker.service.requires/${unit##*/}" ] && [ -L "$T/units/multi-user.target.wants/${unit##*/}" ] ||
  fail "the unit is not linked: $(ls -R "$T/units")"
vp umount "$T/dst4" --persist --unit-dir "$T/units" >/dev/null
[ -z "$(find "$T/units" -name 'volprep-*')" ] || fail "umount --persist left $(find "$T/units" -name 'volprep-*')"
[ -z "$(ls -A "$VOLPREP_MOUNT_DIR")" ] || fail "umount left a record: $(ls "$VOLPREP_MOUNT_DIR")"

# A path that would break the unit's lines is refused, with nothing mounted and no unit; a '$'
# or '%' in one is written so that systemd expands nothing.
mkdir "$T/dst5" "$T/src"$'\n'"x" "$T/src\$HOME%h"
chown 1000:1000 "$T/src"$'\n'"x" "$T/src\$HOME%h"
expect_rc 2 vp mount "$T/src"$'\n'"x" "$T/dst5" --as 1000 "${MAP[@]}" --persist --unit-dir "$T/units" 2>/dev/null
[ -z "$(find "$T/units" -name 'volprep-*')" ] && ! grep -q " $T/dst5 " /proc/self/mountinfo || fail "a refused --persist left a unit or a mount"
# So is one systemd would not load (not UTF-8), which docker.service would then require.
mkdir "$T/src"$'\xff'
expect_rc 2 vp mount "$T/src"$'\xff' "$T/dst5" --as 1000 "${MAP[@]}" --persist --unit-dir "$T/units" 2>/dev/null
[ -z "$(find "$T/units" -name 'volprep-*')" ] && ! grep -q " $T/dst5 " /proc/self/mountinfo || fail "a unit systemd cannot load was written"
vp mount "$T/src\$HOME%h" "$T/dst5" --as 1000 "${MAP[@]}" --persist --unit-dir "$T/units" >/dev/null
grep -qF "mount \"$T/src\$\$HOME%%h\" " "$T"/units/volprep-mount-*.service || fail "\$ and % not escaped: $(cat "$T"/units/volprep-mount-*.service)"
# RequiresMountsFor= expands specifiers but no variables: '$' is written as it is.
grep -qF "RequiresMountsFor=\"$T/src\$HOME%%h\" " "$T"/units/volprep-mount-*.service || fail "RequiresMountsFor= names another path: $(cat "$T"/units/volprep-mount-*.service)"
systemd-analyze verify "$T"/units/volprep-mount-*.service || fail "systemd-analyze verify refuses the escaped unit"
vp umount "$T/dst5" --persist --unit-dir "$T/units" >/dev/null

# nosuid: a setuid file of the tree's owner, shown as root's through the mount, runs as its
# caller (here through --as 0 with an identity map: remap off, a stock Docker).
mkdir "$T/suid" "$T/dst6"
cp /usr/bin/id "$T/suid/myid"
chown -R 1000:1000 "$T/suid"
chmod 4755 "$T/suid/myid"
vp mount "$T/suid" "$T/dst6" --as 0 --map 0:0:65536 >/dev/null
[ "$(stat -c %u "$T/dst6/myid")" = 0 ] || fail "the setuid file does not show as root's"
[ "$(setpriv --reuid 1000 --regid 1000 --clear-groups "$T/dst6/myid" -u)" = 1000 ] ||
  fail "a setuid file runs as root through the mount"
grep " $T/dst6 " /proc/self/mountinfo | grep -q 'nosuid,nodev' || fail "the mount is not nosuid,nodev"
# An idmapped mount volprep has no record of is refused, unless --force.
VOLPREP_MOUNT_DIR=$T/other-records expect_rc 5 vp umount "$T/dst6" 2>/dev/null
VOLPREP_MOUNT_DIR=$T/other-records vp umount "$T/dst6" --force >/dev/null
! grep -q " $T/dst6 " /proc/self/mountinfo || fail "umount --force left the mount"

# A DST whose escaped name is too long for a file name (each '-' is \x2d) has its record all
# the same: --list shows its map and umount removes it without --force.
long=$T/$(printf -- '-%.0s' {1..70})
mkdir "$long"
vp mount "$T/src" "$long" --as 1000 "${MAP[@]}" >/dev/null 2>"$T/err" && [ ! -s "$T/err" ] || fail "long DST: $(cat "$T/err")"
grep -q "^  uid map (disk id, shown as, count): 1000 501000 1$" <<<"$(vp mount --list)" || fail "--list shows no map for a long DST"
# SRC on an idmapped mount (below DST of another volprep mount): named as such, nothing mounted.
mkdir "$T/dst7"
rc=0; err=$(vp mount "$long" "$T/dst7" --as 0 --map 0:0:65536 2>&1) || rc=$?
[ "$rc" -eq 3 ] && grep -q 'on an idmapped mount already' <<<"$err" || fail "SRC idmapped: rc $rc: $err"
! grep -q " $T/dst7 " /proc/self/mountinfo || fail "a refused mount was made"
vp umount "$long" >/dev/null

# Refusals, each with nothing mounted.
mkdir "$T/dst3"
expect_rc 5 vp mount "$T/src" "$T/src/sub" --as 1000 "${MAP[@]}" 2>/dev/null      # DST inside SRC
expect_rc 5 vp mount "$T/src" / --as 1000 "${MAP[@]}" 2>/dev/null                # a system path
expect_rc 5 vp mount /etc "$T/dst3" --as 1000 "${MAP[@]}" 2>/dev/null            # a system path
expect_rc 3 vp mount "$T/src" "$T/dst3" --as 70000 "${MAP[@]}" 2>/dev/null        # not in the map
expect_rc 2 vp mount "$T/src" "$T/dst3" "${MAP[@]}" 2>/dev/null                   # neither --as nor --shift
expect_rc 5 vp umount "$T/dst3" 2>/dev/null                                        # nothing mounted
expect_rc 5 vp umount /proc 2>/dev/null                                            # not an idmapped mount
# A filesystem without idmapped mounts: named, nothing mounted.
mkdir "$T/ram"
mount -t ramfs none "$T/ram"
mkdir "$T/ram/s"
rc=0; err=$(vp mount "$T/ram/s" "$T/dst3" --as 0 "${MAP[@]}" 2>&1) || rc=$?
[ "$rc" -eq 3 ] && grep -q 'ramfs filesystem, which does not support idmapped mounts' <<<"$err" || fail "ramfs: rc $rc: $err"
! grep -q " $T/dst3 " /proc/self/mountinfo || fail "a refused mount was made"
echo "mount: idmapped mount works in a user namespace; disk owners unchanged; refusals mount nothing"
