#!/usr/bin/env bash
# A hardlinked file is changed only if all its links are in the tree, counted as links (a
# directory and a name), not as paths: a directory the container keeps exchanging with an
# empty one is listed under both names, so one link inside looks like two. Here the
# container (501000) links a root file outside the tree that it may read and write
# (protected_hardlinks=1 allows that) into a/, and exchanges a/ and b/ without pause while
# volprep runs again and again (bounded: RUNS runs, 400 by default). The file outside must keep its owner.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/race_lib.bash"
chmod 755 "$T"
RUNS=${RUNS:-400}
protected_hardlinks 1
out=$T/outside vol=$T/vol
mkdir -p "$out" "$vol/a" "$vol/b"
chmod 1777 "$out"
echo victim >"$out/victim" && chmod 666 "$out/victim"
chown -R 501000:501000 "$vol"
as_user 501000 ln "$out/victim" "$vol/a/x"
"$PY" - "$vol/a" "$vol/b" "$T/stop" <<'PY' &
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b, stop = (x.encode() for x in sys.argv[1:4])
os.setgid(501000); os.setuid(501000)
while not os.path.exists(stop):
    libc.renameat2(-100, a, -100, b, 2)
PY
swapper=$!
on_exit 'touch "$T/stop"; wait '"$swapper"' 2>/dev/null'
for ((i = 1; i <= RUNS; i++)); do
  chown -h 1000:1000 "$vol" "$vol/a" "$vol/b" 2>/dev/null || true
  timeout 30 "$VOLPREP" "$vol" --as 1000 "${MAP[@]}" --no-journal -q >/dev/null 2>&1 || true
  [ "$(stat -c %u:%g "$out/victim")" = 0:0 ] ||
    fail "run $i gave the file outside to $(stat -c %u:%g "$out/victim")"
done
touch "$T/stop"
echo "ok: race_link_exchange ($RUNS runs)"
