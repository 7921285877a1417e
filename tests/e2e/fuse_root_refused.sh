#!/usr/bin/env bash
# A FUSE mount that an unprivileged user serves (fusermount3 mounts it with that user's
# user_id=) at a volume's root, or on the way to it, is refused (exit 5), from the kernel's
# cache and mountinfo, before any request reaches its server: a server that never answers
# would otherwise hang volprep for good, and every answer it gives is that user's to choose.
# Every command that opens a PATH goes through the same resolution; one FUSE mount root
# itself serves (user_id=0) is still a volume like any other (walk_fuse_hang.sh, the benches).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fuse_lib.bash"
mkdir -p "$VOLPREP_JOURNAL_DIR" "$T/vol" "$T/file"
touch "$T/file/f"
mount_silent "$T/vol:dir:1000" "$T/file/f:file:1000"

refused() { # refused NAME ARGS...: volprep, watched, exits 5 naming the mount
  local name=$1; shift
  watched "$name" "$@"
  [ "$rc" = 5 ] || fail "$name: exit $rc, want 5: $(cat "$T/$name.err")"
  grep -q "is a FUSE mount served for uid 1000" "$T/$name.err" || fail "$name: $(cat "$T/$name.err")"
}
refused root-dry "$T/vol" --as 1000 "${MAP[@]}" -n
refused root "$T/vol" --as 1000 "${MAP[@]}"
refused below "$T/vol/sub/dir" --as 1000 "${MAP[@]}"
refused file "$T/file/f" --as 1000 "${MAP[@]}"
refused check check "$T/vol" --as 1000 "${MAP[@]}"
refused shift shift "$T/vol" "${MAP[@]}" -n
mkdir "$T/dst"
refused mount mount "$T/vol" "$T/dst" --as 1000 "${MAP[@]}"
refused mount-dst mount "$T/dst" "$T/vol" --as 1000 "${MAP[@]}"
grep -q "not answered" "$T/server.err" && fail "a request reached the server: $(cat "$T/server.err")"
echo PASS
