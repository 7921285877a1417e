#!/usr/bin/env bash
# volprep compose refuses bad input with a message naming file:line:col where there is one,
# and changes nothing (the bind sources' manifest is the same after, no source is created, no
# journal is written): malformed YAML, an unknown service, an unset variable with :?, two
# services mounting one path as different users, a mount inside another's as a different user,
# a read-write bind of a system path (exit 5), of the project directory or of a directory
# holding the project's compose or env files (exit 5; read-only, it is only checked), a missing
# secret file. Every service says its
# user (numeric user: or x-volprep.as), so no Docker engine is asked. The plan-level refusals
# are also made through docker-compose's `config` when it is installed, and name the same
# places in the user's file (not in the CLI's output); a conflict names both mounts.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
p=$T/proj
mkdir -p "$p/data/a" "$p/data/b" "$p/data/shared/inner" "$VOLPREP_JOURNAL_DIR"
touch "$p/data/a/file" "$p/data/shared/inner/file"
manifest "$p/data" >"$T/m0"
readers=(never)
command -v docker-compose >/dev/null && readers+=(auto)

# A service at the end of every project that would change: a source to chown, and one to
# create.
bystander='  bystander:
    image: busybox
    user: "1002:1002"
    volumes: ["./data/b:/b", "./data/fresh:/fresh"]'

# refused RC PATTERN [ARGS...]: compose.yaml is stdin plus the bystander; volprep compose
# exits RC with an error matching PATTERN (grep -E) and nothing changed.
refused() {
  local want=$1 pattern=$2 rc=0; shift 2
  { cat; echo "$bystander"; } >"$p/compose.yaml"
  (cd "$p" && vp compose "${MAP[@]}" "$@") >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$T/err"; fail "exit $rc, want $want: volprep compose $*"; }
  grep -Eq "$pattern" "$T/err" || { cat "$T/err"; fail "no error matching: $pattern"; }
  manifest "$p/data" | cmp -s - "$T/m0" || { manifest "$p/data" | diff "$T/m0" - || true; fail "a bind source changed: $*"; }
  [ -z "$(ls -A "$VOLPREP_JOURNAL_DIR")" ] || fail "a journal was written: $(ls "$VOLPREP_JOURNAL_DIR")"
}

# Malformed YAML: an unclosed quote, reported where the parser gave up (the quoted scalar
# ran on into the next line).
refused 3 "volprep: error: $p/compose.yaml:5:16: malformed YAML: end of map not found" --compose-cli never <<'YAML'
services:
  app:
    image: busybox
    user: "1000
    volumes: ["./data/a:/a"]
YAML
# A key that is not a string, and a tab in the indentation.
refused 3 "$p/compose.yaml:3:2: malformed YAML" --compose-cli never < <(printf 'services:\n  app:\n\timage: busybox\n')

# An unknown service on the command line: the project's services are named.
refused 2 "no such service: nosuch \(the project proj has 2: app, bystander\)" --compose-cli never nosuch <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    volumes: ["./data/a:/a"]
YAML

# An unset variable with :? says where, and the message the file gives.
refused 3 "$p/compose.yaml:5:15: volumes: required variable DATA_DIR is missing a value: set DATA_DIR in .env" \
  --compose-cli never <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    volumes: ["${DATA_DIR:?set DATA_DIR in .env}:/a"]
YAML
# ... from .env too, which cannot set it empty past :?.
echo 'DATA_DIR=' >"$p/.env"
refused 3 "$p/compose.yaml:5:15: .*required variable DATA_DIR is missing a value" --compose-cli never <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    volumes: ["${DATA_DIR:?set DATA_DIR in .env}:/a"]
YAML
rm "$p/.env"

for reader in "${readers[@]}"; do
  # Two services mounting one path as different users.
  refused 3 "^volprep: error: $p/compose.yaml:9:15: conflict: app mounts ./data/shared as 1000:1000 \(host 501000:501000, own, $p/compose.yaml:5:15\) and db mounts it as 999:999 \(host 500999:500999, own\)" \
    --compose-cli "$reader" <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    volumes: ["./data/shared:/shared"]
  db:
    image: busybox
    user: "999:999"
    volumes: ["./data/shared:/var/lib/db"]
