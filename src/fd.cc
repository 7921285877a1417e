#include "volprep/fd.h"

#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace volprep {

namespace {
int statx_entry(int dirfd, const char* name, int extra_flags, EntryStat& out) {
  struct statx sx;
  int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | extra_flags | (*name ? 0 : AT_EMPTY_PATH);
  unsigned mask = STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_INO | STATX_NLINK |
                  STATX_MNT_ID | STATX_CTIME | STATX_BTIME;
  if (::statx(dirfd, name, flags, mask, &sx) != 0) return -errno;
  out.ino = sx.stx_ino;
  out.mnt_id = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
  out.dev_major = sx.stx_dev_major;
  out.dev_minor = sx.stx_dev_minor;
  out.uid = sx.stx_uid;
  out.gid = sx.stx_gid;
  out.mode = sx.stx_mode;
  out.nlink = sx.stx_nlink;
  out.ctime_ns = int64_t(sx.stx_ctime.tv_sec) * 1000000000 + sx.stx_ctime.tv_nsec;
  out.btime_ns = (sx.stx_mask & STATX_BTIME) ? int64_t(sx.stx_btime.tv_sec) * 1000000000 + sx.stx_btime.tv_nsec : 0;
  out.mount_root = (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
                   (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
  return 0;
}
}  // namespace

namespace {
// Descriptors open_entry made (O_PATH), one bit per descriptor number, cleared when a UniqueFd
// closes one. Only a hint of which call to try first: a descriptor closed some other way and
// its number reused by a real one only makes a read take the /proc path, which reaches any
// descriptor's inode; one not marked tries the f*xattr call first, which fails on O_PATH.
constexpr int kHintedFds = 1 << 16;
std::atomic<uint64_t> o_path_fds[kHintedFds / 64];
std::atomic<bool> o_path_hint{true};

void mark_o_path(int fd) {
  if (fd >= 0 && fd < kHintedFds) o_path_fds[fd / 64].fetch_or(uint64_t(1) << (fd % 64), std::memory_order_relaxed);
}
bool known_o_path(int fd) {
  return fd >= 0 && fd < kHintedFds && o_path_hint.load(std::memory_order_relaxed) &&
         (o_path_fds[fd / 64].load(std::memory_order_relaxed) >> (fd % 64) & 1);
}
}  // namespace

void UniqueFd::close_fd(int fd) {
  if (fd < kHintedFds) {
    const uint64_t bit = uint64_t(1) << (fd % 64);
    if (o_path_fds[fd / 64].load(std::memory_order_relaxed) & bit)
      o_path_fds[fd / 64].fetch_and(~bit, std::memory_order_relaxed);
  }
  ::close(fd);  // cleared before: the number may be taken again as soon as it is closed
}

void use_o_path_hint(bool on) { o_path_hint.store(on); }

int stat_at(int dirfd, const char* name, EntryStat& out) { return statx_entry(dirfd, name, 0, out); }
int stat_at_cached(int dirfd, const char* name, EntryStat& out) {
  return statx_entry(dirfd, name, AT_STATX_DONT_SYNC, out);
}

int open_dir_at(int dirfd, const char* name) {
  const int base = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int fd = ::openat(dirfd, name, base | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::openat(dirfd, name, base);
  return fd < 0 ? -errno : fd;
}

long openat2_retrying(int dirfd, const char* path, open_how* how) {
  long fd = -1;
  for (int tries = 0; tries < 100; ++tries) {
    fd = ::syscall(SYS_openat2, dirfd, path, how, sizeof *how);
    if (fd >= 0 || errno != EAGAIN) break;
  }
  return fd;
}

int open_entry(int dirfd, const char* name, bool cross_mounts) {
  if (!*name) name = ".";
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH | (cross_mounts ? 0 : RESOLVE_NO_XDEV);
  long fd = openat2_retrying(dirfd, name, &how);
  if (fd >= 0) {
    mark_o_path(int(fd));
    return int(fd);
  }
  if (errno != ENOSYS && errno != EPERM) return -errno;  // EPERM: a seccomp filter said no
  // Without openat2 (Linux before 5.6) a mount point is crossed: the caller's stat of the
  // descriptor shows another mount, after asking its filesystem.
  if (std::strchr(name, '/') || !std::strcmp(name, "..")) return -EXDEV;
  int r = ::openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (r < 0) return -errno;
  mark_o_path(r);
  return r;
}

int open_subdir_same_mount(int dirfd, const char* name) {
  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME;
  how.resolve = RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
  long fd = openat2_retrying(dirfd, name, &how);
  if (fd < 0 && errno == EPERM) {  // O_NOATIME on a directory this user does not own
    how.flags &= ~uint64_t(O_NOATIME);
    fd = openat2_retrying(dirfd, name, &how);
  }
  return fd < 0 ? -errno : int(fd);
}

int open_absolute(const std::string& path, int flags) {
  if (!path.starts_with('/')) return -EINVAL;
  UniqueFd slash(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!slash.valid()) return -errno;
  return open_beneath(slash.get(), path.substr(1), flags);
}

int open_beneath(int dirfd, const std::string& rel, int flags, bool same_mount) {
  flags |= O_CLOEXEC | O_NOFOLLOW;
  std::string path = rel.empty() ? "." : rel;
  open_how how{};
  how.flags = uint64_t(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (same_mount ? RESOLVE_NO_XDEV : 0);
  long fd = openat2_retrying(dirfd, path.c_str(), &how);
  if (fd >= 0) return int(fd);
  if (errno == ENAMETOOLONG && path.size() >= PATH_MAX) {
    // Longer than a syscall takes (a tree may be deeper): the directory at the last '/' that
    // fits, then the rest beneath it.
    size_t cut = path.rfind('/', PATH_MAX - 1);
    if (cut == std::string::npos || cut == 0) return -ENAMETOOLONG;
    int mid = open_beneath(dirfd, path.substr(0, cut), O_PATH | O_DIRECTORY, same_mount);
    if (mid < 0) return mid;
    UniqueFd held(mid);
    return open_beneath(mid, path.substr(cut + 1), flags, same_mount);
  }
  if (errno != ENOSYS && errno != EPERM) return -errno;  // EPERM: a seccomp filter said no
  // Component by component: every intermediate directory O_DIRECTORY|O_NOFOLLOW.
  if (path == ".") {
    int r = ::openat(dirfd, ".", flags);
    return r < 0 ? -errno : r;
  }
  UniqueFd cur(::fcntl(dirfd, F_DUPFD_CLOEXEC, 3));
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    std::string part = path.substr(start, slash == std::string::npos ? slash : slash - start);
    if (part.empty() || part == "." || part == "..") return -EXDEV;
    if (slash == std::string::npos) {
      int r = ::openat(cur.get(), part.c_str(), flags);
      return r < 0 ? -errno : r;
    }
    // O_PATH: passing through needs search permission only, as path resolution does.
    int next = ::openat(cur.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return -errno;
    cur.reset(next);
    start = slash + 1;
  }
}

namespace {
// "/proc/self/fd/N", then "/NAME" unless the name is empty: built on the stack, as the census
// reads an entry's attributes this way on kernels before 6.13 (no *xattrat calls), and a
// string built for each was a tenth of a shift's instructions. A name too long for the buffer
// (longer than any the kernel takes) goes to the heap whole, never cut.
class FdPath {
 public:
  FdPath(int dirfd, const std::string& name) {
    constexpr std::string_view kPrefix = "/proc/self/fd/";
    char* at = std::copy(kPrefix.begin(), kPrefix.end(), buf_);
    at = std::to_chars(at, buf_ + kNumberEnd, dirfd).ptr;
    if (!name.empty()) {
      if (size_t(buf_ + sizeof buf_ - at) < name.size() + 2) {
        long_.assign(buf_, at);
        long_ += '/';
        long_ += name;
        return;
      }
      *at++ = '/';
      at = std::copy(name.begin(), name.end(), at);
    }
    *at = '\0';
  }
  const char* c_str() const { return long_.empty() ? buf_ : long_.c_str(); }

 private:
  static constexpr size_t kNumberEnd = 14 + 11;  // the prefix, then an int's digits and sign
  char buf_[kNumberEnd + 1 + NAME_MAX + 1];
  std::string long_;
};
FdPath fd_path(int dirfd, const std::string& name) { return FdPath(dirfd, name); }

// The *xattrat(2) calls of Linux 6.13: the same numbers on every architecture. Debian 12's
// headers predate them.
constexpr long kSysSetxattrat = 463, kSysGetxattrat = 464, kSysListxattrat = 465, kSysRemovexattrat = 466;
struct XattrArgs {
  uint64_t value;
  uint32_t size;
  uint32_t flags;
};
// Whether the kernel takes the *xattrat calls: unknown until the first call probes it (a
// seccomp filter may answer EPERM rather than ENOSYS), then fixed for the run.
enum XattrAt { kUnknown, kYes, kNo };
std::atomic<int> have_xattrat{kUnknown};

bool xattrat_available() {
  int have = have_xattrat.load(std::memory_order_relaxed);
  if (have == kUnknown) {
    char buf[1];
    XattrArgs args{reinterpret_cast<uintptr_t>(buf), sizeof buf, 0};
    long r = ::syscall(kSysGetxattrat, AT_FDCWD, "/", AT_SYMLINK_NOFOLLOW, "user.volprep-probe", &args, sizeof args);
    have = r >= 0 || errno == ENODATA || errno == EOPNOTSUPP || errno == ERANGE ? kYes : kNo;
    have_xattrat.store(have, std::memory_order_relaxed);
  }
  return have == kYes;
}

// Runs `at` (an *xattrat call) where the kernel has them, else `fallback`. -errno or the
// call's result.
template <typename At, typename Fallback>
long xattr_call(At at, Fallback fallback) {
  if (xattrat_available()) {
    long r = at();
    if (r >= 0) return r;
    if (errno != ENOSYS) return -errno;
    have_xattrat.store(kNo, std::memory_order_relaxed);
  }
  long r = fallback();
  return r >= 0 ? r : -errno;
}

// An O_PATH descriptor, which the f*xattr calls refuse (and, up to Linux 6.18 at least, the
// *xattrat calls with AT_EMPTY_PATH): the inode behind our own link in /proc/self/fd, which
// the *xattrat calls reach from a descriptor of that directory held for the process (a third
// of the cost of the whole path).
int proc_fd_dir() {
  static const int fd = ::open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
  return fd;
}
// `at(dir, name, flags)` on our own link to `fd`; `path(p)` without the *xattrat calls.
template <typename At, typename Path>
long through_proc(int fd, At at, Path path) {
  const int dir = proc_fd_dir();
  if (dir < 0) return path(fd_path(fd, "").c_str());
  char num[16];
  std::snprintf(num, sizeof num, "%d", fd);
  return xattr_call([&] { return at(dir, num, 0); }, [&] { return path(fd_path(fd, "").c_str()); });
}

// Whether the *xattrat calls take an O_PATH descriptor itself (AT_EMPTY_PATH): probed once on
// the /proc/self/fd descriptor, which is one.
std::atomic<int> empty_path_on_o_path{kUnknown};
bool empty_path_takes_o_path() {
  if (!xattrat_available()) return false;
  int have = empty_path_on_o_path.load(std::memory_order_relaxed);
  if (have == kUnknown) {
    char buf[1];
    XattrArgs args{reinterpret_cast<uintptr_t>(buf), sizeof buf, 0};
    long r = proc_fd_dir() < 0 ? -1
                               : ::syscall(kSysGetxattrat, proc_fd_dir(), "", AT_EMPTY_PATH, "user.volprep-probe",
                                           &args, sizeof args);
    have = r >= 0 || errno == ENODATA || errno == EOPNOTSUPP || errno == ERANGE ? kYes : kNo;
    empty_path_on_o_path.store(have, std::memory_order_relaxed);
  }
  return have == kYes;
}

// An xattr call on the descriptor `fd` itself: `f()` (its f*xattr call) unless `fd` is known
// to be O_PATH, then `at(dirfd, name, flags)` (its *xattrat call) on `fd` with AT_EMPTY_PATH
// where the kernel takes that, else through /proc (`path(p)` without *xattrat). The result
// or -errno: one syscall for a pin (open_entry) or a directory, two for an O_PATH descriptor
// opened some other way.
template <typename F, typename At, typename Path>
long on_fd(int fd, F f, At at, Path path) {
  if (!known_o_path(fd)) {
    long r = f();
    if (r >= 0 || errno != EBADF) return r >= 0 ? r : -errno;
  }
  if (empty_path_takes_o_path()) {
    long r = at(fd, "", AT_EMPTY_PATH);
    if (r >= 0) return r;
    if (errno != ENOSYS) return -errno;
  }
  return through_proc(fd, at, path);
}

// getxattr of `name` in `dirfd` (or of dirfd itself) into buf; the size or -errno.
long get_xattr_raw(int dirfd, const std::string& name, const char* attr, void* buf, size_t size) {
  auto at = [&](int dir, const char* n, int flags) {
    XattrArgs args{reinterpret_cast<uintptr_t>(buf), uint32_t(size), 0};
    return ::syscall(kSysGetxattrat, dir, n, flags, attr, &args, sizeof args);
  };
  if (name.empty())
    return on_fd(
        dirfd, [&] { return long(::fgetxattr(dirfd, attr, buf, size)); }, at,
        [&](const char* path) { return long(::getxattr(path, attr, buf, size)); });
  return xattr_call([&] { return at(dirfd, name.c_str(), AT_SYMLINK_NOFOLLOW); },
                    [&] { return long(::lgetxattr(fd_path(dirfd, name).c_str(), attr, buf, size)); });
}

// listxattr, as get_xattr_raw: the names' size or -errno.
long list_xattr_raw(int dirfd, const std::string& name, char* buf, size_t size) {
  auto at = [&](int dir, const char* n, int flags) { return ::syscall(kSysListxattrat, dir, n, flags, buf, size); };
  if (name.empty())
    return on_fd(
        dirfd, [&] { return long(::flistxattr(dirfd, buf, size)); }, at,
        [&](const char* path) { return long(::listxattr(path, buf, size)); });
  return xattr_call([&] { return at(dirfd, name.c_str(), AT_SYMLINK_NOFOLLOW); },
                    [&] { return long(::llistxattr(fd_path(dirfd, name).c_str(), buf, size)); });
}
}  // namespace

void use_xattrat(bool on) {
  have_xattrat.store(on ? kYes : kNo);
  empty_path_on_o_path.store(kUnknown);
}
bool xattrat_takes_o_path() { return empty_path_takes_o_path(); }

int get_xattr_at(int dirfd, const std::string& name, const char* attr, std::string& out) {
  char buf[512];
  long n = get_xattr_raw(dirfd, name, attr, buf, sizeof buf);
  while (n == -ERANGE) {  // larger than buf: ask its size, then read it (it may grow meanwhile)
    n = get_xattr_raw(dirfd, name, attr, nullptr, 0);
    if (n < 0) return int(n);
    out.resize(size_t(n));
    n = get_xattr_raw(dirfd, name, attr, out.data(), out.size());
    if (n >= 0) {
      out.resize(size_t(n));
      return 0;
    }
  }
  if (n < 0) return int(n);
  out.assign(buf, size_t(n));
  return 0;
}

void get_xattrs_at(int dirfd, const std::string& name, std::span<const char* const> attrs, bool listed,
                   std::span<std::optional<std::string>> values, std::span<int> rcs) {
  // One get is as cheap as the list; a list longer than the buffer is read attribute by
  // attribute, as is one the filesystem cannot give.
  char names[1024];
  const long n = listed && attrs.size() > 1 ? list_xattr_raw(dirfd, name, names, sizeof names) : -1;
  for (size_t i = 0; i < attrs.size(); ++i) {
    values[i].reset();
    if (n >= 0) {
      bool has = false;
      for (const char* at = names; at < names + n; at += std::strlen(at) + 1)
        if (!std::strcmp(at, attrs[i])) has = true;
      if (!has) {
        rcs[i] = -ENODATA;
        continue;
      }
    }
    std::string v;
    rcs[i] = get_xattr_at(dirfd, name, attrs[i], v);
    if (rcs[i] == 0) values[i] = std::move(v);
  }
}

// An empty name is dirfd itself: f*xattr, or for an O_PATH descriptor (which they refuse)
// as on_fd says (a caller never passes an O_PATH descriptor of a symlink).
int set_xattr_at(int dirfd, const std::string& name, const char* attr, const std::string& value) {
  auto at = [&](int dir, const char* n, int flags) {
    XattrArgs args{reinterpret_cast<uintptr_t>(value.data()), uint32_t(value.size()), 0};
    return ::syscall(kSysSetxattrat, dir, n, flags, attr, &args, sizeof args);
  };
  long r = name.empty()
               ? on_fd(
                     dirfd, [&] { return long(::fsetxattr(dirfd, attr, value.data(), value.size(), 0)); }, at,
                     [&](const char* path) { return long(::setxattr(path, attr, value.data(), value.size(), 0)); })
               : xattr_call([&] { return at(dirfd, name.c_str(), AT_SYMLINK_NOFOLLOW); },
                            [&] {
                              return long(::lsetxattr(fd_path(dirfd, name).c_str(), attr, value.data(), value.size(), 0));
                            });
  return r < 0 ? int(r) : 0;
}

int remove_xattr_at(int dirfd, const std::string& name, const char* attr) {
  auto at = [&](int dir, const char* n, int flags) { return ::syscall(kSysRemovexattrat, dir, n, flags, attr); };
  long r = name.empty() ? on_fd(
                              dirfd, [&] { return long(::fremovexattr(dirfd, attr)); }, at,
                              [&](const char* path) { return long(::removexattr(path, attr)); })
                        : xattr_call([&] { return at(dirfd, name.c_str(), AT_SYMLINK_NOFOLLOW); },
                                     [&] { return long(::lremovexattr(fd_path(dirfd, name).c_str(), attr)); });
  return r == 0 || r == -ENODATA ? 0 : int(r);
}

uint64_t cached_mount_id(int fd) {
  // No attribute asked: FUSE answers such a statx without its server, even on a mount whose
  // allow_other does not let root in; the mount id is the VFS's.
  struct statx sx;
  if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC, 0, &sx) != 0)
    return 0;
  return (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
}

void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int64_t fs_type(int fd) {
  struct statfs sf;
  if (::fstatfs(fd, &sf) != 0) return 0;
  return int64_t(sf.f_type);
}

bool on_read_only_mount(int fd) {
  struct statvfs sv;
  return ::fstatvfs(fd, &sv) == 0 && (sv.f_flag & ST_RDONLY);
}

namespace {
struct FsName {
  int64_t magic;
  const char* name;
  bool pseudo;
};
constexpr FsName kFilesystems[] = {
    {PROC_SUPER_MAGIC, "proc", true},       {SYSFS_MAGIC, "sysfs", true},
    {CGROUP_SUPER_MAGIC, "cgroup", true},   {CGROUP2_SUPER_MAGIC, "cgroup2", true},
    {DEVPTS_SUPER_MAGIC, "devpts", true},   {DEBUGFS_MAGIC, "debugfs", true},
    {TRACEFS_MAGIC, "tracefs", true},       {SECURITYFS_MAGIC, "securityfs", true},
    {BPF_FS_MAGIC, "bpf", true},            {PSTOREFS_MAGIC, "pstore", true},
    {0x62656570 /* CONFIGFS */, "configfs", true},
    {0x65735543 /* FUSECTL */, "fusectl", true},
    {EFIVARFS_MAGIC, "efivarfs", true},     {0x42494e4d /* BINFMTFS */, "binfmt_misc", true},
    {SELINUX_MAGIC, "selinuxfs", true},     {0x19800202 /* MQUEUE */, "mqueue", true},
    {NSFS_MAGIC, "nsfs", true},             {AUTOFS_SUPER_MAGIC, "autofs", true},
    {TMPFS_MAGIC, "tmpfs", false},          {EXT4_SUPER_MAGIC, "ext4", false},
    {XFS_SUPER_MAGIC, "xfs", false},        {BTRFS_SUPER_MAGIC, "btrfs", false},
    {OVERLAYFS_SUPER_MAGIC, "overlay", false}, {RAMFS_MAGIC, "ramfs", false},
    {NFS_SUPER_MAGIC, "nfs", false},        {0x65735546 /* FUSE */, "fuse", false},
    {SMB_SUPER_MAGIC, "smb", false},        {CIFS_SUPER_MAGIC, "cifs", false},
    {SMB2_SUPER_MAGIC, "smb2", false},      {CEPH_SUPER_MAGIC, "ceph", false},
    {V9FS_MAGIC, "9p", false},              {AFS_FS_MAGIC, "afs", false},
    {0x01161970 /* GFS2 */, "gfs2", false}, {0x0bd00bd0 /* LUSTRE */, "lustre", false},
};
}  // namespace

bool is_pseudo_fs(int64_t magic) {
  for (const auto& f : kFilesystems)
    if (f.magic == magic) return f.pseudo;
  return false;
}

std::string fs_type_name(int64_t magic) {
  for (const auto& f : kFilesystems)
    if (f.magic == magic) return f.name;
  char buf[32];
  snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)magic);
  return buf;
}

}  // namespace volprep

namespace volprep {

bool is_local_fs(int64_t magic) {
  switch (magic) {
    case EXT4_SUPER_MAGIC: case XFS_SUPER_MAGIC: case BTRFS_SUPER_MAGIC: case TMPFS_MAGIC:
    case RAMFS_MAGIC: case F2FS_SUPER_MAGIC:
    case 0x2fc12fc1:  // ZFS
      return true;
  }
  return false;
}

}  // namespace volprep
