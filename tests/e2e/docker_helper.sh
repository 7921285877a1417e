# The helper container: a privileged container of a real `dockerd --userns-remap=default`, with
# the host's / at /host, runs `volprep --host-root /host` and prepares a host path with the
# host's map; a remapped container of the same daemon then writes to it as its user 1000.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/docker_lib.bash"
docker_require
before=$(host_fingerprint)

# The daemon reads userns-remap and its data root from daemon.json, as a host set up by hand.
prepare_hostroot "$T/hostroot"
mkdir -p "$T/hostroot/etc/docker"
jq -n --arg d "$T/data" '{"userns-remap": "default", "data-root": $d}' >"$T/hostroot/etc/docker/daemon.json"
start_dockerd "$T/hostroot" --config-file /etc/docker/daemon.json
make_busybox_image volprep-busybox

# The helper image: volprep and the libraries it links, nothing else (as FROM scratch).
make_helper_image

# The demo volume, where the remapped container can reach it.
vol=$("$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/vols")
chmod o+x "$T/vols"
as_app() { docker_cmd run --rm --network none -u 1000:1000 -v "$vol:/var/jenkins_home" volprep-busybox "$@"; }
not as_app sh -c 'echo more >>/var/jenkins_home/config.xml' 2>/dev/null

# The helper: host / at /host, in the host's user namespace (a remapped root could chown
# nothing outside its range); journals on the host, where `volprep rollback` finds them. The
# capabilities volprep uses rather than --privileged, which asks for every capability: the
# sandboxes CI runs in may lack some (CAP_SYS_RESOURCE), and a helper needs no more.
helper=(docker_cmd run --rm --network none --userns=host --cap-drop ALL
  --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add DAC_READ_SEARCH --cap-add FOWNER
  --cap-add FSETID --cap-add SETFCAP -v /:/host volprep-helper)
"${helper[@]}" map --host-root /host 1000 >"$T/map"
[ "$(cat "$T/map")" = 501000:501000 ] || fail "helper: volprep map 1000 said $(cat "$T/map")"
"${helper[@]}" "/host$vol" --as 1000 --host-root /host --journal-dir "/host$T/journals" >"$T/out" 2>&1 ||
  { cat "$T/out"; fail "the helper container failed"; }
grep -q 'changed 19,' "$T/out" || { cat "$T/out"; fail "helper: unexpected summary"; }
[ "$(stat -c %u:%g "$vol/config.xml")" = 501000:501000 ] || fail "the host path was not prepared"
ls "$T"/journals/*.vpj >/dev/null || fail "no journal on the host"

# The app container, remapped: its user 1000 owns the volume now.
as_app sh -c 'echo more >>/var/jenkins_home/config.xml && stat -c %u:%g /var/jenkins_home/config.xml' >"$T/app"
[ "$(cat "$T/app")" = 1000:1000 ] || fail "the app container sees $(cat "$T/app")"
stop_dockerd || fail "dockerd did not stop cleanly"
[ "$(host_fingerprint)" = "$before" ] || fail "host files changed"
echo "helper container: volprep --host-root /host prepared $vol with the daemon's map"
