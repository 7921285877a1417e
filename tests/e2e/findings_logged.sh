#!/usr/bin/env bash
# What volprep finds in the remap configuration is logged once at its own level: "volprep:
# warning: WHERE: WHAT", not "volprep: warning: warning: ..." (the finding's own text form,
# with its level, is for `volprep map` and JSON). A host root whose daemon.json asks for
# userns-remap "default" before dockerd has made the dockremap user gives a warning; a
# subuid line that cannot be read gives an error.
source "$(dirname "$0")/lib.sh"
H=$T/host
mkdir -p "$H/etc/docker" "$T/vol"
grep -v '^dockremap:' "$VOLPREP_SRC/fixtures/host/etc/passwd" >"$H/etc/passwd"
grep -v '^dockremap:' "$VOLPREP_SRC/fixtures/host/etc/group" >"$H/etc/group"
printf '{"userns-remap": "default"}\n' >"$H/etc/docker/daemon.json"
: >"$H/etc/subuid" && : >"$H/etc/subgid"
for cmd in "prepare $T/vol --as 1000 -n" "shift $T/vol -n" "check $T/vol --as 1000" "map 1000"; do
  # shellcheck disable=SC2086
  "$VOLPREP" $cmd --host-root "$H" >/dev/null 2>"$T/err" || true
  grep -q '^volprep: warning: user "dockremap" does not exist yet' "$T/err" ||
    { cat "$T/err" >&2; fail "$cmd: the finding is not logged as one warning"; }
  ! grep -Eq 'volprep: (warning|error): (warning|error): ' "$T/err" ||
    { cat "$T/err" >&2; fail "$cmd: a finding's level is said twice"; }
done
# The user made, and a subuid line that is not NAME:START:COUNT: warnings and errors about
# it, each logged at its level while volprep refuses.
cp "$VOLPREP_SRC/fixtures/host/etc/"{passwd,group} "$H/etc/"
printf 'dockremap:500000:65536\ndockremap:zz\n' >"$H/etc/subuid"
printf 'dockremap:500000:65536\n' >"$H/etc/subgid"
rc=0
"$VOLPREP" prepare "$T/vol" --as 1000 -n --host-root "$H" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] || { cat "$T/err" >&2; fail "a bad subuid line: exit $rc, want 3"; }
grep -q "^volprep: error: $H/etc/subuid:2: the start \"zz\" is not an id" "$T/err" ||
  { cat "$T/err" >&2; fail "the bad start is not logged as an error naming the line"; }
grep -q "^volprep: warning: $H/etc/subuid:2: \"dockremap:zz\" has 2 field(s)" "$T/err" ||
  { cat "$T/err" >&2; fail "the missing field is not logged as a warning naming the line"; }
! grep -Eq 'volprep: (warning|error): (warning|error): ' "$T/err" || { cat "$T/err" >&2; fail "a finding's level is said twice"; }
echo ok
