#!/usr/bin/env bash
# volprep prepare, proven in a real user namespace (map 0:500000:65536, as Docker's
# userns-remap runs containers): container uid 1000, then container root, cannot write the
# demo jenkins_home before; after `volprep PATH --as ID --map 0:500000:65536` they can, and
# what they create belongs to the mapped host id.
source "$(dirname "$0")/lib.sh"
# Rollback journals of real runs stay under $T (made now, so $T itself does not change later).
mkdir -p "$VOLPREP_JOURNAL_DIR"
chmod 755 "$T"   # the volume's parents must be traversable by the container's ids

# try_write UID GID VOL NEWFILE: append to config.xml and create jobs/NEWFILE as container UID:GID.
try_write() {
  as_container "$1" "$2" sh -c 'echo appended >>"$1/config.xml" && echo new >"$1/jobs/$2"' _ "$3" "$4" \
    2>/dev/null
}

# --- container uid 1000 (the jenkins user) -------------------------------------------------
mkdir "$T/a"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/a")
before=$(cat "$vol/config.xml")
not try_write 1000 1000 "$vol" created-by-1000
[ "$(cat "$vol/config.xml")" = "$before" ] || fail "the write before volprep changed config.xml"
[ ! -e "$vol/jobs/created-by-1000" ] || fail "the create before volprep succeeded"

rc=0; out=$(vp "$vol" --as 1000 "${MAP[@]}" 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "volprep --as 1000 exited $rc: $out"
# 19 entries in the demo volume, none already 501000:501000.
grep -q 'scanned 19, changed 19, unchanged 0, skipped 0, failed 0' <<<"$out" ||
  fail "want summary 'scanned 19, changed 19, unchanged 0, skipped 0, failed 0' in: $out"
bad=$(find "$vol" ! -user 501000 -o ! -group 501000)
[ -z "$bad" ] || fail "not 501000:501000 after volprep --as 1000: $bad"
[ "$(stat -c %u:%g "$vol/logs/config-link")" = 501000:501000 ] || fail "symlink itself not changed"

try_write 1000 1000 "$vol" created-by-1000 || fail "container uid 1000 still cannot write after volprep"
grep -q '^appended$' "$vol/config.xml" || fail "append did not land in config.xml"
[ "$(stat -c %u:%g "$vol/jobs/created-by-1000")" = 501000:501000 ] ||
  fail "file created by container uid 1000 is $(stat -c %u:%g "$vol/jobs/created-by-1000"), want 501000:501000"
# Reading the 0600 secret as the owner works too.
as_container 1000 1000 cat "$vol/secrets/master.key" >/dev/null 2>&1 ||
  fail "container uid 1000 cannot read secrets/master.key after volprep"

# --- container root: no override on host-owned files, so it fails before too ---------------
mkdir "$T/b"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/b")
before=$(cat "$vol/config.xml")
not try_write 0 0 "$vol" created-by-root
[ "$(cat "$vol/config.xml")" = "$before" ] || fail "container root's write before volprep changed config.xml"
[ ! -e "$vol/jobs/created-by-root" ] || fail "container root's create before volprep succeeded"

vp "$vol" --as 0 "${MAP[@]}" >/dev/null || fail "volprep --as 0 exited $?"
bad=$(find "$vol" ! -user 500000 -o ! -group 500000)
[ -z "$bad" ] || fail "not 500000:500000 after volprep --as 0: $bad"

try_write 0 0 "$vol" created-by-root || fail "container root still cannot write after volprep --as 0"
grep -q '^appended$' "$vol/config.xml" || fail "container root's append did not land"
[ "$(stat -c %u:%g "$vol/jobs/created-by-root")" = 500000:500000 ] ||
  fail "file created by container root is $(stat -c %u:%g "$vol/jobs/created-by-root"), want 500000:500000"

# --- the host-root source gives the same result as the explicit map ------------------------
mkdir "$T/c"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/c")
vp "$vol" --as 1000 --host-root "$VOLPREP_SRC/fixtures/host" >/dev/null || fail "volprep --host-root exited $?"
bad=$(find "$vol" ! -user 501000 -o ! -group 501000)
[ -z "$bad" ] || fail "not 501000:501000 after volprep --host-root: $bad"
try_write 1000 1000 "$vol" created-by-1000 || fail "container uid 1000 cannot write after volprep --host-root"
echo "ok: prepare_userns"
