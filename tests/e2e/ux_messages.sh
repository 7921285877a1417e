#!/usr/bin/env bash
# The mistakes an admin new to volprep makes get a message that says what to do, and the
# README's examples print what the binary prints:
# - `--as NAME` (a container user's name) is a usage error (2), before any configuration is
#   read, saying how to find the name's ids; a mistyped number gets no such hint;
# - `shift` with remapping off says "remapping is off" once, and what to name;
# - `compose` that needs the engine for a service's user and cannot reach it names the
#   service, its user: line, and x-volprep.as;
# - a real run that changes owners, not as root, warns first that it needs root (not a dry
#   run, not --acl, which needs only the files' ownership);
# - `--journal FILE` with `--no-journal` is a usage error (2), not a run without the journal
#   asked for;
# - an `--exclude` that starts with / (it would match nothing: the paths matched are
#   relative to PATH) is a usage error (2), not a run that changes what was to be left alone;
#   so is one that starts with - (`--exclude -n`: the GLOB left out, -n taken for it), and a
#   FILE of --journal or DIR of --journal-dir that does;
# - `umount` without --persist of a mount `mount --persist` made says that its unit makes it
#   again at boot, and how to remove it;
# - `--check` of a prepared tree prints the summary line the README shows above "ready".
# - prepare of a PATH inside another, or of one PATH twice, is refused (2) as shift refuses it;
# - an --exclude that excluded nothing below PATH is warned of, on stderr, exit status kept;
# - mount -n and mount --list speak English: "1 entry", "an ext4";
# - `shift --check` of a tree shifted already prints its summary line, as prepare's does;
# - `--check -q` prints nothing but errors: the exit status says it;
# - a remap user with no subuid ranges: the line to add to /etc/subuid and /etc/subgid is said;
# - `--acl-perms rwx`, which the code takes, is listed by --help;
# - `mount SRC DST` over volprep's own mount at DST says so, and to umount it first.
source "$(dirname "$0")/lib.sh"
chmod 755 "$T"
mkdir -p "$VOLPREP_JOURNAL_DIR" "$T/vol/sub"
echo x >"$T/vol/sub/f"
chown -R 1000:1000 "$T/vol"
# expect_err WANT cmd...: expect_rc, with the command's stderr in $T/err.
expect_err() {
  local want=$1 rc=0; shift
  "$@" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$T/err" >&2; fail "expected exit $want, got $rc: $*"; }
}

# --- --as NAME -------------------------------------------------------------------------------
expect_err 2 vp "$T/vol" --as jenkins "${MAP[@]}" -n
grep -q 'not names: .*docker run --rm --entrypoint id IMAGE NAME' "$T/err" || { cat "$T/err"; fail "--as NAME: no hint"; }
expect_err 2 vp "$T/vol" --as 1000:www-data "${MAP[@]}" -n
grep -q 'docker run --rm --entrypoint id IMAGE NAME' "$T/err" || { cat "$T/err"; fail "--as UID:GROUP: no hint"; }
# Said before a configuration that cannot be read (exit 3) is.
expect_err 2 vp "$T/vol" --as jenkins --config-file "$T/absent.json" -n
grep -q -- '--as "jenkins"' "$T/err" || { cat "$T/err"; fail "--as NAME not said first"; }
expect_err 2 vp check "$T/vol" --as jenkins "${MAP[@]}"
grep -q 'docker run --rm --entrypoint id IMAGE NAME' "$T/err" || { cat "$T/err"; fail "check --as NAME: no hint"; }
mkdir "$T/dst"
expect_err 2 vp mount "$T/vol" "$T/dst" --as jenkins "${MAP[@]}" -n
grep -q 'docker run --rm --entrypoint id IMAGE NAME' "$T/err" || { cat "$T/err"; fail "mount --as NAME: no hint"; }
expect_err 2 vp "$T/vol" --as 10O0 "${MAP[@]}" -n  # a typo of 1000: no name
grep -q -- '--as "10O0": expected UID\[:GID\], container ids$' "$T/err" || { cat "$T/err"; fail "--as 10O0: $(cat "$T/err")"; }

# --- shift with remapping off ------------------------------------------------------------------
# (A host root of its own: a dockerd another scenario runs meanwhile is not asked.)
mkdir -p "$T/hostroot/etc/docker"
echo '{}' >"$T/hostroot/etc/docker/daemon.json"
expect_err 3 vp shift "$T/vol" --host-root "$T/hostroot"
grep -q 'remapping is off, so container ids are host ids and there is nothing to shift: name the map' "$T/err" ||
  { cat "$T/err"; fail "shift, remapping off: not said"; }
not grep -q 'remapping is off: remapping is off' "$T/err"

