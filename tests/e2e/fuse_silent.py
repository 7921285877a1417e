#!/usr/bin/env python3
"""A FUSE server that answers INIT and then never answers anything: the hostile mount.

usage: fuse_silent.py READY_FILE MOUNTPOINT[:MODE[:UID]]...

Speaks /dev/fuse directly (no libfuse): for each MOUNTPOINT, opens /dev/fuse, mounts it
there with mount(2) (MODE "dir" or "file": rootmode 040000 or 0100000; UID, default 0, the
user_id= that fusermount3 would set to its unprivileged caller's uid), and replies to the
kernel's FUSE_INIT. Then writes its pid to READY_FILE and reads requests forever, answering
none: whoever sends one waits until the connection is aborted (through
/sys/fs/fuse/connections/N/abort, or this process exiting), even through SIGKILL.
"""
import ctypes
import os
import select
import struct
import sys

FUSE_INIT = 26
IN_HEADER = struct.Struct("=IIQQIIIHH")  # len opcode unique nodeid uid gid pid total_extlen pad
OUT_HEADER = struct.Struct("=IiQ")       # len error unique


def init_reply(unique: int) -> bytes:
    # fuse_init_out of protocol 7.31: major minor max_readahead flags max_background
    # congestion_threshold max_write time_gran max_pages map_alignment flags2 unused[7]
    body = struct.pack("=IIIIHHIIHHI7I", 7, 31, 0, 0, 1, 1, 4096, 1, 1, 0, 0, *([0] * 7))
    return OUT_HEADER.pack(OUT_HEADER.size + len(body), 0, unique) + body


def main() -> None:
    ready, points = sys.argv[1], sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    fds = []
    for spec in points:
        point, _, kind = spec.partition(":")
        kind, _, user = kind.partition(":")
        fd = os.open("/dev/fuse", os.O_RDWR)
        rootmode = "100000" if kind == "file" else "40000"
        opts = f"fd={fd},rootmode={rootmode},user_id={user or 0},group_id={user or 0},allow_other".encode()
        MS_NOSUID, MS_NODEV = 2, 4
        if libc.mount(b"volprep-silent", point.encode(), b"fuse", MS_NOSUID | MS_NODEV, opts) != 0:
            err = ctypes.get_errno()
            sys.exit(f"fuse_silent: mount {point}: {os.strerror(err)}")
        req = os.read(fd, 1 << 20)
        _, opcode, unique, *_ = IN_HEADER.unpack_from(req)
        if opcode != FUSE_INIT:
            sys.exit(f"fuse_silent: first request is opcode {opcode}, not INIT")
        os.write(fd, init_reply(unique))
        fds.append(fd)
    with open(ready + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(ready + ".tmp", ready)
    while True:  # read every request, answer none
        readable, _, _ = select.select(fds, [], [])
        for fd in readable:
            try:
                req = os.read(fd, 1 << 20)
            except OSError:
                return  # the connection was aborted
            _, opcode, unique, nodeid, *_ = IN_HEADER.unpack_from(req)
            print(f"fuse_silent: request {opcode} on node {nodeid}, not answered", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
