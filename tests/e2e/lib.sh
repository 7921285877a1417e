# Shared prelude of the end-to-end scenarios: source it first.
#   VOLPREP       the binary under test (ctest sets it)
#   VOLPREP_SRC   the source tree (ctest sets it)
# Every scenario runs as root, makes its fixtures under $T (removed on exit), and leaves the
# host's /etc and everything outside $T as it found it.
set -Eeuo pipefail
VOLPREP=${VOLPREP:-$(dirname "${BASH_SOURCE[0]}")/../../build/volprep}
VOLPREP_SRC=${VOLPREP_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
T=$(mktemp -d /tmp/volprep-e2e.XXXXXX)
# VOLPREP_E2E_FUSE=1: $T is a FUSE mount (bench/slowfs.c: no delay, POSIX ACLs enforced, no
# attribute cache, since its two links of an inode are two inodes to the kernel) over a
# directory beside it, so that a scenario's tree, and the concurrency volprep keeps on network
# and FUSE filesystems (64 requests in flight), are what it tests. ctest runs the safety
# scenarios of prepare, rollback and shift so too (e2e.fuse.*).
_T0=
if [ -n "${VOLPREP_E2E_FUSE:-}" ]; then
  _T0=$T T=$T/fuse
  mkdir "$_T0/back" "$T"
  chmod 0700 "$_T0/back"; chmod 0755 "$_T0"   # the users a scenario acts as reach $T, not the backing
  cc -std=gnu11 -O2 -o "$_T0/slowfs" "$VOLPREP_SRC/bench/slowfs.c" $(pkg-config --cflags --libs fuse3) ||
    { echo "FAIL: cannot build bench/slowfs.c (libfuse3-dev)" >&2; exit 1; }
  "$_T0/slowfs" --delay-us 0 --attr-cache-s 0 --posix-acl 1 "$_T0/back" "$T" 2>"$_T0/slowfs.log" &
  _slowfs=$!
  for _i in $(seq 100); do [[ $(stat -f -c %T "$T") == fuse* ]] && break; sleep 0.05; done
  [[ $(stat -f -c %T "$T") == fuse* ]] || { echo "FAIL: slowfs did not mount: $(cat "$_T0/slowfs.log")" >&2; exit 1; }
  chmod 0755 "$T"
fi
# Journals stay inside the test's own directory, never in the host's /var/lib/volprep.
export VOLPREP_JOURNAL_DIR=$T/journals
_cleanup_hooks=()
on_exit() { _cleanup_hooks+=("$1"); }
_cleanup() {
  local rc=$? h
  for ((i=${#_cleanup_hooks[@]}-1; i>=0; i--)); do eval "${_cleanup_hooks[i]}" || true; done
  # Mounts a scenario left under $T, deepest first.
  awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  if [ -n "$_T0" ]; then umount "$T" 2>/dev/null || umount -l "$T"; wait "$_slowfs" || true; T=$_T0; fi
  rm -rf "$T" 2>/dev/null || { chattr -R -i "$T" 2>/dev/null; chmod -R u+rwx "$T" 2>/dev/null; rm -rf "$T"; }
  exit $rc
}
trap _cleanup EXIT
trap 'echo "FAIL: ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR

# The map every scenario gives volprep (Docker's dockremap:500000:65536), and volprep itself
# with a time limit.
MAP=(--map 0:500000:65536)
vp() { timeout 60 "$VOLPREP" "$@"; }

fail() { echo "FAIL: $*" >&2; exit 1; }
# Every command, as --help lists them (main.cc's table): "", then each subcommand, depth
# first, one a line ("journal list"). Tests that must cover every command read them here.
volprep_commands() { # [PREFIX...]
  local sub
  echo "$*"
  for sub in $("$VOLPREP" "$@" --help | sed -n '/^Subcommands:/,/^$/{s/^  \([a-z-]*\) .*/\1/p}'); do
    volprep_commands "$@" "$sub"
  done
}
# Expects the command to fail: `not cmd args`.
# scratch_tmpfs NAME: a 1 GiB tmpfs of its own at $T/fs (unmounted on exit), holding the
# journals ($VOLPREP_JOURNAL_DIR, also $JD). Making and removing tens of thousands of files on
# a busy CI disk takes longer than a whole scenario otherwise; a SIGKILL loses nothing that
# reached the page cache, so a tmpfs changes nothing of what a crash test tests. Under
# VOLPREP_E2E_FUSE no tmpfs: $T/fs stays on the FUSE mount, which is what is tested there.
scratch_tmpfs() {
  mkdir "$T/fs"
  [ -z "$_T0" ] || { export VOLPREP_JOURNAL_DIR=$T/fs/journals JD=$T/fs/journals; mkdir -p "$JD"; return; }
  mount -t tmpfs -o size=1g,mode=0755 "volprep-e2e-$1" "$T/fs" || fail "cannot mount a tmpfs"
  on_exit 'umount "$T/fs"'
  export VOLPREP_JOURNAL_DIR=$T/fs/journals
  JD=$VOLPREP_JOURNAL_DIR
  mkdir -p "$JD"
}
# loop_fs TYPE SIZE DIR: a fresh filesystem of TYPE (ext4, xfs or btrfs) and SIZE (truncate's
# units; xfs wants 300M at least, btrfs 120M) in a sparse image DIR.img, on a loop device,
# mounted on DIR (made if missing); false, with the reason on stderr, where its mkfs is missing
# (Debian has e2fsprogs; ./dev installs xfsprogs and btrfs-progs) or no loop device can be had.
# Unmounted on exit by lib.sh's cleanup, as every mount under $T.
loop_fs() {
  local mkfs
  case $1 in
    ext4) mkfs=(mkfs.ext4 -q -F) ;;
    xfs) mkfs=(mkfs.xfs -q -f) ;;
    btrfs) mkfs=(mkfs.btrfs -q -f) ;;
    *) echo "loop_fs: unknown filesystem type $1" >&2; return 1 ;;
  esac
  command -v "${mkfs[0]}" >/dev/null || { echo "loop_fs: no ${mkfs[0]}" >&2; return 1; }
  mkdir -p "$3" && truncate -s "$2" "$3.img" && "${mkfs[@]}" "$3.img" >/dev/null && mount -o loop "$3.img" "$3"
}
# loop_ext4 SIZE DIR: loop_fs ext4 SIZE DIR.
loop_ext4() { loop_fs ext4 "$@"; }
# kill_after WHEN -- CMD...: runs CMD (its output dropped) and SIGKILLs it WHEN seconds later,
# or, for a WHEN that is no number but a glob, once a path matches it (polled every 0.2 ms: a
# moment of the run no timed kill is sure to hit on every machine). True if it was killed,
# false if it ended first.
kill_after() {
  local rc=0
  python3 - "$@" <<'PY' || rc=$?
import glob, os, re, signal, subprocess, sys, time
when, cmd = sys.argv[1], sys.argv[3:]
timed = re.fullmatch(r"[0-9.]+", when) is not None
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
start = time.monotonic()
while p.poll() is None:
    if (time.monotonic() - start >= float(when)) if timed else glob.glob(when):
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        sys.exit(0)
    if time.monotonic() - start > 50:
        p.kill()
        print("kill_after: the run went on for 50 s:", *cmd, file=sys.stderr)
        sys.exit(2)
    time.sleep(0.0002)
sys.exit(1)
PY
  [ "$rc" -le 1 ] || fail "kill_after $1 failed"
  return "$rc"
}
not() { if "$@"; then fail "expected failure: $*"; fi; }
# Runs a command, expects exit code $1: `expect_rc 3 cmd args`.
expect_rc() {
  local want=$1 rc=0; shift
  "$@" || rc=$?
  [ "$rc" -eq "$want" ] || fail "expected exit $want, got $rc: $*"
}
[ "$(id -u)" -eq 0 ] || fail "end-to-end tests run as root"

# Runs "$@" as container uid:gid UID:GID in a user namespace with map 0:500000:65536, the
# way Docker's userns-remap with dockremap:500000:65536 runs a container process. unshare's
# --map-users goes through newuidmap, which wants root:500000:65536 in /etc/subuid and
# /etc/subgid: they are bind-mounted in a private mount namespace, never written.
as_container() { # as_container UID GID cmd args...
  local uid=$1 gid=$2; shift 2
  [ -f "$T/.subid" ] || printf 'root:500000:65536\n' >"$T/.subid"
  unshare --mount --propagation private -- bash -c '
    if [ -e /etc/subuid ] && [ -e /etc/subgid ]; then
      mount --bind "$1" /etc/subuid && mount --bind "$1" /etc/subgid || exit 99
    else  # a copy of /etc with the files added, over /etc in this namespace only
      cp -a /etc "$1.etc" && cp "$1" "$1.etc/subuid" && cp "$1" "$1.etc/subgid" &&
        mount --bind "$1.etc" /etc || exit 99
    fi
    shift
    exec unshare --user --map-users=500000,0,65536 --map-groups=500000,0,65536 \
      --setuid "$1" --setgid "$2" -- "${@:3}"' _ "$T/.subid" "$uid" "$gid" "$@"
}
