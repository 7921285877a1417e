#!/usr/bin/env bash
# volprep mount with a real `dockerd --userns-remap=default`: a tree owned by disk 1000, shown
# through an idmapped mount made in dockerd's mount namespace, is written by `docker run -u
# 1000:1000 -v DST:/data`; what the container writes is stored as 1000 on disk, and the disk
# owner of the existing file never changes. --shift lets container root write root's file.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/docker_lib.bash"
docker_require
before=$(host_fingerprint)
chmod 755 "$T"

prepare_hostroot "$T/hostroot"
start_dockerd "$T/hostroot" --userns-remap=default
make_busybox_image volprep-busybox
mkdir -p "$T/src" "$T/dst" "$T/dst2"
echo data >"$T/src/file"
echo root >"$T/src/rootfile"
chown -R 1000:1000 "$T/src"
chown 0:0 "$T/src/rootfile"
# In dockerd's mount namespace: a dockerd with a private one sees no mount made outside it later.
in_dockerd_ns() { nsenter --mount --target "$DOCKERD_PID" -- "$@"; }

# Without volprep the container user is denied.
not docker_cmd run --rm --network none -u 1000:1000 -v "$T/src:/data" volprep-busybox \
  sh -c 'echo x >>/data/file' 2>/dev/null

in_dockerd_ns "$VOLPREP" mount "$T/src" "$T/dst" --as 1000 --host-root "$T/hostroot" --dockerd-pid "$DOCKERD_PID" >/dev/null
docker_cmd run --rm --network none -u 1000:1000 -v "$T/dst:/data" volprep-busybox \
  sh -c 'echo more >>/data/file && echo new >/data/new && ls -ln /data/file' >"$T/ls" ||
  fail "docker run -u 1000:1000 cannot write through the idmapped mount"
grep -q ' 1000 *1000 ' "$T/ls" || fail "inside the container the file is not 1000:1000: $(cat "$T/ls")"
[ "$(stat -c %u:%g "$T/src/new")" = 1000:1000 ] || fail "the container's new file is $(stat -c %u:%g "$T/src/new") on disk"
[ "$(stat -c %u:%g "$T/src/file")" = 1000:1000 ] || fail "the disk owner changed"
in_dockerd_ns "$VOLPREP" umount "$T/dst" >/dev/null

# --shift: a tree written without remap, root's and 1000's files, works for both.
in_dockerd_ns "$VOLPREP" mount "$T/src" "$T/dst2" --shift --host-root "$T/hostroot" --dockerd-pid "$DOCKERD_PID" >/dev/null
docker_cmd run --rm --network none -v "$T/dst2:/data" volprep-busybox sh -c 'echo r >>/data/rootfile' ||
  fail "--shift: container root cannot write root's file"
docker_cmd run --rm --network none -u 1000:1000 -v "$T/dst2:/data" volprep-busybox sh -c 'echo r >>/data/file' ||
  fail "--shift: container 1000 cannot write 1000's file"
[ "$(stat -c %u:%g "$T/src/rootfile")" = 0:0 ] || fail "--shift changed a disk owner"
in_dockerd_ns "$VOLPREP" umount "$T/dst2" >/dev/null

stop_dockerd
[ "$(host_fingerprint)" = "$before" ] || fail "the host changed"
echo "docker_mount: docker run -u 1000:1000 writes through volprep mount; the disk keeps 1000"
