# Helpers of the journal_*.sh scenarios (source after lib.sh; .bash, so ctest does not run it).
#
#   manifest DIR          one line per entry under DIR (DIR itself included as "."), sorted by
#                         path bytes: path, uid, gid, st_mode (octal, type included), then every
#                         extended attribute as name=hex (system.posix_acl_access/default,
#                         security.capability, ...), read without following symlinks. Two trees
#                         in the same state print the same bytes.
#   vpj info JOURNAL      "version=V header=0|1 changes=N end=0|1 torn=OFFSET|-" from a
#                         structural parse of a journal, independent of volprep's reader (the
#                         checksums of 'C' records other than the last are not verified)
#   vpj records JOURNAL   one line per record: "OFFSET KIND LENGTH" (LENGTH of kind+payload);
#                         for a 'C' record also its path
#   vpj changes JOURNAL   the 'C' records: "path uid_before gid_before mode_before uid_after
#                         gid_after mode_after" (modes octal)
#   vpj craft SRC OUT SPEC...   OUT: SRC's magic, version and header record, then one valid
#                         'C' record (correct crc32c) per SPEC, "PATH" or
#                         "PATH|MAJOR|MINOR|INO|MODE_BEFORE|UID|GID|MODE_AFTER|UID|GID" (modes
#                         octal, type included in MODE_BEFORE); PATH alone: inode 1, 0:0 -> 501000
#   vpj drop FILE KINDS   rewrites FILE without its records of the kinds in KINDS ("AE": every
#                         'A' and 'E' record), as a run killed before writing them would leave it
#   vpj setversion FILE N rewrites the u32 format version in place
#   vpj flip FILE OFFSET  xors the byte at OFFSET with 0xff
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}

manifest() { # manifest DIR
  "$PY" - "$1" <<'PY'
import os, sys
def esc(b):
    return b.decode("latin-1").encode("unicode_escape").decode("ascii").replace(" ", "\\x20")
rows = []
def entry(rel, name, st):  # name: relative to the current directory (one lookup, not a path walk)
    try:
        names = os.listxattr(name, follow_symlinks=False)
    except OSError:
        names = []
    xs = ""
    for n in sorted(names):
        try:
            v = os.getxattr(name, n, follow_symlinks=False).hex()
        except OSError as e:
            v = "<%s>" % e.strerror
        xs += " %s=%s" % (n, v)
    rows.append((rel, "%s %d %d %o%s\n" % (esc(rel), st.st_uid, st.st_gid, st.st_mode, xs)))
root = os.path.abspath(os.fsencode(sys.argv[1]))
os.chdir(root)
entry(b".", b".", os.lstat(b"."))
stack = [(root, b"")]
while stack:  # never follows a symlink: each directory is entered by its absolute path,
    full, rel = stack.pop()  # which only the test changes
    os.chdir(full)
    with os.scandir(b".") as it:
        for e in it:
            r = rel + b"/" + e.name if rel else e.name
            entry(r, e.name, e.stat(follow_symlinks=False))
            if e.is_dir(follow_symlinks=False):
                stack.append((full + b"/" + e.name, r))
rows.sort()
sys.stdout.write("".join(r[1] for r in rows))
PY
}

vpj() { # vpj SUBCOMMAND ARGS...
  "$PY" - "$@" <<'PY'
import struct, sys

def crc32c(data, crc=0):
    table = crc32c.table
    crc ^= 0xffffffff
    for b in data:
        crc = table[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff
def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
        t.append(c)
    return t
crc32c.table = _table()
assert crc32c(b"123456789") == 0xe3069283  # the standard CRC-32C check value

def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7f) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)
def get_varint(p, i):
    v = shift = 0
    while True:
        b = p[i]; i += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, i
def get_string(p, i):
    n, i = get_varint(p, i)
    return p[i:i + n], i + n
def frame(kind, payload):
    body = kind + payload
    return struct.pack("<I", len(body)) + body + struct.pack("<I", crc32c(body))

