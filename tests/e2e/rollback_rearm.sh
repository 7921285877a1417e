#!/usr/bin/env bash
# Rollback gives back set-id bits and file capabilities only to the content they were on.
# After prepare, the container (501000) owns a setuid-root binary and a binary with
# cap_setuid; it rewrites both (the kernel drops the bits and the capability on its write).
# A plain rollback gives them back their owners, without the bits or the capability, and says
# why; a file nobody touched gets everything back; --force re-arms, and says so.
source "$(dirname "$0")/lib.sh"
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
command -v setcap >/dev/null || fail "setcap is missing (libcap2-bin; ./dev test installs it)"
chmod 755 "$T"  # the container user reaches the tree
vol=$T/vol
mkdir -p "$vol"
for f in suid cap untouched; do cp /bin/true "$vol/$f"; done
chown 0:0 "$vol/suid" && chmod 4755 "$vol/suid"
chown 1000:1000 "$vol/cap" "$vol/untouched" "$vol" && chmod 755 "$vol/cap" && chmod 4755 "$vol/untouched"
setcap cap_setuid+ep "$vol/cap"
manifest() { stat -c '%u:%g %a %n' "$vol"/*; getcap "$vol"/*; }
manifest >"$T/before"

for force in "" --force; do
  vp "$vol" --as 1000 "${MAP[@]}" --journal "$T/run$force.vpj" >/dev/null
  [ "$(stat -c %a "$vol/suid")" = 4755 ] || fail "prepare dropped the setuid bit"
  sleep 0.05  # a later ctime than the journal's last write
  for f in suid cap; do
    setpriv --reuid 501000 --regid 501000 --clear-groups sh -c "echo 'id -u' >>'$vol/$f'"
  done
  rc=0
  vp rollback "$T/run$force.vpj" --no-journal $force >"$T/rb.out" 2>"$T/rb.err" || rc=$?
  [ "$rc" -eq 0 ] || fail "rollback $force exited $rc: $(cat "$T/rb.err")"
  if [ -z "$force" ]; then
    [ "$(stat -c '%u:%g %a' "$vol/suid")" = "0:0 755" ] ||
      fail "a rewritten setuid-root binary got $(stat -c '%u:%g %a' "$vol/suid") back"
    [ -z "$(getcap "$vol/cap")" ] || fail "a rewritten binary got its capability back: $(getcap "$vol/cap")"
    [ "$(stat -c '%u:%g' "$vol/cap")" = 1000:1000 ] || fail "the rewritten cap binary's owner was not restored"
    [ "$(stat -c '%a' "$vol/untouched")" = 4755 ] || fail "an untouched setuid file lost its bit"
    for f in suid cap; do
      grep -q "$f: changed after the run: set-id bits and capabilities not put back (--force puts them back)" \
        "$T/rb.err" || fail "no warning for $f: $(cat "$T/rb.err")"
    done
    # Put the tree back as it was for the --force round.
    for f in suid cap; do cp /bin/true "$vol/$f"; done
    chmod 4755 "$vol/suid" && setcap cap_setuid+ep "$vol/cap"
    manifest | cmp -s "$T/before" - || fail "the tree could not be reset"
  else
    [ "$(stat -c '%u:%g %a' "$vol/suid")" = "0:0 4755" ] || fail "--force did not re-arm the setuid bit"
    getcap "$vol/cap" | grep -q cap_setuid || fail "--force did not put the capability back"
    grep -q "suid: changed after the run: set-id bits and capabilities put back anyway (--force)" "$T/rb.err" ||
      fail "--force does not say what it re-arms: $(cat "$T/rb.err")"
  fi
done
# The same rewrite while the run still goes on (40000 more files to change after the binary):
# earlier than the journal's last write, so only the ctime the run left the binary with (an
# 'A' record) tells it from the run's own change.
vol2=$T/vol2
mkdir -p "$vol2/many"
cp /bin/true "$vol2/suid" && chmod 4755 "$vol2/suid"
(cd "$vol2/many" && seq -f 'f%05g' 0 39999 | xargs touch)
chown -R 1000:1000 "$vol2" && chown 0:0 "$vol2/suid" && chmod 4755 "$vol2/suid"
"$PY" - "$vol2/suid" <<'PY' &
import os, sys, time
os.setgid(501000); os.setuid(501000)
t = time.time()
while os.stat(sys.argv[1]).st_uid != 501000:  # the run has just given it to the container
    if time.time() - t > 60: sys.exit("the run never gave the binary to 501000")
with open(sys.argv[1], "a") as f:
    f.write("# rewritten by the container during the run\n")
PY
watcher=$!
vp "$vol2" --as 1000 "${MAP[@]}" --journal "$T/during.vpj" >/dev/null
wait "$watcher" || fail "the watcher did not rewrite the binary during the run"
rc=0
vp rollback "$T/during.vpj" --no-journal >"$T/rb.out" 2>"$T/rb.err" || rc=$?
[ "$rc" -eq 0 ] || fail "rollback of the run exited $rc: $(cat "$T/rb.err")"
[ "$(stat -c '%u:%g %a' "$vol2/suid")" = "0:0 755" ] ||
  fail "a binary rewritten during the run got $(stat -c '%u:%g %a' "$vol2/suid") back"
grep -q "suid: changed after the run: set-id bits and capabilities not put back" "$T/rb.err" ||
  fail "no warning for the binary rewritten during the run: $(cat "$T/rb.err")"
echo "ok: rollback_rearm"
