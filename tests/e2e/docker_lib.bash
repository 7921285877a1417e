# Helpers for end-to-end scenarios that run a real dockerd. Source it after lib.sh:
#   . "$(dirname "$0")/lib.sh"; . "$(dirname "$0")/docker_lib.bash"
# Named .bash, not .sh, so that CMake does not register it as a test of its own.
#
# The daemon runs in private mount and network namespaces, in the host's pid namespace (so
# pids from `docker inspect` and the dockerd pid are host pids, as volprep expects). In its
# mount namespace HOSTROOT/etc is bind-mounted over /etc (so dockerd finds the remap user and
# its subuid/subgid ranges there, and writes /etc/docker/key.json there) and a tmpfs over /run
# (containerd's shim sockets, /run/docker/plugins). Its data root, exec root, socket, pidfile,
# log and managed containerd all live under $T/dockerd.N; containers go into the cgroup
# parent volprep-e2e.*, driver cgroupfs. Nothing on the host outside $T is written, except
# the cgroup directories, which stop_dockerd removes.
#
#   docker_require                    fails unless dockerd, docker, containerd, runc, unshare, jq
#   prepare_hostroot HOSTROOT [USER [UID_RANGES [GID_RANGES]]]
#                                     HOSTROOT/etc := a copy of /etc (made once per HOSTROOT)
#                                     with USER (default dockremap) and its group added if
#                                     missing, and subuid/subgid holding just the lines
#                                     "USER:START:COUNT" (default 500000:65536; several ranges:
#                                     "500000:65536,700000:1000"; GID_RANGES defaults to UID_RANGES)
#   start_dockerd HOSTROOT [ARGS...]  starts dockerd with ARGS, e.g. --userns-remap=default,
#                                     waits until it answers; sets DOCKERD_PID (host pid),
#                                     DOCKER_DIR, DOCKER_SOCK, DOCKER_DATA_ROOT, DOCKER_LOG
#   docker_cmd ARGS...                the docker client against that daemon (bounded by a timeout)
#   make_busybox_image [NAME]         imports a busybox rootfs as NAME (default volprep-busybox)
#   stop_dockerd [DIR]                removes containers, stops dockerd, kills what is left of
#                                     it (containerd, shims, container processes), removes its
#                                     cgroups; the exit hook does it for every daemon still up
#   proc_map_lines                    stdin /proc/PID/uid_map text -> "CONTAINER:HOST:COUNT" lines
#   json_map_lines uid_map|gid_map    stdin volprep --json output -> the same lines
#   host_fingerprint                  checksums of the host files dockerd must leave alone
#
# Containers need --network none: the daemon runs with --bridge=none, so there is no default
# bridge network. With --config-file, the file (a path dockerd sees, i.e. under HOSTROOT)
# must set data-root under $T, and must not repeat a flag start_dockerd passes.

DOCKER_BIN=${DOCKER_BIN:-docker}
DOCKERD_BIN=${DOCKERD_BIN:-dockerd}
DOCKERD_START_TIMEOUT=${DOCKERD_START_TIMEOUT:-30}
DOCKER_CMD_TIMEOUT=${DOCKER_CMD_TIMEOUT:-60}
_DOCKERD_N=0
_DOCKERD_DIRS=()
_DOCKER_HOOKED=

docker_require() {
  local t
  for t in "$DOCKERD_BIN" "$DOCKER_BIN" containerd containerd-shim-runc-v2 runc unshare jq timeout; do
    command -v "$t" >/dev/null || fail "docker scenarios need $t (apt-get install docker.io jq)"
  done
  [ -x /bin/busybox ] || fail "docker scenarios need /bin/busybox (apt-get install busybox-static)"
}

# The first id in 999..100 that is neither a uid in ETC/passwd nor a gid in ETC/group.
_free_system_id() {
  local etc=$1 i
  for ((i = 999; i >= 100; i--)); do
    if ! cut -d: -f3 "$etc/passwd" | grep -qx "$i" && ! cut -d: -f3 "$etc/group" | grep -qx "$i"; then
      echo "$i"
      return 0
    fi
  done
  return 1
}

