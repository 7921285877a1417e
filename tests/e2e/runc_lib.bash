# runc helpers for the end-to-end scenarios: source after lib.sh. (Named .bash so CMake's
# tests/e2e/*.sh glob does not register it as a test.)
#
# Runs containers with Debian's runc the way Docker's userns-remap does: a user namespace with
# container 0 -> host 500000 (65536 ids), a busybox rootfs that container root owns, and the
# volume bind-mounted into the container. State lives in a private --root under $T; every
# container started is deleted (runc delete -f) on exit. runc names a container's cgroups by
# its id (/sys/fs/cgroup/*/ID: the bundle sets no cgroupsPath), and `delete -f` kills whatever
# is in them, so the id runc gets is the scenario's ID plus $T's suffix: two runs of a scenario
# at once (a Release and an ASan ctest, two worktrees) would otherwise share, and kill, them.

RUNC=${RUNC:-runc}
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}  # the system python: no shim start-up cost
RUNC_ROOT=$T/runc-state
RUNC_HOST_BASE=500000
RUNC_MAP_SIZE=65536
_runc_ids=()

runc_cleanup() {
  local id
  for id in "${_runc_ids[@]}"; do
    "$RUNC" --root "$RUNC_ROOT" delete -f "$(_runc_id "$id")" >/dev/null 2>&1 || true
  done
}
on_exit runc_cleanup

# runc_require: skips nothing silently; fails clearly when the tools are missing.
runc_require() {
  command -v "$RUNC" >/dev/null || fail "runc not installed (apt-get install runc)"
  [ -x /bin/busybox ] || fail "/bin/busybox missing (apt-get install busybox-static)"
  file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' ||
    ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' ||
    fail "/bin/busybox is not static (apt-get install busybox-static)"
}

# runc_make_rootfs DIR: a minimal busybox rootfs, owned by host 500000 (container root).
runc_make_rootfs() {
  local r=$1
  mkdir -p "$r"/{bin,dev,proc,sys,tmp,etc,var/jenkins_home}
  cp /bin/busybox "$r/bin/busybox"
  ln -s busybox "$r/bin/sh"
  printf 'root:x:0:0:root:/root:/bin/sh\njenkins:x:1000:1000::/var/jenkins_home:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\njenkins:x:1000:\n' >"$r/etc/group"
  chmod 1777 "$r/tmp"
  chown -R -h "$RUNC_HOST_BASE:$RUNC_HOST_BASE" "$r"
}

# runc_make_bundle BUNDLE VOLUME UID GID CMD...: writes BUNDLE/config.json (rootfs at
# BUNDLE/rootfs, which runc_make_rootfs must have made) running CMD as container UID:GID with
# VOLUME bind-mounted read-write at /var/jenkins_home. Capabilities as Docker's defaults.
runc_make_bundle() {
  local b=$1 vol=$2 uid=$3 gid=$4; shift 4
  rm -f "$b/config.json"
  "$RUNC" spec --bundle "$b"
  "$PY" - "$b/config.json" "$vol" "$uid" "$gid" "$RUNC_HOST_BASE" "$RUNC_MAP_SIZE" "$@" <<'PY'
import json, sys
path, vol, uid, gid, base, size, *args = sys.argv[1:]
c = json.load(open(path))
p = c["process"]
p["terminal"] = False
p["user"] = {"uid": int(uid), "gid": int(gid)}
p["args"] = args
p["env"] = ["PATH=/bin", "HOME=/var/jenkins_home"]
p["cwd"] = "/"
# Capabilities as Docker gives them: its default set in the bounding set; effective (and
# permitted) only for container root, none for any other user.
docker_caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
               "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
               "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
live = docker_caps if int(uid) == 0 else []
p["capabilities"] = {"bounding": docker_caps, "effective": live, "permitted": live,
                     "inheritable": [], "ambient": []}
c["root"] = {"path": "rootfs", "readonly": False}
c["hostname"] = "volprep-e2e"
lx = c["linux"]
ns = [n for n in lx["namespaces"] if n["type"] not in ("user", "cgroup")]
ns.append({"type": "user"})
lx["namespaces"] = ns
m = [{"containerID": 0, "hostID": int(base), "size": int(size)}]
lx["uidMappings"] = m
lx["gidMappings"] = m
# Leave cgroup handling to runc's defaults; drop the cgroup mount, which needs a cgroup
# namespace to be useful and trips on hybrid v1 hosts inside a user namespace.
c["mounts"] = [x for x in c["mounts"] if x.get("type") != "cgroup"]
c["mounts"].append({"destination": "/var/jenkins_home", "type": "bind", "source": vol,
                    "options": ["rbind", "rw"]})
json.dump(c, open(path, "w"), indent=2)
PY
}

_runc_id() { echo "$1.${T##*.}"; }  # _runc_id ID: the id runc knows the container by

# runc_run BUNDLE ID: runs the bundle's process to completion; returns its exit status.
# Output (stdout+stderr) goes to $T/runc-ID.log and, on failure, to stderr.
runc_run() {
  local b=$1 id=$2 rc=0
  _runc_ids+=("$id")
  "$RUNC" --root "$RUNC_ROOT" run --bundle "$b" "$(_runc_id "$id")" </dev/null >"$T/runc-$id.log" 2>&1 || rc=$?
  "$RUNC" --root "$RUNC_ROOT" delete -f "$(_runc_id "$id")" >/dev/null 2>&1 || true
  [ "$rc" -eq 0 ] || sed "s/^/  [runc $id] /" "$T/runc-$id.log" >&2
  return "$rc"
}
