#!/usr/bin/env bash
# volprep shift, proven in a real user namespace (map 0:500000:65536, as Docker's userns-remap
# runs containers): before the shift container root cannot write what host root owned, nor
# container 1000 what host 1000 owned; after it both can, and not each other's files. A
# capability binary (cap_net_raw+ep, set on the host as revision 2) still gets its capability
# in the namespace, and no longer on the host, where the revision 2 value granted it to anyone.
source "$(dirname "$0")/lib.sh"
mkdir -p "$VOLPREP_JOURNAL_DIR"
chmod 755 "$T"   # the volume's parents must be traversable by the container's ids
vol=$T/vol
mkdir -p "$vol/root" "$vol/user"
echo root >"$vol/root/file"
echo user >"$vol/user/file"; chown -R 1000:1000 "$vol/user"
# A copy of grep reads its own capabilities from /proc/self/status.
cp "$(command -v grep)" "$vol/capgrep"; setcap cap_net_raw+ep "$vol/capgrep"
caps() { "$@" "$vol/capgrep" '^CapEff' /proc/self/status | awk '{ print $2 }'; }
host_user() { setpriv --reuid 1000 --regid 1000 --clear-groups -- "$@"; }
write() { as_container "$1" "$1" sh -c 'echo more >>"$1/file" && echo new >"$1/new-$2"' _ "$2" "$1" 2>/dev/null; }

not write 0 "$vol/root"
not write 1000 "$vol/user"
[ "$(caps host_user)" = 0000000000002000 ] || fail "the v2 capability does not grant on the host before the shift"

out=$(vp shift "$vol" "${MAP[@]}" 2>&1) || fail "shift: $out"

write 0 "$vol/root" || fail "container root cannot write what host root owned"
write 1000 "$vol/user" || fail "container 1000 cannot write what host 1000 owned"
[ "$(stat -c %u:%g "$vol/root/new-0")" = 500000:500000 ] || fail "created by container root: $(stat -c %u:%g "$vol/root/new-0")"
[ "$(stat -c %u:%g "$vol/user/new-1000")" = 501000:501000 ] || fail "created by 1000: $(stat -c %u:%g "$vol/user/new-1000")"
not write 1000 "$vol/root"   # and not each other's
[ "$(caps as_container 1000 1000)" = 0000000000002000 ] || fail "the capability does not grant in the namespace"
[ "$(caps host_user)" = 0000000000000000 ] || fail "the capability still grants on the host"
echo "ok: shift_userns"
