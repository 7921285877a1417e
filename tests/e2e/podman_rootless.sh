#!/usr/bin/env bash
# Rootless Podman, for real: a user with two subordinate ranges, an image from `podman import`,
# containers run by that user with Debian's podman and runc. Proves with the kernel that
# --podman-rootless gives the ids Podman uses (rootless_lib.bash: prepare in either range,
# --acl, shift, mount, map --pid), and that Podman's own map is the one volprep models.
if [ -z "${VOLPREP_PRIVATE_MOUNTS:-}" ]; then
  exec env VOLPREP_PRIVATE_MOUNTS=1 unshare --mount --propagation private -- bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rootless_lib.bash"
command -v podman >/dev/null || fail "podman is missing (./dev test installs it)"
command -v newuidmap >/dev/null || fail "newuidmap is missing (apt-get install uidmap)"
[ -x /bin/busybox ] || fail "/bin/busybox is missing (apt-get install busybox-static)"

rootless_user vp-podman 4242
engine() { as_user timeout 120 podman --storage-driver vfs --cgroup-manager cgroupfs \
  --events-backend file --runtime runc "$@"; }
rootless_images
# Podman's Docker-compatible API, at its default socket, for volprep compose.
engine system service --time=0 >"$T/service.log" 2>&1 &
for ((i = 0; i < 100; i++)); do [ -S "$RL_RUN/podman/podman.sock" ] && break; sleep 0.1; done
[ -S "$RL_RUN/podman/podman.sock" ] || fail "podman system service made no socket: $(cat "$T/service.log")"
engine unshare cat /proc/self/uid_map >"$T/podman.map"
grep -Eq "^ +0 +$RL_UID +1\$" "$T/podman.map" || fail "podman's map: $(cat "$T/podman.map")"

rootless_checks --podman-rootless
engine rm -f -t 0 vp-sleeper >/dev/null
echo "PASS"
