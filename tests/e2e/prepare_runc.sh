#!/usr/bin/env bash
# volprep prepare, proven with a real OCI runtime: Debian's runc runs a busybox container in a
# user namespace (container 0 -> host 500000, 65536 ids, as Docker's userns-remap does) as
# uid 1000 with the demo jenkins_home bind-mounted at /var/jenkins_home. Writing to the volume
# fails before `volprep --as 1000`, and works after.
source "$(dirname "$0")/lib.sh"
# Rollback journals of real runs stay under $T (made now, so $T itself does not change later).
mkdir -p "$VOLPREP_JOURNAL_DIR"
source "$(dirname "$0")/runc_lib.bash"
runc_require
chmod 755 "$T"

mkdir "$T/vol"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/vol")
b=$T/bundle
mkdir "$b"
runc_make_rootfs "$b/rootfs"

# Sanity: the container itself works (so a failure below is about the volume).
runc_make_bundle "$b" "$vol" 1000 1000 sh -c 'id -u; id -g; cat /proc/self/uid_map'
runc_run "$b" volprep-e2e-sanity || fail "runc cannot run the busybox container at all"
read -r cuid cgid map0 map1 map2 < <(tr "\n" " " <"$T/runc-volprep-e2e-sanity.log"; echo)
[ "$cuid:$cgid" = 1000:1000 ] || fail "container runs as $cuid:$cgid, want 1000:1000"
[ "$map0 $map1 $map2" = "0 500000 65536" ] || fail "container uid_map is '$map0 $map1 $map2'"

write='echo x >>/var/jenkins_home/config.xml && echo job >/var/jenkins_home/jobs/from-container'
runc_make_bundle "$b" "$vol" 1000 1000 sh -c "$write"
before=$(sha256sum <"$vol/config.xml")
if runc_run "$b" volprep-e2e-before 2>/dev/null; then
  fail "container uid 1000 could write the volume before volprep"
fi
grep -qi 'permission denied' "$T/runc-volprep-e2e-before.log" ||
  fail "write before volprep failed, but not with 'Permission denied': $(cat "$T/runc-volprep-e2e-before.log")"
[ "$(sha256sum <"$vol/config.xml")" = "$before" ] || fail "config.xml changed by the failed write"

# Container root, with Docker's capabilities, cannot either: the files' owners are not in its
# user namespace, so CAP_DAC_OVERRIDE does not apply.
runc_make_bundle "$b" "$vol" 0 0 sh -c "$write"
if runc_run "$b" volprep-e2e-root-before 2>/dev/null; then
  fail "container root could write the volume before volprep"
fi
[ "$(sha256sum <"$vol/config.xml")" = "$before" ] || fail "config.xml changed by container root's failed write"

runc_make_bundle "$b" "$vol" 1000 1000 sh -c "$write"
vp "$vol" --as 1000 --map 0:500000:65536 >"$T/volprep.out" 2>&1 ||
  fail "volprep exited $?: $(cat "$T/volprep.out")"

runc_run "$b" volprep-e2e-after || fail "container uid 1000 still cannot write the volume after volprep"
[ "$(tail -n1 "$vol/config.xml")" = x ] || fail "the container's append is not in config.xml"
[ "$(stat -c %u:%g "$vol/jobs/from-container")" = 501000:501000 ] ||
  fail "file the container created is $(stat -c %u:%g "$vol/jobs/from-container") on the host, want 501000:501000"

# Container root (host 500000) can now also act on the volume: the files are in its namespace.
runc_make_bundle "$b" "$vol" 0 0 sh -c 'cat /var/jenkins_home/secrets/master.key >/dev/null && ls -ln /var/jenkins_home/secrets'
runc_run "$b" volprep-e2e-root || fail "container root cannot read secrets after volprep"
grep -q ' 1000 *1000 ' "$T/runc-volprep-e2e-root.log" ||
  fail "inside the container the secrets are not owned by 1000:1000: $(cat "$T/runc-volprep-e2e-root.log")"
echo "ok: prepare_runc"
