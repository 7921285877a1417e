#!/usr/bin/env bash
# --cross-filesystems and a read-only mount inside the tree (a filesystem mounted ro, a
# `mount -o bind,ro`): the mount is one line, "read-only mount: left alone", never entered,
# not an EROFS failure for each of its entries; the rest of the tree (a writable mount in it
# too) is prepared and the run exits 0, as it does beside a read-only btrfs snapshot
# (fs_btrfs.sh). The dry run and --check say the same and plan nothing in it; shift leaves it
# alone the same way; rollback restores the rest. Without --cross-filesystems each is a mount
# point, as before. Every mount is under $T, which lib.sh's exit trap unmounts on any exit.
source "$(dirname "$0")/lib.sh"
mkdir -p "$VOLPREP_JOURNAL_DIR"
v=$T/v
mkdir -p "$v/d" "$v/ro" "$v/bro" "$v/rw" "$T/elsewhere/e" "$T/back"
for i in 1 2 3; do echo "$i" >"$v/d/f$i"; done
# A tmpfs with a few entries, then remounted read-only: the filesystem itself is read-only.
mount -t tmpfs -o size=4m,mode=0755 volprep-e2e-ro "$v/ro"
mkdir "$v/ro/sub"; for i in 1 2 3 4 5; do echo "$i" >"$v/ro/sub/g$i"; done
mount -o remount,ro "$v/ro"
# A directory outside the tree bind-mounted read-only into it: only the mount is read-only.
for i in 1 2 3; do echo "$i" >"$T/elsewhere/e/h$i"; done
mount --bind "$T/elsewhere" "$v/bro"
mount -o remount,bind,ro "$v/bro"
# A writable tmpfs: --cross-filesystems enters it.
mount -t tmpfs -o size=4m,mode=0755 volprep-e2e-rw "$v/rw"
echo w >"$v/rw/w"
touch "$v/ro/x" 2>/dev/null && fail "the tmpfs is not read-only"
touch "$v/bro/x" 2>/dev/null && fail "the bind mount is not read-only"
owners() { find "$@" -printf '%p %U:%G\n' | sort; }
ro_before=$(owners "$v/ro" "$v/bro")
line_ro="volprep: warning: $v/ro: read-only mount: left alone (nothing in it can change)"
line_bro="volprep: warning: $v/bro: read-only mount: left alone (nothing in it can change)"

# one_line_each OUT: each read-only mount named once, by that line; no EROFS.
one_line_each() {
  grep -qi 'read-only file system' <<<"$1" && fail "EROFS reported: $1"
  grep -qxF "$line_ro" <<<"$1" || fail "the read-only tmpfs is not named one: $1"
  grep -qxF "$line_bro" <<<"$1" || fail "the read-only bind mount is not named one: $1"
  [ "$(grep -c "$v/ro\b" <<<"$1")" -eq 1 ] || fail "want one line about $v/ro: $1"
  [ "$(grep -c "$v/bro\b" <<<"$1")" -eq 1 ] || fail "want one line about $v/bro: $1"
}

