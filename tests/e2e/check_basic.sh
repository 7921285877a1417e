#!/usr/bin/env bash
# volprep check on the demo jenkins_home: before prepare it exits 1 and names what container
# uid 1000 cannot do (and what it cannot reach); after `volprep --as 1000`, and after
# `--acl` on a fresh copy, it exits 0; --groups with a group that a named-group ACL entry
# serves flips a denial (and the kernel agrees); output is sorted by path, the same with
# --threads 1 as with the default, and the summary counts add up.
source "$(dirname "$0")/lib.sh"
mkdir -p "$VOLPREP_JOURNAL_DIR"
chmod 755 "$T"   # the volume's parents must be traversable by the container's ids
PY=/usr/bin/python3

# run_check OUTFILE args...: volprep check, stdout to OUTFILE; prints the exit status.
run_check() {
  local out=$1 rc=0; shift
  vp check "$@" "${MAP[@]}" >"$out" 2>"$out.err" || rc=$?
  [ ! -s "$out.err" ] || fail "volprep check $* wrote to stderr: $(cat "$out.err")"
  echo "$rc"
}

# The summary line, and the entries of an --all text report: the counts must add up.
# summary_adds_up OUT VOL: OUT is `check VOL --all` text output.
summary_adds_up() {
  local out=$1 vol=$2
  local entries symlinks lines denied unreachable
  entries=$(find "$vol" ! -type l | wc -l)
  symlinks=$(find "$vol" -type l | wc -l)
  lines=$(grep -vc '^checked ' "$out" || true)
  denied=$(grep -v '^checked ' "$out" | grep -vc ': ok: ' || true)
  unreachable=$(grep -c ': unreachable: ' "$out" || true)
  local want="checked $entries, reachable $((entries - unreachable)), denied $denied, skipped $symlinks symlinks"
  [ "$lines" -eq "$entries" ] || fail "--all reported $lines entries, the tree has $entries (not symlinks): $(cat "$out")"
  grep -q "^$want " "$out" ||
    fail "summary: want '$want ...' (reachable: entries not reported unreachable), got: $(grep '^checked ' "$out")"
}

# The same for --json --all: checked, denied, reachable (objects without blocked_by).
json_summary_adds_up() {
  "$PY" - "$1" <<'EOF' || fail "JSON summary does not add up: $(tail -1 "$1")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
s = rows[-1]["summary"]
rows = rows[:-1]
want = {"checked": len(rows), "denied": sum(r["denied"] for r in rows),
        "reachable": sum("blocked_by" not in r for r in rows)}
bad = {k: (s.get(k), v) for k, v in want.items() if s.get(k) != v}
for r in rows:
    assert set(r) >= {"path", "type", "owner", "mode", "acl", "class", "granted", "denied", "missing"}, r
    assert r["denied"] == (r["missing"] != "---"), r
if bad:
    print("summary (got, want):", bad, file=sys.stderr)
    sys.exit(1)
EOF
}

# Paths in the order volprep promises: sorted by path (bytes), each once.
sorted_by_path() { # sorted_by_path JSONFILE
  "$PY" - "$1" <<'EOF' || fail "check --json output is not sorted by path: $1"
import json, sys
paths = [json.loads(l)["path"].encode() for l in open(sys.argv[1]) if '"summary"' not in l]
sys.exit(0 if all(a < b for a, b in zip(paths, paths[1:])) else 1)
EOF
}

# --- the demo before prepare ---------------------------------------------------------------
mkdir "$T/a"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/a")
rc=$(run_check "$T/a.out" "$vol" --as 1000)
[ "$rc" -eq 1 ] || fail "check before prepare exited $rc, want 1: $(cat "$T/a.out")"
grep -qxF "$vol: list, create/delete, enter denied: mode 0750 owner 1000:1000; container 1000 -> host 501000 is \"other\" (---)" "$T/a.out" ||
  fail "check does not name the volume root as denied: $(cat "$T/a.out")"
grep -qxF "$vol/config.xml: unreachable: $vol cannot be entered by container 1000 (host 501000)" "$T/a.out" ||
  fail "check does not name config.xml as unreachable: $(cat "$T/a.out")"
[ "$(grep -vc '^checked ' "$T/a.out")" -eq 18 ] || fail "want 18 denied entries before prepare: $(cat "$T/a.out")"
grep -q "logs/config-link" "$T/a.out" && fail "the symlink was checked: $(cat "$T/a.out")"
rc=$(run_check "$T/a.all" "$vol" --as 1000 --all)
[ "$rc" -eq 1 ] || fail "check --all before prepare exited $rc"
summary_adds_up "$T/a.all" "$vol"

