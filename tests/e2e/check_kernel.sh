#!/usr/bin/env bash
# volprep check against the kernel itself: a random tree (seeded; VOLPREP_SEED overrides) of
# nested directories, owners and groups inside and outside the map 0:500000:65536, random
# modes (directories without r or x, setuid/setgid/sticky) and random POSIX ACLs (named users
# and groups, restrictive masks). For every entry, `volprep check --all --json` (--need rwx,
# rw and r) must agree with what a process in a real user namespace gets when it tries: open
# O_RDONLY / O_WRONLY|O_APPEND / execve for files; list, look up a child, create and remove a
# file for directories; lstat for reachability. Rounds: container uid 1000, container root
# (privileged over inodes whose uid and gid are both mapped), uid 1000 with a supplementary
# group, and uid 2000:1000 with one.
source "$(dirname "$0")/lib.sh"
chmod 755 "$T"   # the volume's parents must be traversable by the container's ids
PY=/usr/bin/python3
RT=$(dirname "$0")/randtree.py

seed=${VOLPREP_SEED:-20240611}
entries=${VOLPREP_ENTRIES:-600}
echo "check_kernel: seed $seed (set VOLPREP_SEED to change it)"
vol=$T/vol
"$PY" "$RT" gen "$vol" "$seed" "$entries" "$T/manifest.json"
cp "$RT" "$T/randtree.py" && chmod 644 "$T/randtree.py" "$T/manifest.json"

failed=0
# round LABEL UID GID GROUPS(comma list, container ids; may be empty)
round() {
  local label=$1 uid=$2 gid=$3 groups=$4 need rc
  local gopt=()
  [ -z "$groups" ] || gopt=(--groups "$groups")
  for need in rwx rw r; do
    rc=0
    vp check "$vol" --as "$uid:$gid" "${gopt[@]}" --need "$need" --all --json "${MAP[@]}" \
      >"$T/$label.$need.json" 2>"$T/$label.$need.err" || rc=$?
    [ "$rc" -le 1 ] || fail "$label: volprep check --need $need exited $rc: $(cat "$T/$label.$need.err")"
    [ ! -s "$T/$label.$need.err" ] || fail "$label: volprep check --need $need wrote to stderr: $(cat "$T/$label.$need.err")"
    # Exit 1 exactly when something is denied.
    if grep -q '"denied":true' "$T/$label.$need.json"; then [ "$rc" -eq 1 ]; else [ "$rc" -eq 0 ]; fi ||
      fail "$label: --need $need exit $rc does not match the denied entries"
  done
  # Every attempt in one process inside the namespace, started as container root: it drops to
  # UID:GID with the supplementary groups itself (unshare --setuid clears them).
  as_container 0 0 "$PY" "$T/randtree.py" probe "$T/manifest.json" "$uid" "$gid" "$groups" \
    >"$T/$label.probe.json" || fail "$label: the probe in the user namespace failed"
  "$PY" "$RT" compare "$T/manifest.json" "$T/$label.probe.json" \
    "$T/$label.rwx.json" "$T/$label.rw.json" "$T/$label.r.json" "$label (seed $seed)" || failed=1
}

round uid1000 1000 1000 ""
round root 0 0 ""
round uid1000-groups 1000 1000 "100,0"
round uid2000 2000 1000 "100"

# The tree is as it was: the probes removed what they created.
[ -z "$(find "$vol" -name '.volprep-probe-*')" ] || fail "probe files left behind"
[ "$failed" -eq 0 ] || fail "volprep check disagrees with the kernel (seed $seed)"
echo "ok: check_kernel (seed $seed)"
