#!/usr/bin/python3
"""Helper of tests/e2e/check_kernel.sh: a random tree of owners, modes and POSIX ACLs, the
kernel's own verdicts on it (real attempts, made inside the user namespace), and their
comparison with `volprep check --all --json`.

  randtree.py gen ROOT SEED N MANIFEST       (host, root) make >= N entries under ROOT
  randtree.py probe MANIFEST UID GID GROUPS  (in the namespace, as container root) drop to
                                             UID:GID with supplementary GROUPS (comma list,
                                             may be empty) unless UID is 0; try every entry;
                                             print the attempts as JSON on stdout
  randtree.py compare MANIFEST PROBE.json RWX.json RW.json R.json LABEL
                                             (host) every volprep verdict against the kernel;
                                             prints each disagreement in full; exit 1 if any
"""
import errno
import json
import os
import random
import stat
import subprocess
import sys

# Host ids: container ids 0 (500000), 1000 (501000), 2000 (502000), 100 (500100), the last
# mapped id (565535), and ids outside the map (0, 1000, 65534, 499999, 600000).
UIDS = [501000] * 6 + [500000] * 5 + [502000] * 3 + [0] * 3 + [1000] * 2 + [65534, 499999, 565535, 600000]
GIDS = [501000] * 5 + [500000] * 4 + [500100] * 3 + [502000] * 2 + [0] * 3 + [1000] * 2 + [565535, 600000]
ACL_USERS = [501000, 502000, 500000, 1000]
ACL_GROUPS = [501000, 500100, 500000, 502000]


# Fixed corners, made after the random part (so the seed alone decides that part): the cases a
# random tree hits only now and then. (rel, type, uid, gid, mode, ACL for setfacl --set)
CORNERS = [
    ("corners", "d", 0, 0, 0o755, None),
    # Sibling directories nobody but host root can enter: what is below is unreachable.
    *[x for i in range(4) for x in (("corners/shut%d" % i, "d", 0, 0, 0o700, None),
                                    ("corners/shut%d/f" % i, "f", 0, 0, 0o644, None))],
    ("corners/r-only", "d", 0, 0, 0o404, None), ("corners/r-only/f", "f", 0, 0, 0o666, None),
    ("corners/x-only", "d", 0, 0, 0o101, None), ("corners/x-only/f", "f", 0, 0, 0o666, None),
    ("corners/wx-only", "d", 0, 0, 0o303, None),
    ("corners/sticky", "d", 0, 0, 0o1777, None),
    # Group class: w from one entry, x (or r) from another; the kernel asks create's w|x, and
    # open O_RDWR's r|w, of one entry at a time.
    ("corners/joint-dir", "d", 0, 501000, 0o770, "u::rwx,g::rw-,g:501000:--x,g:500100:--x,m::rwx,o::---"),
    ("corners/joint-file", "f", 0, 501000, 0o660, "u::rw-,g::r--,g:501000:-w-,g:500100:-w-,m::rw-,o::---"),
    # Owner, named user and group classes win over a more generous class after them.
    ("corners/owner-none", "f", 501000, 501000, 0o077, None),
    ("corners/group-none", "f", 0, 501000, 0o707, None),
    ("corners/named-none", "f", 0, 501000, 0o677, "u::rw-,u:501000:---,g::rwx,m::rwx,o::rwx"),
    ("corners/mask-no-x", "d", 0, 0, 0o770, "u::rwx,u:501000:rwx,u:500000:rwx,g::rwx,m::rw-,o::---"),
    ("corners/mask-no-x/f", "f", 0, 0, 0o666, None),
    # A mask of ---: Linux reads no ACL when the mode's group bits are 0 (acl_permission_check),
    # so named users and groups get what the mode bits give them ("other" here).
    ("corners/mask-zero", "f", 0, 0, 0o604, "u::rw-,u:501000:rw-,u:500000:rw-,u:502000:rw-,g::rw-,m::---,o::r--"),
    ("corners/mask-zero-dir", "d", 0, 0, 0o705,
     "u::rwx,u:501000:rwx,u:500000:rwx,g::rwx,g:500100:rwx,g:501000:rwx,m::---,o::r-x"),
    ("corners/mask-zero-dir/f", "f", 0, 0, 0o644, None),
    # Container root: privileged over inodes whose uid and gid both map, not over the others.
    ("corners/root-dir", "d", 501000, 501000, 0o000, None),
    ("corners/root-dir/f", "f", 501000, 501000, 0o000, None),
    ("corners/root-dir/x-other", "f", 501000, 501000, 0o001, None),
    ("corners/root-dir/x-none", "f", 500000, 500000, 0o666, None),
    ("corners/root-dir/half-uid", "f", 500000, 0, 0o000, None),
    ("corners/root-dir/half-gid", "f", 0, 500000, 0o000, None),
    ("corners/root-dir/unmapped-uid", "f", 600000, 500000, 0o000, None),
    ("corners/root-dir/unmapped-gid", "f", 501000, 600000, 0o000, None),
    ("corners/root-dir/last-mapped", "f", 565535, 565535, 0o000, None),
    ("corners/root-dir/host-dir", "d", 0, 0, 0o700, None),
    ("corners/root-dir/host-dir/f", "f", 500000, 500000, 0o666, None),
]