# Directories the container can enter, files it cannot write: "write denied ... other".
find "$vol" -type d -exec chmod 0755 {} +
chmod 0644 "$vol/config.xml"
rc=$(run_check "$T/a2.out" "$vol" --as 1000)
[ "$rc" -eq 1 ] || fail "check on searchable dirs exited $rc, want 1"
grep -qxF "$vol/config.xml: write denied: mode 0644 owner 1000:1000; container 1000 -> host 501000 is \"other\" (r--)" "$T/a2.out" ||
  fail "want config.xml write denied as \"other\" (r--): $(cat "$T/a2.out")"
grep -qxF "$vol/logs/jenkins.log: read, write denied: mode 0640 owner 0:0; container 1000 -> host 501000 is \"other\" (---)" "$T/a2.out" ||
  fail "want logs/jenkins.log read, write denied: $(cat "$T/a2.out")"
grep -qxF "$vol/jobs: create/delete denied: mode 0755 owner 1000:1000; container 1000 -> host 501000 is \"other\" (r-x)" "$T/a2.out" ||
  fail "want jobs create/delete denied: $(cat "$T/a2.out")"
grep -q ': unreachable: ' "$T/a2.out" && fail "nothing is unreachable once every directory is 0755: $(cat "$T/a2.out")"
rc=$(run_check "$T/a2.r" "$vol" --as 1000 --need r)
[ "$rc" -eq 1 ] || fail "check --need r exited $rc, want 1 (0640 files of others)"
grep -q "^$vol/config.xml:" "$T/a2.r" && fail "config.xml (0644) is readable, --need r denied it: $(cat "$T/a2.r")"
grep -qxF "$vol/secrets/master.key: read denied: mode 0600 owner 1000:1000; container 1000 -> host 501000 is \"other\" (---)" "$T/a2.r" ||
  fail "want secrets/master.key read denied: $(cat "$T/a2.r")"
rc=$(run_check "$T/a2.all" "$vol" --as 1000 --all)
summary_adds_up "$T/a2.all" "$vol"

# --- after prepare: exit 0 -------------------------------------------------------------------
mkdir "$T/b"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/b")
vp "$vol" --as 1000 "${MAP[@]}" >/dev/null || fail "volprep --as 1000 exited $?"
rc=$(run_check "$T/b.out" "$vol" --as 1000)
[ "$rc" -eq 0 ] || fail "check after prepare exited $rc: $(cat "$T/b.out")"
grep -qx 'checked 18, reachable 18, denied 0, skipped 1 symlinks (need rw as container 1000 -> host 501000)' "$T/b.out" ||
  fail "summary after prepare: $(cat "$T/b.out")"
rc=$(run_check "$T/b.x" "$vol" --as 1000 --need rwx)
[ "$rc" -eq 1 ] || fail "check --need rwx after prepare exited $rc, want 1 (0640 files are not executable)"
grep -qxF "$vol/config.xml: execute denied: mode 0640 owner 501000:501000; container 1000 -> host 501000 is \"owner\" (rw-)" "$T/b.x" ||
  fail "want config.xml execute denied as owner: $(cat "$T/b.x")"
# Another container user still cannot.
rc=$(run_check "$T/b.2000" "$vol" --as 2000)
[ "$rc" -eq 1 ] || fail "check --as 2000 after prepare --as 1000 exited $rc, want 1"

# --- after --acl on a fresh copy: exit 0 -----------------------------------------------------
mkdir "$T/c"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/c")
vp "$vol" --as 1000 --acl "${MAP[@]}" >/dev/null || fail "volprep --as 1000 --acl exited $?"
rc=$(run_check "$T/c.out" "$vol" --as 1000)
[ "$rc" -eq 0 ] || fail "check after --acl exited $rc: $(cat "$T/c.out")"
grep -qx 'checked 18, reachable 18, denied 0, skipped 1 symlinks (need rw as container 1000 -> host 501000)' "$T/c.out" ||
  fail "summary after --acl: $(cat "$T/c.out")"
rc=$(run_check "$T/c.json" "$vol" --as 1000 --all --json)
[ "$rc" -eq 0 ] || fail "check --all --json after --acl exited $rc"
grep -F "\"path\":\"$vol/config.xml\"" "$T/c.json" | grep -q '"class":"named user".*' ||
  fail "config.xml should be reached through the named user entry: $(grep config.xml "$T/c.json")"
json_summary_adds_up "$T/c.json"
sorted_by_path "$T/c.json"

