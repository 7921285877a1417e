# Helpers of the shift_*.sh scenarios (source after lib.sh and manifest.bash).
#
#   mixed_tree DIR   a random tree (fixed seed) with owners 0, 1000, 33, 999 and 65534, named
#                    ACL entries in access and default ACLs, revision 2 and 3 capabilities,
#                    setuid and setgid files, hardlinks within and across directories,
#                    symlinks and a fifo: everything shift translates, and what it must keep.
mixed_tree() { # mixed_tree DIR
  local d=$1 i dir f ids=(0 1000 33 999 65534)
  RANDOM=13
  mkdir -p "$d"
  for ((i = 0; i < 12; i++)); do
    dir=$d/d$((i % 4))/sub$((i % 3))
    mkdir -p "$dir"
    f=$dir/f$i
    echo "file $i" >"$f"
    chown "${ids[RANDOM % 5]}:${ids[RANDOM % 5]}" "$f" "$dir"
    chmod $((RANDOM % 2 ? 640 : 755)) "$f"
  done
  chown 999:33 "$d/d1"
  chown 65534:65534 "$d/d2"
  # ACLs: named users and groups, access and default, with a mask.
  setfacl -m u:1000:rw,u:33:r,g:999:rw,g:0:r "$d/d0/sub0/f0"
  setfacl -m d:u:1000:rwx,d:g:33:rx,u:999:rx "$d/d1"
  # Capabilities: revision 2 (set on the host) and 3 (as container root 1000 of a rootless
  # runtime would), on a setuid binary too.
  cp /bin/true "$d/ping"; setcap cap_net_raw+ep "$d/ping"
  cp /bin/true "$d/d3/v3cap"; setcap -n 1000 cap_net_bind_service+ep "$d/d3/v3cap"
  cp /bin/true "$d/suid"; chown 1000:33 "$d/suid"; chmod 6755 "$d/suid"
  setcap cap_chown+p "$d/suid"; chmod 6755 "$d/suid"
  chown 1000:1000 "$d/d2"; chmod 2775 "$d/d2"
  # Hardlinks: two names in one directory, one across directories (with a setuid bit).
  echo linked >"$d/d0/a"; chown 33:999 "$d/d0/a"; ln "$d/d0/a" "$d/d0/b"; ln "$d/d0/a" "$d/d3/c"
  chmod 4750 "$d/d0/a"
  ln -s ../ping "$d/d3/link"; chown -h 999:999 "$d/d3/link"
  mkfifo "$d/d3/fifo"; chown 65534:1000 "$d/d3/fifo"
}
