#!/usr/bin/env bash
# PATH is resolved once, by descriptor, from "/": a symlink on the way that a user other than
# root owns, or that sits in a directory such a user (or a group, or everyone, without the
# sticky bit) may write, is refused with exit 5 and named, also as PATH/ and with -q, for
# prepare, check and rollback --last; --follow-path-symlinks follows it, with a warning.
# Root's own symlinks in root's directories are followed. rollback --last matches journals
# by the resolved volume's path and its device and inode.
source "$(dirname "$0")/lib.sh"
mkdir -p "$VOLPREP_JOURNAL_DIR"
chmod 755 "$T"

# A user's home holding a volume, a root-owned directory the user must not reach, and links.
home=$T/home victim=$T/victim
mkdir -p "$home/vol/sub" "$victim/inner"
echo v >"$home/vol/sub/f"; echo x >"$victim/inner/secret"
chown -R 1000:1000 "$home"
snap_victim() { find "$victim" -printf '%U:%G %m %C@ %p\n' | LC_ALL=C sort; }
snap_victim >"$T/victim.before"
ln -s "$victim" "$home/evil"; chown -h 1000:1000 "$home/evil"     # the user's own symlink
ln -s "$victim" "$home/planted"                                   # root's, in the user's directory
ln -s home/vol "$T/rootlink"                                      # root's, in root's 0755 directory
mkdir -m 0775 "$T/groupw" && ln -s "$home/vol" "$T/groupw/link"  # root's, group may replace it
mkdir -m 1777 "$T/sticky" && ln -s "$home/vol" "$T/sticky/link"  # root's, sticky: only root may

refused() { # refused WHAT-IN-MESSAGE args...: exit 5, the message names the symlink
  local want=$1 rc=0; shift
  vp "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" = 5 ] || fail "volprep $* exited $rc, want 5: $(cat "$T/err")"
  grep -qF -- "$want" "$T/err" || fail "volprep $*: the refusal does not say '$want': $(cat "$T/err")"
  ! grep -q ' owner ' "$T/out" || fail "volprep $* refused but printed a plan"
}
for p in "$home/evil" "$home/evil/" "$home/evil/inner" "$home/vol/../evil"; do
  refused "$home/evil is a symlink owned by uid 1000" "$p" --as 1000 "${MAP[@]}" --dry-run
  refused "$home/evil is a symlink owned by uid 1000" -q "$p" --as 1000 "${MAP[@]}"
  refused "$home/evil is a symlink owned by uid 1000" check "$p" --as 1000 "${MAP[@]}"
done
refused "$home/planted is a symlink in a directory owned by uid 1000" "$home/planted" --as 1000 "${MAP[@]}"
refused "$T/groupw/link is a symlink in a directory its group or others may write" \
  "$T/groupw/link" --as 1000 "${MAP[@]}" --dry-run
# Relative to the current directory, the same.
(cd "$home" && refused "$home/evil is a symlink owned by uid 1000" evil --as 1000 "${MAP[@]}" --dry-run)
grep -q -- '--follow-path-symlinks' "$T/err" || fail "the refusal does not name the option that overrides it"
snap_victim >"$T/victim.after"
cmp -s "$T/victim.before" "$T/victim.after" || fail "a refused run changed the directory a symlink led to"

# Root's symlinks in directories only root may change are followed, with a warning.
for p in "$T/rootlink" "$T/rootlink/" "$T/sticky/link"; do
  rc=0; vp "$p" --as 1000 "${MAP[@]}" --dry-run >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" = 0 ] || fail "volprep $p (root's symlink) exited $rc: $(cat "$T/err")"
  grep -q "followed the symlink .* -> " "$T/err" || fail "volprep $p: no warning about the symlink: $(cat "$T/err")"
  grep -q "sub/f  owner 1000:1000 -> 501000:501000" "$T/out" || fail "volprep $p did not plan the volume: $(cat "$T/out")"
done

# --follow-path-symlinks: the user's symlink is followed, said so, and still never to /etc.
rc=0; vp "$home/evil" --as 1000 "${MAP[@]}" --dry-run --follow-path-symlinks >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 0 ] || fail "--follow-path-symlinks exited $rc: $(cat "$T/err")"
grep -q "followed the symlink $home/evil -> $victim" "$T/err" || fail "no warning with --follow-path-symlinks: $(cat "$T/err")"
ln -s /etc "$home/etc"; chown -h 1000:1000 "$home/etc"
expect_rc 5 vp "$home/etc" --as 1000 "${MAP[@]}" --dry-run --follow-path-symlinks

# --- rollback --last ------------------------------------------------------------------------
mkdir -p "$T/vol2/d"; echo y >"$T/vol2/d/g"; chown -R 1000:1000 "$T/vol2"
vp "$T/vol2" --as 1000 "${MAP[@]}" >/dev/null 2>&1 || fail "prepare of vol2 failed"
ln -s "$T/vol2" "$home/vol2link"; chown -h 1000:1000 "$home/vol2link"
refused "$home/vol2link is a symlink owned by uid 1000" rollback --last "$home/vol2link"
[ "$(stat -c %u "$T/vol2/d/g")" = 501000 ] || fail "a refused rollback changed vol2"
# The same path, another directory: the journal is not for it.
mv "$T/vol2" "$T/vol2.old"; mkdir "$T/vol2"
rc=0; vp rollback --last "$T/vol2" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 5 ] || fail "rollback --last of a replaced directory exited $rc, want 5: $(cat "$T/err")"
grep -q 'another directory' "$T/err" || fail "rollback --last does not say the directory is another: $(cat "$T/err")"
rmdir "$T/vol2"; mv "$T/vol2.old" "$T/vol2"
# Through root's own symlink, by the resolved path: undone.
ln -s vol2 "$T/vol2root"
rc=0; vp rollback --last "$T/vol2root/" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 0 ] || fail "rollback --last through root's symlink exited $rc: $(cat "$T/err")"
[ "$(stat -c %u:%g "$T/vol2/d/g")" = 1000:1000 ] || fail "rollback --last did not restore vol2"
echo "ok: path_symlinks"
