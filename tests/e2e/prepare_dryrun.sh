#!/usr/bin/env bash
# volprep prepare's reporting modes on the demo jenkins_home: --dry-run prints the plan sorted
# by path plus a summary and moves no ctime; --check exits 1 while something would change and
# 0 after a real run; --threads 1 and the default print the same bytes; --json is JSON Lines
# ending with a summary; --chmod and --exclude do what they say.
source "$(dirname "$0")/lib.sh"
# Rollback journals of real runs stay under $T (made now, so $T itself does not change later).
mkdir -p "$VOLPREP_JOURNAL_DIR"
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}
ctimes() { find "$1" -printf '%C@ %U:%G %m %p\n' | LC_ALL=C sort; }

mkdir "$T/a"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/a")

# The plan we expect, from the tree itself: sorted by relative path, PATH as given + "/" + rel.
expected_plan() { # expected_plan VOL: "PATH  owner U:G -> 501000:501000  mode 0MMM" (symlinks: no mode)
  find "$1" -printf '%P\0%U:%G\0%m\0%y\0' | "$PY" -c '
import sys
root = sys.argv[1]
f = sys.stdin.buffer.read().split(b"\0")[:-1]
rows = sorted(zip(f[0::4], f[1::4], f[2::4], f[3::4]))
for rel, owner, mode, typ in rows:
    path = root + ("/" + rel.decode() if rel else "")
    line = "%s  owner %s -> 501000:501000" % (path, owner.decode())
    if typ != b"l":
        line += "  mode %04o" % int(mode, 8)
    print(line)' "$1"
}
expected_plan "$vol" >"$T/plan.expected"
[ "$(wc -l <"$T/plan.expected")" = 19 ] || fail "demo volume has $(wc -l <"$T/plan.expected") entries, want 19"
grep -qxF "$vol/secrets/master.key  owner 1000:1000 -> 501000:501000  mode 0600" "$T/plan.expected" ||
  fail "test bug: expected plan lacks the contract's example line"

ctimes "$vol" >"$T/ctimes.before"
sleep 0.05

# --- dry run ------------------------------------------------------------------------------
rc=0; vp "$vol" --as 1000 "${MAP[@]}" --dry-run >"$T/dry.out" 2>"$T/dry.err" || rc=$?
[ "$rc" = 0 ] || fail "--dry-run exited $rc: $(cat "$T/dry.err")"
grep -v '^scanned ' "$T/dry.out" >"$T/dry.plan" || true
# Symlinks: the line starts as expected; what follows the owner is free.
"$PY" - "$T/plan.expected" "$T/dry.plan" <<'PY' || fail "dry-run plan differs from the expected one (above)"
import sys
want = open(sys.argv[1]).read().splitlines()
got = open(sys.argv[2]).read().splitlines()
bad = len(want) != len(got)
for w, g in zip(want, got):
    if not (g == w or ("  mode " not in w and g.startswith(w + "  "))):
        bad = True
        print("  want: %r\n  got:  %r" % (w, g), file=sys.stderr)
