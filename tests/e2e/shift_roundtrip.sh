#!/usr/bin/env bash
# volprep shift keeps who owns what: on a tree with mixed owners, ACL named entries, v2 and v3
# capabilities, setuid files and hardlinks, `shift` translates every id (0 -> 500000, 1000 ->
# 501000, 33 -> 500033, a hardlinked inode once), `shift --reverse` gives back the identical
# manifest (owners, modes, ACLs and capabilities byte for byte), and so does `rollback`.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
source "$(dirname "$0")/shift_lib.bash"
mkdir -p "$VOLPREP_JOURNAL_DIR"
vol=$T/vol
mixed_tree "$vol"
manifest "$vol" >"$T/before"

# The dry run changes nothing and shows each kind of change.
vp shift "$vol" "${MAP[@]}" -n >"$T/plan" 2>&1 || fail "shift -n: $(cat "$T/plan")"
manifest "$vol" | cmp -s - "$T/before" || fail "the dry run changed the tree"
grep -q "^$vol/ping  owner 0:0 -> 500000:500000  mode 0755  capability v2 -> v3 rootid 500000$" "$T/plan" ||
  fail "no v2 -> v3 capability line: $(grep ping "$T/plan")"
grep -q "^$vol/d3/v3cap .*capability v3 rootid 1000 -> v3 rootid 501000$" "$T/plan" || fail "v3 root id: $(cat "$T/plan")"
grep -q "^$vol/d0/sub0/f0 .*acl .*+u:501000:rw-" "$T/plan" || fail "no ACL line: $(cat "$T/plan")"
grep -q "^$vol/suid  owner 1000:33 -> 501000:500033  mode 6755 (setuid/setgid kept)" "$T/plan" || fail "suid: $(cat "$T/plan")"
# Every name of the hardlinked inode is listed, and it is one change.
[ "$(grep -c "owner 33:999 -> 500033:500999  mode 4750 (setuid/setgid kept)$" "$T/plan")" -eq 3 ] || fail "hardlinks: $(grep 4750 "$T/plan")"

# --- shift, then shift --reverse: the same tree, byte for byte -----------------------------
out=$(vp shift "$vol" "${MAP[@]}" 2>&1) || fail "shift: $out"
[ "$(stat -c %u:%g "$vol")" = 500000:500000 ] || fail "root not 500000:500000"
[ "$(stat -c %u:%g "$vol/d0/a")" = 500033:500999 ] || fail "the hardlinked file: $(stat -c %u:%g "$vol/d0/a")"
[ "$(stat -c %a "$vol/d0/a")" = 4750 ] || fail "setuid lost on the hardlinked file"
[ "$(stat -c %a "$vol/suid")" = 6755 ] || fail "setuid/setgid lost: $(stat -c %a "$vol/suid")"
[ "$(stat -c %a "$vol/d2")" = 2775 ] || fail "setgid directory: $(stat -c %a "$vol/d2")"
[ "$(stat -c %u:%g "$vol/d2")" = 501000:501000 ] || fail "d2: $(stat -c %u:%g "$vol/d2")"
getfacl -n "$vol/d0/sub0/f0" 2>/dev/null | grep -qx 'user:501000:rw-' || fail "ACL user 1000 not translated"
getfacl -n "$vol/d0/sub0/f0" 2>/dev/null | grep -qx 'group:500000:r--' || fail "ACL group 0 not translated"
getfacl -n "$vol/d1" 2>/dev/null | grep -qx 'default:group:500033:r-x' || fail "default ACL group 33 not translated"
# Capabilities as container root's: getcap shows the root id of a v3 value.
getcap -n "$vol/ping" | grep -q '\[rootid=500000\]' || fail "ping: $(getcap -n "$vol/ping")"
getcap -n "$vol/suid" | grep -q 'cap_chown=p \[rootid=500000\]' || fail "suid: $(getcap -n "$vol/suid")"
getcap -n "$vol/d3/v3cap" | grep -q '\[rootid=501000\]' || fail "v3cap: $(getcap -n "$vol/d3/v3cap")"
# Its journal shows what it did in the dry run's words, ACL and capability lines too.
vp journal show "$(ls "$VOLPREP_JOURNAL_DIR"/*.vpj)" >"$T/show" || fail "journal show: $(cat "$T/show")"
for p in /ping /d3/v3cap /d0/sub0/f0 /suid; do
  grep -F "$vol$p " "$T/show" | cmp -s - <(grep -F "$vol$p " "$T/plan") ||
    fail "journal show is not the dry run for $p: $(grep -F "$vol$p " "$T/show") / $(grep -F "$vol$p " "$T/plan")"
