#!/usr/bin/env bash
# A project's name is whatever its compose file says: another user's project may share it.
# The journal records the project directory (path, device, inode); `rollback --project NAME`
# refuses when runs of that name come from two directories, naming each, and
# --project-directory DIR chooses. Every rollback says which directory it undoes.
source "$(dirname "$0")/lib.sh"
chmod 755 "$T"
mkdir -p "$T/alice/web/data" "$T/mallory/web/data"
chown 1000:1000 "$T/alice/web"
chown 1001:1001 "$T/mallory/web"
for p in "$T/alice/web" "$T/mallory/web"; do
  printf 'name: web\nservices:\n  app:\n    image: busybox\n    x-volprep: {as: "1000:1000"}\n    volumes: ["./data:/data"]\n' \
    >"$p/compose.yaml"
done
vc() { (cd "$1" && vp compose "${MAP[@]}" --compose-cli never) >"$T/out" 2>&1 || fail "$(cat "$T/out")"; }
vc "$T/alice/web"
sleep 1.1  # journal names and start times a second apart
vc "$T/mallory/web"
[ "$(stat -c %u "$T/alice/web/data" "$T/mallory/web/data" | sort -u)" = 501000 ]

# Both named: the journals record the directory, journal list shows it.
vp journal list >"$T/list"
grep -q "project web in $T/alice/web  " "$T/list" || fail "journal list: $(cat "$T/list")"
grep -q "project web in $T/mallory/web  " "$T/list" || fail "journal list: $(cat "$T/list")"
vp journal list --json | grep -q "\"project_directory\":\"$T/alice/web\"" || fail "journal list --json"

# The name alone: refused, each directory listed, nothing changed.
expect_rc 5 vp rollback --project web 2>"$T/err"
grep -q "from 2 directories" "$T/err" || fail "$(cat "$T/err")"
grep -q "in $T/alice/web (device .*journal $VOLPREP_JOURNAL_DIR/.*\.vpj" "$T/err" || fail "$(cat "$T/err")"
grep -q "in $T/mallory/web (device .*journal " "$T/err" || fail "$(cat "$T/err")"
[ "$(stat -c %u "$T/alice/web/data" "$T/mallory/web/data" | sort -u)" = 501000 ] || fail "a refused rollback changed something"

# The directory chooses (with the name, or alone); the rollback names it.
vp rollback --project web --project-directory "$T/alice/web" >"$T/out" 2>"$T/err" || fail "$(cat "$T/err")"
grep -q "undoing the run of the project \"web\" in $T/alice/web (device" "$T/err" || fail "$(cat "$T/err")"
[ "$(stat -c %u "$T/alice/web/data")" = 0 ] || fail "alice's project not rolled back"
[ "$(stat -c %u "$T/mallory/web/data")" = 501000 ] || fail "mallory's project rolled back"
(cd "$T/mallory/web" && vp rollback --project-directory .) >"$T/out" 2>"$T/err" || fail "$(cat "$T/err")"
grep -q "in $T/mallory/web (device" "$T/err" || fail "$(cat "$T/err")"
[ "$(stat -c %u "$T/mallory/web/data")" = 0 ] || fail "mallory's project not rolled back"

# A directory replaced since (same path, another inode) is not the project that ran there.
mv "$T/alice/web" "$T/alice/web.old" && mkdir "$T/alice/web"
expect_rc 3 vp rollback --project web --project-directory "$T/alice/web" 2>"$T/err"
grep -q "no journal of a volprep compose run of the project \"web\" in $T/alice/web" "$T/err" || fail "$(cat "$T/err")"
echo "PASS compose_project_dir"
