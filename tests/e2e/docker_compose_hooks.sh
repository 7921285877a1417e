#!/usr/bin/env bash
# The three hook recipes of the README, each run for real against a `dockerd --userns-remap`
# with Debian's docker-compose, with a service running as 1000:1000 that writes its bind
# mount: (a) the wrapper `volprep compose && docker-compose up -d`; (b) the commands of the
# systemd unit fixtures/compose/hooks/compose@.service, ExecStartPre then ExecStart, and a
# refusal in ExecStartPre that keeps ExecStart from running; (c) the one-shot service of
# fixtures/compose/hooks/oneshot.yaml: volprep from a helper image with the host's / at /host,
# which the app waits on with `condition: service_completed_successfully` (docker-compose
# 1.29 has it); its journal is rolled back through the same service.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/docker_lib.bash"
docker_require
command -v docker-compose >/dev/null || fail "this scenario needs docker-compose (apt-get install docker-compose)"
before=$(host_fingerprint)
hooks=$VOLPREP_SRC/fixtures/compose/hooks

# The daemon reads userns-remap from daemon.json, which the helper reads at /host too.
prepare_hostroot "$T/hostroot"
mkdir -p "$T/hostroot/etc/docker"
jq -n --arg d "$T/data" '{"userns-remap": "default", "data-root": $d}' >"$T/hostroot/etc/docker/daemon.json"
start_dockerd "$T/hostroot" --config-file /etc/docker/daemon.json
make_busybox_image volprep-busybox
export DOCKER_HOST=unix://$DOCKER_SOCK
vc=("$VOLPREP" compose --host-root "$T/hostroot" --dockerd-pid "$DOCKERD_PID")

app_project() { # app_project DIR: one service as 1000:1000 that writes its bind mount
  mkdir -p "$1/data"
  cat >"$1/compose.yaml" <<'YAML'
services:
  app:
    image: volprep-busybox
    user: "1000:1000"
    network_mode: none
    command: ["sh", "-c", "id -u >/data/written"]
    volumes: ["./data:/data"]
YAML
}
written() { # written DIR: the app wrote its uid, as 1000, into a source volprep gave it
  [ "$(cat "$1/data/written" 2>/dev/null)" = 1000 ] || { cat "$T/up.log" 2>/dev/null; fail "$1: the app did not write"; }
  [ "$(stat -c %u:%g "$1/data")" = 501000:501000 ] || fail "$1/data: $(stat -c %u:%g "$1/data")"
}

# (a) The wrapper, as the README writes it (docker-compose for `docker compose`).
app_project "$T/wrap"
(cd "$T/wrap" && "${vc[@]}" && timeout 120 docker-compose up -d) >"$T/up.log" 2>&1 || { cat "$T/up.log"; fail "the wrapper failed"; }
docker_cmd wait wrap_app_1 >/dev/null
written "$T/wrap"
(cd "$T/wrap" && timeout 60 docker-compose down) >/dev/null 2>&1

# (b) The systemd unit's commands, %i the project, /srv/compose this test's directory, the
# two binaries the test's; volprep also gets the test's host root and daemon.
unit_cmd() { # unit_cmd KEY INSTANCE: the unit's KEY= command line, ready to eval
  sed -n "s/^$1=//p" "$hooks/compose@.service" | sed "s|%i|$2|g; s|/srv/compose|$T/units|g" |
    sed "s|^volprep compose|\"\${vc[@]}\"|; s|^docker-compose|timeout 120 docker-compose|"
}
app_project "$T/units/app"
[ "$(unit_cmd ExecStartPre app)" = "\"\${vc[@]}\" --project-directory $T/units/app" ] || fail "ExecStartPre: $(unit_cmd ExecStartPre app)"
(cd "$T/units/app" && eval "$(unit_cmd ExecStartPre app)" && eval "$(unit_cmd ExecStart app)") >"$T/up.log" 2>&1 ||
  { cat "$T/up.log"; fail "the unit's commands failed"; }
