#!/usr/bin/env bash
# volprep --acl, proven in a real user namespace (map 0:500000:65536): container uid 1000
# cannot write the demo jenkins_home before; after `volprep PATH --as 1000 --acl` it reads,
# writes and creates, and what it creates inherits the grant through the default ACL; owners
# stay, the host owner keeps its access, the result equals `setfacl -R -m u:H:rwX,d:u:H:rwX`
# on an identical copy (with --as UID:GID also g: entries), a rerun has nothing to change,
# --acl-perms rX grants read only, and `volprep rollback --last` restores ACLs, modes and raw
# xattrs byte for byte.
source "$(dirname "$0")/lib.sh"
mkdir -p "$VOLPREP_JOURNAL_DIR"
chmod 755 "$T"   # the volume's parents must be traversable by the container's ids
PY=/usr/bin/python3

# The demo plus what makes --acl's rules matter: a file with an x bit (X grants x), a file
# with an ACL of its own (the mask is recomputed, its entries kept), a directory with a
# default ACL of its own (kept and extended), a file that already grants enough.
make_volume() { # make_volume DIR: prints the volume's path
  local vol
  vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$1")
  printf '#!/bin/sh\nmake\n' >"$vol/workspace/build-app/build.sh"
  chown 1000:1000 "$vol/workspace/build-app/build.sh" && chmod 0750 "$vol/workspace/build-app/build.sh"
  printf 'shared\n' >"$vol/plugins/shared.txt"
  chown 1000:1000 "$vol/plugins/shared.txt" && chmod 0640 "$vol/plugins/shared.txt"
  setfacl -m g:500100:r--,u:502000:r-x "$vol/plugins/shared.txt"
  setfacl -d -m g:500100:r-x "$vol/workspace"
  printf 'already\n' >"$vol/logs/already.log"
  chown 0:0 "$vol/logs/already.log" && chmod 0644 "$vol/logs/already.log"
  setfacl -m u:501000:rw- "$vol/logs/already.log"
  echo "$vol"
}