# --- compose: the engine a service's user needs, out of reach ---------------------------------------
mkdir "$T/proj"
cat >"$T/proj/compose.yaml" <<'EOF'
services:
  db:
    image: postgres
    user: postgres
    volumes: ["./data:/var/lib/postgresql/data"]
EOF
DOCKER_HOST=unix://$T/absent.sock expect_err 3 vp compose -n --compose-cli never --project-directory "$T/proj" \
  "${MAP[@]}"
grep -q "service db: its user: postgres ($T/proj/compose.yaml:4:11) names a user or group" "$T/err" ||
  { cat "$T/err"; fail "compose: the service needing the engine is not named"; }
grep -q "cannot reach the Docker engine at $T/absent.sock.*x-volprep: {as: UID:GID}; nothing changed" "$T/err" ||
  { cat "$T/err"; fail "compose: no way out said"; }
[ ! -e "$T/proj/data" ] || fail "compose made a source"
sed -i 's/user: postgres/user: "999"/' "$T/proj/compose.yaml"  # a uid, no group: the image's passwd has it
DOCKER_HOST=unix://$T/absent.sock expect_err 3 vp compose -n --compose-cli never --project-directory "$T/proj" \
  "${MAP[@]}"
grep -q "service db: its user: 999 ($T/proj/compose.yaml:4:11) has no group, which the image's /etc/passwd" "$T/err" ||
  { cat "$T/err"; fail "compose: a uid without a group is not said"; }

# --- not root ------------------------------------------------------------------------------------
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent timeout 60 "$VOLPREP" "$@"; }
for cmd in "prepare --as 1000" shift; do
  rc=0; as_nobody $cmd "$T/vol" "${MAP[@]}" --no-journal >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -ne 0 ] || fail "volprep $cmd as nobody succeeded"
  head -1 "$T/err" | grep -q 'running as uid 65534 without CAP_CHOWN, so no owner can be changed: run volprep as root' ||
    { cat "$T/err"; fail "volprep $cmd as nobody: root not asked for first"; }
done
as_nobody "$T/vol" --as 1000 "${MAP[@]}" -n >"$T/out" 2>"$T/err"
not grep -q CAP_CHOWN "$T/err"
chown -R 65534:65534 "$T/vol"
as_nobody "$T/vol" --as 1000 "${MAP[@]}" --acl --no-journal >"$T/out" 2>"$T/err" || true
not grep -q CAP_CHOWN "$T/err"

# --- --journal FILE --no-journal -----------------------------------------------------------------
for cmd in "prepare --as 1000" shift; do
  expect_err 2 vp $cmd "$T/vol" "${MAP[@]}" --journal "$T/j.vpj" --no-journal
  grep -q -- '--journal excludes --no-journal' "$T/err" || { cat "$T/err"; fail "$cmd: --journal with --no-journal"; }
done
[ ! -e "$T/j.vpj" ] || fail "a journal was written"

# --- --exclude /ABSOLUTE, --exclude -n ------------------------------------------------------------
for cmd in "prepare --as 1000" shift; do
  expect_err 2 vp $cmd "$T/vol" "${MAP[@]}" -n --exclude "$T/vol/sub"
  grep -q -- "--exclude: \"$T/vol/sub\" starts with /, and matches nothing: .*relative to PATH" "$T/err" ||
    { cat "$T/err"; fail "$cmd: --exclude /ABSOLUTE"; }
done
# The GLOB (FILE, DIR) left out: the next option is not taken for it, a dry run not made a real one.
owner=$(stat -c %u:%g "$T/vol")
expect_err 2 vp "$T/vol" --as 1000 "${MAP[@]}" --exclude -n
grep -qF -- '--exclude: "-n" was taken for its GLOB and looks like an option: was the GLOB left out? (a GLOB that starts with - is written [-]n, or ./-n for PATH'"'"'s own only)' \
  "$T/err" ||
  { cat "$T/err"; fail "--exclude -n"; }
expect_err 2 vp shift "$T/vol" "${MAP[@]}" --journal --dry-run
grep -qF -- '--journal: "--dry-run" was taken for its FILE' "$T/err" || { cat "$T/err"; fail "--journal --dry-run"; }
expect_err 2 vp "$T/vol" --as 1000 "${MAP[@]}" --journal-dir -n
grep -qF -- '--journal-dir: "-n" was taken for its DIR' "$T/err" || { cat "$T/err"; fail "--journal-dir -n"; }
[ "$(stat -c %u:%g "$T/vol")" = "$owner" ] || fail "a run was made"
vp "$T/vol" --as 1000 "${MAP[@]}" -n --exclude ./-n >/dev/null  # a name that starts with -, as said
vp "$T/vol" --as 1000 "${MAP[@]}" -n --exclude sub >"$T/out"  # relative, as meant
grep -q '(1 excluded)' "$T/out" || fail "--exclude sub: $(cat "$T/out")"

