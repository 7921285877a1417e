#!/usr/bin/env python3
"""Make the real benchmark tree: the Linux kernel source as Debian's linux-source package ships
it (about 80k entries: 5k directories of C and header files, a few symlinks).

usage: mkkernel.py DIR [ENTRIES]

With ENTRIES, a fixed subset: the first ENTRIES paths in byte order (a directory comes before
what it holds), so the subset is the same on every machine with the same package version,
which is printed: trees from different versions do not compare. Owners are then set, by
position in that order, to a mix of 0, 33 and 1000 as mktree.py's are. Run as root.
"""
import glob
import os
import subprocess
import sys


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    entries = int(sys.argv[2]) if len(sys.argv) > 2 else None
    tarballs = sorted(glob.glob("/usr/src/linux-source-*.tar.xz"))
    if not tarballs:
        sys.exit("mkkernel: no /usr/src/linux-source-*.tar.xz: apt-get install linux-source-6.1 (./dev bench does)")
    tarball = tarballs[-1]
    pkg = subprocess.run(["dpkg-query", "-S", tarball], capture_output=True, text=True).stdout.split(":")[0]
    ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True).stdout
    print(f"mkkernel: {tarball} from {pkg or '?'} {ver or '?'}", file=sys.stderr)
    if os.path.exists(root):
        sys.exit(f"mkkernel: {root} exists")
    os.makedirs(root)
    cmd = ["tar", "-xJf", tarball, "-C", root, "--strip-components=1", "--no-same-owner"]
    if entries is None:
        subprocess.run(cmd, check=True)
    else:
        # Only the members of the subset: the first ENTRIES paths in byte order.
        names = subprocess.run(["tar", "-tJf", tarball], capture_output=True, check=True).stdout.split(b"\n")
        top = names[0].split(b"/")[0]
        members = sorted(n.rstrip(b"/") for n in names if n.startswith(top + b"/") and n.rstrip(b"/") != top)
        with open(root + ".members", "wb") as f:
            f.write(b"\n".join(members[:entries]) + b"\n")
        subprocess.run(cmd + ["--no-recursion", "-T", root + ".members"], check=True)
        os.unlink(root + ".members")
    paths = []
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        for n in dirs + files:
            paths.append(os.fsencode(os.path.normpath(os.path.join(rel, n))))
    paths.sort()
    for i, p in enumerate([b"."] + paths):
        uid = (0, 33, 1000, 1000, 1000)[i % 5]
        gid = (0, 1000, 1000)[i % 3]
        os.lchown(os.path.join(os.fsencode(root), p), uid, gid)
    print(f"mkkernel: {len(paths) + 1} entries in {root}", file=sys.stderr)


if __name__ == "__main__":
    main()