if len(want) != len(got):
    print("  %d plan lines, want %d" % (len(got), len(want)), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
grep -qxF "$vol/secrets/master.key  owner 1000:1000 -> 501000:501000  mode 0600" "$T/dry.out" ||
  fail "no line '$vol/secrets/master.key  owner 1000:1000 -> 501000:501000  mode 0600'"
grep -qxF "$vol/logs/jenkins.log  owner 0:0 -> 501000:501000  mode 0640" "$T/dry.out" ||
  fail "root-owned jenkins.log not planned as 'owner 0:0 -> 501000:501000'"
sed 's/  owner .*//' "$T/dry.plan" >"$T/dry.paths"
LC_ALL=C sort -c "$T/dry.paths" 2>/dev/null || fail "dry-run plan is not sorted by path"
[ "$(grep -c '^scanned ' "$T/dry.out")" = 1 ] || fail "want one summary line on stdout: $(cat "$T/dry.out")"
[ "$(tail -n1 "$T/dry.out")" = "scanned 19, to change 19, unchanged 0, skipped 0" ] ||
  fail "dry-run summary is '$(tail -n1 "$T/dry.out")', want 'scanned 19, to change 19, unchanged 0, skipped 0'"
ctimes "$vol" >"$T/ctimes.after"
cmp -s "$T/ctimes.before" "$T/ctimes.after" || fail "the dry run moved a ctime (or owner/mode)"

# -n is --dry-run; prepare is the default subcommand.
vp prepare -n "$vol" --as 1000 "${MAP[@]}" >"$T/dry2.out" 2>/dev/null || fail "prepare -n exited $?"
cmp -s "$T/dry.out" "$T/dry2.out" || fail "'prepare -n' output differs from '--dry-run'"

# --- --json ---------------------------------------------------------------------------------
rc=0; vp "$vol" --as 1000 "${MAP[@]}" --dry-run --json >"$T/json.out" 2>"$T/json.err" || rc=$?
[ "$rc" = 0 ] || fail "--dry-run --json exited $rc: $(cat "$T/json.err")"
"$PY" - "$T/json.out" "$vol" <<'PY' || fail "--json output is wrong (above)"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
vol = sys.argv[2]
objs = []
for i, l in enumerate(lines):
    try:
        objs.append(json.loads(l))
    except Exception as e:
        sys.exit("  line %d is not JSON (%s): %r" % (i + 1, e, l))
if not objs or "summary" not in objs[-1]:
    sys.exit("  the last object has no 'summary': %r" % (objs[-1:],))
entries = objs[:-1]
if len(entries) != 19:
    sys.exit("  %d entry objects, want 19" % len(entries))
if any("path" not in o for o in entries):
    sys.exit("  an entry object has no 'path'")
paths = [o["path"] for o in entries]
if paths != sorted(paths):
    sys.exit("  JSON entries are not sorted by path")
if vol + "/secrets/master.key" not in paths or vol not in paths:
    sys.exit("  JSON paths do not name the entries as PATH + '/' + rel")
if any("summary" in o for o in entries):
    sys.exit("  a 'summary' before the last line")
PY

# --- --check before ---------------------------------------------------------------------------
rc=0; vp "$vol" --as 1000 "${MAP[@]}" --check >"$T/check.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "--check before the run exited $rc, want 1"
ctimes "$vol" >"$T/ctimes.after"
cmp -s "$T/ctimes.before" "$T/ctimes.after" || fail "--check moved a ctime"

# --- real run, then nothing left to do --------------------------------------------------------
rc=0; vp "$vol" --as 1000 "${MAP[@]}" >"$T/run.out" 2>"$T/run.err" || rc=$?
[ "$rc" = 0 ] || fail "real run exited $rc: $(cat "$T/run.err")"
grep -qx 'scanned 19, changed 19, unchanged 0, skipped 0, failed 0' "$T/run.out" ||
  fail "real-run summary: '$(cat "$T/run.out")', want 'scanned 19, changed 19, unchanged 0, skipped 0, failed 0'"
! grep -q ' owner ' "$T/run.out" || fail "the real run printed plan lines (only --dry-run should)"
[ -z "$(find "$vol" ! \( -user 501000 -group 501000 \))" ] || fail "real run left entries unchanged"
[ "$(stat -c %a "$vol/secrets/master.key")" = 600 ] || fail "real run without --chmod changed a mode"
rc=0; vp "$vol" --as 1000 "${MAP[@]}" --check >"$T/check.out" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "--check after the run exited $rc, want 0: $(cat "$T/check.out")"
vp "$vol" --as 1000 "${MAP[@]}" -n >"$T/dry3.out" 2>/dev/null || fail "dry run after the run exited $?"
[ "$(cat "$T/dry3.out")" = "scanned 19, to change 0, unchanged 19, skipped 0" ] ||
  fail "dry run after the run printed: $(cat "$T/dry3.out")"
ctimes "$vol" >"$T/ctimes.done"; sleep 0.05
vp "$vol" --as 1000 "${MAP[@]}" >"$T/run2.out" 2>&1 || fail "second real run exited $?"
grep -q 'scanned 19, changed 0, unchanged 19' "$T/run2.out" || fail "second run: $(cat "$T/run2.out")"
ctimes "$vol" >"$T/ctimes.again"
cmp -s "$T/ctimes.done" "$T/ctimes.again" || fail "a run with nothing to do moved ctimes"

# --- --threads 1 and the default print the same bytes (~2000 entries) ---------------------
big=$T/big
"$PY" - "$big" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(40):
    d = os.path.join(root, "dir%02d" % i, "sub")
    os.makedirs(d)
    for j in range(24):
        for base in (os.path.dirname(d), d):
            p = os.path.join(base, "file-%02d-%02d" % (i, j))
            with open(p, "w") as f:
                f.write("x")
            os.chown(p, 1000 if j % 3 else 0, 1000 if j % 3 else 0)
            os.chmod(p, 0o640 if j % 2 else 0o600)
    os.symlink("../dir%02d" % ((i + 1) % 40), os.path.join(d, "link"))
    os.lchown(os.path.join(d, "link"), 1000, 1000)
# Some already in place, to mix 'unchanged' in.
for j in range(0, 24, 4):
    os.chown(os.path.join(root, "dir07", "file-07-%02d" % j), 501000, 501000)
PY
n=$(find "$big" -printf x | wc -c)
[ "$n" -ge 1900 ] || fail "big tree has only $n entries"
vp "$big" --as 1000 "${MAP[@]}" -n --threads 1 >"$T/t1.out" 2>"$T/t1.err" || fail "--threads 1 exited $?"
vp "$big" --as 1000 "${MAP[@]}" -n >"$T/tdef.out" 2>"$T/tdef.err" || fail "default threads exited $?"
vp "$big" --as 1000 "${MAP[@]}" -n --threads 2 >"$T/t2.out" 2>/dev/null || fail "--threads 2 exited $?"
vp "$big" --as 1000 "${MAP[@]}" -n --threads 8 >"$T/t8.out" 2>/dev/null || fail "--threads 8 exited $?"
cmp "$T/t1.out" "$T/tdef.out" || fail "--threads 1 and default dry-run outputs differ"
cmp "$T/t1.out" "$T/t2.out" || fail "--threads 1 and --threads 2 dry-run outputs differ"
cmp "$T/t1.out" "$T/t8.out" || fail "--threads 1 and --threads 8 dry-run outputs differ"
[ "$(grep -c ' owner ' "$T/t1.out")" = $((n - 6)) ] ||
  fail "big tree: $(grep -c ' owner ' "$T/t1.out") plan lines, want $((n - 6))"
[ "$(tail -n1 "$T/t1.out")" = "scanned $n, to change $((n - 6)), unchanged 6, skipped 0" ] ||
  fail "big tree summary: $(tail -n1 "$T/t1.out")"
vp "$big" --as 1000 "${MAP[@]}" -n --json --threads 1 >"$T/j1.out" 2>/dev/null || fail "json --threads 1 exited $?"
vp "$big" --as 1000 "${MAP[@]}" -n --json >"$T/jdef.out" 2>/dev/null || fail "json default threads exited $?"
cmp "$T/j1.out" "$T/jdef.out" || fail "--json --threads 1 and default outputs differ"

# --- --chmod u+rwX,g+rX -------------------------------------------------------------------
mkdir "$T/c" "$T/c-outside"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/c")
chmod 0400 "$vol/config.xml"
chmod 0700 "$vol/jobs" "$vol/workspace/build-app/main.c"
chmod 0500 "$vol/plugins"
chmod 0604 "$vol/plugins/git.jpi"
echo o >"$T/c-outside/target"; chmod 0400 "$T/c-outside/target"
ln -s "$T/c-outside/target" "$vol/link-out"
ln -s "$T/c-outside" "$vol/link-out-dir"
# The oracle: GNU chmod on a copy, symlinks left out.
cp -a "$vol" "$T/c/oracle"
find "$T/c/oracle" ! -type l -exec chmod u+rwX,g+rX {} +
want_modes=$(cd "$T/c/oracle" && find . -printf '%m %y %p\n' | LC_ALL=C sort)
outside_before=$(stat -c '%u:%g %a %Z %z' "$T/c-outside/target" "$T/c-outside")
vp "$vol" --as 1000 "${MAP[@]}" --chmod u+rwX,g+rX -n >"$T/chmod.dry" 2>&1 || fail "--chmod dry run exited $?"
grep -qxF "$vol/config.xml  owner 1000:1000 -> 501000:501000  mode 0400 -> 0640" "$T/chmod.dry" ||
  fail "--chmod dry run: no 'mode 0400 -> 0640' line for config.xml: $(grep config.xml "$T/chmod.dry")"
vp "$vol" --as 1000 "${MAP[@]}" --chmod u+rwX,g+rX >"$T/chmod.out" 2>&1 || fail "--chmod run exited $?: $(cat "$T/chmod.out")"
got_modes=$(cd "$vol" && find . -printf '%m %y %p\n' | LC_ALL=C sort)
[ "$got_modes" = "$want_modes" ] ||
  fail "modes after --chmod u+rwX,g+rX differ from chmod's:"$'\n'"$(diff <(echo "$want_modes") <(echo "$got_modes"))"
[ "$(stat -c %a "$vol/jobs")" = 750 ] && [ "$(stat -c %a "$vol/workspace/build-app/main.c")" = 750 ] &&
  [ "$(stat -c %a "$vol/config.xml")" = 640 ] && [ "$(stat -c %a "$vol/secrets/master.key")" = 640 ] ||
  fail "spot check of --chmod modes failed"
[ "$(stat -c %u:%g "$vol/link-out")" = 501000:501000 ] || fail "--chmod: symlink owner not changed"
[ "$(stat -c '%u:%g %a %Z %z' "$T/c-outside/target" "$T/c-outside")" = "$outside_before" ] ||
  fail "--chmod followed a symlink: the outside target changed"
[ -z "$(find "$vol" ! \( -user 501000 -group 501000 \))" ] || fail "--chmod run left owners unchanged"

# --- --exclude workspace ------------------------------------------------------------------
mkdir "$T/e"
vol=$(bash "$VOLPREP_SRC/fixtures/make-demo-volume.sh" "$T/e")
ws_before=$(find "$vol/workspace" -printf '%U:%G %m %C@ %p\n' | LC_ALL=C sort)
sleep 0.05
vp "$vol" --as 1000 "${MAP[@]}" --exclude workspace -n >"$T/ex.dry" 2>&1 || fail "--exclude dry run exited $?"
! grep -q "^$vol/workspace" "$T/ex.dry" || fail "--exclude workspace: the dry run plans workspace entries"
vp "$vol" --as 1000 "${MAP[@]}" --exclude workspace >"$T/ex.out" 2>&1 || fail "--exclude run exited $?: $(cat "$T/ex.out")"
[ "$(find "$vol/workspace" -printf '%U:%G %m %C@ %p\n' | LC_ALL=C sort)" = "$ws_before" ] ||
  fail "--exclude workspace: workspace/ was changed"
bad=$(find "$vol" -path "$vol/workspace" -prune -o ! \( -user 501000 -group 501000 \) -print)
[ -z "$bad" ] || fail "--exclude workspace: entries outside workspace/ not changed: $bad"
grep -Eq 'skipped [1-9][0-9]* \([^)]*excluded' "$T/ex.out" || fail "--exclude: summary does not count it: $(grep scanned "$T/ex.out")"
echo "ok: prepare_dryrun"
