#!/usr/bin/env bash
# A filesystem that refuses every change (an NFS export with root_squash, a FUSE filesystem
# that lets root change no owner, volprep without CAP_CHOWN) stops the run after the first
# changes refused, none made: a few lines name the filesystem and the cause (or likely
# causes), say that nothing changed, and the exit status is 4; the failures are listed up to
# 20 (-v and --json give every one), and the journal left restores nothing. A few entries
# refused on a filesystem that takes the other changes (immutable files on ext4) stop
# nothing: the tree is prepared, those few reported, no cause said. A small tree (fewer
# entries than the stop takes) whose every change is refused gets its cause said once, at
# its end, as the stop says it, with nothing "not attempted".
source "$(dirname "$0")/lib.sh"
chmod 0755 "$T"  # nobody reaches the tree below
FILES=2000

# tree DIR OWNER: DIR/a holding $FILES empty files, everything owned by OWNER.
tree() {
  mkdir -p "$1/a"
  (cd "$1/a" && seq -f f%g "$FILES" | xargs touch)
  chown -R "$2:$2" "$1"
}
# few_lines FILE: the stopped run said it in a few lines, once.
few_lines() {
  local n; n=$(wc -l <"$1")
  [ "$n" -le 30 ] || fail "$n lines on stderr: $(head -40 "$1")"
  [ "$(grep -c '^volprep: error: stopped: ' "$1")" = 1 ] || fail "not said once: $(cat "$1")"
  grep -q '^volprep: error: \.\.\. and [0-9]* more failed entries (-v lists them all)$' "$1" || fail "no count of the rest: $(cat "$1")"
  grep -Eq 'stopped: .* \((ext4|xfs|btrfs|tmpfs|overlay|fuse)\) refused the first [0-9]+ changes volprep tried \(chown: Operation not permitted\) and allowed none, so it tried no more; nothing changed$' "$1" ||
    fail "what happened is not said: $(cat "$1")"
}
owners() { find "$1" -printf '%U:%G\n' | sort | uniq -c | tr -s ' '; }

# 1. Not root: no CAP_CHOWN. The cause is certain, and said.
tree "$T/t" 65534
before=$(owners "$T/t")
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- timeout 60 "$VOLPREP" "$@"; }
rc=0; nobody "$T/t" --as 1000 "${MAP[@]}" --no-journal >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 4 ] || fail "not root: exit $rc, want 4: $(tail -5 "$T/err")"
few_lines "$T/err"
grep -q '^volprep: error: cause: volprep runs as uid 65534 without CAP_CHOWN: run it as root' "$T/err" || fail "$(cat "$T/err")"
grep -Eq '^scanned [0-9]+, changed 0, .*failed [0-9]+, not attempted [0-9]+$' "$T/out" || fail "summary: $(cat "$T/out")"
failed=$(sed -E 's/.*failed ([0-9]+).*/\1/' "$T/out")
[ "$failed" -lt 200 ] || fail "$failed entries tried after the filesystem refused every one"
[ "$(owners "$T/t")" = "$before" ] || fail "owners changed: $(owners "$T/t")"
# -v lists every failure; --json carries every one, and the stop.
rc=0; nobody "$T/t" --as 1000 "${MAP[@]}" --no-journal -v >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 4 ] && [ "$(grep -c ': chown: Operation not permitted$' "$T/err")" -ge 100 ] || fail "-v: $(tail -3 "$T/err")"
rc=0; nobody "$T/t" --as 1000 "${MAP[@]}" --no-journal --json >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 4 ] || fail "--json: exit $rc"
python3 - "$T/out" <<'PY' || fail "--json: $(tail -3 "$T/out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
failed = [l["failed"] for l in lines if "failed" in l]
stopped = [l["stopped"] for l in lines if "stopped" in l]
summary = lines[-1]["summary"]
assert len(failed) == summary["failed"] >= 100, (len(failed), summary)
assert all(f["error"] == "chown: Operation not permitted" for f in failed)
assert summary["changed"] == 0 and summary["not_attempted"] > 0, summary
assert len(stopped) == 1 and stopped[0]["reason"] == "refused", stopped
PY

