#!/usr/bin/env bash
# Text from outside reaches the terminal escaped: a PATH, an option and daemon.json values
# holding a terminal escape (ESC [31m) and a byte that is not UTF-8 (\xff) come out on stderr
# (and stdout) as \x1b[31m and \xff, never as the raw bytes.
source "$(dirname "$0")/lib.sh"

esc=$'\e[31m' ff=$'\xff'
# raw_free FILE WHAT: FILE holds no ESC, no 0xff and no other control byte but newline.
raw_free() {
  if LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f\xff]' "$1"; then
    od -c "$1" | head -20 >&2
    fail "$2: raw control or invalid bytes reach the terminal"
  fi
}

# --- a PATH that does not exist, and one that is refused -------------------------------------
rc=0; vp "$T/no${esc}such${ff}" --as 1000 "${MAP[@]}" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] || fail "a missing PATH exited $rc, want 2"
raw_free "$T/err" "missing PATH"
grep -qF 'no\x1b[31msuch\xff' "$T/err" || fail "the missing PATH is not shown escaped: $(cat -v "$T/err")"

ln -s /etc "$T/etc${esc}${ff}"
rc=0; vp "$T/etc${esc}${ff}" --as 1000 "${MAP[@]}" --dry-run >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 5 ] || fail "a PATH leading to /etc exited $rc, want 5"
raw_free "$T/err" "refused PATH"
grep -qF 'etc\x1b[31m\xff' "$T/err" || fail "the refused PATH is not shown escaped: $(cat -v "$T/err")"

# --- a command-line parse error quotes the argument ------------------------------------------
rc=0; vp "$T" --as 1000 "${MAP[@]}" "--bogus${esc}${ff}" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] || fail "an unknown option exited $rc, want 2"
raw_free "$T/err" "unknown option"
grep -qF 'bogus\x1b[31m\xff' "$T/err" || fail "the unknown option is not shown escaped: $(cat -v "$T/err")"

# --- daemon.json: a remap user that does not exist, and one that does -----------------------
host=$T/host
cp -r "$VOLPREP_SRC/fixtures/host" "$host"
printf '{\n  "userns-remap": "evil\\u001b[31m\\u00ff"\n}\n' >"$host/etc/docker/daemon.json"
rc=0; vp map --host-root "$host" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 3 ] || fail "an unknown remap user exited $rc, want 3: $(cat -v "$T/err")"
raw_free "$T/err" "daemon.json value in an error"
grep -qF 'evil\x1b[31m' "$T/err" || fail "the daemon.json value is not shown escaped: $(cat -v "$T/err")"

# Raw bytes in the file itself (JSON that is not UTF-8): the parse error quotes none of them raw.
printf '{\n  "userns-remap": "evil%s%s"\n}\n' "$esc" "$ff" >"$host/etc/docker/daemon.json"
rc=0; vp map --host-root "$host" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 3 ] || fail "a daemon.json that is not UTF-8 exited $rc, want 3"
raw_free "$T/err" "daemon.json parse error"

# A user by that name exists: `map` prints it on stdout, escaped too.
name="evil${esc}x"
printf '%s:x:998:998::/nonexistent:/usr/sbin/nologin\n' "$name" >>"$host/etc/passwd"
printf '%s:x:998:\n' "$name" >>"$host/etc/group"
printf '%s:600000:65536\n' "$name" | tee -a "$host/etc/subuid" >>"$host/etc/subgid"
printf '{\n  "userns-remap": "evil\\u001b[31mx"\n}\n' >"$host/etc/docker/daemon.json"
rc=0; vp map --host-root "$host" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 0 ] || fail "map with the remap user exited $rc: $(cat -v "$T/err")"
raw_free "$T/out" "map's stdout"
raw_free "$T/err" "map's stderr"
grep -qF 'evil\x1b[31mx' "$T/out" || fail "map does not show the user escaped: $(cat -v "$T/out")"
grep -q '600000' "$T/out" || fail "map did not resolve the user: $(cat -v "$T/out")"
echo "ok: path_escapes"
