#!/usr/bin/env bash
# `rollback --json` prints JSON Lines as `prepare --json` does: one object per entry restored
# (with --dry-run, to restore), sorted by path, each with the owner it has and gets back, then
# {"summary": {...}}. On the prepared demo jenkins_home: the dry run lists the 19 entries and
# changes nothing; the rollback lists the same 19 and puts the tree back as it was; a second
# one lists none and counts 19 already as before.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
mkdir "$T/a"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/a")
manifest "$vol" >"$T/m.before"
vp "$vol" --as 1000 "${MAP[@]}" >/dev/null 2>"$T/prep.err" || { cat "$T/prep.err" >&2; fail "prepare failed"; }
manifest "$vol" >"$T/m.prepared"
J=$(ls "$VOLPREP_JOURNAL_DIR"/*.vpj)

# check_json FILE WANT_ENTRIES SUMMARY_JSON: every line an object; the entries sorted, each
# from the run's owner back to the owner in m.before; then exactly this summary.
check_json() {
  "$PY" - "$1" "$2" "$3" "$vol" "$T/m.before" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
want, summary, vol = int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
before = {}
for row in open(sys.argv[5]):
    path, uid, gid = row.split()[:3]
    before[vol if path == "." else vol + "/" + path] = uid + ":" + gid
objs = [json.loads(l) for l in lines]
entries, last = objs[:-1], objs[-1]
assert last == {"summary": summary}, last
assert len(entries) == want, (len(entries), want)
paths = [e["path"] for e in entries]
assert paths == sorted(paths), paths
for e in entries:
    assert e["owner"] == {"before": "501000:501000", "after": before[e["path"]]}, e
    assert e["type"] in ("file", "directory", "symlink"), e
PY
}
vp rollback "$J" --dry-run --json >"$T/dry.json" 2>"$T/dry.err" || { cat "$T/dry.err" >&2; fail "rollback --dry-run --json exited $?"; }
check_json "$T/dry.json" 19 \
  '{"to_restore": 19, "already": 0, "changed_since": 0, "missing": 0, "failed": 0, "dry_run": true}' ||
  fail "rollback --dry-run --json: $(cat "$T/dry.json")"
manifest "$vol" | cmp -s - "$T/m.prepared" || fail "rollback --dry-run --json changed the volume"
# The same entries as the text dry run, in the same order.
vp rollback "$J" --dry-run >"$T/dry.txt" 2>/dev/null
diff <(grep -v '^to restore' "$T/dry.txt" | sed 's/  .*//') <("$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if "path" in o: print(o["path"])' "$T/dry.json") >&2 || fail "the JSON and text dry runs list other entries"

vp rollback "$J" --json >"$T/real.json" 2>"$T/real.err" || { cat "$T/real.err" >&2; fail "rollback --json exited $?"; }
check_json "$T/real.json" 19 \
  '{"restored": 19, "already": 0, "changed_since": 0, "missing": 0, "failed": 0, "dry_run": false}' ||
  fail "rollback --json: $(cat "$T/real.json")"
manifest "$vol" | cmp -s - "$T/m.before" || fail "rollback --json did not put the volume back"

vp rollback "$J" --json --no-journal >"$T/again.json" 2>/dev/null || fail "a second rollback --json exited $?"
check_json "$T/again.json" 0 \
  '{"restored": 0, "already": 19, "changed_since": 0, "missing": 0, "failed": 0, "dry_run": false}' ||
  fail "a second rollback --json: $(cat "$T/again.json")"
echo "rollback_json: ok"
