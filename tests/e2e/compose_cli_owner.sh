#!/usr/bin/env bash
# The Compose CLI runs as the project directory's owner (uid 4321 here, whom passwd does not
# know: group nogroup, no supplementary groups), so what a compose file names is the kernel's
# to allow: a file only that user can read works, one only root can read (env_file: naming it
# by absolute path, which is root's and no symlink, so the name checks pass) fails as it would
# for them, and nothing of it shows. A root-owned project's CLI runs as root, as before.
source "$(dirname "$0")/lib.sh"
command -v docker-compose >/dev/null || { echo "no docker-compose: nothing to test"; exit 0; }
chmod 755 "$T"
p=$T/proj
mkdir -p "$p/data/a" "$VOLPREP_JOURNAL_DIR"
printf 'TOKEN=hunter2\n' >"$T/root-only" && chmod 600 "$T/root-only"
printf 'MINE=owner-only\n' >"$p/mine.env" && chmod 600 "$p/mine.env"
chown -R 4321:4321 "$p"

project() { # ENV_FILE: compose.yaml with one service reading ENV_FILE
  cat >"$p/compose.yaml" <<YAML
services:
  app:
    image: busybox
    user: "1000:1000"
    env_file: $1
    volumes: ["./data/a:/a"]
YAML
  chown 4321:4321 "$p/compose.yaml"
}
run_vp() { local rc=0; (cd "$p" && vp compose "${MAP[@]}" --compose-cli auto --dry-run) >"$T/out" 2>"$T/err" || rc=$?; return $rc; }

# The owner's own 0600 file: read (by them).
project ./mine.env
run_vp || { cat "$T/err"; fail "the owner's own env_file was not read"; }

# A root-only file by absolute path: the CLI cannot read it, as the owner could not.
project "$T/root-only"
rc=0; run_vp || rc=$?
[ "$rc" -ne 0 ] || fail "the CLI read a root-only file for uid 4321"
grep -q "config failed" "$T/err" || { cat "$T/err"; fail "not the CLI's failure"; }
grep -qi "permission denied" "$T/err" || { cat "$T/err"; fail "not refused by the kernel"; }
! grep -q hunter2 "$T/out" "$T/err" || fail "the root-only file's content was printed"
[ -z "$(ls -A "$VOLPREP_JOURNAL_DIR")" ] || fail "a journal was written"

# A root-owned project: the CLI runs as root, as before (root's own choice of files).
chown -R 0:0 "$p"
run_vp || { cat "$T/err"; fail "a root-owned project's CLI failed"; }
echo ok
