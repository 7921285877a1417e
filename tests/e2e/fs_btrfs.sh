#!/usr/bin/env bash
# volprep on btrfs (openSUSE, Fedora, Docker's btrfs driver), on a loop-mounted image of its
# own. 1. prepare, --check, rollback, --acl, shift and shift --reverse do on a mixed tree what
# they do on the same tree on ext4 or tmpfs, manifest for manifest; container uid 1000 in a real
# user namespace writes after prepare and --acl; rollback and the shift round trip give the
# tree back byte for byte. 2. A subvolume inside a tree (its own st_dev, no mount) is named for
# what it is and left alone, as find -xdev does; --cross-filesystems enters a writable one (and
# one nested in it), rollback restores it, and a read-only snapshot is one note, never entered,
# not an EROFS error for each of its entries; so is the empty placeholder a snapshot holds for a
# nested subvolume (it has no owner of its own); a bind mount of a subvolume is a mount point;
# volprep mount's idmapped mount shows the subvolumes in it to the container as the rest.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
source "$(dirname "$0")/shift_lib.bash"
source "$(dirname "$0")/fs_lib.bash"
fs_mounted btrfs 200M "$T/btrfs" btrfs-progs

# --- 1. the claims every filesystem holds ------------------------------------------------------
mkdir "$T/btrfs/claims"
fs_claims "$T/btrfs/claims"

# --- 2. subvolumes ---------------------------------------------------------------------------
S=$T/btrfs
v=$S/sv
mkdir -p "$v/d"
echo a >"$v/d/f"; chown 1000:33 "$v/d/f"
btrfs -q subvolume create "$v/sub"
mkdir "$v/sub/dd"; echo x >"$v/sub/dd/g"; chown 33:33 "$v/sub/dd/g"
btrfs -q subvolume create "$v/sub/nested"
echo n >"$v/sub/nested/h"; setfacl -m u:33:r "$v/sub/nested/h"
for i in $(seq 40); do echo "$i" >"$v/sub/nested/f$i"; done
btrfs -q subvolume snapshot -r "$v/sub" "$v/snap"
# A writable snapshot: where sub holds nested, it holds an empty placeholder (inode 2, another
# st_dev), in which nothing can be made, showing its parent's owner whatever a chown says.
btrfs -q subvolume snapshot "$v/sub" "$v/wsnap"
[ "$(stat -c %i "$v/wsnap/nested")" = 2 ] || fail "wsnap/nested is no placeholder: $(stat -c %i "$v/wsnap/nested")"
# A subvolume outside the tree, bind-mounted into it: a mount point, however its root looks.
btrfs -q subvolume create "$S/elsewhere"
mkdir "$v/m"
mount --bind "$S/elsewhere" "$v/m"
[ "$(stat -c %i "$v/sub")" = 256 ] && [ "$(stat -c %d "$v/sub")" != "$(stat -c %d "$v")" ] ||
  fail "sub is no subvolume root: $(stat -c '%i %d' "$v/sub" "$v")"
manifest "$v" >"$T/sv.before"
manifest "$v/sub" >"$T/sub.before"

out=$(vp "$v" --as 1000 "${MAP[@]}" 2>&1) || fail "prepare with subvolumes exited $?: $out"
grep -qxF "volprep: warning: $v/sub: btrfs subvolume: left alone (--cross-filesystems enters it)" <<<"$out" ||
  fail "the writable subvolume is not named one: $out"
grep -qxF "volprep: warning: $v/snap: read-only btrfs subvolume: left alone (nothing in it can change, with or without --cross-filesystems)" <<<"$out" ||
  fail "the read-only snapshot is not named one: $out"
grep -qxF "volprep: warning: $v/m: mount point: left alone (--cross-filesystems enters it)" <<<"$out" ||
  fail "the bind mount of a subvolume is not a mount point: $out"
grep -q 'skipped 4 (1 mount point, 2 btrfs subvolume, 1 read-only subvolume)' <<<"$out" || fail "summary: $out"
manifest "$v/sub" | diff "$T/sub.before" - >&2 || fail "prepare without --cross-filesystems changed the subvolume"
[ "$(stat -c %u "$v/d/f")" = 501000 ] || fail "d/f, beside the subvolumes, not prepared"
vp rollback --last "$v" >/dev/null 2>&1 || fail "rollback of the first prepare"
umount "$v/m"
manifest "$v" >"$T/sv.before"  # m is an empty directory now

# --cross-filesystems: sub and the subvolume nested in it entered, the snapshot one note.
expect_rc 0 vp "$v" --as 1000 "${MAP[@]}" --cross-filesystems -n >"$T/plan" 2>&1
grep -q "/snap/" "$T/plan" && fail "the dry run plans changes in the read-only snapshot: $(grep /snap/ "$T/plan")"
grep -qF "$v/sub/nested/f40  owner 0:0 -> 501000:501000" "$T/plan" || fail "the dry run does not enter sub/nested: $(cat "$T/plan")"
rc=0; out=$(vp "$v" --as 1000 "${MAP[@]}" --cross-filesystems 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "--cross-filesystems with a read-only snapshot exited $rc: $out"
grep -qi 'read-only file system' <<<"$out" && fail "EROFS reported: $out"
[ "$(grep -c '/snap' <<<"$out")" -eq 1 ] || fail "want one line about the snapshot: $out"
grep -q 'skipped 2 (1 read-only subvolume, 1 subvolume placeholder), failed 0' <<<"$out" || fail "summary: $out"
grep -qxF "volprep: warning: $v/wsnap/nested: btrfs subvolume placeholder (a snapshot does not take the subvolumes nested in the original): left alone" <<<"$out" ||
  fail "the placeholder in the writable snapshot is not named one: $out"
vp "$v" --as 1000 "${MAP[@]}" --cross-filesystems --check >"$T/check" 2>&1 || fail "--check after --cross-filesystems exited $?: $(cat "$T/check")"
bad=$(find "$v" \( -path "$v/snap" -o -path "$v/wsnap/nested" \) -prune -o \( ! -user 501000 -o ! -group 501000 \) -print)
[ -z "$bad" ] || fail "not 501000:501000 after --cross-filesystems: $bad"
bad=$(find "$v/snap" -user 501000)
[ -z "$bad" ] || fail "changed in the read-only snapshot: $bad"
as_container 1000 1000 sh -c 'echo more >>"$1/sub/nested/h" && echo new >"$1/sub/nested/new" && rm "$1/sub/nested/new"' _ "$v" ||
  fail "container uid 1000 cannot write in the nested subvolume after --cross-filesystems"
not as_container 1000 1000 sh -c 'echo x >"$1/snap/new"' _ "$v" 2>/dev/null

out=$(vp rollback --last "$v" 2>&1) || fail "rollback --last after --cross-filesystems exited $?: $out"
manifest "$v" | diff "$T/sv.before" - >&2 || fail "rollback did not give back the tree with its subvolumes"

# An idmapped mount (volprep mount) takes the subvolumes in it along: they are no mounts.
mkdir "$S/dst"
vp mount "$v" "$S/dst" --as 1000 "${MAP[@]}" >/dev/null || fail "volprep mount of the tree with subvolumes exited $?"
as_container 1000 1000 sh -c 'echo more >>"$1/sub/nested/h"' _ "$S/dst" ||
  fail "container uid 1000 cannot write in the nested subvolume through the idmapped mount"
vp umount "$S/dst" >/dev/null || fail "volprep umount exited $?"
manifest "$v" | diff "$T/sv.before" - >&2 || fail "volprep mount changed the tree with its subvolumes"
echo "ok: fs_btrfs"
