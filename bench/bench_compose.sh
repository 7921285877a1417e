#!/usr/bin/env bash
# The project overhead of `volprep compose` (reading the project, asking the Docker engine who
# each image runs as): a 10-service project whose bind sources are one empty directory each,
# with a real dockerd (--userns-remap=default), timed as `volprep compose -n`, best of RUNS,
# with the built-in reader and with docker-compose's `config`.
# usage: bench/bench_compose.sh [RUNS]   (as root; VOLPREP defaults to build/volprep)
. "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/docker_lib.bash"
runs=${1:-5}
docker_require
chmod 755 "$T"
prepare_hostroot "$T/hostroot"
start_dockerd "$T/hostroot" --userns-remap=default
make_busybox_image volprep-busybox
make_jenkins_image
p=$T/proj
mkdir -p "$p"
{
  echo "services:"
  for i in 0 1 2 3 4 5 6 7 8 9; do
    echo "  s$i:"
    case $((i % 4)) in
      0) echo "    image: volprep-busybox"; echo "    user: \"10$i:10$i\"" ;;  # numeric: no engine call
      1) echo "    image: volprep-jenkins" ;;                                  # USER jenkins: config + passwd
      2) echo "    image: volprep-busybox"; echo "    user: app" ;;           # a name: config + passwd
      3) echo "    image: volprep-busybox" ;;                                  # no USER: config only
    esac
    echo "    volumes: [\"./d$i:/data\", \"./c$i:/conf:ro\"]"
    mkdir -p "$p/d$i" "$p/c$i"
  done
} >"$p/compose.yaml"
export DOCKER_HOST=unix://$DOCKER_SOCK
time_best() { # time_best ARGS...: the best wall time of RUNS runs, in seconds
  local best=999 i s e
  for ((i = 0; i < runs; i++)); do
    s=$(date +%s.%N)
    (cd "$p" && "$VOLPREP" compose --host-root "$T/hostroot" --dockerd-pid "$DOCKERD_PID" -n "$@" >/dev/null)
    e=$(date +%s.%N)
    best=$(echo "$s $e $best" | awk '{ d = $2 - $1; print (d < $3 ? d : $3) }')
  done
  echo "$best"
}
echo "volprep compose -n, 10 services, 20 bind mounts, best of $runs:"
echo "  built-in reader (--compose-cli never): $(time_best --compose-cli never) s"
command -v docker-compose >/dev/null && echo "  docker-compose config (--compose-cli auto): $(time_best --compose-cli auto) s"
stop_dockerd