def perm(bits):
    return "".join(c if bits & b else "-" for c, b in (("r", 4), ("w", 2), ("x", 1)))


def gen(root, seed, n, manifest):
    rnd = random.Random(seed)
    os.makedirs(root)
    dirs = [("", 0)]  # (rel, depth)
    entries = [{"rel": "", "type": "d"}]
    count = 0
    while count < n:
        parent, depth = rnd.choice(dirs)
        name = "%s%d" % (rnd.choice("dfx"), count)
        rel = name if not parent else parent + "/" + name
        r = rnd.random()
        if r < 0.30 and depth < 7:
            os.mkdir(os.path.join(root, rel))
            dirs.append((rel, depth + 1))
            entries.append({"rel": rel, "type": "d"})
        elif r < 0.95:
            with open(os.path.join(root, rel), "w") as f:
                f.write("data %d\n" % count)  # never "#!": exec attempts end in ENOEXEC
            entries.append({"rel": rel, "type": "f"})
        else:
            os.symlink(rnd.choice(["..", "/etc/passwd", "nowhere", "."]), os.path.join(root, rel))
            entries.append({"rel": rel, "type": "l"})
        count += 1
    # Owners, modes and ACLs, deepest first (root can chmod anything in any order anyway).
    acls = 0
    for e in sorted(entries, key=lambda e: -e["rel"].count("/")):
        path = os.path.join(root, e["rel"]) if e["rel"] else root
        if e["type"] == "l":
            continue
        if e["rel"] == "":
            uid, gid, mode = 0, 0, 0o755  # the volume root: the container can enter it
        else:
            uid, gid = rnd.choice(UIDS), rnd.choice(GIDS)
            if e["type"] == "d" and rnd.random() < 0.6:
                # Mostly searchable directories, so that the tree below them is tried too.
                mode = rnd.randrange(0o1000) | 0o111
                if rnd.random() < 0.15:
                    mode |= rnd.choice([0o1000, 0o2000, 0o3000])
            elif rnd.random() < 0.1:
                mode = rnd.randrange(0o10000)  # setuid, setgid, sticky too
            else:
                mode = rnd.randrange(0o1000)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        if e["rel"] and rnd.random() < 0.4:
            spec = ["u::" + perm(mode >> 6 & 7), "g::" + perm(rnd.randrange(8)), "o::" + perm(mode & 7)]
            for u in rnd.sample(ACL_USERS, rnd.choice([0, 1, 1, 2, 3])):
                spec.append("u:%d:%s" % (u, perm(rnd.randrange(8))))
            for g in rnd.sample(ACL_GROUPS, rnd.choice([0, 1, 1, 2, 3])):
                spec.append("g:%d:%s" % (g, perm(rnd.randrange(8))))
            if rnd.random() < 0.6:  # an explicit mask, often restrictive; else setfacl's union
                spec.append("m::" + perm(rnd.choice([rnd.randrange(8), 7, 6, 4, 5])))
            subprocess.run(["setfacl", "--set", ",".join(spec), path], check=True)
            if e["type"] == "d" and rnd.random() < 0.3:
                subprocess.run(["setfacl", "-d", "-m", "u:501000:rwx,g:500100:r-x", path], check=True)
            acls += 1
        st = os.lstat(path)
        e.update(uid=st.st_uid, gid=st.st_gid, mode="%04o" % stat.S_IMODE(st.st_mode))
    for rel, typ, uid, gid, mode, acl in CORNERS:
        path = os.path.join(root, rel)
        if typ == "d":
            os.mkdir(path)
        else:
            with open(path, "w") as f:
                f.write("corner\n")
        entries.append({"rel": rel, "type": typ})
    for rel, typ, uid, gid, mode, acl in reversed(CORNERS):  # children before their parents
        path = os.path.join(root, rel)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        if acl:
            subprocess.run(["setfacl", "--set", acl, path], check=True)
        st = os.lstat(path)
        entries[[e["rel"] for e in entries].index(rel)].update(
            uid=st.st_uid, gid=st.st_gid, mode="%04o" % stat.S_IMODE(st.st_mode))
    with open(manifest, "w") as f:
        json.dump({"root": root, "seed": seed, "entries": entries}, f)
    print("randtree: seed %d: %d entries (%d dirs, %d symlinks, %d ACLs) under %s" % (
        seed, len(entries), sum(e["type"] == "d" for e in entries),
        sum(e["type"] == "l" for e in entries), acls, root), file=sys.stderr)


