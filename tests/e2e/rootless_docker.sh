#!/usr/bin/env bash
# Rootless Docker, for real: Debian's dockerd run by a user with two subordinate ranges under
# Debian's RootlessKit (in a private mount and network namespace: --net=host then means this
# scenario's empty network namespace), an image from `docker import`, containers of that user.
# Proves with the kernel that --rootless gives the ids that dockerd's containers get
# (rootless_lib.bash: prepare in either range, --acl, shift, mount, map --pid).
if [ -z "${VOLPREP_PRIVATE_MOUNTS:-}" ]; then
  exec env VOLPREP_PRIVATE_MOUNTS=1 unshare --mount --net --propagation private -- bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rootless_lib.bash"
for tool in dockerd docker rootlesskit newuidmap; do
  command -v "$tool" >/dev/null || fail "$tool is missing (./dev test installs it)"
done
[ -x /bin/busybox ] || fail "/bin/busybox is missing (apt-get install busybox-static)"

rootless_user vp-rootless 4243
sock=$H/run/docker.sock
as_user rootlesskit --net=host --copy-up=/etc --copy-up=/run --propagation=rslave --state-dir="$H/rk" \
  dockerd --iptables=false --ip6tables=false --ip-forward=false --bridge=none \
  --data-root "$H/data" --exec-root "$H/run/docker" --pidfile "$H/run/docker.pid" \
  -H "unix://$sock" >"$T/dockerd.log" 2>&1 &
dk() { as_user timeout 120 docker -H "unix://$sock" "$@"; }
for ((i = 0; i < 300; i++)); do
  dk version >/dev/null 2>&1 && break
  jobs -r %1 >/dev/null || fail "rootless dockerd exited: $(tail -5 "$T/dockerd.log")"
  sleep 0.1
done
dk info --format '{{.SecurityOptions}}' | grep -q rootless || fail "dockerd is not rootless: $(tail -5 "$T/dockerd.log")"

run() { local user=$1 tree=$2; shift 2
  dk run --rm --network none --user "$user" -v "$tree:/data" bb sh -c "$*"
}
running_pid() {
  dk run -d --name vp-sleeper --network none bb sleep 60 >/dev/null
  dk inspect --format '{{.State.Pid}}' vp-sleeper
}
rootless_image_tar | dk import - bb >/dev/null

rootless_checks --rootless
dk rm -f vp-sleeper >/dev/null
echo "PASS"