# ACLs and raw xattrs of a tree, paths relative to DIR, blocks sorted by path: two trees
# made alike compare equal whatever order the directories list in.
acls() { (cd "$1" && getfacl -R -p . 2>&1) | "$PY" -c '
import sys
blocks = sys.stdin.read().strip().split("\n\n")
print("\n\n".join(sorted(blocks)))'; }
xattrs() { (cd "$1" && getfattr -R -h -d -m - -e hex . 2>&1) | "$PY" -c '
import sys
blocks = sys.stdin.read().strip().split("\n\n")
print("\n\n".join(sorted(b for b in blocks if b)))'; }
owners() { find "$1" -printf './%P %U:%G %m %y\n' | LC_ALL=C sort; }

try_write() { # try_write VOL NEWNAME: as container 1000, append to config.xml, create jobs/NEWNAME
  as_container 1000 1000 sh -c 'echo appended >>"$1/config.xml" && echo new >"$1/jobs/$2"' _ "$1" "$2" 2>/dev/null
}

# --- the grant --------------------------------------------------------------------------------
mkdir "$T/a"
vol=$(make_volume "$T/a")
acls "$vol" >"$T/acl.before"
xattrs "$vol" >"$T/xattr.before"
owners "$vol" >"$T/owners.before"
not try_write "$vol" before
[ ! -e "$vol/jobs/before" ] || fail "container uid 1000 created jobs/before without a grant"

out=$(vp "$vol" --as 1000 --acl "${MAP[@]}" --dry-run) || fail "--acl --dry-run exited $?"
grep -qxF "$vol/config.xml  owner 1000:1000  mode 0640 -> 0660  acl +u:501000:rw- +mask::rw-" <<<"$out" ||
  fail "dry run: want the contract's config.xml line in: $out"
grep -F "$vol/jobs  owner 1000:1000  mode 0750 -> 0770  acl " <<<"$out" | grep -qF '+d:u:501000:rwx' ||
  fail "dry run: want jobs with +d:u:501000:rwx in: $out"
grep -q "^$vol/logs/already.log " <<<"$out" && fail "dry run: logs/already.log already grants rw-: $out"
grep -q "config-link" <<<"$out" && fail "dry run: the symlink is not skipped: $out"
acls "$vol" | cmp -s - "$T/acl.before" || fail "--dry-run changed ACLs"

out=$(vp "$vol" --as 1000 --acl "${MAP[@]}" 2>&1) || fail "volprep --acl exited $?: $out"
owners "$vol" | awk '{print $1, $2, $4}' | cmp -s - <(awk '{print $1, $2, $4}' "$T/owners.before") ||
  fail "--acl changed owners: $(diff <(awk '{print $1, $2, $4}' "$T/owners.before") <(owners "$vol" | awk '{print $1, $2, $4}'))"
# Modes: only the group bits (the mask) may change.
paste -d' ' "$T/owners.before" <(owners "$vol") | awk '
  $4 != "l" { b = sprintf("%04d", $3); a = sprintf("%04d", $7)
              if (substr(b, 1, 2) != substr(a, 1, 2) || substr(b, 4, 1) != substr(a, 4, 1)) print $1, $3, "->", $7 }' \
  >"$T/modes.bad"
[ ! -s "$T/modes.bad" ] || fail "--acl changed mode bits other than the group bits: $(cat "$T/modes.bad")"

# The same as setfacl on an identical copy.
mkdir "$T/s"
svol=$(make_volume "$T/s")
setfacl -R -m u:501000:rwX,d:u:501000:rwX "$svol"
diff <(acls "$svol") <(acls "$vol") >"$T/acl.diff" ||
  fail "--acl differs from setfacl -R -m u:501000:rwX,d:u:501000:rwX (< setfacl, > volprep): $(cat "$T/acl.diff")"
diff <(xattrs "$svol") <(xattrs "$vol") >"$T/xattr.diff" ||
  fail "--acl's raw xattrs differ from setfacl's (< setfacl, > volprep): $(cat "$T/xattr.diff")"

# A rerun has nothing to change.
out=$(vp "$vol" --as 1000 --acl "${MAP[@]}" --check 2>&1) || fail "--acl --check after --acl exited $?: $out"
out=$(vp "$vol" --as 1000 --acl "${MAP[@]}" --dry-run 2>&1)
grep -q 'to change 0,' <<<"$out" || fail "--acl --dry-run after --acl: want 'to change 0': $out"

# --- the container user, in the namespace ------------------------------------------------------
try_write "$vol" by-1000 || fail "container uid 1000 still cannot write after --acl"
grep -qx appended "$vol/config.xml" || fail "the append did not land in config.xml"
as_container 1000 1000 sh -c '
  cat "$1/secrets/master.key" "$1/secrets/hudson.util.Secret" "$1/jobs/build-app/builds/1/log" >/dev/null &&
  echo more >>"$1/logs/jenkins.log" && ls "$1/workspace/build-app" >/dev/null &&
  "$1/workspace/build-app/build.sh" 2>/dev/null; [ $? -ne 126 ] &&
  mkdir "$1/jobs/new-job" && echo cfg >"$1/jobs/new-job/config.xml" && mkdir "$1/jobs/new-job/builds" &&
  echo log >"$1/jobs/new-job/builds/log" && rm "$1/jobs/by-1000"' _ "$vol" ||
  fail "container uid 1000 cannot read, write, execute build.sh or create after --acl"
for f in jobs/new-job jobs/new-job/config.xml jobs/new-job/builds jobs/new-job/builds/log; do
  [ "$(stat -c %u:%g "$vol/$f")" = 501000:501000 ] || fail "$f created by container uid 1000 is $(stat -c %u:%g "$vol/$f")"
  getfacl -cp "$vol/$f" | grep -q '^user:501000:rw' || fail "$f does not inherit user:501000: $(getfacl -cp "$vol/$f")"
done
getfacl -cp "$vol/jobs/new-job/builds" | grep -q '^default:user:501000:rwx$' ||
  fail "jobs/new-job/builds does not inherit default:user:501000:rwx: $(getfacl -cp "$vol/jobs/new-job/builds")"
# Another container user gets nothing of it.
not as_container 2000 2000 sh -c 'echo x >>"$1/config.xml"' _ "$vol" 2>/dev/null
# The host owner (uid 1000) still reads and writes what it owns.
setpriv --reuid 1000 --regid 1000 --clear-groups sh -c '
  cat "$1/config.xml" >/dev/null && echo host >>"$1/config.xml" && echo h >"$1/jobs/by-host" && rm "$1/jobs/by-host" &&
  cat "$1/secrets/master.key" >/dev/null' _ "$vol" || fail "host uid 1000 lost access to its files after --acl"

# --- rollback ----------------------------------------------------------------------------------
rm -rf "$vol/jobs/new-job"
out=$(vp rollback --last "$vol" 2>&1) || fail "rollback --last exited $?: $out"
diff "$T/acl.before" <(acls "$vol") >"$T/acl.diff" || fail "ACLs after rollback differ from before: $(cat "$T/acl.diff")"
diff "$T/xattr.before" <(xattrs "$vol") >"$T/xattr.diff" || fail "raw xattrs after rollback differ: $(cat "$T/xattr.diff")"
diff "$T/owners.before" <(owners "$vol") >"$T/owners.diff" || fail "owners/modes after rollback differ: $(cat "$T/owners.diff")"
not try_write "$vol" after-rollback
[ ! -e "$vol/jobs/after-rollback" ] || fail "container uid 1000 still creates files after rollback"

# --- --as UID:GID adds group entries, as setfacl with g: entries does ---------------------------
mkdir "$T/g" "$T/gs"
vol=$(make_volume "$T/g")
svol=$(make_volume "$T/gs")
vp "$vol" --as 1000:1000 --acl "${MAP[@]}" >/dev/null || fail "volprep --as 1000:1000 --acl exited $?"
setfacl -R -m u:501000:rwX,g:501000:rwX,d:u:501000:rwX,d:g:501000:rwX "$svol"
diff <(acls "$svol") <(acls "$vol") >"$T/acl.diff" ||
  fail "--as 1000:1000 --acl differs from setfacl with g: entries (< setfacl, > volprep): $(cat "$T/acl.diff")"

# --- --acl-perms rX: read only -----------------------------------------------------------------
mkdir "$T/r" "$T/rs"
vol=$(make_volume "$T/r")
svol=$(make_volume "$T/rs")
vp "$vol" --as 1000 --acl --acl-perms rX "${MAP[@]}" >/dev/null || fail "volprep --acl --acl-perms rX exited $?"
setfacl -R -m u:501000:rX,d:u:501000:rX "$svol"
# logs/already.log grants rw- already: more than enough, left alone (setfacl would cut it to r--).
getfacl -cp "$vol/logs/already.log" | grep -qx 'user:501000:rw-' ||
  fail "--acl-perms rX changed logs/already.log, which granted enough: $(getfacl -cp "$vol/logs/already.log")"
setfacl -m u:501000:rw- "$svol/logs/already.log"
diff <(acls "$svol") <(acls "$vol") >"$T/acl.diff" ||
  fail "--acl-perms rX differs from setfacl -R -m u:501000:rX,d:u:501000:rX (< setfacl, > volprep): $(cat "$T/acl.diff")"
as_container 1000 1000 sh -c 'cat "$1/config.xml" "$1/secrets/master.key" >/dev/null && ls "$1/jobs" >/dev/null' _ "$vol" ||
  fail "container uid 1000 cannot read after --acl-perms rX"
not try_write "$vol" ro
not as_container 1000 1000 sh -c 'echo x >>"$1/secrets/master.key"' _ "$vol" 2>/dev/null
[ ! -e "$vol/jobs/ro" ] || fail "container uid 1000 created jobs/ro after --acl-perms rX"
echo "ok: acl_userns"