# 2. An NFS export squashing root, played by slowfs --squash-root, mounted as lib.sh's FUSE
# mode mounts it; the journal on.
mkdir "$T/back" "$T/mnt"
chmod 0700 "$T/back"
cc -std=gnu11 -O2 -o "$T/slowfs" "$VOLPREP_SRC/bench/slowfs.c" $(pkg-config --cflags --libs fuse3) ||
  fail "cannot build bench/slowfs.c (libfuse3-dev)"
"$T/slowfs" --delay-us 0 --attr-cache-s 0 --posix-acl 1 --squash-root 1 "$T/back" "$T/mnt" 2>"$T/slowfs.log" &
slowfs=$!
on_exit 'umount "$T/mnt" 2>/dev/null || umount -l "$T/mnt"; wait '$slowfs' || true'
for _ in $(seq 100); do [[ $(stat -f -c %T "$T/mnt") == fuse* ]] && break; sleep 0.05; done
[[ $(stat -f -c %T "$T/mnt") == fuse* ]] || fail "slowfs did not mount: $(cat "$T/slowfs.log")"
tree "$T/back/t" 0
before=$(owners "$T/back/t")
setattrs() { getfattr --only-values -n user.slowfs.stats "$T/mnt" 2>/dev/null | sed -nE 's/.* setattr ([0-9]+).*/\1/p'; }
rc=0; vp "$T/mnt/t" --as 1000 "${MAP[@]}" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 4 ] || fail "root squashed: exit $rc, want 4: $(tail -5 "$T/err")"
few_lines "$T/err"
grep -q '(fuse) refused' "$T/err" || fail "the filesystem is not named: $(cat "$T/err")"
grep -q '^volprep: error: likely causes: a FUSE or network filesystem that does not let root change owners .*; an NFS export that squashes root (root_squash' "$T/err" ||
  fail "the likely causes are not said: $(cat "$T/err")"
n=$(setattrs)
[ "${n:-0}" -lt 400 ] || fail "$n owner changes asked of a filesystem that refused the first 100 ($FILES entries)"
[ "$(owners "$T/back/t")" = "$before" ] || fail "owners changed: $(owners "$T/back/t")"
# The journal left behind restores nothing: every record is of a change refused or not tried.
rc=0; vp rollback --last "$T/mnt/t" >"$T/rb.out" 2>"$T/rb.err" || rc=$?
[ "$rc" = 0 ] || fail "rollback: exit $rc: $(cat "$T/rb.err")"
grep -Eq '^restored 0, already as before [0-9]+, changed since the run 0, missing 0, failed 0$' "$T/rb.out" ||
  fail "rollback: $(cat "$T/rb.out" "$T/rb.err")"
[ "$(owners "$T/back/t")" = "$before" ] || fail "owners changed by rollback: $(owners "$T/back/t")"
# --acl: the ACLs are refused the same way.
rc=0; vp "$T/mnt/t" --as 1000 "${MAP[@]}" --acl >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 4 ] || fail "--acl: exit $rc, want 4: $(tail -5 "$T/err")"
grep -q '(fuse) refused the first [0-9]* changes volprep tried (set ACL: Operation not permitted) and allowed none, so it tried no more; nothing changed$' "$T/err" ||
  fail "--acl: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -le 30 ] || fail "--acl: $(wc -l <"$T/err") lines"
[ -z "$(getfattr -R --absolute-names -m system.posix_acl "$T/back/t" 2>/dev/null)" ] || fail "--acl: an ACL was set"

# 3. A few immutable files on ext4: the rest is prepared, those few reported, no stop.
loop_ext4 64M "$T/ext" || fail "no loop device for an ext4"
tree "$T/ext/t" 0
chattr +i "$T/ext/t/a/f1" "$T/ext/t/a/f500" "$T/ext/t/a/f1999"
on_exit 'chattr -i "$T/ext/t/a/f1" "$T/ext/t/a/f500" "$T/ext/t/a/f1999" 2>/dev/null'
rc=0; vp "$T/ext/t" --as 1000 "${MAP[@]}" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 4 ] || fail "immutable: exit $rc, want 4: $(tail -5 "$T/err")"
grep -q 'stopped' "$T/err" && fail "immutable: the run stopped: $(cat "$T/err")"
grep -q 'causes\?: ' "$T/err" && fail "immutable: a cause said for a few refused among changes made: $(cat "$T/err")"
[ "$(grep -c ': chown: Operation not permitted$' "$T/err")" = 3 ] || fail "immutable: $(cat "$T/err")"
for f in f1 f500 f1999; do grep -q "/t/a/$f: chown: Operation not permitted$" "$T/err" || fail "$f not reported: $(cat "$T/err")"; done
grep -Eq "^scanned $((FILES + 2)), changed $((FILES - 1)), unchanged 0, skipped 0, failed 3$" "$T/out" || fail "immutable: $(cat "$T/out")"
[ "$(owners "$T/ext/t")" = "$(printf ' 3 0:0\n %d 501000:501000' $((FILES - 1)))" ] || fail "immutable: $(owners "$T/ext/t")"

