#!/usr/bin/env bash
# Services of different users that mount one source, or one inside another, with
# x-volprep: {mode: acl} (what the conflict message recommends): the first run grants every
# service's entries and exits 0, each entry changed once (one run per path, the inner source's
# run granting the outer services' users too); the dry run shows that combined plan and
# changes nothing; a second run changes nothing; `rollback --project` restores owners, modes
# and ACLs byte for byte.
source "$(dirname "$0")/lib.sh"
chmod 755 "$T"
p=$T/proj
mkdir -p "$p/shared/inner/deep"
echo f >"$p/shared/f"
echo g >"$p/shared/inner/g"
chmod 0750 "$p/shared/inner/deep"
# ACLs there already, which rollback must give back as they were.
setfacl -m u:4242:r "$p/shared/f"
setfacl -d -m u:4242:rx "$p/shared/inner"
cat >"$p/compose.yaml" <<'EOF'
services:
  a:
    image: busybox
    user: "1000:1000"
    x-volprep: {mode: acl}
    volumes: [./shared:/s]
  b:
    image: busybox
    user: "1001:1001"
    x-volprep: {mode: acl}
    volumes: [./shared:/s]
  c:
    image: busybox
    user: "1002:1002"
    x-volprep: {mode: acl}
    volumes: ["./shared/inner:/i:ro"]
EOF
vc() { (cd "$p" && vp compose "${MAP[@]}" --compose-cli never "$@"); }
# Owners, modes, and the ACLs' raw bytes, of every entry.
snapshot() {
  (cd "$p" && find shared -printf '%p %U:%G %m\n' | sort &&
    getfattr -R -h -d -m '^system\.posix_acl' -e hex shared 2>/dev/null | grep -v '^$' &&
    getfacl -R -p shared 2>/dev/null)
}
snapshot >"$T/before"

# An x-volprep.exclude that not every joined mount has would not hold for the others' users
# (or would keep their grants out): a conflict, before any change, by -n too.
cp "$p/compose.yaml" "$T/compose.yaml"
sed -i '/^  b:/,/volumes/ s|x-volprep: {mode: acl}|x-volprep: {mode: acl, exclude: ["./inner"]}|' "$p/compose.yaml"
for how in -n ""; do
  rc=0
  (cd "$p" && vp compose "${MAP[@]}" --compose-cli never $how) >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" = 3 ] && grep -q "conflict: a mounts ./shared (acl, no x-volprep.exclude.*) and b mounts it (acl, with x-volprep.exclude): different x-volprep.exclude" "$T/err" ||
    fail "exit $rc: different excludes were joined ($how): $(cat "$T/err" "$T/out")"
  snapshot | cmp -s - "$T/before" || fail "a refused run changed the tree ($how)"
done
cp "$T/compose.yaml" "$p/compose.yaml"

# The dry run: one plan line an entry, with every grant that holds it; nothing changed.
vc -n >"$T/dry" 2>&1 || fail "dry run: $(cat "$T/dry")"
[ "$(grep -c "^$p/shared/inner " "$T/dry")" = 1 ] || fail "dry run: shared/inner planned not once: $(cat "$T/dry")"
[ "$(grep -c "^$p/shared " "$T/dry")" = 1 ] || fail "dry run: shared planned not once: $(cat "$T/dry")"
grep "^$p/shared " "$T/dry" | grep -q '+u:501000:rwx +u:501001:rwx' || fail "dry run: shared: $(cat "$T/dry")"
grep "^$p/shared/inner/g " "$T/dry" | grep -q '+u:501000:rw- +u:501001:rw- +u:501002:r--' ||
  fail "dry run: shared/inner/g: $(cat "$T/dry")"
snapshot | cmp -s - "$T/before" || fail "the dry run changed the tree"

# The first run: every grant, exit 0, nothing failed.
rc=0
vc >"$T/run1" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "first run exited $rc: $(cat "$T/run1")"
grep -q 'failed 0' "$T/run1" || fail "first run: $(cat "$T/run1")"
acl() { getfacl -p "$p/$1" 2>/dev/null; }
for e in shared shared/inner shared/inner/deep; do
  for u in 501000 501001; do acl "$e" | grep -qx "user:$u:rwx" || fail "$e: no rwx for $u: $(acl "$e")"; done
  acl "$e" | grep -qx "default:user:501000:rwx" || fail "$e: no default entry for 501000: $(acl "$e")"
done
for e in shared/inner shared/inner/deep; do
  acl "$e" | grep -qx "user:501002:r-x" || fail "$e: no r-x for 501002: $(acl "$e")"
done
acl shared/inner/g | grep -qx 'user:501002:r--' || fail "inner/g: $(acl shared/inner/g)"
if acl shared/f | grep -q 501002; then fail "c's grant reached outside its source: $(acl shared/f)"; fi
acl shared/f | grep -qx 'user:4242:r--' || fail "an ACL entry there before was lost: $(acl shared/f)"
[ "$(stat -c %a "$p/shared" "$p/shared/inner")" = "775
775" ] || fail "modes: $(stat -c '%n %a' "$p/shared" "$p/shared/inner")"
# What each service's user may do in its container.
as_container 1001 1001 sh -c "echo b >'$p/shared/inner/deep/b'" || fail "b cannot write below shared"
as_container 1000 1000 sh -c "echo a >'$p/shared/a'" || fail "a cannot write in shared"
as_container 1002 1002 cat "$p/shared/inner/g" >/dev/null || fail "c cannot read its source"
rm -f "$p/shared/inner/deep/b" "$p/shared/a"

# The second run: nothing to change.
vc >"$T/run2" 2>&1 || fail "second run: $(cat "$T/run2")"
grep -q 'changed 0, .*failed 0' "$T/run2" || fail "second run changed something: $(cat "$T/run2")"

# Rollback: every owner, mode and ACL as before, byte for byte.
(cd "$p" && vp rollback --project proj) >"$T/rb" 2>&1 || fail "rollback --project: $(cat "$T/rb")"
snapshot >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "rollback did not restore the tree exactly"
echo "PASS compose_acl_shared"