# --- --groups: a named group entry serves a supplementary group ------------------------------
mkdir "$T/d"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/d")
setfacl -R -m g:500100:rwX "$vol"   # container gid 100
rc=$(run_check "$T/d.out" "$vol" --as 1000)
[ "$rc" -eq 1 ] || fail "check without --groups exited $rc, want 1"
rc=$(run_check "$T/d.g" "$vol" --as 1000 --groups 100)
[ "$rc" -eq 0 ] || fail "check --groups 100 exited $rc, want 0: $(cat "$T/d.g")"
rc=$(run_check "$T/d.g2" "$vol" --as 1000 --groups 5,100,7)
[ "$rc" -eq 0 ] || fail "check --groups 5,100,7 exited $rc, want 0: $(cat "$T/d.g2")"
rc=$(run_check "$T/d.g3" "$vol" --as 1000 --groups 101)
[ "$rc" -eq 1 ] || fail "check --groups 101 exited $rc, want 1"
# The kernel agrees: with supplementary group 100, container uid 1000 writes config.xml.
in_ns() { # in_ns GROUPS cmd...: as container 1000:1000 with supplementary GROUPS
  local g=$1; shift
  as_container 0 0 setpriv --reuid 1000 --regid 1000 --groups "$g" -- "$@"
}
not in_ns 101 sh -c 'echo a >>"$1/config.xml"' _ "$vol" 2>/dev/null
in_ns 100 sh -c 'echo a >>"$1/config.xml" && echo n >"$1/jobs/new" && rm "$1/jobs/new"' _ "$vol" ||
  fail "the kernel refuses container 1000 with group 100 what volprep check allows"
# A mask without w takes it away again, from the named group as from anybody.
setfacl -m m::r-x "$vol/config.xml"
rc=$(run_check "$T/d.m" "$vol" --as 1000 --groups 100)
[ "$rc" -eq 1 ] || fail "check with mask r-x exited $rc, want 1"
grep -qxF "$vol/config.xml: write denied: mode 0650 owner 1000:1000 (ACL); container 1000 -> host 501000 is \"group\" (r--)" "$T/d.m" ||
  fail "want config.xml write denied by the mask: $(cat "$T/d.m")"
not in_ns 100 sh -c 'echo a >>"$1/config.xml"' _ "$vol" 2>/dev/null

# --- sorted by path, the same with --threads 1, several blocked directories ------------------
mkdir "$T/e"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/e")
find "$vol" -type d -exec chmod 0755 {} +
# Several directories that container uid 1000 cannot enter, each with something below.
for d in jobs plugins secrets workspace logs; do chmod 0750 "$vol/$d"; done
chmod 0755 "$vol/jobs/build-app"   # searchable, but under jobs: unreachable all the same
mkdir -p "$vol/zz/a b" "$vol/aa" && touch "$vol/zz/a b/f" "$vol/aa/f" "$vol/Z" "$vol/a.b"
chmod 0711 "$vol/zz"
first=""
for i in 1 2 3 4 5 6; do
  rc=$(run_check "$T/e.$i" "$vol" --as 1000 --all --json)
  [ "$rc" -eq 1 ] || fail "check --all --json run $i exited $rc, want 1"
  sorted_by_path "$T/e.$i"
  cmp -s "$T/e.1" "$T/e.$i" || fail "check run $i differs from run 1: $(diff "$T/e.1" "$T/e.$i" | head -20)"
done
rc=$(run_check "$T/e.t1" "$vol" --as 1000 --all --json --threads 1)
cmp -s "$T/e.1" "$T/e.t1" || fail "--threads 1 differs from the default: $(diff "$T/e.1" "$T/e.t1" | head -20)"
rc=$(run_check "$T/e.txt1" "$vol" --as 1000 --all --threads 1)
rc=$(run_check "$T/e.txt" "$vol" --as 1000 --all)
cmp -s "$T/e.txt1" "$T/e.txt" || fail "text output: --threads 1 differs from the default: $(diff "$T/e.txt1" "$T/e.txt" | head -20)"
# Everything below the five 0750 directories is unreachable, blocked by its top directory.
"$PY" - "$T/e.t1" "$vol" <<'EOF' || fail "blocked_by is wrong in $T/e.t1"
import json, sys
vol = sys.argv[2]
bad = []
for l in open(sys.argv[1]):
    j = json.loads(l)
    if "summary" in j:
        continue
    rel = j["path"][len(vol) + 1:] if j["path"] != vol else ""
    top = rel.split("/")[0]
    want = top if top in ("jobs", "plugins", "secrets", "workspace", "logs") and "/" in rel else None
    if j.get("blocked_by") != want:
        bad.append("%s: blocked_by %r, want %r" % (rel, j.get("blocked_by"), want))
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
json_summary_adds_up "$T/e.t1"
summary_adds_up "$T/e.txt" "$vol"

# An entry check cannot examine (run as nobody, a directory it cannot list) makes the answer
# incomplete: exit 4, the error named, not a plain "denied" (1).
mkdir -p "$T/ro/vol/locked" && echo y >"$T/ro/vol/locked/g"
chmod 755 "$T/ro" "$T/ro/vol" && chmod 700 "$T/ro/vol/locked"
chmod o+x "$T"  # nobody must reach $T/ro
rc=0; setpriv --reuid=65534 --regid=65534 --clear-groups timeout 60 "$VOLPREP" check "$T/ro/vol" --as 1000 \
  "${MAP[@]}" --need r >"$T/ro.out" 2>&1 || rc=$?