docker_cmd wait app_app_1 >/dev/null
written "$T/units/app"
(cd "$T/units/app" && eval "$(unit_cmd ExecStop app)") >/dev/null 2>&1
# A refused project: ExecStartPre fails, so ExecStart never runs (systemd stops at the first
# failing ExecStartPre, as && does) and no container is made.
app_project "$T/units/bad"
sed -i 's|"./data:/data"|"./data:/data", "/etc:/host-etc"|' "$T/units/bad/compose.yaml"
rc=0
(cd "$T/units/bad" && eval "$(unit_cmd ExecStartPre bad)" && eval "$(unit_cmd ExecStart bad)") >"$T/bad.log" 2>&1 || rc=$?
[ "$rc" = 5 ] || { cat "$T/bad.log"; fail "the refused project: exit $rc, want 5"; }
[ -z "$(docker_cmd ps -aq --filter name=bad_app)" ] || fail "a container was made for the refused project"
[ "$(stat -c %u "$T/units/bad/data")" = 0 ] || fail "the refused project was changed"

# (c) The one-shot service. The helper image: volprep and the libraries it links.
make_helper_image
o=$T/oneshot
mkdir -p "$o/data" "$T/varlib/journals"
chmod 700 "$T/varlib/journals"
# The host's /var/lib/volprep is this test's $T/varlib.
sed "s|/var/lib/volprep|$T/varlib|g" "$hooks/oneshot.yaml" >"$o/compose.yaml"
echo "PROJECT_DIR=$o" >"$o/.env"
# The app's user by name: volprep asks the engine (this test's, at its socket below /host)
# for the image, and reads its /etc/passwd from the overlay2 layers, whose paths are the
# host's, below /host: no container is created for that.
sed -i 's|^    user: "1000:1000"|    user: app|; s|^    userns_mode: host .*|&\n    environment: {DOCKER_HOST: "unix:///host'"$DOCKER_SOCK"'"}|' "$o/compose.yaml"
grep -q '^    user: app$' "$o/compose.yaml" && grep -q "DOCKER_HOST: \"unix:///host$DOCKER_SOCK\"" "$o/compose.yaml" ||
  fail "the one-shot project: $(cat "$o/compose.yaml")"
chmod o+x "$T"
since=$(date +%s)
(cd "$o" && timeout 180 docker-compose up) >"$T/up.log" 2>&1 || { cat "$T/up.log"; fail "the one-shot project failed"; }
grep -q "oneshot_volprep_1 exited with code 0" "$T/up.log" || { cat "$T/up.log"; fail "the volprep service did not finish well"; }
written "$o"
[ -z "$(docker_cmd events --since "$since" --until "$(($(date +%s) + 1))" --filter type=container --filter event=create \
  --filter label=volprep.purpose)" ] || fail "the one-shot service created a container to read the image's /etc/passwd"
[ -n "$(docker_cmd events --since "$since" --until "$(($(date +%s) + 1))" --filter type=container --filter event=create \
  --filter label=com.docker.compose.service=volprep)" ] || fail "the events do not show the project's containers"
ls "$T"/varlib/journals/*.vpj >/dev/null || fail "the one-shot service wrote no journal on the host"
# Its rollback, through the same service (the journal names /host paths).
rm "$o/data/written"
(cd "$o" && timeout 120 docker-compose run --rm --no-deps volprep rollback --project oneshot \
  --journal-dir "/host$T/varlib/journals") >"$T/rb.log" 2>&1 || { cat "$T/rb.log"; fail "the rollback failed"; }
[ "$(stat -c %u:%g "$o/data")" = 0:0 ] || fail "the rollback left $o/data $(stat -c %u:%g "$o/data")"
# A refusal in the one-shot service: the app does not start.
sed -i 's|\["./data:/data"\]|["./data:/data", "/etc:/host-etc"]|' "$o/compose.yaml"
(cd "$o" && timeout 60 docker-compose down) >/dev/null 2>&1
rc=0; (cd "$o" && timeout 180 docker-compose up) >"$T/up.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || { cat "$T/up.log"; fail "up succeeded although volprep refused"; }
# docker-compose 1.29 says the exit code; volprep's message is in the service's log.
grep -q 'Container "[0-9a-f]*" exited with code 5' "$T/up.log" || { cat "$T/up.log"; fail "volprep's exit code is not shown"; }
(cd "$o" && timeout 60 docker-compose logs --no-color volprep) >"$T/logs" 2>&1
grep -q "/etc is mounted read-write: refusing it" "$T/logs" || { cat "$T/logs"; fail "volprep's refusal is not in its log"; }
[ ! -e "$o/data/written" ] || fail "the app ran although volprep refused"
(cd "$o" && timeout 60 docker-compose down) >/dev/null 2>&1

unset DOCKER_HOST
stop_dockerd
[ "$(host_fingerprint)" = "$before" ] || fail "the host changed"
echo "docker_compose_hooks: the wrapper, the systemd unit's commands and the one-shot service each prepare before up"
