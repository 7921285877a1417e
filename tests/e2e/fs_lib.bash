# Helpers of the fs_*.sh scenarios (source after lib.sh, manifest.bash and shift_lib.bash;
# .bash, so ctest does not run it).
#
#   fs_tree DIR      shift_lib's mixed_tree (owners 0, 1000, 33, 999, 65534; ACL named
#                    entries; v2 and v3 capabilities; setuid/setgid; hardlinks; a fifo) plus a
#                    symlink pointing outside the tree, at $T/outside (1000:1000, 0644)
#   fs_claims DIR    on DIR (a directory on the filesystem under test, empty): prepare,
#                    --check, rollback, --acl, shift and shift --reverse each do on a fs_tree
#                    there what they do on the same tree in $T (the reference: ext4 or tmpfs),
#                    manifest for manifest; container uid 1000 in a real user namespace cannot
#                    write before prepare and --acl and can after; rollback and the shift
#                    round trip give back the tree byte for byte; volprep mount (idmapped)
#                    lets container uid 1000 create as the tree's owner, changing nothing
# fs_mounted TYPE SIZE DIR PACKAGE: a fresh TYPE of SIZE on a loop device, mounted on DIR;
# without its mkfs the scenario fails (./dev installs PACKAGE); where the kernel or the machine
# cannot mount one on a loop device, it ends here, passing, and says so.
fs_mounted() {
  loop_fs "$1" "$2" "$3" 2>"$T/mount.err" || {
    command -v "mkfs.$1" >/dev/null || fail "no mkfs.$1: install $4 (./dev does)"
    echo "skip: no $1 on a loop device here: $(cat "$T/mount.err")"
    exit 0
  }
  [ "$(stat -f -c %T "$3")" = "$1" ] || fail "$3 is not $1: $(stat -f -c %T "$3")"
}

fs_tree() { # fs_tree DIR
  mixed_tree "$1"
  ln -s "$T/outside" "$1/d1/out"
}

# fs_same WHAT: the tree under test and the reference have the same manifest. XFS keeps a
# POSIX ACL in its own xattr, trusted.SGI_ACL_FILE or _DEFAULT (big-endian, its on-disk form),
# which it lists to root beside system.posix_acl_*: the same ACL, left out of this comparison
# (and kept in each tree's own before and after, where it must be byte for byte the same too).
fs_same() {
  local sgi='s/ trusted\.SGI_ACL_\(FILE\|DEFAULT\)=[0-9a-f]*//g'
  diff <(manifest "$ref" | sed "$sgi") <(manifest "$vol" | sed "$sgi") >"$T/fs.diff" ||
    fail "$1: the tree on $fstype differs from the same run's on $reftype (< $reftype, > $fstype): $(cat "$T/fs.diff")"
}

# on_both ARGS...: volprep ARGS with VOL replaced by each tree, reference first; both must exit 0
on_both() {
  local t a args out
  for t in "$ref" "$vol"; do
    args=()
    for a in "$@"; do [ "$a" = VOL ] && args+=("$t") || args+=("$a"); done
    out=$(vp "${args[@]}" 2>&1) || fail "volprep ${args[*]} exited $?: $out"
  done
}

outside_untouched() {
  [ "$(stat -c %u:%g:%a "$T/outside")" = 1000:1000:644 ] ||
    fail "the symlink's target outside the tree changed: $(stat -c %u:%g:%a "$T/outside")"
}

