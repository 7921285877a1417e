#!/usr/bin/env bash
# volprep on XFS (RHEL-like Docker hosts keep /var/lib/docker and bind-mount sources there), on
# a loop-mounted image of its own: prepare, --check, rollback, --acl, shift and shift --reverse
# do on a mixed tree (owners 0, 1000, 33; setuid; capabilities; ACL named entries; hardlinks; a
# symlink out of the tree) what they do on the same tree on ext4 or tmpfs, manifest for
# manifest; container uid 1000 in a real user namespace writes after prepare and after --acl;
# rollback and the shift round trip give the tree back byte for byte.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/manifest.bash"
source "$(dirname "$0")/shift_lib.bash"
source "$(dirname "$0")/fs_lib.bash"
fs_mounted xfs 300M "$T/xfs" xfsprogs
fs_claims "$T/xfs"
echo "ok: fs_xfs"