[ "$rc" -eq 4 ] || fail "check with an unlistable directory exited $rc, want 4: $(cat "$T/ro.out")"
grep -q "locked: cannot open directory" "$T/ro.out" || fail "the unlistable directory is not named: $(cat "$T/ro.out")"
# A filesystem mounted below PATH (a container's bind mount shows it) is named on stderr, not
# checked, and counted; --cross-filesystems checks it. Unmounted by lib.sh's cleanup.
mkdir -p "$T/mnt/vol/data"
echo x >"$T/mnt/vol/f"
vp "$T/mnt/vol" --as 1000 "${MAP[@]}" >/dev/null || fail "prepare of mnt/vol exited $?"
mount -t tmpfs -o mode=0700 tmpfs "$T/mnt/vol/data"
echo y >"$T/mnt/vol/data/g"
rc=0; vp check "$T/mnt/vol" --as 1000 "${MAP[@]}" >"$T/mnt.out" 2>"$T/mnt.err" || rc=$?
[ "$rc" -eq 0 ] || fail "check with a mount below exited $rc: $(cat "$T/mnt.out" "$T/mnt.err")"
grep -qxF "volprep: warning: $T/mnt/vol/data: mount point: not checked (--cross-filesystems checks it, unless it is proc, sysfs or the like)" "$T/mnt.err" ||
  fail "the mount not checked is not named: $(cat "$T/mnt.err")"
grep -qx 'checked 2, reachable 2, denied 0, skipped 0 symlinks, 1 mount not checked (need rw as container 1000 -> host 501000)' \
  "$T/mnt.out" || fail "summary with a mount below: $(cat "$T/mnt.out")"
vp check "$T/mnt/vol" --as 1000 "${MAP[@]}" --json 2>/dev/null | tail -1 | grep -q '"mounts_not_checked":1' ||
  fail "--json summary has no mounts_not_checked 1"
rc=$(run_check "$T/mnt.x" "$T/mnt/vol" --as 1000 --cross-filesystems)
[ "$rc" -eq 1 ] || fail "check --cross-filesystems exited $rc, want 1 (the tmpfs root is 0700 root's): $(cat "$T/mnt.x")"
grep -qF "$T/mnt/vol/data/g: unreachable: $T/mnt/vol/data cannot be entered" "$T/mnt.x" ||
  fail "check --cross-filesystems did not check the mount: $(cat "$T/mnt.x")"
# A read-only mount: with w to check, not checked (every write there fails), said; --need r
# checks it. proc is never entered: named, counted, not an error.
umount "$T/mnt/vol/data"
mkdir "$T/mnt/vol/ro" "$T/mnt/vol/proc" "$T/ro-src"
echo s >"$T/ro-src/secret" && chmod 600 "$T/ro-src/secret"
mount --bind "$T/ro-src" "$T/mnt/vol/ro" && mount -o remount,bind,ro "$T/mnt/vol/ro"
mount -t proc proc "$T/mnt/vol/proc"
rc=0; vp check "$T/mnt/vol" --as 1000 "${MAP[@]}" --cross-filesystems >"$T/ro.out" 2>"$T/ro.err" || rc=$?
[ "$rc" -eq 0 ] || fail "check --cross-filesystems over a read-only mount exited $rc: $(cat "$T/ro.out" "$T/ro.err")"
grep -qxF "volprep: warning: $T/mnt/vol/ro: read-only mount: not checked (nothing in it can be written; --need r checks it)" \
  "$T/ro.err" || fail "the read-only mount is not named: $(cat "$T/ro.err")"
grep -qxF "volprep: warning: $T/mnt/vol/proc: pseudo filesystem (proc, sysfs and the like): never entered, not checked" \
  "$T/ro.err" || fail "proc is not named: $(cat "$T/ro.err")"
grep -q ', 2 mounts not checked (need rw' "$T/ro.out" || fail "summary: $(tail -1 "$T/ro.out")"
rc=0; vp check "$T/mnt/vol" --as 1000 "${MAP[@]}" --cross-filesystems --need r >"$T/ro.out" 2>"$T/ro.err" || rc=$?
[ "$rc" -eq 1 ] || fail "check --need r over a read-only mount exited $rc: $(cat "$T/ro.out" "$T/ro.err")"
grep -qF "$T/mnt/vol/ro/secret: read denied: mode 0600 owner 0:0" "$T/ro.out" ||
  fail "--need r did not check the read-only mount: $(cat "$T/ro.out")"
grep -q ', 1 mount not checked (need r' "$T/ro.out" || fail "summary: $(tail -1 "$T/ro.out")"

echo "ok: check_basic"
