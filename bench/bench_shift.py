#!/usr/bin/env python3
"""Benchmark `volprep shift` against `prepare` of the same tree and a find/xargs chown loop.

usage: bench/bench_shift.py [--rounds N] [--files N] [--dir DIR] [--volprep BIN] [--keep]

Run by hand, as root; see bench/README.md. On the standard tree (mktree.py, owners 0/33/1000),
alternating in every round, each timed run changing every entry:
  shift           volprep shift T --map 0:500000:65536 (the census reads every entry first)
  shift --reverse the way back (census too); leaves T as it was
  shift skip      volprep shift T --unmapped=skip: the census stops at the first entry
  prepare         volprep prepare T --as 1000 (then an untimed rollback puts the owners back)
  find loop       find T -printf '%U %G %p\\0' | xargs -0 -P NPROC -n 1000 perl lchown +500000
                  (then an untimed loop with -500000)
  floor prepare   floor.cc T +500000 NPROC 256 pin: a prepare's calls (pin, statx, chown, close
                  an entry), every id plus 500000; nothing else (no plan, journal, checks)
  floor shift     floor.cc T +500000 NPROC 256 census: the same after a census (statx and
                  listxattrat an entry, by name): the least a shift that refuses first can do
Prints medians, the ratios shift/prepare (target <= 1.05) and shift/find loop (<= 0.75), CPU,
and floor shift / floor prepare: how near 1.05 any shift with a census can come here.
"""
import argparse, os, resource, shutil, statistics, subprocess, sys, time

MAP = ["--map", "0:500000:65536"]
LOOP = (r"""find "$1" -printf '%U %G %p\0' | xargs -0 -P "$2" -n 1000 perl -MPOSIX -e '"""
        r"""for (@ARGV) { my ($u, $g, $p) = split / /, $_, 3; """
        r"""POSIX::lchown($u + $ENV{D}, $g + $ENV{D}, $p) or die "$p: $!\n" }'""")


def run(argv, env=None):
    """Runs argv; returns (wall s, cpu s of the children)."""
    subprocess.run(["sync"], check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"bench: exit {p.returncode}: {' '.join(argv)}\n{p.stderr.decode(errors='replace')}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def owners(tree):
    """The multiset of (uid, gid) in the tree, for checking each run did its work."""
    out = subprocess.run(["find", tree, "-printf", "%U:%G\n"], check=True, stdout=subprocess.PIPE).stdout
    counts = {}
    for line in out.split():
        counts[line] = counts.get(line, 0) + 1
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--files", type=int, default=200000)
    ap.add_argument("--dir", default="/var/tmp/volprep-bench-shift")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--volprep", default=os.path.join(here, "..", "build", "volprep"))
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the tree")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root")
    tree, journals = os.path.join(a.dir, "tree"), os.path.join(a.dir, "journals")
    os.makedirs(journals, exist_ok=True)
    if not os.path.isdir(tree):
        subprocess.run([sys.executable, os.path.join(here, "mktree.py"), tree, str(a.files)], check=True)
    floor = os.path.join(a.dir, "floor")
    subprocess.run(["c++", "-std=c++20", "-O2", "-pthread", "-o", floor, os.path.join(here, "floor.cc")], check=True)
    vp = [a.volprep, "-q"]
    jd = ["--journal-dir", journals]
    nproc = os.cpu_count()
    start = owners(tree)
    shifted = {}
    for k, n in start.items():
        u, g = (int(x) for x in k.split(b":"))
        shifted[b"%d:%d" % (u + 500000, g + 500000)] = n

    def check(want, what):
        if owners(tree) != want:
            sys.exit(f"bench: after {what} the owners are not as expected")

    def floor_run(delta, mode):
        return [floor, tree, "+%d" % (delta % 2**32), str(nproc), "256", mode]

    def loop(delta):
        return ["bash", "-c", LOOP, "_", tree, str(nproc)], dict(os.environ, D=str(delta))

    times = {}
    def timed(label, argv, env=None):
        times.setdefault(label, []).append(run(argv, env))

    def clear_journals():
        for f in os.listdir(journals):
            os.unlink(os.path.join(journals, f))

    print(f"== volprep shift benchmark ==\nhost: nproc={nproc}, load {open('/proc/loadavg').read().split()[:3]}")
    print(f"volprep: {subprocess.run([a.volprep, '--version'], stdout=subprocess.PIPE).stdout.decode().strip()}"
          f" ({a.volprep})\ntree: {tree}, {sum(start.values())} entries, owners {sorted(start)}")
    for r in range(a.rounds + 1):  # round 0 warms the caches, untimed
        label = (lambda s: s) if r else (lambda s: "warm " + s)
        timed(label("shift"), vp + ["shift", tree] + MAP + jd); check(shifted, "shift")
        timed(label("shift --reverse"), vp + ["shift", "--reverse", tree] + MAP + jd); check(start, "shift --reverse")
        timed(label("shift skip"), vp + ["shift", "--unmapped=skip", tree] + MAP + jd); check(shifted, "shift skip")
        run(vp + ["shift", "--reverse", "--unmapped=skip", tree] + MAP + jd); check(start, "shift back")
        timed(label("prepare"), vp + ["prepare", tree, "--as", "1000"] + MAP + jd)
        run(vp + ["rollback", "--last", tree, "--journal-dir", journals, "--no-journal"]); check(start, "rollback")
        timed(label("find loop"), *loop(500000)); check(shifted, "find loop")
        run(*loop(-500000)); check(start, "find loop back")
        timed(label("floor prepare"), floor_run(500000, "pin")); check(shifted, "floor prepare")
        run(floor_run(-500000, "pin")); check(start, "floor back")
        timed(label("floor shift"), floor_run(500000, "census")); check(shifted, "floor shift")
        run(floor_run(-500000, "pin")); check(start, "floor back")
        clear_journals()
        print(f"round {r}: " + ", ".join(f"{k} {v[-1][0]:.2f}s" for k, v in times.items() if not k.startswith("warm")
                                         or not r), file=sys.stderr)

    med = {k: statistics.median(w for w, _ in v) for k, v in times.items() if not k.startswith("warm")}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items() if not k.startswith("warm")}
    print(f"\nmedians of {a.rounds} alternating rounds (wall s, CPU s of user+sys):")
    for k in med:
        print(f"  {k:16} {med[k]:7.3f} s  cpu {cpu[k]:6.2f} s   runs " +
              " ".join(f"{w:.2f}" for w, _ in times[k]))
    rows = [("shift / prepare", med["shift"] / med["prepare"], 1.05),
            ("shift --reverse / prepare", med["shift --reverse"] / med["prepare"], 1.05),
            ("shift skip / prepare", med["shift skip"] / med["prepare"], 1.05),
            ("shift / find loop", med["shift"] / med["find loop"], 0.75),
            ("shift skip / find loop", med["shift skip"] / med["find loop"], 0.75)]
    print()
    for what, ratio, target in rows:
        print(f"  {what:28} {ratio:5.2f}  target <= {target:.2f}  {'PASS' if ratio <= target else 'FAIL'}")
    for what, a_, b_ in (("floor shift / floor prepare", "floor shift", "floor prepare"),
                         ("shift / floor shift", "shift", "floor shift"),
                         ("prepare / floor prepare", "prepare", "floor prepare")):
        print(f"  {what:28} {med[a_] / med[b_]:5.2f}  (info; CPU {cpu[a_] / cpu[b_]:.2f})")
    print(f"load at end: {open('/proc/loadavg').read().split()[:3]}")
    if not a.keep:
        shutil.rmtree(a.dir)


if __name__ == "__main__":
    main()
