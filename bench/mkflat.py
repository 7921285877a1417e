#!/usr/bin/env python3
"""Make the flat benchmark tree: one directory holding FILES files (a mail spool, a cache, an
image or preview store).

usage: mkflat.py DIR FILES [SEED]

Deterministic for a given FILES/SEED. Names like those of a cache (16 hex digits); owners a
mix of 0, 33 and 1000 as in mktree.py; one file in seven has 100 bytes of content, the rest
are empty. Run as root (it sets owners).
"""
import os
import random
import sys


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    root, nfiles = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    os.makedirs(root, exist_ok=True)
    dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(nfiles):
            name = "%016x" % rng.getrandbits(64)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dfd)
            if i % 7 == 0:
                os.write(fd, b"x" * 100)
            os.fchown(fd, rng.choice([0, 1000, 1000, 1000, 33]), rng.choice([0, 1000, 1000]))
            os.close(fd)
    finally:
        os.close(dfd)
    print(f"{nfiles} files in one directory")


if __name__ == "__main__":
    main()
