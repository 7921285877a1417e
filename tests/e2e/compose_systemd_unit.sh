#!/usr/bin/env bash
# The systemd unit of the README's hook recipe (fixtures/compose/hooks/compose@.service) passes
# `systemd-analyze verify` as an instance, with volprep and docker-compose where systemd looks
# for a command given by name (no running systemd needed); a unit whose ExecStartPre names a
# missing command fails the same check, so the check can fail. docker_compose_hooks.sh runs
# the unit's commands against a real dockerd.
source "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || fail "this scenario needs systemd-analyze (apt-get install systemd)"
unit=$VOLPREP_SRC/fixtures/compose/hooks/compose@.service
mkdir -p "$T/units" "$T/bin"
cp "$unit" "$T/units/"
# docker.service where the host has none (a machine without docker.io).
[ -e /lib/systemd/system/docker.service ] || [ -e /etc/systemd/system/docker.service ] ||
  printf '[Service]\nExecStart=/bin/true\n' >"$T/units/docker.service"
cp "$VOLPREP" "$T/bin/volprep"
printf '#!/bin/sh\nexit 0\n' >"$T/bin/docker-compose"
chmod 755 "$T/bin/volprep" "$T/bin/docker-compose"
sed 's/^ExecStartPre=volprep /ExecStartPre=volprep-missing /' "$unit" >"$T/broken@.service"

# systemd resolves a bare command name in a fixed path (/usr/local/sbin first), not $PATH: the
# test's binaries are bound over /usr/local/sbin in a private mount namespace.
verify() { # verify UNIT...
  unshare --mount --propagation private -- bash -c '
    mount --bind "$1" /usr/local/sbin || exit 99
    shift
    cd "$1" && shift
    SYSTEMD_UNIT_PATH="$PWD:" exec systemd-analyze verify "$@"' _ "$T/bin" "$T/units" "$@"
}
verify compose@app.service >"$T/out" 2>&1 || { cat "$T/out"; fail "systemd-analyze verify of compose@app.service"; }
[ ! -s "$T/out" ] || { cat "$T/out"; fail "systemd-analyze verify warned"; }
cp "$T/broken@.service" "$T/units/"
rc=0; verify broken@app.service >"$T/out" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q "volprep-missing is not executable" "$T/out" || { cat "$T/out"; fail "the broken unit passed: $rc"; }
# The unit's volprep command line is one volprep accepts.
pre=$(sed -n 's/^ExecStartPre=volprep //p' "$unit" | sed 's|%i|app|g')
[ "$pre" = "compose --project-directory /srv/compose/app" ] || fail "ExecStartPre: $pre"
mkdir -p "$T/srv/app/data"
printf 'services:\n  app:\n    image: busybox\n    user: "1000:1000"\n    volumes: ["./data:/data"]\n' >"$T/srv/app/compose.yaml"
vp ${pre//\/srv\/compose/$T/srv} "${MAP[@]}" -n >"$T/plan" || { cat "$T/plan"; fail "volprep $pre"; }
grep -q '^# app: ./data -> /data (rw, own 1000:1000 = host 501000:501000)' "$T/plan" || { cat "$T/plan"; fail "the plan"; }
echo "compose_systemd_unit: the unit verifies, a broken one does not, and its volprep command runs"