fs_claims() { # fs_claims DIR
  local d=$1
  fstype=$(stat -f -c %T "$d") reftype=$(stat -f -c %T "$T")
  chmod 755 "$T" "$d"  # the container's ids reach the trees
  mkdir -p "$VOLPREP_JOURNAL_DIR"
  echo outside >"$T/outside" && chown 1000:1000 "$T/outside" && chmod 644 "$T/outside"
  vol=$d/vol ref=$T/ref/vol
  fs_tree "$vol"
  fs_tree "$ref"
  manifest "$vol" >"$T/before"
  fs_same "the trees as made"

  # --- prepare --as 1000, proved by the kernel in a user namespace ------------------------
  as_container 1000 1000 true || fail "no user namespace for container uid 1000 (newuidmap, from uidmap)"
  not as_container 1000 1000 sh -c 'echo x >>"$1/d1/sub1/f1" || exit 1; echo n >"$1/d1/new"' _ "$vol" 2>/dev/null
  [ ! -e "$vol/d1/new" ] || fail "container uid 1000 created d1/new before prepare"
  expect_rc 1 vp "$vol" --as 1000 "${MAP[@]}" --check >/dev/null
  on_both VOL --as 1000 "${MAP[@]}"
  fs_same "prepare --as 1000"
  outside_untouched
  [ "$(stat -c %u:%g "$vol/d1/out")" = 501000:501000 ] || fail "the symlink itself not changed"
  [ "$(stat -c %a "$vol/suid")" = 6755 ] || fail "setuid/setgid lost on $fstype: $(stat -c %a "$vol/suid")"
  getcap "$vol/ping" | grep -q cap_net_raw || fail "the capability lost on $fstype: $(getcap "$vol/ping")"
  vp "$vol" --as 1000 "${MAP[@]}" --check >/dev/null || fail "--check after prepare exited $?"
  as_container 1000 1000 sh -c 'echo x >>"$1/d1/sub1/f1" && echo n >"$1/d1/new" && mkdir "$1/d3/newdir" &&
    cat "$1/d0/a" >/dev/null' _ "$vol" || fail "container uid 1000 cannot write on $fstype after prepare"
  [ "$(stat -c %u:%g "$vol/d1/new")" = 501000:501000 ] || fail "d1/new is $(stat -c %u:%g "$vol/d1/new")"
  rm -rf "$vol/d1/new" "$vol/d3/newdir"

  # --- rollback --last: the tree as made, byte for byte -----------------------------------
  out=$(vp rollback --last "$vol" 2>&1) || fail "rollback --last on $fstype exited $?: $out"
  manifest "$vol" | diff "$T/before" - >&2 || fail "prepare then rollback on $fstype is not the tree it started from"
  vp rollback --last "$ref" >/dev/null 2>&1 || fail "rollback of the reference"

  # --- --acl: the same grant; the container writes; rollback gives the tree back ----------
  on_both VOL --as 1000 --acl "${MAP[@]}"
  fs_same "--acl"
  outside_untouched
  vp "$vol" --as 1000 --acl "${MAP[@]}" --check >/dev/null || fail "--acl --check after --acl exited $?"
  as_container 1000 1000 sh -c 'echo x >>"$1/d1/sub1/f1" && mkdir "$1/d1/newdir" && echo n >"$1/d1/newdir/f"' _ "$vol" ||
    fail "container uid 1000 cannot write on $fstype after --acl"
  getfacl -cpn "$vol/d1/newdir/f" | grep -q '^user:501000:rw' ||
    fail "d1/newdir/f does not inherit user:501000 on $fstype: $(getfacl -cpn "$vol/d1/newdir/f")"
  rm -rf "$vol/d1/newdir"
  # The append changed f1's content, not its metadata: the manifest holds no content.
  vp rollback --last "$vol" >/dev/null 2>&1 || fail "rollback of --acl on $fstype exited $?"
  manifest "$vol" | diff "$T/before" - >&2 || fail "--acl then rollback on $fstype is not the tree it started from"
  vp rollback --last "$ref" >/dev/null 2>&1 || fail "rollback of the reference's --acl"

  # --- shift, then shift --reverse: the same translation, and back byte for byte ----------
  on_both shift VOL "${MAP[@]}"
  fs_same "shift"
  outside_untouched
  getcap -n "$vol/ping" | grep -q '\[rootid=500000\]' || fail "ping on $fstype: $(getcap -n "$vol/ping")"
  on_both shift VOL "${MAP[@]}" --reverse --keep-setid
  manifest "$vol" | diff "$T/before" - >&2 || fail "shift then shift --reverse on $fstype is not the tree it started from"
  fs_same "shift --reverse"
  outside_untouched

  # --- volprep mount: an idmapped mount of the tree, no file changed ------------------------
  export VOLPREP_MOUNT_DIR=$T/mounts
  mkdir "$d/dst"
  out=$(vp mount "$vol" "$d/dst" --as 1000 "${MAP[@]}" 2>&1) || fail "volprep mount on $fstype exited $?: $out"
  # The tree's root owner on disk (0:0) is container 1000's through the mount.
  as_container 1000 1000 sh -c 'echo x >"$1/by-container"' _ "$d/dst" ||
    fail "container uid 1000 cannot create in the tree's root through the idmapped mount on $fstype"
  [ "$(stat -c %u:%g "$vol/by-container")" = 0:0 ] || fail "stored as $(stat -c %u:%g "$vol/by-container"), want 0:0"
  vp umount "$d/dst" >/dev/null || fail "volprep umount on $fstype exited $?"
  rm "$vol/by-container"
  manifest "$vol" | diff "$T/before" - >&2 || fail "volprep mount changed the tree on $fstype"
}
