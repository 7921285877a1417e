# Shared by the rootless scenarios (source it after lib.sh, in a private mount namespace): a
# user of the scenario's own, with two subordinate ranges, and the checks that containers run
# by that user (rootless Podman, rootless Docker) see what volprep prepared for them.
#
# Both tools map container 0 to the user, 1-1000 to the first range and 1001-65536 to the
# second, so container 1000 is host 300999 and container 2000 host 400999.

# rootless_user NAME UID: the user, in a copy of /etc bind-mounted over /etc (the host's /etc
# is never written), with its home at $H and its runtime directory at $RL_RUN, /run/user/UID
# on a tmpfs over /run in this namespace; everything the user runs is killed on exit.
rootless_user() {
  RL_NAME=$1 RL_UID=$2
  getent passwd "$RL_UID" >/dev/null && fail "uid $RL_UID is taken: pick another"
  pgrep -U "$RL_UID" >/dev/null && fail "processes of uid $RL_UID run already"
  on_exit 'pkill -KILL -U "$RL_UID" 2>/dev/null; sleep 0.2'
  chmod 755 "$T"
  H=$T/home
  mkdir -p "$H/tmp"
  cp -a /etc "$T/etc"
  echo "$RL_NAME:x:$RL_UID:$RL_UID::$H:/bin/sh" >>"$T/etc/passwd"
  echo "$RL_NAME:x:$RL_UID:" >>"$T/etc/group"
  printf '%s:300000:1000\n%s:400000:64536\n' "$RL_NAME" "$RL_NAME" >"$T/etc/subuid"
  cp "$T/etc/subuid" "$T/etc/subgid"
  mount --bind "$T/etc" /etc
  mount -t tmpfs -o mode=0755 volprep-e2e-run /run
  RL_RUN=/run/user/$RL_UID
  mkdir -p -m 0700 "$RL_RUN" && chown "$RL_UID:$RL_UID" "$RL_RUN"
  # Mounts made later (volprep mount) reach the tools' own mount namespaces, as on a host
  # where / is shared; the peer groups are this namespace's own, never the host's.
  mount --make-rshared /
  chown -R "$RL_UID:$RL_UID" "$H"
}

