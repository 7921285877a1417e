#!/usr/bin/env bash
# volprep compose makes a missing bind source only once every existing one is vetted, and a
# failure making one removes what it made before: nothing half-done. The journal's header
# names what it made (rollback gives it back to root, leaves the directory).
source "$(dirname "$0")/lib.sh"
chmod 755 "$T"
p=$T/proj
mkdir -p "$p/data" "$p/ro" "$T/ro-src"
mount --bind -o ro "$T/ro-src" "$p/ro"
vc() { (cd "$p" && vp compose "${MAP[@]}" --compose-cli never "$@"); }
compose_file() {
  printf 'services:\n  app:\n    image: busybox\n    x-volprep: {as: "1000:1000"}\n    volumes: [%s]\n' "$1" >"$p/compose.yaml"
}

# The second one cannot be made (a read-only filesystem): the first, made, is removed again.
compose_file '"./data:/data", "./new1/a:/n1", "./ro/new2:/n2"'
expect_rc 3 vc 2>"$T/err"
grep -q "cannot create $p/ro/new2" "$T/err" || fail "$(cat "$T/err")"
grep -q "the directories made for it are removed again" "$T/err" || fail "$(cat "$T/err")"
[ ! -e "$p/new1" ] || fail "a source made before the failure was left behind"
[ "$(stat -c %u:%g "$p/data")" = 0:0 ] || fail "an existing source changed"
[ -z "$(ls -A "$VOLPREP_JOURNAL_DIR" 2>/dev/null)" ] || fail "a journal was written"

# Made, given to the service's user, and named in the journal's header.
compose_file '"./data:/data", "./new1/a:/n1"'
vc >"$T/out" 2>&1 || fail "$(cat "$T/out")"
[ "$(stat -c %u:%g "$p/new1/a" "$p/data" | sort -u)" = 501000:501000 ]
[ "$(stat -c %u:%g:%a "$p/new1")" = 0:0:755 ]
journal=$(ls "$VOLPREP_JOURNAL_DIR"/*.vpj)
vp journal show "$journal" >"$T/show"
grep -q "^# started .*  # created: $p/new1, $p/new1/a\$" "$T/show" || fail "$(head -3 "$T/show")"
echo "PASS compose_sources_made"
