#!/usr/bin/env bash
# Rootless Podman, for real: a user with two subordinate ranges (Podman maps container 0 to the
# user, 1-1000 to the first range and 1001-65536 to the second), an image from `podman import`,
# containers run by that user with Debian's podman and runc. Proves with the kernel that
# --podman-rootless gives the host ids Podman uses: after `volprep T --as 1000`, container 1000
# writes the tree; after `--as 2000`, 2000 (in the second range); after `--acl`, 1000 writes a
# tree the user keeps owning; after `shift`, container root writes what host root owned and
# container 1000 what 1000 owned. `map --pid` of a running container agrees with
# `--podman-rootless`. The user lives in a copy of /etc bind-mounted over /etc in a private
# mount namespace: the host's /etc is never written.
if [ -z "${VOLPREP_PRIVATE_MOUNTS:-}" ]; then
  exec env VOLPREP_PRIVATE_MOUNTS=1 unshare --mount --propagation private -- bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
command -v podman >/dev/null || fail "podman is missing (./dev test installs it)"
command -v newuidmap >/dev/null || fail "newuidmap is missing (apt-get install uidmap)"
[ -x /bin/busybox ] || fail "/bin/busybox is missing (apt-get install busybox-static)"

# A user of this scenario alone: a uid no process and no passwd line has.
U=4242 NAME=vp-podman
getent passwd "$U" >/dev/null && fail "uid $U is taken: pick another"
pgrep -U "$U" >/dev/null && fail "processes of uid $U run already"
# Podman leaves a pause process (and a container's conmon) behind: everything of the user's goes.
on_exit 'pkill -KILL -U $U 2>/dev/null; sleep 0.2'
chmod 755 "$T"
H=$T/home
mkdir -p "$H/run" "$H/tmp"
# A copy of /etc with the user added, over /etc in this mount namespace only.
cp -a /etc "$T/etc"
echo "$NAME:x:$U:$U::$H:/bin/sh" >>"$T/etc/passwd"
echo "$NAME:x:$U:" >>"$T/etc/group"
printf '%s:300000:1000\n%s:400000:64536\n' "$NAME" "$NAME" >"$T/etc/subuid"
cp "$T/etc/subuid" "$T/etc/subgid"
mount --bind "$T/etc" /etc
chown -R "$U:$U" "$H" && chmod 700 "$H/run"
as_user() {
  setpriv --reuid "$U" --regid "$U" --init-groups -- env HOME="$H" XDG_RUNTIME_DIR="$H/run" \
    TMPDIR="$H/tmp" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
pm() { as_user timeout 120 podman --storage-driver vfs --cgroup-manager cgroupfs \
  --events-backend file --runtime runc "$@"; }
# run UID:GID TREE CMD: CMD in a fresh container as UID:GID with TREE at /data, no network.
run() { local user=$1 tree=$2; shift 2
  pm run --rm --network none --user "$user" -v "$tree:/data" bb sh -c "$*"
}

r=$T/rootfs
mkdir -p "$r/bin" "$r/tmp"
cp /bin/busybox "$r/bin/busybox"
for a in sh touch id ls cat sleep stat; do ln -s busybox "$r/bin/$a"; done
tar -C "$r" -c . | pm import - bb >/dev/null

# Podman's own map, the one every container of the user gets.
pm unshare cat /proc/self/uid_map >"$T/podman.map"
grep -Eq "^ +0 +$U +1\$" "$T/podman.map" || fail "podman's map: $(cat "$T/podman.map")"
expect_map() { # expect_map CONTAINER HOST: volprep says container uid CONTAINER is HOST
  local got; got=$(vp map --podman-rootless "$NAME" "$1")
  [ "$got" = "$2:$2" ] || fail "map --podman-rootless $NAME $1 says $got, want $2:$2"
}
expect_map 0 "$U"
expect_map 1000 300999
expect_map 2000 400999

mk() { # mk DIR: a tree of host root's and the user's files
  mkdir -p "$1/sub"
  echo a >"$1/sub/f" && echo b >"$1/g"
  chown -R "$U:$U" "$1" && chown 0:0 "$1/g"
}

# prepare: each container user writes its tree, in either range.
for c in 1000 2000; do
  mk "$T/p$c"
  run "$c:$c" "$T/p$c" 'touch /data/sub/new && echo x >/data/g' 2>/dev/null &&
    fail "container $c wrote before volprep"
  vp "$T/p$c" --as "$c" --podman-rootless "$NAME" -q
  run "$c:$c" "$T/p$c" 'touch /data/sub/new && echo x >/data/g && stat -c %u:%g /data/sub/new' \
    >"$T/out" || fail "container $c cannot write after volprep"
  [ "$(cat "$T/out")" = "$c:$c" ] || fail "container $c made a file of $(cat "$T/out")"
done

# --acl: the user keeps owning the tree, container 1000 writes it.
mk "$T/acl"
vp "$T/acl" --as 1000 --podman-rootless "$NAME" --acl -q
run 1000:1000 "$T/acl" 'touch /data/sub/new && echo x >>/data/sub/f' ||
  fail "container 1000 cannot write the --acl tree"
[ "$(stat -c %u "$T/acl/sub/f")" = "$U" ] || fail "--acl changed an owner"

# shift: host ids read as container ids (root's file -> the user, 1000's -> 300999).
s=$T/shift
mkdir -p "$s/root" "$s/u1000"
echo r >"$s/root/f" && echo u >"$s/u1000/f"
chown -R 1000:1000 "$s/u1000" && chmod 700 "$s/root" "$s/u1000"
vp shift "$s" --podman-rootless "$NAME" -q
[ "$(stat -c %u:%g "$s/root/f")" = "$U:$U" ] || fail "shift gave root's file $(stat -c %u:%g "$s/root/f")"
[ "$(stat -c %u:%g "$s/u1000/f")" = 300999:300999 ] || fail "shift gave 1000's file $(stat -c %u:%g "$s/u1000/f")"
run 0:0 "$s" 'echo w >>/data/root/f && stat -c %u /data/root/f' >"$T/out" ||
  fail "container root cannot write what root owned"
[ "$(cat "$T/out")" = 0 ] || fail "container root sees root's file as $(cat "$T/out")"
run 1000:1000 "$s" 'echo w >>/data/u1000/f' || fail "container 1000 cannot write what 1000 owned"
run 1000:1000 "$s" 'cat /data/root/f' 2>/dev/null && fail "container 1000 reads root's 0700 directory"

# map --pid of a running container: the same map as --podman-rootless.
pm run -d --name vp-sleeper --network none bb sleep 60 >/dev/null
pid=$(pm inspect --format '{{.State.Pid}}' vp-sleeper)
[ "$pid" -gt 0 ] || fail "no pid for the running container"
for c in 0 1000 2000; do
  [ "$(vp map --pid "$pid" "$c")" = "$(vp map --podman-rootless "$NAME" "$c")" ] ||
    fail "map --pid $pid $c: $(vp map --pid "$pid" "$c")"
done
pm rm -f -t 0 vp-sleeper >/dev/null
echo "PASS"