YAML
  # A mount inside another service's mount, as a different user (x-volprep.as says who).
  refused 3 "conflict: app mounts ./data/shared as 1000:1000 .* and db mounts ./data/shared/inner, inside it, as 999:999" \
    --compose-cli "$reader" <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    volumes: ["./data/shared:/shared"]
  db:
    image: busybox
    x-volprep: {as: "999:999"}
    volumes: ["./data/shared/inner:/inner"]
YAML
  # A read-write bind of a system path is refused (exit 5); read-only, /etc/localtime is fine.
  refused 5 "$p/compose.yaml:5:51: service app: /etc is mounted read-write: refusing it \(.*\): volprep changes no system path" \
    --compose-cli "$reader" <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    volumes: ["/etc/localtime:/etc/localtime:ro", "/etc:/host-etc", "./data/a:/a"]
YAML
  refused 5 "$p/compose.yaml:[0-9]+:[0-9]+: service app: / is mounted read-write: refusing it" --compose-cli "$reader" <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    volumes:
      - type: bind
        source: /
        target: /host
YAML
  # The project directory mounted read-write (a dev setup's .:/app), or any directory holding
  # its compose or env files: refused (exit 5) naming the service, the mount and the files, by
  # -n and --check alike; chowned, a container could rewrite what root runs next.
  # Alone first, as a dev setup has it (no other mount inside it to conflict with).
  printf 'services:\n  app:\n    image: busybox\n    user: "1000:1000"\n    volumes: [".:/app"]\n' >"$p/compose.yaml"
  rc=0; (cd "$p" && vp compose "${MAP[@]}" --compose-cli "$reader") >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq 5 ] && grep -q "refusing it: it is the project directory" "$T/err" ||
    { cat "$T/err"; fail "exit $rc: the project directory mounted read-write alone was not refused"; }
  [ "$(stat -c %u:%g "$p" "$p/compose.yaml" | sort -u)" = 0:0 ] || fail "the project's files were given away"
  for how in "" --dry-run --check; do
    refused 5 "^volprep: error: $p/compose.yaml:5:15: service app: \. -> /app is mounted read-write: refusing it: it is the project directory and holds the project's compose.yaml; a container that can write there can change what docker compose runs next" \
      --compose-cli "$reader" $how <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    volumes: [".:/app", "./data/a:/a"]
YAML
  done
  mkdir -p "$p/conf" && printf 'A=1\n' >"$p/conf/app.env"
  refused 5 "service app: ./conf -> /conf is mounted read-write: refusing it: it holds the project's app.env;" \
    --compose-cli "$reader" <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    env_file: ./conf/app.env
    volumes: ["./conf:/conf"]
YAML
  [ "$(stat -c %u:%g "$p/conf" "$p/conf/app.env" | sort -u)" = 0:0 ] || fail "the env file was given away"
  rm -r "$p/conf"
  [ "$(stat -c %u:%g "$p" "$p/compose.yaml" | sort -u)" = 0:0 ] || fail "the project's files were given away"
  # Read-only, it is only checked: nothing of it changes, the run goes on.
  { printf 'services:\n  app:\n    image: busybox\n    user: "1000:1000"\n    volumes: [".:/code:ro"]\n'; echo "$bystander"; } >"$p/compose.yaml"
  (cd "$p" && vp compose "${MAP[@]}" --compose-cli "$reader" --dry-run) >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "a read-only mount of the project directory was refused"; }
  grep -qF "# app: . -> /code (ro): it is the project directory and holds the project's compose.yaml, never changed: readable by host 501000:501000" "$T/out" ||
    { cat "$T/out"; fail "no read check of the project directory"; }
  # A directory above the project directory, though it holds none of the files read (the
  # compose file is elsewhere): chowned, a container could create .env in the project.
  s=$T/above && mkdir -p "$s/cfg" "$s/srv/app"
  printf 'services:\n  app:\n    image: busybox\n    user: "1000:1000"\n    volumes: ["%s/srv:/x"]\n' "$s" >"$s/cfg/compose.yaml"
  for how in "" --dry-run; do
    rc=0
    vp compose "${MAP[@]}" -f "$s/cfg/compose.yaml" --project-directory "$s/srv/app" --allow-source "$s" \
      --compose-cli "$reader" $how >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" -eq 5 ] && grep -q "$s/srv -> /x is mounted read-write: refusing it: it holds the project directory $s/srv/app, where Compose reads .env" "$T/err" ||
      { cat "$T/err" "$T/out"; fail "exit $rc: a read-write directory above the project directory was not refused ($how)"; }
    [ "$(stat -c %u:%g "$s/srv" "$s/srv/app" | sort -u)" = 0:0 ] || fail "the project directory was given away"
  done
  rm -r "$s"
  # A secret whose file is missing.
  refused 3 "$p/compose.yaml:8:15: service app: ./data/token.txt does not exist, and Compose will not create it \(a secret's file\)" \
    --compose-cli "$reader" <<'YAML'
