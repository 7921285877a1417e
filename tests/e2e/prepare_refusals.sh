#!/usr/bin/env bash
# volprep prepare refuses what it must (exit 5 for system paths, 2 for usage, 3 for unmapped
# ids, 2 or 3 for a missing PATH), with a message, changing nothing; and accepts a single
# regular file and a symlink given as PATH (resolved to its target).
#
# Real (non-dry) runs on system paths happen only in a sandbox: root of a user namespace
# mapped to host ids 700000.. that own nothing on the host, so even a volprep that failed to
# refuse could not change a thing. Dry runs also run in the host namespace.
source "$(dirname "$0")/lib.sh"
# Rollback journals of real runs stay under $T (made now, so $T itself does not change later).
mkdir -p "$VOLPREP_JOURNAL_DIR"
chmod 755 "$T"

# sandbox cmd args...: like as_container, as root of a namespace mapped 0:700000:65536.
sandbox() {
  [ -f "$T/.subid7" ] || printf 'root:700000:65536\n' >"$T/.subid7"
  unshare --mount --propagation private -- bash -c '
    if [ -e /etc/subuid ] && [ -e /etc/subgid ]; then
      mount --bind "$1" /etc/subuid && mount --bind "$1" /etc/subgid || exit 99
    else
      cp -a /etc "$1.etc" && cp "$1" "$1.etc/subuid" && cp "$1" "$1.etc/subgid" &&
        mount --bind "$1.etc" /etc || exit 99
    fi
    shift
    exec unshare --user --map-users=700000,0,65536 --map-groups=700000,0,65536 \
      --setuid 0 --setgid 0 -- "$@"' _ "$T/.subid7" "$@"
}

mkdir "$T/sample"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/sample")
snap() {
  find "$T/sample" -printf '%U:%G %m %C@ %p\n' | LC_ALL=C sort
  stat -c '%u %g %a %n' / /etc /etc/passwd /etc/hostname /usr /var 2>/dev/null || true  # owners only: others may touch these
}
snap >"$T/snap.before"
sleep 0.05

# --- system paths: exit 5 with a message ------------------------------------------------------
ln -s /etc "$T/etc-link"
ln -s / "$T/root-link"
sys_paths=(/ /etc /etc/ //etc /tmp/../etc /usr /bin /sbin /boot /dev /proc /sys /var /home /root
           /proc/self /proc/1 /sys/kernel /dev/shm "$T/etc-link" "$T/root-link")
for l in /lib /lib32 /lib64 /libx32; do sys_paths+=("$l"); done
present=()
for p in "${sys_paths[@]}"; do [ -e "$p" ] && present+=("$p"); done
[ "${#present[@]}" -ge 15 ] || fail "too few system paths exist here: ${present[*]}"

mkdir -m 1777 "$T/sbx"
# Real runs, one namespace, every path; each with a time limit in case one is not refused.
sandbox bash -c '
  v=$1 o=$2; shift 2; i=0
  for p; do
    rc=0; timeout 20 "$v" "$p" --as 1000 --map 0:700000:65536 >"$o/$i.out" 2>"$o/$i.err" || rc=$?
    echo "$rc" >"$o/$i.rc"; i=$((i + 1))
  done' _ "$VOLPREP" "$T/sbx" "${present[@]}" || fail "the sandbox did not run (exit $?)"
i=0
for p in "${present[@]}"; do
  [ -f "$T/sbx/$i.rc" ] || fail "no result for $p"
  rc=$(cat "$T/sbx/$i.rc")
  [ "$rc" = 5 ] || fail "volprep $p (real run, sandboxed) exited $rc, want 5: $(head -3 "$T/sbx/$i.err")"
  [ -s "$T/sbx/$i.err" ] || fail "volprep $p refused without a message on stderr"
  i=$((i + 1))
done
grep -q '/etc' "$T/sbx/1.err" || fail "the refusal of /etc does not name it: $(cat "$T/sbx/1.err")"

# Dry runs and --check in the host namespace.
for p in / /etc /proc/self /sys/kernel /dev "$T/etc-link"; do
  for mode in --dry-run --check; do
    rc=0; timeout 30 "$VOLPREP" "$p" --as 1000 "${MAP[@]}" $mode >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 5 ] || fail "volprep $p $mode exited $rc, want 5"
    [ -s "$T/err" ] || fail "volprep $p $mode refused without a message"
    ! grep -q ' owner ' "$T/out" || fail "volprep $p $mode refused but printed a plan"
  done
done

# --allow-system-path lifts the refusal (sandboxed dry run of /etc: may report unreadable
# entries as failures, but is not refused).
rc=0; sandbox timeout 30 "$VOLPREP" /etc --as 1000 --map 0:700000:65536 --dry-run --allow-system-path \
  >"$T/out" 2>"$T/err" || rc=$?
