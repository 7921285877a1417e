// Descriptor helpers: an owning fd, and the few syscalls the walk makes, each relative to an
// open directory and never following a symlink. Functions return 0 or -errno.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace volprep {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) close_fd(fd_);
    fd_ = fd;
  }
  // close(2), forgetting what this process knew of the descriptor (see open_entry).
  static void close_fd(int fd);

 private:
  int fd_ = -1;
};

// A descriptor held by whoever still needs it (a walk, a journal batch waiting to be
// applied); closed when the last holder lets go. Holding one costs no syscall.
using SharedFd = std::shared_ptr<const UniqueFd>;
// A SharedFd for a descriptor owned elsewhere that outlives every holder.
inline SharedFd borrow_fd(const UniqueFd& fd) { return SharedFd(SharedFd(), &fd); }

// What the walk needs to know of an entry: one statx.
struct EntryStat {
  uint64_t ino = 0;
  uint64_t mnt_id = 0;
  uint32_t dev_major = 0, dev_minor = 0;
  uint32_t uid = 0, gid = 0;
  uint32_t mode = 0;  // st_mode: type and permission bits
  uint32_t nlink = 0;
  int64_t ctime_ns = 0;  // the inode's last change: content, owner, mode, links or xattrs
  int64_t btime_ns = 0;  // its birth, where the filesystem keeps it (else 0)
  bool mount_root = false;  // STATX_ATTR_MOUNT_ROOT, where the kernel reports it
  bool same_inode(const EntryStat& o) const {
    return ino == o.ino && dev_major == o.dev_major && dev_minor == o.dev_minor;
  }
};

// statx(dirfd, name, AT_SYMLINK_NOFOLLOW); an empty name stats dirfd itself.
int stat_at(int dirfd, const char* name, EntryStat& out);

// Pins the entry `name` of `dirfd` ("": dirfd itself): an O_PATH|O_NOFOLLOW descriptor of
// that inode (a symlink itself, never its target), opened without crossing into a mount
// (-EXDEV: something is mounted there now) unless `cross_mounts`. Every decision about the
// entry and every change to it go through this one descriptor, so a name renamed or swapped
// meanwhile changes nothing. fd or -errno.
int open_entry(int dirfd, const char* name, bool cross_mounts = false);

// openat(dirfd, name, O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC|O_NOATIME), without O_NOATIME where it
// is refused. Returns the fd or -errno.
int open_dir_at(int dirfd, const char* name);

// Raises RLIMIT_NOFILE's soft limit to the hard limit: the parallel walk holds a descriptor
// per directory in flight.
void raise_fd_limit();

// Filesystem type magic (statfs f_type) of an open descriptor, or 0 on error.
int64_t fs_type(int fd);
// Whether the open descriptor is on a read-only mount: the mount made ro (mount -o bind,ro) or
// its filesystem mounted ro; statvfs sees both. False when it cannot be told.
bool on_read_only_mount(int fd);
// Pseudo filesystems the walk never enters (proc, sysfs, cgroup, devpts, debugfs, ...).
bool is_pseudo_fs(int64_t magic);
std::string fs_type_name(int64_t magic);

}  // namespace volprep

namespace volprep {

// openat2(2), again while it fails with EAGAIN: with RESOLVE_BENEATH or RESOLVE_IN_ROOT the
// kernel says so when a rename or a mount anywhere on the system may have raced a ".." in the
// lookup, and asks the caller to try again. Returns the descriptor, or -1 with errno.
long openat2_retrying(int dirfd, const char* path, ::open_how* how);

// Opens `rel` (relative, "" for dirfd itself) below `dirfd` without following any symlink or
// leaving the tree: openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS) where
// the kernel has it, else component by component with O_NOFOLLOW. Returns the fd or -errno.
// With `same_mount`, never into another mount either (RESOLVE_NO_XDEV: -EXDEV), where the
// kernel has openat2.
int open_beneath(int dirfd, const std::string& rel, int flags, bool same_mount = false);

// Opens the absolute `path` as open_beneath opens a path below "/": no symlink followed on
// the way, the last component included. Returns the fd or -errno (-EINVAL: not absolute).
int open_absolute(const std::string& path, int flags);

// Opens the subdirectory `name` of `dirfd` (O_DIRECTORY|O_NOFOLLOW|O_NOATIME) only if it is
// on the same mount: openat2(2) with RESOLVE_NO_XDEV, which also never triggers an automount.
// Returns the fd, -EXDEV for a mount point, -ENOSYS without openat2 (-EPERM under some
// seccomp filters), or another -errno.
int open_subdir_same_mount(int dirfd, const char* name);

// Extended attributes of the entry `name` in `dirfd` without following a symlink: with
// getxattrat(2) and friends (AT_SYMLINK_NOFOLLOW) where the kernel has them (6.13), else
// through /proc/self/fd/DIRFD/NAME with l*xattr, so only our own descriptor is resolved. An
// empty name means dirfd itself, which may be an O_PATH descriptor (of anything but a symlink). get: 0 with `out` set, -ENODATA when absent, or -errno.
int get_xattr_at(int dirfd, const std::string& name, const char* attr, std::string& out);
int set_xattr_at(int dirfd, const std::string& name, const char* attr, const std::string& value);
int remove_xattr_at(int dirfd, const std::string& name, const char* attr);
// Reads several attributes of one entry, as get_xattr_at reads each: rcs[i] is 0 with
// values[i] set, -ENODATA when absent, or -errno. With `listed`, one listxattr says which of
// them the entry has and only those are read: one syscall for an entry that has none, where
// a get per attribute takes as many. Only for a filesystem that lists every attribute it
// holds (ACLs and capabilities included: the local ones, is_local_fs), and only where the
// race is harmless: an attribute set between the list and the read reads as absent, as one
// set just after a get would.
void get_xattrs_at(int dirfd, const std::string& name, std::span<const char* const> attrs, bool listed,
                   std::span<std::optional<std::string>> values, std::span<int> rcs);
// For tests: false makes the functions above take the /proc path, as on a kernel before 6.13.
void use_xattrat(bool on);
// For tests: whether the kernel's *xattrat calls take an O_PATH descriptor with AT_EMPTY_PATH
// (probed once; Linux 6.18 refuses it with EBADF), and whether open_entry's descriptors are
// known as O_PATH (false: every call on a pin tries the f*xattr call first, as before).
bool xattrat_takes_o_path();
void use_o_path_hint(bool on);

inline constexpr const char* kCapabilityXattr = "security.capability";

// The mount id of `fd`'s inode, from the kernel's cache (no request reaches a FUSE or network
// server, whatever its state), or 0.
uint64_t cached_mount_id(int fd);

}  // namespace volprep

namespace volprep {

// stat_at with AT_STATX_DONT_SYNC: a FUSE or network filesystem answers from its cache, so a
// mount point reached by name (whose root belongs to another filesystem) sends its server no
// request, and a FUSE server that never answers cannot hang the caller. On a local filesystem
// (is_local_fs) the result is the same as stat_at's.
int stat_at_cached(int dirfd, const char* name, EntryStat& out);

// Filesystems that keep an inode's attributes in memory and never ask anyone for them
// (ext4, xfs, btrfs, tmpfs, ...): on these AT_STATX_DONT_SYNC changes nothing.
bool is_local_fs(int64_t magic);

}  // namespace volprep