# --- umount of a mount --persist made ---------------------------------------------------------------
export VOLPREP_MOUNT_DIR=$T/mounts
mkdir "$T/units" "$T/mnt"
vp mount "$T/vol" "$T/mnt" --as 1000 "${MAP[@]}" --persist --unit-dir "$T/units" >/dev/null
unit=$(ls "$T/units"/*.service)
vp umount "$T/mnt" --unit-dir "$T/units" >/dev/null 2>"$T/err"
grep -qF "$unit makes this mount again at boot: volprep umount --persist $T/mnt --unit-dir $T/units removes it" "$T/err" ||
  { cat "$T/err"; fail "umount: the unit left is not said"; }
vp umount "$T/mnt" --persist --unit-dir "$T/units" >/dev/null  # as said
[ ! -e "$unit" ] || fail "umount --persist left $unit"
vp mount "$T/vol" "$T/mnt" --as 1000 "${MAP[@]}" >/dev/null
vp umount "$T/mnt" --unit-dir "$T/units" >/dev/null 2>"$T/err"
[ ! -s "$T/err" ] || fail "umount of a mount with no unit: $(cat "$T/err")"

# --- the README's --check example -----------------------------------------------------------------
vp "$T/vol" --as 1000 "${MAP[@]}" >/dev/null
vp --check "$T/vol" --as 1000 "${MAP[@]}" >"$T/out"
readme=$(awk '/^\$ volprep --check .* && echo ready$/ { getline; print; exit }' "$VOLPREP_SRC/README.md")
[ "$(sed 's/[0-9]\+/N/g' <<<"$readme")" = "$(sed 's/[0-9]\+/N/g' "$T/out")" ] ||
  fail "README shows '$readme' for --check, volprep prints '$(cat "$T/out")'"

# --- prepare of nested or repeated PATHs: refused as shift refuses them -----------------------------
mkdir -p "$T/jh/jobs"
for paths in "$T/jh $T/jh/jobs" "$T/jh/jobs $T/jh" "$T/jh $T/jh"; do
  expect_err 2 vp $paths --as 1000 "${MAP[@]}"
  grep -qE -- '(holds [^ ]*jh/jobs, another PATH of this command|are the same tree): it would be prepared twice; nothing changed' \
    "$T/err" || { cat "$T/err"; fail "prepare $paths: not refused as shift refuses it"; }
done
[ "$(stat -c %u "$T/jh/jobs")" = 0 ] || fail "prepare of nested PATHs changed owners"

# --- an --exclude that matched nothing: warned of, the pattern meant said; the exit status kept ------
mkdir -p "$T/jh/secrets"
(cd "$T" && vp ./jh --as 1000 "${MAP[@]}" -n --exclude jh/secrets) >"$T/out" 2>"$T/err"
grep -qF -- "--exclude jh/secrets matched nothing below ./jh; patterns are relative to PATH (--exclude ./secrets for jh/secrets)" \
  "$T/err" || { cat "$T/err"; fail "--exclude jh/secrets: no warning"; }
vp "$T/jh" --as 1000 "${MAP[@]}" -n --exclude secrets >"$T/out" 2>"$T/err"
not grep -q 'matched nothing' "$T/err"
# "./secrets", as the hint says, is PATH's own secrets; "secrets" is every one at any depth.
mkdir "$T/jh/jobs/secrets"
vp "$T/jh" --as 1000 "${MAP[@]}" -n --exclude ./secrets >"$T/out" 2>"$T/err"
grep -q '(1 excluded)' "$T/out" && grep -q 'jobs/secrets' "$T/out" || fail "--exclude ./secrets: not PATH's own only: $(cat "$T/out")"
vp "$T/jh" --as 1000 "${MAP[@]}" -n --exclude secrets >"$T/out" 2>"$T/err"
grep -q '(2 excluded)' "$T/out" || fail "--exclude secrets: not every secrets: $(cat "$T/out")"
rmdir "$T/jh/jobs/secrets"
# A typo beside a pattern that matched: the typo is warned of all the same; so is a pattern
# whose matches lie only below a directory another one excluded (nothing there is looked at).
touch "$T/jh/secrets/key.pem"
vp "$T/jh" --as 1000 "${MAP[@]}" -n --exclude secrets --exclude sekrets --exclude '*.pem' >"$T/out" 2>"$T/err"
grep -qF -- "--exclude sekrets matched nothing below $T/jh; patterns are relative to PATH (or it matches only below a directory" \
  "$T/err" || { cat "$T/err"; fail "--exclude sekrets beside --exclude secrets: no warning"; }
grep -qF -- "--exclude *.pem matched nothing" "$T/err" || { cat "$T/err"; fail "--exclude *.pem: no warning"; }
not grep -q -- '--exclude secrets matched nothing' "$T/err"

# --- mount -n and mount --list in English: 1 entry, an ext4 ----------------------------------------
mkdir "$T/one" "$T/one-dst"
chown 1000:1000 "$T/one"
vp mount "$T/one" "$T/one-dst" --as 1000 "${MAP[@]}" -n >"$T/out"
grep -q 'disk 1000:1000  shows as 501000:501000  1 entry$' "$T/out" || fail "mount -n: $(cat "$T/out")"
vp mount "$T/one" "$T/one-dst" --as 1000 "${MAP[@]}" >/dev/null
vp mount --list >"$T/out"
fs=$(stat -f -c %T "$T/one")
grep -qE "^$T/one-dst  $T/one of (a|an) [a-z0-9]+ filesystem, idmapped" "$T/out" || fail "mount --list: $(cat "$T/out")"
case $fs in ext*|xfs) grep -q "^$T/one-dst  $T/one of an " "$T/out" || fail "mount --list: $(cat "$T/out")" ;; esac
vp umount "$T/one-dst" >/dev/null

# --- shift --check of a tree shifted already: the summary line, as prepare --check prints it ---------
mkdir -p "$T/sh/d"
vp shift "$T/sh" "${MAP[@]}" >/dev/null
vp shift --check "$T/sh" "${MAP[@]}" >"$T/out"
[ "$(cat "$T/out")" = "scanned 2, to change 0, unchanged 2, skipped 0" ] || fail "shift --check, shifted: '$(cat "$T/out")'"

# --- --check -q: nothing but errors, the exit status says it ------------------------------------------
mkdir -p "$T/big/a" "$T/big/b"
rc=0; vp --check -q "$T/big" --as 1000 "${MAP[@]}" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] && [ ! -s "$T/out" ] && [ ! -s "$T/err" ] || fail "--check -q: exit $rc, printed '$(cat "$T/out" "$T/err")'"
rc=0; vp -q shift --check "$T/sh" "$T/big" "${MAP[@]}" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] && [ ! -s "$T/out" ] || fail "shift --check -q: exit $rc, printed '$(cat "$T/out")'"
vp -q shift --check "$T/sh" "${MAP[@]}" >"$T/out"
[ ! -s "$T/out" ] || fail "shift --check -q, shifted: printed '$(cat "$T/out")'"

# --- a remap user without subuid ranges: the line to add said, placed past the ranges taken ------------
H=$T/host
mkdir -p "$H/etc/docker"
cp "$VOLPREP_SRC/fixtures/host/etc/"{passwd,group} "$H/etc/"
printf '{"userns-remap": "dockremap"}\n' >"$H/etc/docker/daemon.json"
printf 'alice:100000:65536\n' >"$H/etc/subuid"
printf 'alice:100000:65536\nbob:165536:65536\n' >"$H/etc/subgid"
expect_err 3 vp "$T/vol" --as 1000 -n --host-root "$H"
grep -qF 'no subuid ranges found for user "dockremap"' "$T/err" && \
  grep -qF 'add the line dockremap:231072:65536 to /etc/subuid and /etc/subgid (the first 65536 ids free in both' "$T/err" ||
  { cat "$T/err"; fail "no subuid ranges: the line to add not said"; }

# --- --acl-perms rwx: taken (acl.cc parses any of r, w, x, X), and listed where the others are -------
vp "$T/vol" --as 1000 "${MAP[@]}" -n --acl --acl-perms rwx >"$T/out"
grep -q 'acl u:501000:rw- -> rwx' "$T/out" || fail "--acl-perms rwx: $(cat "$T/out")"
# Read whole first: grep -q stops at its match, and the help's writer then dies of SIGPIPE,
# which pipefail would count as this check failing.
"$VOLPREP" prepare --help >"$T/help"
grep -q -- '--acl-perms.*rwX or rwx' "$T/help" || fail "--help does not list rwx"

# --- mount over volprep's own mount: said as such, with the way out ------------------------------------
vp mount "$T/one" "$T/one-dst" --as 1000 "${MAP[@]}" >/dev/null
expect_err 5 vp mount "$T/one" "$T/one-dst" --as 1000 "${MAP[@]}"
grep -qF "refusing $T/one-dst: volprep's idmapped mount of $T/one is already there; volprep umount $T/one-dst first" \
  "$T/err" || { cat "$T/err"; fail "mount over its own mount: $(cat "$T/err")"; }
vp umount "$T/one-dst" >/dev/null
echo "ux_messages: every mistake tried got its hint"