secrets:
  token:
    file: ./data/token.txt
services:
  app:
    image: busybox
    user: "1000:1000"
    secrets: [token]
    volumes: ["./data/a:/a"]
YAML
done
# Files only Compose reads (env_file:, extends: file:), which the CLI would open by name as
# root: held to the rules of the compose file and .env first. A symlink (here to a root-only
# file) and a third user's file are refused, naming the compose file, line and key; the CLI
# never runs, nothing of the file shows.
printf 'TOKEN=hunter2\n' >"$T/root-only" && chmod 600 "$T/root-only"
ln -s "$T/root-only" "$p/vars"
ln -s "$T/root-only" "$p/base.yml"
printf 'A=1\n' >"$p/theirs.env" && chown 4321:4321 "$p/theirs.env"
for reader in "${readers[@]}"; do
  refused 5 "$p/compose.yaml:5:15: service app: env_file: $p/vars is a symlink: refusing to read it" \
    --compose-cli "$reader" <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    env_file: vars
    volumes: ["./data/a:/a"]
YAML
  ! grep -q hunter2 "$T/err" "$T/out" || fail "the refused file's content was printed"
  refused 5 "$p/compose.yaml:5:21: service app: extends: file: $p/base.yml is a symlink" --compose-cli "$reader" <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    extends: {file: base.yml, service: b}
YAML
  refused 5 "$p/compose.yaml:5:16: service app: env_file: $p/theirs.env is owned by uid 4321, neither root nor" \
    --compose-cli "$reader" <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    env_file: [./theirs.env]
    volumes: ["./data/a:/a"]
YAML
  # Through a YAML merge key (yaml-cpp leaves <<: unexpanded; Compose expands it).
  refused 5 "$p/compose.yaml:1:30: service app: env_file: $p/vars is a symlink: refusing to read it" \
    --compose-cli "$reader" <<'YAML'
x-common: &common {env_file: ./vars}
services:
  app:
    <<: *common
    image: busybox
    user: "1000:1000"
    volumes: ["./data/a:/a"]
YAML
  ! grep -q hunter2 "$T/err" "$T/out" || fail "the refused file's content was printed (merge key)"
done
rm "$p/vars" "$p/base.yml" "$p/theirs.env"

# A value from .env may be a secret: an error quotes the value as the file writes it.
printf 'RO=hunter2\n' >"$p/.env"
refused 3 "$p/compose.yaml:6:63: read_only: expected true or false, found \"\\\$\{RO\}\"" --compose-cli never <<'YAML'
services:
  app:
    image: busybox
    user: "1000:1000"
    volumes:
      - {type: bind, source: ./data/a, target: /a, read_only: "${RO}"}
YAML
! grep -q hunter2 "$T/err" || fail "a value from .env was printed: $(cat "$T/err")"
rm "$p/.env"
# Every problem of a project is reported, each once, before anything changes.
refused 5 "3 problems found before any change; nothing changed" --compose-cli never <<'YAML'
secrets:
  token:
    file: ./data/token.txt
services:
  app:
    image: busybox
    user: "1000:1000"
    volumes: ["/etc:/host-etc", "./data/shared:/shared", "./data/nope:/nope"]
    secrets: [token]
  db:
    image: busybox
    user: "999:999"
    volumes: ["./data/shared:/shared"]
YAML

# The control: the bystander alone is prepared (so the checks above could see a change).
echo "services:" | { cat; echo "$bystander"; } >"$p/compose.yaml"
(cd "$p" && vp compose "${MAP[@]}" --compose-cli never) >/dev/null 2>&1 || fail "the bystander alone was refused"
[ "$(stat -c %u:%g "$p/data/b" "$p/data/fresh" | sort -u)" = 501002:501002 ] || fail "the bystander was not prepared"
[ -n "$(ls -A "$VOLPREP_JOURNAL_DIR")" ] || fail "the control run wrote no journal"
echo "compose_refusals: each bad input is refused, naming where, and nothing changes"