def records(data, check_all=True):
    """(offset, kind, body) of each valid record; stops at the first bad one: (offset, None, None).
    Without check_all, only the checksums of 'H' and 'E' records and of the last record are
    verified (pure-Python CRC32C is slow on a 10 MB journal)."""
    off = 12
    while off < len(data):
        if len(data) - off < 4:
            yield off, None, None; return
        n = struct.unpack_from("<I", data, off)[0]
        end = off + 4 + n + 4
        if n == 0 or end > len(data):
            yield off, None, None; return
        body = data[off + 4:off + 4 + n]
        check = check_all or end == len(data) or body[:1] != b"C"
        if check and crc32c(body) != struct.unpack_from("<I", data, off + 4 + n)[0]:
            yield off, None, None; return
        yield off, body[:1], body
        off = end

def change(body):
    p, i, f = body, 1, []
    for _ in range(9):
        v, i = get_varint(p, i); f.append(v)
    path, i = get_string(p, i)
    return f, path

cmd, args = sys.argv[1], sys.argv[2:]
if cmd in ("info", "records", "changes"):
    data = open(args[0], "rb").read()
    if len(data) < 12 or data[:8] != b"VOLPREPJ":  # a run killed before its header was written
        if cmd == "info":
            print("version=- header=0 changes=0 end=0 torn=0")
        sys.exit(0)
    version = struct.unpack_from("<I", data, 8)[0]
    header = end = changes = 0
    torn = "-"
    cwd = b""  # a 'D' record names the directory the next 'C' records' names are in
    def full(name):
        return cwd + b"/" + name if cwd and name else (cwd or name)
    for off, kind, body in records(data, cmd != "info"):
        if kind is None:
            torn = str(off); break
        if kind == b"D":  # version 2: the bytes shared with the last 'D' path, then the rest
            shared, i = get_varint(body, 1) if version >= 2 else (0, 1)
            assert shared <= len(cwd), "a 'D' record at %d shares more than the last one has" % off
            cwd = cwd[:shared] + get_string(body, i)[0]
        if cmd == "records":
            extra = " " + full(change(body)[1]).decode("latin-1") if kind == b"C" else ""
            print("%d %s %d%s" % (off, kind.decode(), len(body), extra))
        header += kind == b"H"; end += kind == b"E"; changes += kind == b"C"
        if cmd == "changes" and kind == b"C":
            f, path = change(body)
            print("%s %d %d %o %d %d %o" % (full(path).decode("latin-1"), f[4], f[5], f[3], f[7], f[8], f[6]))
    if cmd == "info":
        print("version=%d header=%d changes=%d end=%d torn=%s" % (version, header, changes, end, torn))
elif cmd == "craft":
    src, out, paths = args[0], args[1], args[2:]
    data = open(src, "rb").read()
    off, kind, body = next(records(data))
    assert kind == b"H", "the source journal starts with no header record"
    blob = data[:12] + frame(b"H", body[1:])
    for spec in paths:
        f = spec.split("|")
        path = f[0]
        nums = [int(x, 8) if i in (3, 6) else int(x) for i, x in enumerate(f[1:])] or \
            [0, 0, 1, 0o100640, 0, 0, 0o640, 501000, 501000]
        assert len(nums) == 9, "bad SPEC " + spec
        p = b"".join(varint(v) for v in nums)
        p += varint(len(path.encode())) + path.encode() + varint(0)  # no xattrs
        if struct.unpack_from("<I", data, 8)[0] >= 3:
            p += varint(0)  # birth time unknown
        blob += frame(b"C", p)
    open(out, "wb").write(blob)
elif cmd == "drop":
    data = open(args[0], "rb").read()
    kinds = set(args[1].encode()[i:i + 1] for i in range(len(args[1])))
    blob = bytearray(data[:12])
    for off, kind, body in records(data):
        assert kind is not None, "vpj drop: a bad record at %d" % off
        if kind not in kinds:
            blob += frame(kind, body[1:])
    open(args[0], "wb").write(bytes(blob))
elif cmd == "setversion":
    with open(args[0], "r+b") as f:
        f.seek(8); f.write(struct.pack("<I", int(args[1])))
elif cmd == "flip":
    with open(args[0], "r+b") as f:
        f.seek(int(args[1])); b = f.read(1)[0]
        f.seek(int(args[1])); f.write(bytes([b ^ 0xff]))
else:
    sys.exit("vpj: unknown subcommand " + cmd)
PY
}