# 4. Rollback lists its failures the same way: 30 files made immutable since the run fail to
# be restored; 20 are listed, then how many more.
imm=()
for i in $(seq 10 39); do imm+=("$T/ext/t/a/f$i"); done
chattr +i "${imm[@]}"
on_exit 'chattr -i "${imm[@]}" 2>/dev/null'
rc=0; vp rollback --last "$T/ext/t" >"$T/rb.out" 2>"$T/rb.err" || rc=$?
[ "$rc" = 4 ] || fail "rollback with 30 immutable files: exit $rc, want 4: $(tail -5 "$T/rb.err")"
[ "$(grep -c ': Operation not permitted$' "$T/rb.err")" = 20 ] || fail "rollback: not 20 listed: $(cat "$T/rb.err")"
grep -q '^volprep: error: \.\.\. and 10 more failed entries (-v lists them all)$' "$T/rb.err" ||
  fail "rollback: no count of the rest: $(cat "$T/rb.err")"

# 5. A small tree whose every change is refused: 10 immutable files, their directory already
# as wanted. Each listed, then what happened and the likely causes, once, immutable files first
# on ext4; the run ends as any other (exit 4, nothing "not attempted").
mkdir "$T/ext/small"
(cd "$T/ext/small" && seq -f f%g 10 | xargs touch)
chown 501000:501000 "$T/ext/small"
chattr +i "$T/ext/small"/f*
on_exit 'chattr -i "$T/ext/small"/f* 2>/dev/null'
rc=0; vp "$T/ext/small" --as 1000 "${MAP[@]}" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 4 ] || fail "small tree: exit $rc, want 4: $(cat "$T/err")"
[ "$(grep -c ': chown: Operation not permitted$' "$T/err")" = 10 ] || fail "small tree: not 10 listed: $(cat "$T/err")"
grep -q 'stopped' "$T/err" && fail "small tree: said as stopped: $(cat "$T/err")"
[ "$(grep -c '^volprep: error: likely causes: ' "$T/err")" = 1 ] || fail "small tree: the cause not said once: $(cat "$T/err")"
grep -qxF "volprep: error: $T/ext/small (ext4) refused all 10 changes volprep tried (chown: Operation not permitted) and let none complete" "$T/err" ||
  fail "small tree: what happened is not said: $(cat "$T/err")"
grep -q '^volprep: error: likely causes: immutable or append-only files (chattr +i' "$T/err" ||
  fail "small tree: immutable files are not the first likely cause on ext4: $(cat "$T/err")"
grep -qx 'scanned 11, changed 0, unchanged 1, skipped 0, failed 10' "$T/out" || fail "small tree: $(cat "$T/out")"
[ "$(wc -l <"$T/err")" -le 14 ] || fail "small tree: $(wc -l <"$T/err") lines on stderr: $(cat "$T/err")"
# --json says it too, before the summary, for a reader of stdout alone.
rc=0; vp "$T/ext/small" --as 1000 "${MAP[@]}" --json >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 4 ] || fail "small tree --json: exit $rc, want 4: $(cat "$T/err")"
python3 - "$T/out" "$T/ext/small" <<'PY' || fail "small tree --json: $(cat "$T/out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
refused = [l["refused_all"] for l in lines if "refused_all" in l]
assert len(refused) == 1 and not any("stopped" in l for l in lines), lines
r = refused[0]
assert (r["path"], r["refused"], r["error"], r["fs_type"]) == (sys.argv[2], 10, "chown: Operation not permitted", "ext4"), r
assert r["likely_causes"].startswith("immutable or append-only files (chattr +i"), r
assert "summary" in lines[-1] and lines[-1]["summary"]["failed"] == 10, lines[-1]
PY
echo PASS
