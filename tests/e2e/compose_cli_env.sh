#!/usr/bin/env bash
# The Compose CLI sees the caller's environment as `docker compose up` would, so both readers
# prepare the directory Compose will mount: a variable set in the shell wins over .env, and a
# ${VAR:?} set only in the shell is set, for a root-owned project (the CLI runs as root) and a
# user's (it runs as them). What makes an interpreter load other code is not passed: a
# PYTHONPATH naming a sitecustomize.py (docker-compose 1 is Python) runs nothing.
source "$(dirname "$0")/lib.sh"
command -v docker-compose >/dev/null || { echo "no docker-compose: nothing to test"; exit 0; }
chmod 755 "$T"
p=$T/proj
mkdir -p "$p/d1" "$p/d2" "$T/py" "$T/mark" "$VOLPREP_JOURNAL_DIR"
chmod 1777 "$T/mark"  # the CLI may write there as either user
printf 'DATA_DIR=./d1\n' >"$p/.env"
cat >"$p/compose.yaml" <<'YAML'
services:
  a:
    image: busybox
    user: "${APP_UID:?set APP_UID}:1000"
    volumes: ["${DATA_DIR}:/data"]
YAML
printf 'import os\nopen(os.environ.get("MARK", "/dev/null"), "w").close()\n' >"$T/py/sitecustomize.py"

# plan READER: the dry run's heading of the mount, with the caller's DATA_DIR and APP_UID.
plan() {
  (cd "$p" && DATA_DIR=./d2 APP_UID=1001 PYTHONPATH=$T/py MARK=$T/mark/ran \
    vp compose "${MAP[@]}" --compose-cli "$1" --dry-run) >"$T/out.$1" 2>"$T/err.$1" ||
    { cat "$T/err.$1"; fail "--compose-cli $1 failed"; }
  grep '^# a:' "$T/out.$1"
}
for owner in 0 4321; do
  chown -R "$owner:$owner" "$p"
  [ "$(DATA_DIR=./d2 APP_UID=1001 docker-compose --project-directory "$p" config | grep -cE "(source: |- )$p/d2(:/data|$)")" = 1 ] ||
    fail "docker-compose itself does not mount d2"
  want="# a: ./d2 -> /data (rw, own 1001:1000 = host 501001:501000)"
  [ "$(plan never)" = "$want" ] || fail "the built-in reader (owner $owner): $(plan never)"
  [ "$(plan auto)" = "$want" ] || fail "the Compose CLI (owner $owner) did not see the caller's variables: $(plan auto)"
  [ ! -e "$T/mark/ran" ] || fail "PYTHONPATH reached the Compose CLI (owner $owner)"
done
[ "$(stat -c %u "$p/d1" "$p/d2" | sort -u)" = 4321 ] || fail "a dry run changed a source"
echo "compose_cli_env: both readers plan the directory the caller's environment names"