# as_user CMD...: CMD as the user, with its own home, runtime and temporary directories.
as_user() {
  setpriv --reuid "$RL_UID" --regid "$RL_UID" --init-groups -- env HOME="$H" \
    XDG_RUNTIME_DIR="$RL_RUN" TMPDIR="$H/tmp" PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# rootless_image_tar: a busybox rootfs as a tar on stdout, for `podman import` / `docker import`;
# its /etc/passwd names app, 2000 (group 2001).
rootless_image_tar() {
  local r=$T/rootfs a
  if [ ! -d "$r" ]; then
    mkdir -p "$r/bin" "$r/tmp" "$r/etc"
    printf 'root:x:0:0::/:/bin/sh\napp:x:2000:2001::/:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\napp:x:2001:\n' >"$r/etc/group"
    cp /bin/busybox "$r/bin/busybox"
    for a in sh touch id ls cat sleep stat; do ln -s busybox "$r/bin/$a"; done
  fi
  tar -C "$r" -c .
}

# With the scenario's `engine` (the CLI of the user's engine, docker's or podman's, run as the
# user): run UID:GID TREE SHELL-CMD runs a fresh container (TREE at /data), containers lists
# the user's containers, running_pid starts one and prints its host pid, rootless_images
# imports bb, bbu (USER 2000:2000) and bbn (USER app).
run() { local user=$1 tree=$2; shift 2
  engine run --rm --network none --user "$user" -v "$tree:/data" bb sh -c "$*"
}
containers() { engine ps -aq; }
running_pid() {
  engine run -d --name vp-sleeper --network none bb sleep 60 >/dev/null
  engine inspect --format '{{.State.Pid}}' vp-sleeper
}
rootless_images() {
  rootless_image_tar | engine import - bb >/dev/null
  rootless_image_tar | engine import --change 'USER 2000:2000' - bbu >/dev/null
  rootless_image_tar | engine import --change 'USER app' - bbn >/dev/null
}

# rootless_checks OPTION: with the map OPTION USER gives (--podman-rootless, --rootless),
# through containers of the user's engine: prepare in
# either range, --acl, shift, mount, compose, and map --pid. The user's engine has images bb,
# bbu (USER 2000:2000) and bbn (USER app), and serves its API at its default socket in $RL_RUN.
rootless_checks() {
  local opt=$1 c got pid s=$T/shift
  for c in 0:"$RL_UID" 1000:300999 2000:400999; do
    got=$(vp map "$opt" "$RL_NAME" "${c%:*}")
    [ "$got" = "${c#*:}:${c#*:}" ] || fail "map $opt $RL_NAME ${c%:*} says $got, want ${c#*:}"
  done

  # prepare: each container user writes its tree, in either range.
  for c in 1000 2000; do
    _rl_tree "$T/p$c"
    run "$c:$c" "$T/p$c" 'touch /data/sub/new && echo x >/data/g' 2>/dev/null &&
      fail "container $c wrote before volprep"
    vp "$T/p$c" --as "$c" "$opt" "$RL_NAME" -q
    got=$(run "$c:$c" "$T/p$c" 'touch /data/sub/new && echo x >/data/g && stat -c %u:%g /data/sub/new') ||
      fail "container $c cannot write after volprep"
    [ "$got" = "$c:$c" ] || fail "container $c made a file of $got"
  done

  # --acl: the user keeps owning the tree, container 1000 writes it.
  _rl_tree "$T/acl"
  vp "$T/acl" --as 1000 "$opt" "$RL_NAME" --acl -q
  run 1000:1000 "$T/acl" 'touch /data/sub/new && echo x >>/data/sub/f' ||
    fail "container 1000 cannot write the --acl tree"
  [ "$(stat -c %u "$T/acl/sub/f")" = "$RL_UID" ] || fail "--acl changed an owner"

  # shift: host ids read as container ids (root's files -> the user, 1000's -> 300999).
  mkdir -p "$s/root" "$s/u1000"
  echo r >"$s/root/f" && echo u >"$s/u1000/f"
  chown -R 1000:1000 "$s/u1000" && chmod 700 "$s/root" "$s/u1000"
  vp shift "$s" "$opt" "$RL_NAME" -q
  [ "$(stat -c %u:%g "$s/root/f")" = "$RL_UID:$RL_UID" ] || fail "shift gave root's file $(stat -c %u:%g "$s/root/f")"
  [ "$(stat -c %u:%g "$s/u1000/f")" = 300999:300999 ] || fail "shift gave 1000's file $(stat -c %u:%g "$s/u1000/f")"
  got=$(run 0:0 "$s" 'echo w >>/data/root/f && stat -c %u /data/root/f') ||
    fail "container root cannot write what root owned"
  [ "$got" = 0 ] || fail "container root sees root's file as $got"
  run 1000:1000 "$s" 'echo w >>/data/u1000/f' || fail "container 1000 cannot write what 1000 owned"
  run 1000:1000 "$s" 'cat /data/root/f' 2>/dev/null && fail "container 1000 reads root's 0700 directory"

  # mount: an idmapped view of the user's tree, written by container 1000 as its own; on
  # disk, what it made belongs to the user.
  mkdir -p "$T/msrc/sub" "$T/mdst"
  echo a >"$T/msrc/sub/f"
  chown -R "$RL_UID:$RL_UID" "$T/msrc"
  vp mount "$T/msrc" "$T/mdst" --as 1000 "$opt" "$RL_NAME" -q
  got=$(run 1000:1000 "$T/mdst" 'touch /data/sub/new && echo x >>/data/sub/f && stat -c %u:%g /data/sub/new') ||
    fail "container 1000 cannot write through the idmapped mount"
  [ "$got" = 1000:1000 ] || fail "container 1000 made a file of $got through the mount"
  got=$(stat -c %u:%g "$T/msrc/sub/new" "$T/msrc/sub/f" | sort -u)
  [ "$got" = "$RL_UID:$RL_UID" ] || fail "through the mount, the disk got $got"
  umount "$T/mdst"

  # compose: the user's engine, at its default socket, says who bbu runs as.
  local P=$H/proj
  mkdir -p "$P/one" "$P/img" "$P/nam"
  printf '%s\n' 'services:' \
    '  one: {image: bb, user: "1000:1000", volumes: ["./one:/data"]}' \
    '  img: {image: bbu, volumes: ["./img:/data"]}' \
    '  nam: {image: bbn, volumes: ["./nam:/data"]}' >"$P/compose.yaml"
  chown -R "$RL_UID:$RL_UID" "$P"
  (cd "$P" && vp compose "$opt" "$RL_NAME" --compose-cli never -q) || fail "compose $opt"
  [ "$(stat -c %u:%g "$P/one")" = 300999:300999 ] || fail "compose gave one's mount $(stat -c %u:%g "$P/one")"
  [ "$(stat -c %u:%g "$P/img")" = 400999:400999 ] || fail "compose gave img's mount $(stat -c %u:%g "$P/img")"
  # app's ids are read from bbn's /etc/passwd through a container of the user's engine (its
  # layer paths are never opened), which is gone afterwards.
  [ "$(stat -c %u:%g "$P/nam")" = 400999:401000 ] || fail "compose gave nam's mount $(stat -c %u:%g "$P/nam")"
  [ -z "$(containers)" ] || fail "compose left containers: $(containers)"
  run 2000:2000 "$P/img" 'touch /data/new' || fail "container 2000 cannot write what compose prepared for it"

  # map --pid of a running container: the same ids as OPTION.
  pid=$(running_pid)
  [ "$pid" -gt 0 ] || fail "no pid for the running container"
  for c in 0 1000 2000; do
    [ "$(vp map --pid "$pid" "$c")" = "$(vp map "$opt" "$RL_NAME" "$c")" ] ||
      fail "map --pid $pid $c: $(vp map --pid "$pid" "$c")"
  done
}

_rl_tree() { # _rl_tree DIR: a tree of host root's and the user's files
  mkdir -p "$1/sub"
  echo a >"$1/sub/f" && echo b >"$1/g"
  chown -R "$RL_UID:$RL_UID" "$1" && chown 0:0 "$1/g"
}
