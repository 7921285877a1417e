#include "volprep/fd.h"

#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

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

int open_entry(int dirfd, const char* name, bool cross_mounts) {
  if (!*name) name = ".";
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH | (cross_mounts ? 0 : RESOLVE_NO_XDEV);
  long fd = ::syscall(SYS_openat2, dirfd, name, &how, sizeof how);
  if (fd >= 0) return int(fd);
  if (errno != ENOSYS && errno != EPERM) return -errno;  // EPERM: a seccomp filter said no
  // Without openat2 (Linux before 5.6) a mount point is crossed: the caller's stat of the
  // descriptor shows another mount, after asking its filesystem.
  if (std::strchr(name, '/') || !std::strcmp(name, "..")) return -EXDEV;
  int r = ::openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  return r < 0 ? -errno : r;
}

int open_subdir_same_mount(int dirfd, const char* name) {
  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME;
  how.resolve = RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
  long fd = ::syscall(SYS_openat2, dirfd, name, &how, sizeof how);
  if (fd < 0 && errno == EPERM) {  // O_NOATIME on a directory this user does not own
    how.flags &= ~uint64_t(O_NOATIME);
    fd = ::syscall(SYS_openat2, dirfd, name, &how, sizeof how);
  }
  return fd < 0 ? -errno : int(fd);
}

int open_beneath(int dirfd, const std::string& rel, int flags, bool same_mount) {
  flags |= O_CLOEXEC | O_NOFOLLOW;
  std::string path = rel.empty() ? "." : rel;
  open_how how{};
  how.flags = uint64_t(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (same_mount ? RESOLVE_NO_XDEV : 0);
  long fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
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
std::string fd_path(int dirfd, const std::string& name) {
  std::string p = "/proc/self/fd/" + std::to_string(dirfd);
  if (!name.empty()) p += "/" + name;
  return p;
}

// The *xattrat(2) calls of Linux 6.13: the same numbers on every architecture. Debian 12's
// headers predate them.
constexpr long kSysSetxattrat = 463, kSysGetxattrat = 464, kSysRemovexattrat = 466;
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

// getxattr of `name` in `dirfd` (or of dirfd itself) into buf; the size or -errno.
// An O_PATH descriptor, which the f*xattr calls (and *xattrat with AT_EMPTY_PATH) refuse:
// the inode behind our own link in /proc/self/fd, which the *xattrat calls reach from a
// descriptor of that directory held for the process (a third of the cost of the whole path).
int proc_fd_dir() {
  static const int fd = ::open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
  return fd;
}
template <typename At, typename Path>
long through_proc(int fd, At at, Path path) {
  const int dir = proc_fd_dir();
  if (dir < 0) return path(fd_path(fd, "").c_str());
  char num[16];
  std::snprintf(num, sizeof num, "%d", fd);
  return xattr_call([&] { return at(dir, num); }, [&] { return path(fd_path(fd, "").c_str()); });
}

long get_xattr_raw(int dirfd, const std::string& name, const char* attr, void* buf, size_t size) {
  if (name.empty()) {
    ssize_t r = ::fgetxattr(dirfd, attr, buf, size);
    if (r >= 0 || errno != EBADF) return r >= 0 ? r : -errno;
    return through_proc(
        dirfd,
        [&](int dir, const char* num) {
          XattrArgs args{reinterpret_cast<uintptr_t>(buf), uint32_t(size), 0};
          return ::syscall(kSysGetxattrat, dir, num, 0, attr, &args, sizeof args);
        },
        [&](const char* path) { return long(::getxattr(path, attr, buf, size)); });
  }
  return xattr_call(
      [&] {
        XattrArgs args{reinterpret_cast<uintptr_t>(buf), uint32_t(size), 0};
        return ::syscall(kSysGetxattrat, dirfd, name.c_str(), AT_SYMLINK_NOFOLLOW, attr, &args, sizeof args);
      },
      [&] { return long(::lgetxattr(fd_path(dirfd, name).c_str(), attr, buf, size)); });
}
}  // namespace

void use_xattrat(bool on) { have_xattrat.store(on ? kYes : kNo); }

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

// An empty name is dirfd itself: f*xattr, or for an O_PATH descriptor (which they and the
// *xattrat calls refuse) *xattr through /proc/self/fd, which resolves to that very inode (a
// caller never passes an O_PATH descriptor of a symlink).
int set_xattr_at(int dirfd, const std::string& name, const char* attr, const std::string& value) {
  if (name.empty()) {
    if (::fsetxattr(dirfd, attr, value.data(), value.size(), 0) == 0) return 0;
    if (errno != EBADF) return -errno;
    long r = through_proc(
        dirfd,
        [&](int dir, const char* num) {
          XattrArgs args{reinterpret_cast<uintptr_t>(value.data()), uint32_t(value.size()), 0};
          return ::syscall(kSysSetxattrat, dir, num, 0, attr, &args, sizeof args);
        },
        [&](const char* path) { return long(::setxattr(path, attr, value.data(), value.size(), 0)); });
    return r < 0 ? int(r) : 0;
  }
  long r = xattr_call(
      [&] {
        XattrArgs args{reinterpret_cast<uintptr_t>(value.data()), uint32_t(value.size()), 0};
        return ::syscall(kSysSetxattrat, dirfd, name.c_str(), AT_SYMLINK_NOFOLLOW, attr, &args, sizeof args);
      },
      [&] { return long(::lsetxattr(fd_path(dirfd, name).c_str(), attr, value.data(), value.size(), 0)); });
  return r < 0 ? int(r) : 0;
}

int remove_xattr_at(int dirfd, const std::string& name, const char* attr) {
  long r = 0;
  if (name.empty()) {
    if (::fremovexattr(dirfd, attr) != 0) r = -errno;
    if (r == -EBADF)
      r = through_proc(
          dirfd, [&](int dir, const char* num) { return ::syscall(kSysRemovexattrat, dir, num, 0, attr); },
          [&](const char* path) { return long(::removexattr(path, attr)); });
  } else {
    r = xattr_call([&] { return ::syscall(kSysRemovexattrat, dirfd, name.c_str(), AT_SYMLINK_NOFOLLOW, attr); },
                   [&] { return long(::lremovexattr(fd_path(dirfd, name).c_str(), attr)); });
  }
  return r == 0 || r == -ENODATA ? 0 : int(r);
}

std::string mount_point_of(uint64_t mnt_id) {
  FILE* f = std::fopen("/proc/self/mountinfo", "re");
  if (!f) return "?";
  char line[4096];
  std::string found = "?";
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long id = 0;
    char point[4096];
    // "36 35 98:0 /mnt1 /mnt/parent ...": mount id, parent id, dev, root, mount point
    if (std::sscanf(line, "%llu %*u %*s %*s %4095s", &id, point) == 2 && id == mnt_id) {
      found = point;
      break;
    }
  }
  std::fclose(f);
  return found;
}

std::vector<std::string> mounts_below(const std::string& dir) {
  std::vector<std::string> out;
  FILE* f = std::fopen("/proc/self/mountinfo", "re");
  if (!f) return out;
  char line[4096];
  const std::string prefix = dir == "/" ? "/" : dir + "/";
  while (std::fgets(line, sizeof line, f)) {
    char point[4096];
    if (std::sscanf(line, "%*u %*u %*s %*s %4095s", point) == 1 &&
        std::string_view(point).starts_with(prefix) && std::string_view(point) != dir)
      out.emplace_back(point);  // (mountinfo escapes spaces as \040: such names are skipped)
  }
  std::fclose(f);
  return out;
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