def attempt(fn):
    """True if fn() works, False on EACCES/EPERM; anything else is a test error."""
    try:
        fn()
        return True
    except OSError as ex:
        if ex.errno in (errno.EACCES, errno.EPERM):
            return False
        raise


def probe(manifest, uid, gid, groups):
    m = json.load(open(manifest))
    root = m["root"]
    if uid != 0 or gid != 0 or groups:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)  # from container root: drops every capability
    out = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "entries": {}}
    probe_name = ".volprep-probe-%d" % os.getpid()
    for e in m["entries"]:
        if e["type"] == "l":
            continue
        path = os.path.join(root, e["rel"]) if e["rel"] else root
        r = {}
        try:
            os.lstat(path)
            r["reach"] = True
        except OSError as ex:
            if ex.errno != errno.EACCES:
                raise
            r["reach"] = False
        if e["type"] == "f":
            def op(flags):
                def f():
                    os.close(os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC))
                return f

            def execute():
                pid = os.posix_spawn(path, [path], {})  # content "data N": ENOEXEC once allowed
                os.waitpid(pid, 0)
            r["read"] = attempt(op(os.O_RDONLY))
            r["write"] = attempt(op(os.O_WRONLY | os.O_APPEND))
            r["rdwr"] = attempt(op(os.O_RDWR | os.O_APPEND))
            try:
                r["exec"] = attempt(execute)
            except OSError as ex:
                if ex.errno != errno.ENOEXEC:
                    raise
                r["exec"] = True
        else:
            child = os.path.join(path, probe_name)
            r["list"] = attempt(lambda: os.listdir(path))

            def enter():
                try:
                    os.lstat(child)
                except FileNotFoundError:
                    pass
            r["enter"] = attempt(enter)

            def create():
                os.close(os.open(child, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
                os.unlink(child)  # the same w+x request as the create: cannot fail after it
            r["create"] = attempt(create)
            if os.path.lexists(child):
                raise SystemExit("probe: %s created but not removed" % child)
        out["entries"][path] = r
    json.dump(out, sys.stdout)


def load_lines(path):
    rows, summary = {}, None
    for line in open(path):
        j = json.loads(line)
        if "summary" in j:
            summary = j["summary"]
        else:
            if j["path"] in rows:
                raise SystemExit("volprep reported %s twice in %s" % (j["path"], path))
            rows[j["path"]] = j
    return rows, summary


def compare(manifest, probe_file, rwx_file, rw_file, r_file, label):
    m = json.load(open(manifest))
    root = m["root"]
    kernel = json.load(open(probe_file))
    runs = {need: load_lines(f) for need, f in (("rwx", rwx_file), ("rw", rw_file), ("r", r_file))}
    info = {(os.path.join(root, e["rel"]) if e["rel"] else root): e for e in m["entries"]}
    problems, notes = [], []
    want_paths = set(kernel["entries"])
    symlinks = sum(e["type"] == "l" for e in m["entries"])
    for need, (rows, summary) in runs.items():
        got = set(rows)
        if got != want_paths:
            problems.append("--need %s: volprep reported %d entries, the tree has %d; missing %s; extra %s" % (
                need, len(got), len(want_paths), sorted(want_paths - got)[:5], sorted(got - want_paths)[:5]))
        if summary is None:
            problems.append("--need %s: no summary line" % need)
            continue
        denied = sum(1 for j in rows.values() if j["denied"])
        reach = sum(1 for p in rows if kernel["entries"].get(p, {}).get("reach"))
        for key, want in (("checked", len(want_paths)), ("denied", denied), ("symlinks_skipped", symlinks),
                          ("reachable", reach)):
            if summary.get(key) != want:
                problems.append("--need %s: summary %s=%s, want %d (%s)" % (
                    need, key, summary.get(key), want,
                    "entries the kernel lets the user reach (lstat works)" if key == "reachable"
                    else "counted from the tree and the reported entries"))
    counts = {"entries": 0, "agree": 0}
    kinds = {}
    entry_problems, entry_problems_late = [], []
    for path, k in sorted(kernel["entries"].items()):
        e = info[path]
        counts["entries"] += 1
        bad = []
        v = runs["rwx"][0].get(path)
        if v is None:
            continue
        miss = v["missing"]
        isdir = e["type"] == "d"
        # Reachability: volprep's blocked_by against the kernel's lstat.
        if ("blocked_by" not in v) != k["reach"]:
            bad.append(("reachable", "reachable: volprep %s (blocked_by %s), kernel %s" % (
                "no" if "blocked_by" in v else "yes", v.get("blocked_by"),
                "yes" if k["reach"] else "no (lstat: EACCES)")))
        if isdir:
            checks = [("list (r)", "r" not in miss, k["list"]),
                      ("enter (x)", "x" not in miss, k["enter"]),
                      ("create+delete (w+x)", "w" not in miss and "x" not in miss, k["create"])]
            need_ok = {"rwx": k["list"] and k["enter"] and k["create"],
                       "rw": k["list"] and k["enter"] and k["create"],
                       "r": k["list"] and k["enter"]}
        else:
            checks = [("read", "r" not in miss, k["read"]),
                      ("write", "w" not in miss, k["write"]),
                      ("execute", "x" not in miss, k["exec"])]
            need_ok = {"rwx": k["read"] and k["write"] and k["exec"],
                       "rw": k["read"] and k["write"], "r": k["read"]}
            if (k["read"] and k["write"]) != k["rdwr"]:
                notes.append("%s: O_RDONLY %s and O_WRONLY %s but O_RDWR %s (the kernel asks r|w of one ACL entry)" % (
                    path, k["read"], k["write"], k["rdwr"]))
        for what, vp_ok, k_ok in checks:
            if vp_ok != k_ok:
                bad.append((what, "%s: volprep %s, kernel %s" % (what, "allowed" if vp_ok else "denied",
                                                                 "allowed" if k_ok else "denied")))
        for need, (rows, _) in runs.items():
            j = rows.get(path)
            if j is not None and j["denied"] == need_ok[need]:
                bad.append(("--need " + need, "--need %s: volprep denied=%s, kernel %s" % (
                    need, j["denied"], "allows all of it" if need_ok[need] else "refuses some of it")))
            elif j is not None and ("blocked_by" in j) != ("blocked_by" in v):
                bad.append(("runs differ", "--need %s run: blocked_by %s, --need rwx run: %s" % (
                    need, j.get("blocked_by"), v.get("blocked_by"))))
        if bad:
            for kind, _ in bad:
                kinds[kind] = kinds.get(kind, 0) + 1
            acl = subprocess.run(["getfacl", "-cpn", path], capture_output=True, text=True).stdout.strip()
            # Disagreements on reachable entries first: those are not echoes of a wrong blocked_by.
            reach_only = all(kind in ("reachable", "runs differ") for kind, _ in bad) or not k["reach"] \
                or "blocked_by" in v
            (entry_problems_late if reach_only else entry_problems).append("%s (%s, owner %s:%s, mode %s, ACL [%s]): volprep class %r granted %r missing %r%s; %s" % (
                path, "dir" if isdir else "file", e["uid"], e["gid"], e["mode"],
                acl.replace("\n", ",").replace("\t", " "), v["class"], v["granted"], miss,
                " blocked_by %r" % v["blocked_by"] if "blocked_by" in v else "", "; ".join(t for _, t in bad)))
        else:
            counts["agree"] += 1
    problems += entry_problems + entry_problems_late
    print("%s: %d entries, %d agree with the kernel, %d problems %s; as uid %d gid %d groups %s" % (
        label, counts["entries"], counts["agree"], len(problems), kinds or "", kernel["uid"], kernel["gid"],
        kernel["groups"]))
    for n in notes:
        print("  note: " + n)
    limit = int(os.environ.get("VOLPREP_SHOW", "40"))
    for p in problems[:limit]:
        print("  DISAGREE: " + p)
    if len(problems) > limit:
        print("  ... and %d more (VOLPREP_SHOW=N shows more)" % (len(problems) - limit))
    return 1 if problems else 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif cmd == "probe":
        probe(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
              [int(g) for g in sys.argv[5].split(",") if g])
    elif cmd == "compare":
        sys.exit(compare(*sys.argv[2:8]))
    else:
        sys.exit(__doc__)