prepare_hostroot() { # prepare_hostroot HOSTROOT [USER [UID_RANGES [GID_RANGES]]]
  local root=$1 user=${2:-dockremap} uranges=${3:-500000:65536} granges=${4:-${3:-500000:65536}}
  local etc=$root/etc id r
  # Copying /etc (and removing the copy) takes seconds on a slow disk: a second call on the
  # same HOSTROOT keeps the copy and only rewrites the user's subid ranges.
  if [ ! -f "$root/.volprep-e2e-etc" ]; then
    mkdir -p "$root"
    rm -rf "$etc"
    cp -a /etc "$etc"
    # The host's daemon.json must not add settings to (or clash with) the test's flags.
    rm -f "$etc/docker/daemon.json"
    touch "$root/.volprep-e2e-etc"
  fi
  if ! grep -q "^$user:" "$etc/passwd"; then
    id=$(_free_system_id "$etc") || fail "no free system id for $user in $etc"
    echo "$user:x:$id:$id::/nonexistent:/usr/sbin/nologin" >>"$etc/passwd"
    grep -q "^$user:" "$etc/group" || echo "$user:x:$id:" >>"$etc/group"
  fi
  : >"$etc/subuid"
  : >"$etc/subgid"
  for r in ${uranges//,/ }; do echo "$user:$r" >>"$etc/subuid"; done
  for r in ${granges//,/ }; do echo "$user:$r" >>"$etc/subgid"; done
}

docker_cmd() {
  env -u DOCKER_HOST -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY DOCKER_CONFIG="$T/.docker-client" \
    timeout "$DOCKER_CMD_TIMEOUT" "$DOCKER_BIN" -H "unix://$DOCKER_SOCK" "$@"
}

# Prints the end of a daemon's log, without the gRPC chatter.
docker_log() { # docker_log [DIR]
  local dir=${1:-$DOCKER_DIR}
  [ -f "$dir/dockerd.log" ] || return 0
  echo "---- $dir/dockerd.log (last 40 lines, gRPC lines left out) ----" >&2
  grep -v 'module=grpc' "$dir/dockerd.log" | tail -n 40 >&2 || true
  echo "----" >&2
}

start_dockerd() { # start_dockerd HOSTROOT [ARGS...]
  local root=$1 a config='' data_root='' i
  shift
  [ -f "$root/etc/passwd" ] || fail "start_dockerd: $root/etc is not prepared (prepare_hostroot)"
  _DOCKERD_N=$((_DOCKERD_N + 1))
  DOCKER_DIR=$T/dockerd.$_DOCKERD_N
  DOCKER_SOCK=$DOCKER_DIR/docker.sock
  DOCKER_LOG=$DOCKER_DIR/dockerd.log
  mkdir -p "$DOCKER_DIR/exec"
  # dockerd refuses a data root under a directory the remapped root cannot search (mktemp
  # makes $T 0700).
  chmod o+x "$T" "$DOCKER_DIR"
  for ((i = 1; i <= $#; i++)); do
    a=${!i}
    case $a in
      --config-file=*) config=${a#*=} ;;
      --config-file) i=$((i + 1)); config=${!i} ;;
    esac
  done
  if [ -n "$config" ]; then
    [[ $config == /* ]] || fail "start_dockerd: give --config-file as an absolute path"
    data_root=$(jq -r '."data-root" // empty' "$root$config") || fail "start_dockerd: bad $root$config"
    [[ $data_root == "$T"/* ]] || fail "start_dockerd: $root$config must set data-root under $T"
  else
    data_root=$DOCKER_DIR/data
    set -- --data-root "$data_root" "$@"
  fi
  # shellcheck disable=SC2034  # for the caller
  DOCKER_DATA_ROOT=$data_root
  # The cgroup parent names this run, so that cleanup finds every container process.
  local cgroup_parent=volprep-e2e.${T##*.}.$_DOCKERD_N
  _DOCKERD_DIRS+=("$DOCKER_DIR")
  if [ -z "$_DOCKER_HOOKED" ]; then
    on_exit _docker_exit_hook
    _DOCKER_HOOKED=1
  fi
  unshare --mount --net --propagation private -- bash -c '
      mount --bind "$1" /etc && mount -t tmpfs -o mode=0755 volprep-e2e-run /run || exit 99
      shift
      exec "$@"' _ "$root/etc" \
    "$DOCKERD_BIN" \
    --exec-root "$DOCKER_DIR/exec" \
    --pidfile "$DOCKER_DIR/dockerd.pid" \
    -H "unix://$DOCKER_SOCK" \
    --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$cgroup_parent" \
    --containerd-namespace volprep-e2e --containerd-plugins-namespace volprep-e2e-plugins \
    "$@" >"$DOCKER_LOG" 2>&1 </dev/null &
  DOCKERD_PID=$!
  printf 'pid=%s\ncgroup_parent=%s\nsock=%s\n' "$DOCKERD_PID" "$cgroup_parent" "$DOCKER_SOCK" \
    >"$DOCKER_DIR/state"
  local deadline=$((SECONDS + DOCKERD_START_TIMEOUT)) mntns=
  until docker_cmd version --format '{{.Server.Version}}' >/dev/null 2>&1; do
    if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
      fail "dockerd exited while starting (its log follows)"
    fi
    if [ -z "$mntns" ] && [ "$(cat "/proc/$DOCKERD_PID/comm" 2>/dev/null)" = dockerd ]; then
      _pin_mntns "$DOCKERD_PID" && mntns=$_PINNED_MNTNS
    fi
    if ((SECONDS >= deadline)); then
      fail "dockerd did not answer on $DOCKER_SOCK within ${DOCKERD_START_TIMEOUT}s (its log follows)"
    fi
    sleep 0.2
  done
  [ "$(cat "/proc/$DOCKERD_PID/comm")" = dockerd ] || fail "pid $DOCKERD_PID is not dockerd"
  if [ -z "$mntns" ]; then
    _pin_mntns "$DOCKERD_PID" || fail "cannot open dockerd's mount namespace"
    mntns=$_PINNED_MNTNS
  fi
  [ "$mntns" != "$(readlink /proc/self/ns/mnt)" ] || fail "dockerd runs in the host's mount namespace"
  [ "$(cat "$DOCKER_DIR/dockerd.pid")" = "$DOCKERD_PID" ] ||
    fail "dockerd's pidfile says $(cat "$DOCKER_DIR/dockerd.pid"), expected $DOCKERD_PID"
}

# The kernel hands a freed namespace's inode number to the next namespace made (two
# `unshare --mount` in a row print the same mnt:[N]), so a number alone may name another
# scenario's daemon once this one's namespace is gone: stop_dockerd once killed a dockerd that
# a parallel scenario was starting. A holder process with the namespace open as its stdin keeps
# the namespace, and so its number, until stop_dockerd has finished (a descriptor in this shell
# would be inherited by everything it starts, volprep included); the number is read from the
# holder's descriptor, so it is the namespace the holder keeps.
_pin_mntns() { # _pin_mntns PID: sets _PINNED_MNTNS, appends mntns= and holder= to the state
  local holder link i
  # shellcheck disable=SC2217  # the redirection is the point: it holds the namespace
  sleep 3600 <"/proc/$1/ns/mnt" >/dev/null 2>&1 &
  holder=$!
  disown "$holder"  # its end at stop_dockerd is no news
  for ((i = 0; i < 100; i++)); do
    link=$(readlink "/proc/$holder/fd/0" 2>/dev/null) || link=
    [[ $link == mnt:* ]] && break
    kill -0 "$holder" 2>/dev/null || return 1
    sleep 0.01
  done
  [[ $link == mnt:* ]] || { kill "$holder" 2>/dev/null; return 1; }
  _PINNED_MNTNS=$link
  printf 'mntns=%s\nholder=%s\n' "$link" "$holder" >>"$DOCKER_DIR/state"
}

# Processes left of a daemon: everything in its mount namespace (dockerd, containerd, shims)
# and everything in its containers' cgroups.
_docker_leftover_pids() { # _docker_leftover_pids MNTNS CGROUP_PARENT
  local mntns=$1 cg=$2 d
  if [ -n "$mntns" ]; then  # mnt:[N]; find takes the brackets for a pattern
    find /proc/[0-9]*/ns/mnt -maxdepth 0 -lname "${mntns//[/\\[}" -printf '%h\n' 2>/dev/null |
      sed 's|^/proc/||; s|/ns$||'
  fi
  # An empty name would make these /sys/fs/cgroup itself: every process of the host.
  [ -n "$cg" ] || return 0
  for d in /sys/fs/cgroup/"$cg" /sys/fs/cgroup/*/"$cg"; do
    [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  return 0
}

# A daemon's pid names it only while it lives: once it is gone the number goes to a later
# process (pid_max is 32768 on small machines; the suite goes round it in minutes), maybe
# another scenario's. A pid in the daemon's pinned namespace is still the daemon.
_still_dockerd() { # _still_dockerd PID MNTNS: PID lives, in MNTNS if one was pinned
  kill -0 "$1" 2>/dev/null || return 1
  [ -z "$2" ] || [ "$(readlink "/proc/$1/ns/mnt" 2>/dev/null)" = "$2" ]
}

stop_dockerd() { # stop_dockerd [DIR]
  local dir=${1:-$DOCKER_DIR} pid='' cgroup_parent='' sock='' mntns='' holder='' ids deadline left d
  [ -f "$dir/state" ] || return 0
  # shellcheck disable=SC1091
  . "$dir/state"
  [ -n "$cgroup_parent" ] || { echo "stop_dockerd: $dir/state names no cgroup parent" >&2; return 1; }
  if _still_dockerd "$pid" "$mntns"; then
    local DOCKER_SOCK=$sock DOCKER_CMD_TIMEOUT=20
    ids=$(docker_cmd ps -aq 2>/dev/null) || ids=
    # shellcheck disable=SC2086
    [ -z "$ids" ] || docker_cmd rm -f $ids >/dev/null 2>&1 || true
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 20))
    while _still_dockerd "$pid" "$mntns" && ((SECONDS < deadline)); do sleep 0.2; done
    ! _still_dockerd "$pid" "$mntns" || kill -KILL "$pid" 2>/dev/null || true
  fi
  deadline=$((SECONDS + 10))
  while left=$(_docker_leftover_pids "$mntns" "$cgroup_parent") && [ -n "$left" ]; do
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    ((SECONDS < deadline)) || break
    sleep 0.2
  done
  for d in /sys/fs/cgroup/"$cgroup_parent" /sys/fs/cgroup/*/"$cgroup_parent"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  mv "$dir/state" "$dir/state.stopped"
  [ -z "$holder" ] || kill "$holder" 2>/dev/null || true
  if [ -n "$left" ]; then
    echo "stop_dockerd: processes still running: $left" >&2
    return 1
  fi
  for d in /sys/fs/cgroup/"$cgroup_parent" /sys/fs/cgroup/*/"$cgroup_parent"; do
    if [ -d "$d" ]; then
      echo "stop_dockerd: cgroup $d is left" >&2
      return 1
    fi
  done
  return 0
}

# Runs from lib.sh's exit trap, where $rc is the script's exit status.
_docker_exit_hook() {
  local d
  if [ "${rc:-0}" -ne 0 ]; then
    for d in "${_DOCKERD_DIRS[@]}"; do docker_log "$d"; done
  fi
  for d in "${_DOCKERD_DIRS[@]}"; do stop_dockerd "$d" || true; done
}

make_busybox_image() { # make_busybox_image [NAME]
  local name=${1:-volprep-busybox} rootfs=$T/busybox-rootfs
  [ -d "$rootfs" ] || bash "$VOLPREP_SRC/fixtures/rootfs/make-busybox-rootfs.sh" "$rootfs" >/dev/null
  tar -C "$rootfs" -c . | docker_cmd import --change 'CMD ["/bin/sh"]' - "$name" >/dev/null
}

# make_helper_image [NAME]: the helper image of the container recipes: $VOLPREP and the
# libraries it links, nothing else (as FROM scratch), volprep its entrypoint.
make_helper_image() {
  local name=${1:-volprep-helper} rootfs=$T/helper-rootfs lib
  mkdir -p "$rootfs/usr/bin"
  cp "$VOLPREP" "$rootfs/usr/bin/volprep"
  ldd "$VOLPREP" | grep -oE '/[^ ]+' | while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")" && cp -L "$lib" "$rootfs$lib"
  done
  tar -C "$rootfs" -c . | docker_cmd import --change 'ENTRYPOINT ["/usr/bin/volprep"]' - "$name" >/dev/null
}

# make_jenkins_image [NAME]: the jenkins image of the Compose scenarios: the busybox rootfs
# (left in $T/jenkins-rootfs) with a jenkins user (1000) in its passwd, USER jenkins.
make_jenkins_image() {
  local name=${1:-volprep-jenkins} rootfs=$T/jenkins-rootfs
  bash "$VOLPREP_SRC/fixtures/rootfs/make-busybox-rootfs.sh" "$rootfs" >/dev/null
  sed -i 's/^app:x:1000:1000:app:/jenkins:x:1000:1000:jenkins:/' "$rootfs/etc/passwd"
  tar -C "$rootfs" -c . | docker_cmd import --change 'USER jenkins' --change 'CMD ["/bin/sh"]' - "$name" >/dev/null
}

proc_map_lines() { awk 'NF == 3 { print $1 ":" $2 ":" $3 }'; }
json_map_lines() { jq -r --arg k "$1" '.[$k][] | "\(.container):\(.host):\(.count)"'; }

host_fingerprint() {
  local f
  for f in /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/subuid /etc/subgid \
    /etc/docker/daemon.json /etc/docker/key.json; do
    if [ -e "$f" ]; then sha256sum "$f"; else echo "absent $f"; fi
  done
  ls -d /run/docker /run/containerd /var/lib/docker /var/lib/containerd 2>/dev/null || true
}
