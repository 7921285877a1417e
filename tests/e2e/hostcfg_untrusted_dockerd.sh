#!/usr/bin/env bash
# A process named dockerd that is not root's own daemon decides nothing: one run by a user,
# one whose real uid is a user's (a setuid program run under that name), and root's own runs
# of a binary a user owns or its group may write are all ignored by the default scan, listed
# by `volprep map`, and refused with the reason by --dockerd-pid. Each carries the command line
# a hostile user would choose.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Long-running programs named dockerd whatever their argv: copies of python3.
mkdir -p "$T/user" "$T/root" "$T/group"
cp -L /usr/bin/python3 "$T/user/dockerd"
chown 65534:65534 "$T/user/dockerd"
cp -L /usr/bin/python3 "$T/root/dockerd"
cp -L /usr/bin/python3 "$T/group/dockerd"
chmod 0775 "$T/group/dockerd"
chmod 0755 "$T" "$T/user" "$T/root" "$T/group"

pids=()
on_exit 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null'
start() { # start RUNNER... BINARY: a fake daemon with a chosen command line; sets $! in pids
  "$@" -c 'import time; time.sleep(600)' --userns-remap=default --data-root=/nonexistent &
  pids+=($!)
}
start setpriv --reuid=65534 --regid=65534 --clear-groups "$T/user/dockerd"
start setpriv --ruid=65534 --euid=0 "$T/root/dockerd"
start "$T/user/dockerd"
start "$T/group/dockerd"
reasons=("is not root's: its real, effective and saved uids are 65534, 65534, 65534"
         "is not root's: its real, effective and saved uids are 65534, 0, 0"
         "$T/user/dockerd is owned by uid 65534, not root"
         "$T/group/dockerd is writable by its group or others")
# Until each has become python under its name.
for p in "${pids[@]}"; do
  for _ in $(seq 50); do [ "$(cat /proc/$p/comm 2>/dev/null)" = dockerd ] && break; sleep 0.1; done
  [ "$(cat /proc/$p/comm)" = dockerd ] || fail "fake dockerd $p did not start"
done

echo '{}' >"$T/daemon.json"
for i in "${!pids[@]}"; do
  p=${pids[i]}
  out=$(vp map --dockerd-pid "$p" --config-file "$T/daemon.json" 2>&1) && rc=0 || rc=$?
  [ "$rc" -eq 3 ] || fail "--dockerd-pid $p: expected exit 3, got $rc: $out"
  grep -qF -- "--dockerd-pid: dockerd (pid $p)" <<<"$out" || fail "--dockerd-pid $p: $out"
  grep -qF -- "${reasons[i]}" <<<"$out" || fail "--dockerd-pid $p: no \"${reasons[i]}\" in: $out"
done

# The default scan: none of them is the source, nor makes it fail as "several dockerd". A
# daemon that another scenario runs meanwhile may be the source; never one of ours.
out=$(vp map -v --config-file "$T/daemon.json" 2>&1) && rc=0 || rc=$?
for p in "${pids[@]}"; do
  grep -q "^source:.*pid $p)" <<<"$out" && fail "the fake dockerd $p decided the mapping: $out"
  grep -qE "several dockerd.*\b$p\b" <<<"$out" && fail "the fake dockerd $p counted as a daemon: $out"
  [ "$rc" -ne 0 ] || grep -qF "ignored: dockerd (pid $p)" <<<"$out" ||
    fail "volprep map does not list the fake dockerd $p as ignored: $out"
done
echo "ok: ${#pids[@]} processes named dockerd that are not root's own daemon are ignored"