done
[ "$(stat -c %u:%g "$vol/d2/../d3/fifo")" = 565534:501000 ] || fail "fifo"
[ "$(stat -c %u:%g "$vol/d3/link")" = 500999:500999 ] || fail "the symlink itself"

# By default the way back drops what would make a file container root made a setuid-root or
# capability binary of the host; --keep-setid keeps it (the tree was so before the shift).
cp /usr/bin/id "$vol/rootsuid"
chown 500000:500000 "$vol/rootsuid"
chmod 6755 "$vol/rootsuid"
vp shift "$vol" "${MAP[@]}" --reverse -n >"$T/rev" 2>&1 || fail "shift --reverse -n: $(cat "$T/rev")"
grep -q "/rootsuid  owner 500000:500000 -> 0:0  mode 6755 -> 0755" "$T/rev" ||
  fail "the way back keeps setuid-root on what container root made: $(grep rootsuid "$T/rev")"
grep "/ping " "$T/rev" | grep -q "capability v3 rootid 500000 -> none" ||
  fail "the way back keeps container root's capability as the host's: $(grep '/ping ' "$T/rev")"
rm "$vol/rootsuid"
# What the way back dropped, rollback puts back: the journal keeps each such file's ctime
# after the drop (as after a change that keeps them), so it knows the content is the same.
manifest "$vol" >"$T/shifted"
out=$(vp shift "$vol" "${MAP[@]}" --reverse 2>&1) || fail "shift --reverse (dropping): $out"
[ -z "$(getcap "$vol/ping")" ] || fail "the way back kept ping's capability: $(getcap "$vol/ping")"
out=$(vp rollback --last "$vol" 2>&1) || fail "rollback of the dropping reverse: $out"
not grep -q "not put back" <<<"$out"
manifest "$vol" | diff "$T/shifted" - >&2 || fail "rollback of a reverse shift did not put back what it dropped"
out=$(vp shift "$vol" "${MAP[@]}" --reverse --keep-setid 2>&1) || fail "shift --reverse: $out"
manifest "$vol" >"$T/back"
diff "$T/before" "$T/back" >&2 || fail "shift then shift --reverse --keep-setid is not the tree it started from"

# --- shift, then rollback: the same tree again ---------------------------------------------
# With --threads one per core, which cannot be told from oneTBB's default, the census and the
# walk keep to it: on FUSE (64 by default) a walk asking oneTBB for more said "TBB Warning".
vp shift "$vol" "${MAP[@]}" --threads "$(nproc)" -v >/dev/null 2>"$T/err" || fail "second forward shift: $(cat "$T/err")"
not grep -i 'tbb' "$T/err"
grep -q "requests\? in flight (--threads)" "$T/err" || fail "-v does not say --threads: $(cat "$T/err")"
vp check "$vol" --as 0 "${MAP[@]}" --threads "$(nproc)" >/dev/null 2>"$T/err" || true
not grep -i 'tbb' "$T/err"
[ "$(stat -c %u:%g "$vol/d0/b")" = 500033:500999 ] || fail "forward again"
out=$(vp rollback --last "$vol" 2>&1) || fail "rollback: $out"
manifest "$vol" >"$T/rolled"
diff "$T/before" "$T/rolled" >&2 || fail "shift then rollback is not the tree it started from"
echo "ok: shift_roundtrip"