case $rc in 0|4) ;; *) fail "--allow-system-path --dry-run /etc exited $rc: $(head -3 "$T/err")" ;; esac
grep -q '^/etc/passwd  *owner [0-9]*:[0-9]* -> [0-9]*:[0-9]*' "$T/out" ||
  fail "--allow-system-path --dry-run /etc plan has no /etc/passwd line: $(head -3 "$T/out")"

# --- usage and configuration errors ---------------------------------------------------------
usage() { # usage WANT_RC args...: exit code, a message, no plan or change
  local want=$1 rc=0; shift
  vp "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" = "$want" ] || fail "volprep $* exited $rc, want $want: $(head -3 "$T/err")"
  [ -s "$T/err" ] || fail "volprep $* failed without a message on stderr"
}
usage 2 "$vol" --as abc "${MAP[@]}"
usage 2 "$vol" --as 1000:abc "${MAP[@]}"
usage 2 "$vol" --as -1 "${MAP[@]}"
usage 2 "$vol" --as "" "${MAP[@]}"
usage 2 "$vol" "${MAP[@]}"                     # no --as
usage 2 --as 1000 "${MAP[@]}"                  # no PATH
usage 2 prepare --as 1000 "${MAP[@]}"          # no PATH, explicit subcommand
usage 2 "$vol" --as 1000 "${MAP[@]}" --threads abc
usage 2 "$vol" --as 1000 "${MAP[@]}" --chmod 'u+bogus'
usage 2 "$vol" --as 1000 "${MAP[@]}" --no-such-option
usage 3 "$vol" --as 70000 "${MAP[@]}"
usage 3 "$vol" --as 1000:70000 "${MAP[@]}"
usage 3 "$vol" --as 65536 "${MAP[@]}"
usage 3 "$vol" --as 70000 --host-root "$VOLPREP_SRC/fixtures/host"
grep -q 70000 "$T/err" || fail "the unmapped-id error does not name 70000: $(cat "$T/err")"
usage 3 prepare "$vol" --dry-run --as 70000 "${MAP[@]}"

# A missing PATH: 2 or 3, with a message naming it.
for args in "$T/does-not-exist" "$T/sample/jenkins_home/no/such/dir"; do
  rc=0; vp "$args" --as 1000 "${MAP[@]}" >"$T/out" 2>"$T/err" || rc=$?
  case $rc in 2|3) ;; *) fail "volprep on missing $args exited $rc, want 2 or 3" ;; esac
  grep -qF "$args" "$T/err" || fail "the error for a missing PATH does not name it: $(cat "$T/err")"
done

snap >"$T/snap.after"
if ! cmp -s "$T/snap.before" "$T/snap.after"; then
  diff "$T/snap.before" "$T/snap.after" >&2 || true
  fail "a refused or failed volprep changed something"
fi

# --- accepted: a single regular file, and a symlink to a directory --------------------------
printf 'one\n' >"$T/single"; chown 0:0 "$T/single"; chmod 0640 "$T/single"
cp /bin/true "$T/single-suid"; chown 1000:1000 "$T/single-suid"; chmod 4755 "$T/single-suid"
vp "$T/single" --as 1000 "${MAP[@]}" >"$T/out" 2>&1 || fail "volprep on a single file exited $?: $(cat "$T/out")"
[ "$(stat -c '%u:%g %a' "$T/single")" = "501000:501000 640" ] ||
  fail "single file is $(stat -c '%u:%g %a' "$T/single"), want 501000:501000 640"
grep -q 'scanned 1, changed 1, unchanged 0, skipped 0, failed 0' "$T/out" ||
  fail "single file summary: $(grep scanned "$T/out")"
vp "$T/single-suid" --as 1000 "${MAP[@]}" >/dev/null 2>&1 || fail "volprep on a setuid file exited $?"
[ "$(stat -c '%u:%g %a' "$T/single-suid")" = "501000:501000 4755" ] ||
  fail "single setuid file is $(stat -c '%u:%g %a' "$T/single-suid"), want 501000:501000 4755"

mkdir -p "$T/target/sub"
echo f >"$T/target/f"; echo g >"$T/target/sub/g"
chown -R 1000:1000 "$T/target"
ln -s target "$T/link"
chown -h 0:0 "$T/link"
vp "$T/link" --as 1000 "${MAP[@]}" >"$T/out" 2>&1 || fail "volprep on a symlink PATH exited $?: $(cat "$T/out")"
bad=$(find "$T/target" ! \( -user 501000 -group 501000 \) -print)
[ -z "$bad" ] || fail "symlink PATH: its target not prepared: $bad"
[ -L "$T/link" ] && [ "$(readlink "$T/link")" = target ] || fail "the symlink given as PATH was replaced"
[ -n "${KEEP_SBX:-}" ] && head -n2 "$T"/sbx/*.err >&2
echo "ok: prepare_refusals"