# Without --cross-filesystems: three mount points, as ever.
rc=0; out=$(vp "$v" --as 1000 "${MAP[@]}" -n 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "dry run without --cross-filesystems exited $rc: $out"
grep -q 'skipped 3 (3 mount point)' <<<"$out" || fail "summary without --cross-filesystems: $out"

# The dry run: the same lines, nothing planned in them.
rc=0; out=$(vp "$v" --as 1000 "${MAP[@]}" --cross-filesystems -n 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "dry run exited $rc: $out"
one_line_each "$out"
grep -qF "$v/rw/w  owner 0:0 -> 501000:501000" <<<"$out" || fail "the dry run does not enter the writable mount: $out"
grep -q 'to change 7, unchanged 0, skipped 2 (2 read-only mount)$' <<<"$out" || fail "dry-run summary: $out"

# --check before: changes due outside the read-only mounts (exit 1), none promised in them.
rc=0; out=$(vp "$v" --as 1000 "${MAP[@]}" --cross-filesystems --check 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "--check before exited $rc, want 1: $out"
one_line_each "$out"

# The run: one line each, the rest prepared, exit 0 (a read-only snapshot's status).
rc=0; out=$(vp "$v" --as 1000 "${MAP[@]}" --cross-filesystems 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "--cross-filesystems with read-only mounts exited $rc: $out"
one_line_each "$out"
grep -q 'scanned 9, changed 7, unchanged 0, skipped 2 (2 read-only mount), failed 0$' <<<"$out" || fail "summary: $out"
bad=$(find "$v" \( -path "$v/ro" -o -path "$v/bro" \) -prune -o \( ! -user 501000 -o ! -group 501000 \) -print)
[ -z "$bad" ] || fail "not 501000:501000 after the run: $bad"
[ "$(owners "$v/ro" "$v/bro")" = "$ro_before" ] || fail "the read-only mounts changed: $(owners "$v/ro" "$v/bro")"

# --check after: nothing left to change, the mounts still one line each.
rc=0; out=$(vp "$v" --as 1000 "${MAP[@]}" --cross-filesystems --check 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "--check after the run exited $rc: $out"
one_line_each "$out"

# Rollback (--cross-filesystems, as the run) restores what the run changed: nothing of it was in
# the read-only mounts.
rc=0; out=$(vp rollback --last "$v" --cross-filesystems 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "rollback exited $rc: $out"
grep -Eq '^restored 7, .*failed 0$' <<<"$out" || fail "rollback: $out"
bad=$(find "$v" \( -path "$v/ro" -o -path "$v/bro" \) -prune -o \( ! -user 0 -o ! -group 0 \) -print)
[ -z "$bad" ] || fail "not 0:0 after rollback: $bad"

# shift --cross-filesystems leaves them alone the same way.
rc=0; out=$(vp shift "$v" "${MAP[@]}" --cross-filesystems 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "shift --cross-filesystems exited $rc: $out"
one_line_each "$out"
[ "$(stat -c %u:%g "$v/rw/w")" = 500000:500000 ] || fail "shift did not enter the writable mount: $(stat -c %u:%g "$v/rw/w")"
[ "$(owners "$v/ro" "$v/bro")" = "$ro_before" ] || fail "shift changed the read-only mounts"

# PATH itself on a read-only mount: refused before anything (exit 5, one line, no journal), not
# an EROFS failure for each entry; the dry run says a run would be refused; shift the same.
journals=$(ls "$VOLPREP_JOURNAL_DIR" | wc -l)
for cmd in "vp $v/ro --as 1000 ${MAP[*]}" "vp shift $v/ro ${MAP[*]}" "vp $v/bro/e/h1 --as 1000 ${MAP[*]}"; do
  rc=0; out=$($cmd 2>&1) || rc=$?
  [ "$rc" -eq 5 ] || fail "$cmd on a read-only mount exited $rc, want 5: $out"
  [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q "read-only mount, where nothing can change.*nothing changed$" <<<"$out" ||
    fail "$cmd on a read-only mount: want one line saying so: $out"
done
[ "$(ls "$VOLPREP_JOURNAL_DIR" | wc -l)" -eq "$journals" ] || fail "a refused run wrote a journal"
rc=0; out=$(vp "$v/ro" --as 1000 "${MAP[@]}" -n 2>&1) || rc=$?
[ "$rc" -eq 0 ] && grep -q "is on a read-only mount, where nothing can change: a run would be refused" <<<"$out" ||
  fail "the dry run of a read-only PATH (exit $rc) does not say a run would be refused: $out"
[ "$(owners "$v/ro" "$v/bro")" = "$ro_before" ] || fail "the read-only mounts changed"

# Rollback of a run on a filesystem since remounted read-only: refused (exit 5, one line), not
# an EROFS failure for each entry; the dry run still says what it would restore; read-write
# again, it restores.
mount -t tmpfs -o size=4m,mode=0755 volprep-e2e-back "$T/back"
mkdir "$T/back/d"; echo f >"$T/back/d/f"
vp "$T/back" --as 1000 "${MAP[@]}" -q >/dev/null
mount -o remount,ro "$T/back"
rc=0; out=$(vp rollback --last "$T/back" 2>&1) || rc=$?
[ "$rc" -eq 5 ] || fail "rollback on a read-only mount exited $rc, want 5: $out"
[ "$(wc -l <<<"$out")" -eq 1 ] && grep -q "is on a read-only mount, where nothing can change.*nothing restored$" <<<"$out" ||
  fail "rollback on a read-only mount: want one line saying so: $out"
rc=0; out=$(vp rollback --last "$T/back" -n 2>&1) || rc=$?
[ "$rc" -eq 0 ] && grep -q '^to restore 3,' <<<"$out" || fail "rollback -n on a read-only mount (exit $rc): $out"
mount -o remount,rw "$T/back"
vp rollback --last "$T/back" -q >/dev/null || fail "rollback read-write again exited $?"
[ "$(stat -c %u:%g "$T/back" "$T/back/d" "$T/back/d/f" | sort -u)" = 0:0 ] || fail "rollback read-write again: not restored"

# A PATH on a read-only mount with nothing to change there: an idempotent rerun passes (exit 0,
# no journal), and --check agrees.
vp "$T/back" --as 1000 "${MAP[@]}" -q >/dev/null
mount -o remount,ro "$T/back"
journals=$(ls "$VOLPREP_JOURNAL_DIR" | wc -l)
rc=0; out=$(vp "$T/back" --as 1000 "${MAP[@]}" 2>&1) || rc=$?
[ "$rc" -eq 0 ] && grep -q 'changed 0, unchanged 3' <<<"$out" || fail "a rerun on a read-only mount, nothing to change, exited $rc: $out"
[ "$(ls "$VOLPREP_JOURNAL_DIR" | wc -l)" -eq "$journals" ] || fail "the rerun on a read-only mount wrote a journal"
vp "$T/back" --as 1000 "${MAP[@]}" --check -q || fail "--check of it exited $?"

# A single-file PATH is judged by its own mount: a writable file bind-mounted onto a read-only
# directory (a mount point: --cross-filesystems enters it) is prepared.
echo w >"$T/rwfile"
mount --bind "$T/rwfile" "$T/back/d/f"
rc=0; out=$(vp "$T/back/d/f" --as 1000 "${MAP[@]}" --cross-filesystems -q 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "a writable file bind-mounted in a read-only directory was refused (exit $rc): $out"
[ "$(stat -c %u:%g "$T/rwfile")" = 501000:501000 ] || fail "the writable file was not prepared: $out"

# compose: a bind source on a read-only mount (a media share, say) mounted :ro is only checked
# for the service's read access, never changed, and the project's other sources are prepared;
# mounted read-write, with owners to change there, it is refused (exit 5) before anything changes.
cp=$T/cp
mkdir -p "$cp/data" "$cp/media"
mount -t tmpfs -o size=1m,mode=0755 volprep-e2e-media "$cp/media"
echo m >"$cp/media/m"
mount -o remount,ro "$cp/media"
compose() { # compose MOUNT...: the service's volumes
  printf 'services:\n  app:\n    image: busybox\n    userns_mode: host\n    x-volprep: {as: "1000:1000"}\n' >"$cp/compose.yaml"
  printf '    volumes:\n' >>"$cp/compose.yaml"
  printf '      - %s\n' "$@" >>"$cp/compose.yaml"
}
vc() { (cd "$cp" && vp compose "${MAP[@]}" --compose-cli never "$@"); }
compose ./data:/data ./media:/media:ro
rc=0; out=$(vc 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "compose with a :ro source on a read-only mount exited $rc: $out"
grep -q "media.*on a read-only mount, never changed: readable by host" <<<"$out" ||
  fail "compose: the read-only source is not reported as checked: $out"
[ "$(stat -c %u:%g "$cp/data")" = 1000:1000 ] || fail "compose: ./data not prepared (userns_mode: host: host ids): $(stat -c %u:%g "$cp/data")"
chown 0:0 "$cp/data"
compose ./data:/data ./media:/media
rc=0; out=$(vc 2>&1) || rc=$?
[ "$rc" -eq 5 ] && grep -q "refusing $cp/media: it is on a read-only mount, where nothing can change, and 2 entries need changing" <<<"$out" ||
  fail "compose with a read-write source on a read-only mount (exit $rc): $out"
[ "$(stat -c %u:%g "$cp/data")" = 0:0 ] || fail "compose refused, yet ./data changed"

# A project's rollback that meets a root since remounted read-only after restoring another:
# stops there (exit 4) saying so, with what it restored listed; read-write again, a rollback
# again restores the rest.
mkdir -p "$cp/aro"
mount -t tmpfs -o size=1m,mode=0755 volprep-e2e-aro "$cp/aro"
echo l >"$cp/aro/l"
compose ./aro:/aro ./data:/data   # journaled in path order; rollback undoes ./data, then ./aro
rc=0; out=$(vc 2>&1) || rc=$?
[ "$rc" -eq 0 ] || fail "compose with two sources exited $rc: $out"
mount -o remount,ro "$cp/aro"
rc=0; out=$(cd "$cp" && vp rollback --project-directory "$cp" 2>&1) || rc=$?
[ "$rc" -eq 4 ] || fail "a project's rollback meeting a read-only root after another exited $rc, want 4: $out"
grep -q "stopped: $cp/aro is on a read-only mount, where nothing can change.*what is listed above is restored" <<<"$out" ||
  fail "the stop is not said: $out"
[ "$(stat -c %u:%g "$cp/data")" = 0:0 ] || fail "./data, undone first, was not restored: $out"
mount -o remount,rw "$cp/aro"
rc=0; out=$(cd "$cp" && vp rollback --project-directory "$cp" 2>&1) || rc=$?
[ "$rc" -eq 0 ] && [ "$(stat -c %u:%g "$cp/aro" "$cp/aro/l" | sort -u)" = 0:0 ] ||
  fail "the rollback again, read-write, did not restore the rest (exit $rc): $out"
echo "ok: cross_fs_readonly"
