#!/usr/bin/env bash
# volprep compose changes or creates a bind source only below the project directory, owned
# by root, the directory's owner, a container or the service's user, unless root names its
# directory with --allow-source: a compose file is its user's to write, volprep runs as root.
# A source elsewhere (/root/.bashrc, /var/spool/cron, ~, another user's tree) is refused with
# exit 5 naming compose.yaml:LINE, and nothing changes; a read-only one is only checked.
source "$(dirname "$0")/lib.sh"
chmod 755 "$T"
bob=4242 alice=5555
p=$T/bob
mkdir -p "$p/data" "$p/foreign" "$T/alice/sub"
chown -R $alice:$alice "$T/alice" "$p/foreign"
chown -R $bob:$bob "$p/data"
chown $bob:$bob "$p"
compose_file() { # the service's volumes, one a line (the first on line 7)
  printf 'services:\n  app:\n    image: busybox\n    userns_mode: host\n    x-volprep: {as: "1000:1000"}\n' >"$p/compose.yaml"
  printf '    volumes:\n' >>"$p/compose.yaml"
  printf '      - %s\n' "$@" >>"$p/compose.yaml"
  chown $bob:$bob "$p/compose.yaml"
}
compose_file /root/.bashrc:/x /var/spool/cron:/y "~/.profile:/z" ./data:/data
vc() { (cd "$p" && vp compose "${MAP[@]}" --compose-cli never "$@"); }
snap() { stat -c '%u:%g %a %n' "$p/data" "$p/foreign" "$T/alice" "$T/alice/sub" /root /var/spool; ls -a /var/spool; }
snap >"$T/before"

# System paths and root's home, only ever in a dry run: exit 5, each named with its line.
expect_rc 5 vc -n 2>"$T/err"
grep -q "compose.yaml:7:.*/root/.bashrc: refusing to \(change\|create\) it: it is outside the project directory $p" "$T/err" ||
  fail "/root/.bashrc not refused: $(cat "$T/err")"
grep -q "compose.yaml:8:.*/var/spool/cron\(: refusing to \(change\|create\) it\| is mounted read-write: refusing it (it is in the system tree /var/spool/cron)\)" "$T/err" ||
  fail "/var/spool/cron not refused: $(cat "$T/err")"
grep -q "compose.yaml:9:.*/root/.profile: refusing" "$T/err" || fail "~ not refused: $(cat "$T/err")"
grep -q "nothing changed" "$T/err"

# Another user's tree, outside the project and inside it: a real run, refused, nothing changed.
compose_file "$T/alice:/a" "$T/made/new:/n" ./foreign:/f ./data:/data
expect_rc 5 vc 2>"$T/err"
grep -q "compose.yaml:7:.*$T/alice: refusing to change it: it is outside the project directory" "$T/err"
grep -q "$T/made/new: refusing to create it" "$T/err"
grep -q "/foreign: refusing to change it: it is owned by uid $alice, neither root, the project directory's owner (uid $bob)" "$T/err" ||
  fail "a third user's directory in the project not refused: $(cat "$T/err")"
[ ! -e "$T/made" ] || fail "a refused source was created"
snap | diff "$T/before" - || fail "a refused run changed something"

# Root names them (directories that exist): prepared.
mkdir "$T/made"
vc --allow-source "$T/alice" --allow-source "$T/made" --allow-source "$p/foreign" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
[ "$(stat -c %u:%g "$T/alice/sub" "$T/made/new" "$p/foreign" "$p/data" | sort -u)" = 1000:1000 ]

# Read-only outside the project: checked, never changed.
chown -R $alice:$alice "$T/alice"
compose_file "$T/alice:/a:ro" ./data:/data
vc >"$T/out" 2>&1 || fail "$(cat "$T/out")"
grep -q "outside what volprep may change, never changed" "$T/out" || fail "$(cat "$T/out")"
[ "$(stat -c %u "$T/alice")" = $alice ]
echo "PASS compose_sources_scope"
