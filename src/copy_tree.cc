#include "volprep/copy_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "volprep/fd.h"
#include "volprep/idmount.h"
#include "volprep/walk.h"

namespace volprep {

namespace {

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }
// The names in the directory `fd`, sorted (a deterministic copy and report), "." and ".." left out.
int list_names(int fd, std::vector<std::string>& out) {
  int dup = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) return -errno;
  DIR* d = ::fdopendir(dup);
  if (!d) {
    int err = errno;
    ::close(dup);
    return -err;
  }
  errno = 0;
  while (dirent* de = ::readdir(d)) {
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) out.emplace_back(de->d_name);
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return -err;
}

// "/proc/self/fd/N": the inode of our own descriptor N, for the l*xattr calls an O_PATH
// descriptor cannot take.
std::string proc_fd(int fd, const std::string& name = "") {
  return "/proc/self/fd/" + std::to_string(fd) + (name.empty() ? "" : "/" + name);
}

}  // namespace

bool copies_xattr(std::string_view name) {
  return !(name == "trusted.SGI_ACL_FILE" || name == "trusted.SGI_ACL_DEFAULT" || name == "trusted.SGI_CAP_FILE" ||
           name == "trusted.SGI_MAC_FILE" || name.starts_with("trusted.SGI_DMI_") || name.starts_with("xfsroot."));
}

namespace {

// An entry's extended attributes, raw: listed and read through `fd` (a real descriptor) or,
// for an O_PATH one (of a fifo or device, never a symlink), through /proc/self/fd/N, whose
// magic link the non-l calls follow to that inode.
int read_xattrs(int fd, bool o_path, std::vector<std::pair<std::string, std::string>>& out) {
  const std::string p = o_path ? proc_fd(fd) : "";
  std::string names(1024, '\0');
  for (;;) {
    ssize_t n = o_path ? ::listxattr(p.c_str(), names.data(), names.size())
                       : ::flistxattr(fd, names.data(), names.size());
    if (n >= 0) {
      names.resize(size_t(n));
      break;
    }
    if (errno == ENOTSUP) return 0;
    if (errno != ERANGE) return -errno;
    names.resize(names.size() * 4);
  }
  for (size_t at = 0; at < names.size();) {
    std::string name = names.c_str() + at;
    at += name.size() + 1;
    if (!copies_xattr(name)) continue;
    std::string value(256, '\0');
    for (;;) {
      ssize_t n = o_path ? ::getxattr(p.c_str(), name.c_str(), value.data(), value.size())
                         : ::fgetxattr(fd, name.c_str(), value.data(), value.size());
      if (n >= 0) {
        value.resize(size_t(n));
        out.emplace_back(name, std::move(value));
        break;
      }
      if (errno == ENODATA) break;  // removed since the list
      if (errno != ERANGE) return -errno;
      value.resize(value.size() * 4 + 65536);
    }
  }
  return 0;
}

bool same_time(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}
// Whether the inode's content or listing moved between two fstats: its size, modification or
// change time (a writer's append or truncate, a name made or removed in a directory).
bool changed(const struct stat& before, const struct stat& after) {
  return before.st_size != after.st_size || !same_time(before.st_mtim, after.st_mtim) ||
         !same_time(before.st_ctim, after.st_ctim);
}

std::string too_deep(const std::string& path) {
  return path + ": deeper than " + std::to_string(kMaxCopyDepth) +
         " directory levels, which volprep does not copy (each level holds two descriptors and a stack frame); "
         "move this volume by hand; nothing changed";
}

struct Copier {
  int dst_root = -1;
  std::string src_root_path, dst_root_path;
  uint64_t mnt_id = 0;
  uint32_t dev_major = 0, dev_minor = 0;
  struct Linked {
    uint32_t nlink = 0;             // the most links a sighting saw
    std::vector<std::string> rels;  // its links met in the tree (relative), the first one copied
  };
  std::map<std::pair<dev_t, ino_t>, Linked> linked;  // the inodes of several links
  CopyStats stats;
  std::function<void(const std::string&)> on_file;
  uint64_t max_bytes = UINT64_MAX;

  Error fail(const std::string& rel, const std::string& what) {
    return config_error(join_path(src_root_path, rel) + ": " + what + "; not copied");
  }

  // Owner, xattrs, mode (after the chown, which clears set-id bits and capabilities), times.
  // `dst` is a real descriptor, or -1 for the entry `name` of `dst_dir` (a fifo or device).
  Result<bool> copy_meta(const std::string& rel, int src, bool src_o_path, const struct stat& st, int dst,
                         int dst_dir, const std::string& name) {
    auto bad = [&](const char* what) { return fail(rel, std::string(what) + " of the copy: " + errno_text(errno)); };
    if ((dst >= 0 ? ::fchown(dst, st.st_uid, st.st_gid)
                  : ::fchownat(dst_dir, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW)) != 0)
      return bad("chown");
    std::vector<std::pair<std::string, std::string>> xattrs;
    if (int rc = read_xattrs(src, src_o_path, xattrs); rc < 0) return fail(rel, "xattrs: " + errno_text(rc));
    const std::string dst_proc = dst >= 0 ? "" : proc_fd(dst_dir, name);
    for (const auto& [k, v] : xattrs) {
      int rc = dst >= 0 ? ::fsetxattr(dst, k.c_str(), v.data(), v.size(), 0)
                        : ::lsetxattr(dst_proc.c_str(), k.c_str(), v.data(), v.size(), 0);
      if (rc == 0) continue;
      if (errno == ENOTSUP || errno == EOPNOTSUPP || errno == EPERM) {
        stats.skipped.push_back(join_path(src_root_path, rel) + ": xattr " + k + " not copied: the target refuses it (" +
                                errno_text(errno) + ")");
        continue;
      }
      return bad(("xattr " + k).c_str());
    }
    const mode_t mode = st.st_mode & 07777;
    if ((dst >= 0 ? ::fchmod(dst, mode) : ::fchmodat(dst_dir, name.c_str(), mode, 0)) != 0) return bad("chmod");
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    if ((dst >= 0 ? ::futimens(dst, times) : ::utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW)) != 0)
      return bad("times");
    return true;
  }

  // No more than `size`, the file's size when it was opened: a file a writer keeps growing (a
  // sparse extension costs it nothing) would otherwise be copied for as long as it grows,
  // until the target is full; growth fails the check after the copy.
  Result<bool> copy_data(const std::string& rel, int in, int out, uint64_t size) {
    bool range = true;
    std::vector<char> buf;
    for (uint64_t left = size; left > 0;) {
      ssize_t n;
      if (range) {
        n = ::copy_file_range(in, nullptr, out, nullptr, size_t(std::min<uint64_t>(left, uint64_t(1) << 30)), 0);
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EPERM)) {
          range = false;  // the offsets moved only by what was copied: read/write goes on from there
          continue;
        }
      } else {
        buf.resize(1 << 18);
        n = ::read(in, buf.data(), size_t(std::min<uint64_t>(left, buf.size())));
        for (ssize_t done = 0; n > 0 && done < n;) {
          ssize_t w = ::write(out, buf.data() + done, size_t(n - done));
          if (w < 0) return fail(rel, "write: " + errno_text(errno));
          done += w;
        }
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail(rel, "copy: " + errno_text(errno));
      }
      if (n == 0) return true;  // shrunk: the check after the copy says so
      stats.bytes += uint64_t(n);
      left -= uint64_t(n);
    }
    return true;
  }

  // The directory `sfd` (`rel` in the tree) into the new directory `dfd`.
  // `st` is its fstat from before the listing: a name made or removed since is refused.
  Result<bool> copy_dir(int sfd, const struct stat& st, int dfd, const std::string& rel, unsigned depth) {
    if (depth > kMaxCopyDepth) return Error{kExitRefused, too_deep(join_path(src_root_path, rel))};
    std::vector<std::string> names;
    if (int rc = list_names(sfd, names); rc < 0) return fail(rel, "cannot read it: " + errno_text(rc));
    for (const auto& name : names)
      if (auto r = copy_entry(sfd, dfd, rel, name, depth); !r) return r;
    return unchanged(rel, sfd, st);
  }

  // The source fstat again after its copy: a live writer (a container Docker's live-restore
  // keeps running, a dockerd holding the store) would leave a torn copy.
  Result<bool> unchanged(const std::string& rel, int fd, const struct stat& before) {
    struct stat after;
    if (::fstat(fd, &after) != 0) return fail(rel, errno_text(errno));
    if (changed(before, after))
      return config_error((rel.empty() ? src_root_path : join_path(src_root_path, rel)) +
                          ": changed while copied (its size, modification or change time moved): stop whatever "
                          "writes to it (its containers, dockerd), then copy again; not copied");
    return true;
  }

  // A mount point met by name: refused, named from mountinfo, its filesystem never asked.
  Error mount_point(const std::string& rel, const EntryStat& es) {
    return fail(rel, std::string("a mount point (") +
                         (S_ISDIR(es.mode) ? "another filesystem is mounted there, " : "a file bind-mounted there, ") +
                         mount_point_of(es.mnt_id) + "): volprep copies one filesystem's tree; unmount it, or move it by hand");
  }

  Result<bool> copy_entry(int sfd, int dfd, const std::string& dir_rel, const std::string& name, unsigned depth) {
    const std::string rel = join_path(dir_rel, name);
    // Stat'ed by name from the kernel's cache, and opened without crossing into a mount: a
    // filesystem mounted there is never asked anything (a FUSE server the tree's owner runs
    // may never answer, and a request it has read is waited for even through SIGKILL).
    EntryStat listed;
    if (int rc = stat_at_cached(sfd, name.c_str(), listed); rc < 0) return fail(rel, errno_text(rc));
    if (listed.mnt_id != mnt_id || listed.mount_root) return mount_point(rel, listed);
    if (S_ISSOCK(listed.mode)) {
      stats.skipped.push_back(join_path(src_root_path, rel) + ": a socket, not copied (whoever listens on it makes it anew)");
      return true;
    }
    // Decided about and read through one descriptor of the inode: O_NOFOLLOW everywhere, so a
    // symlink swapped in where a directory or file was listed is refused, never followed.
    const bool dir = S_ISDIR(listed.mode), reg = S_ISREG(listed.mode);
    // A regular file is pinned by an O_PATH descriptor first and opened for reading only once
    // it is known to be one (a fifo or device swapped in is never opened: no block, no side
    // effect) and of the volume's mount (a file bind-mounted there is not copied).
    int fd = dir ? open_subdir_same_mount(sfd, name.c_str()) : open_entry(sfd, name.c_str());
    if (dir && (fd == -ENOSYS || fd == -EPERM)) fd = open_dir_at(sfd, name.c_str());  // no openat2: checked below
    if (fd == -EXDEV) return fail(rel, "a mount point now (something was mounted there while it was copied)");
    if (fd < 0) return fail(rel, "cannot open it without following a symlink: " + errno_text(fd));
    UniqueFd src(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return fail(rel, errno_text(errno));
    if (st.st_ino != listed.ino || major(st.st_dev) != listed.dev_major || minor(st.st_dev) != listed.dev_minor ||
        (st.st_mode & S_IFMT) != (listed.mode & S_IFMT))
      return fail(rel, "replaced while it was copied");
    if (reg) {
      EntryStat es;
      if (int rc = stat_at(fd, "", es); rc < 0) return fail(rel, errno_text(rc));
      if (es.mnt_id != mnt_id || es.mount_root) return mount_point(rel, es);
      const std::string p = proc_fd(fd);
      const int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
      int r = ::open(p.c_str(), flags | O_NOATIME);  // the magic link: the inode pinned, checked above
      if (r < 0 && errno == EPERM) r = ::open(p.c_str(), flags);
      if (r < 0) return fail(rel, "cannot open it: " + errno_text(errno));
      src = UniqueFd(r);
      fd = r;
      struct stat again;
      if (::fstat(fd, &again) != 0) return fail(rel, errno_text(errno));
      if (again.st_ino != st.st_ino || again.st_dev != st.st_dev) return fail(rel, "replaced while it was copied");
    }
    if (dir) {
      EntryStat es;
      if (int rc = stat_at(fd, "", es); rc < 0) return fail(rel, errno_text(rc));
      if (es.mnt_id != mnt_id || es.dev_major != dev_major || es.dev_minor != dev_minor || es.mount_root)
        return mount_point(rel, es);
      if (::mkdirat(dfd, name.c_str(), 0700) != 0) return fail(rel, "mkdir of the copy: " + errno_text(errno));
      int d = open_dir_at(dfd, name.c_str());
      if (d < 0) return fail(rel, "open of the copy: " + errno_text(d));
      UniqueFd copy(d);
      if (auto r = copy_dir(fd, st, d, rel, depth + 1); !r) return r;
      ++stats.dirs;
      return copy_meta(rel, fd, false, st, d, -1, "");  // its times after its content
    }
    if (reg) {
      const auto key = std::make_pair(st.st_dev, st.st_ino);
      if (st.st_nlink > 1)
        if (auto it = linked.find(key); it != linked.end()) {
          if (::linkat(dst_root, it->second.rels[0].c_str(), dfd, name.c_str(), 0) != 0)
            return fail(rel, "link to " + it->second.rels[0] + " in the copy: " + errno_text(errno));
          it->second.nlink = std::max(it->second.nlink, uint32_t(st.st_nlink));
          it->second.rels.push_back(rel);
          ++stats.hardlinks;
          return true;
        }
      if (uint64_t(st.st_size) > max_bytes - stats.bytes)  // stats.bytes never passes max_bytes
        return config_error(join_path(src_root_path, rel) + ": changed since it was measured (the copy would pass the " +
                            human_bytes(max_bytes) + " measured before it): stop whatever writes to it (its "
                            "containers, dockerd), then copy again; not copied");
      int o = ::openat(dfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (o < 0) return fail(rel, "create of the copy: " + errno_text(errno));
      UniqueFd out(o);
      if (auto r = copy_data(rel, fd, o, uint64_t(st.st_size)); !r) return r;
      if (on_file) on_file(rel);
      if (auto r = unchanged(rel, fd, st); !r) return r;
      if (auto r = copy_meta(rel, fd, false, st, o, -1, ""); !r) return r;
      ++stats.files;
      if (st.st_nlink > 1) linked.emplace(key, Linked{uint32_t(st.st_nlink), {rel}});
      return true;
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(size_t(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(fd, "", target.data(), target.size());
      if (n < 0) return fail(rel, "readlink: " + errno_text(errno));
      if (size_t(n) >= target.size()) return fail(rel, "changed while it was copied");
      target.resize(size_t(n));
      if (::symlinkat(target.c_str(), dfd, name.c_str()) != 0) return fail(rel, "symlink of the copy: " + errno_text(errno));
      const struct timespec times[2] = {st.st_atim, st.st_mtim};
      if (::fchownat(dfd, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 ||
          ::utimensat(dfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
        return fail(rel, "owner or times of the copy: " + errno_text(errno));
      ++stats.symlinks;
      return true;
    }
    // A fifo or a device node: made anew, never opened.
    if (::mknodat(dfd, name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0)
      return fail(rel, "mknod of the copy: " + errno_text(errno));
    ++stats.specials;
    return copy_meta(rel, fd, true, st, -1, dfd, name);
  }

  // Every inode of several links has all of them in the tree, or the copy is refused: one
  // linked from outside is not the volume's alone (its owner may link in a file it cannot
  // read where fs.protected_hardlinks is 0), and its copy would be the volume's, shifted to
  // its container's ids, where a rename leaves it alone. Its links are reached again from the
  // root without following a symlink or crossing a mount, and counted by their directory and
  // name, as the shift counts them: a link moved during the copy is not counted twice.
  Result<bool> all_links_inside(int root) {
    for (const auto& [key, l] : linked) {
      std::set<std::tuple<dev_t, ino_t, std::string>> still;
      uint32_t nlink = l.nlink;
      for (const auto& rel : l.rels) {
        const size_t slash = rel.rfind('/');
        const std::string dir = slash == std::string::npos ? "" : rel.substr(0, slash), name = rel.substr(slash + 1);
        UniqueFd d(open_beneath(root, dir, O_PATH | O_DIRECTORY, /*same_mount=*/true));
        struct stat ds;
        EntryStat es;
        if (!d.valid() || ::fstat(d.get(), &ds) != 0 || stat_at_cached(d.get(), name.c_str(), es) != 0) continue;
        if (es.ino != key.second || makedev(es.dev_major, es.dev_minor) != key.first) continue;
        nlink = std::max(nlink, es.nlink);
        still.emplace(ds.st_dev, ds.st_ino, name);
      }
      if (still.size() < nlink)
        return Error{kExitRefused, join_path(src_root_path, l.rels[0]) + ": has " + std::to_string(nlink) + " links, " +
                                       std::to_string(still.size()) + " of them in the volume: a file linked from outside "
                                       "it, not the volume's alone, which a copy would give to its container; remove "
                                       "that link, or move the volume by hand; not copied"};
    }
    return true;
  }
};

// The copy, the measure and the removal recurse, a frame or two for each level of the tree
// down to kMaxCopyDepth: they run on a thread with a stack sized for that, whatever `ulimit -s`
// the caller has (1024 levels take 1-2 MiB in a Release build, over 8 MiB unoptimised under
// ASan). Only the pages used are committed.
constexpr size_t kDeepStack = 64u << 20;

template <class F>
auto on_deep_stack(F&& f) -> decltype(f()) {
  using R = decltype(f());
  struct Job {
    F* f;
    std::optional<R> result;
    std::exception_ptr thrown;
  } job{&f, std::nullopt, nullptr};
  pthread_attr_t attr;
  ::pthread_attr_init(&attr);
  ::pthread_attr_setstacksize(&attr, kDeepStack);
  pthread_t thread;
  int rc = ::pthread_create(
      &thread, &attr,
      [](void* p) -> void* {
        auto* j = static_cast<Job*>(p);
        try {
          j->result.emplace((*j->f)());
        } catch (...) {
          j->thrown = std::current_exception();
        }
        return nullptr;
      },
      &job);
  ::pthread_attr_destroy(&attr);
  if (rc != 0) return config_error("cannot start a thread with a " + std::to_string(kDeepStack >> 20) +
                                   " MiB stack for the tree's depth: " + errno_text(rc));
  ::pthread_join(thread, nullptr);
  if (job.thrown) std::rethrow_exception(job.thrown);
  return std::move(*job.result);
}

// Shared by copy_tree and measure_tree: the root's filesystem and mount.
Result<EntryStat> root_stat(int src, const std::string& src_path) {
  EntryStat st;
  if (int rc = stat_at(src, "", st); rc < 0) return config_error(src_path + ": " + errno_text(rc));
  if (!S_ISDIR(st.mode)) return config_error(src_path + ": not a directory");
  return st;
}

// The entry `name` of `dir` stat'ed by name from the kernel's cache (AT_STATX_DONT_SYNC, as
// stat_at_cached, with its size): a filesystem mounted there is never asked. On the local
// filesystems volumes live on, the flag changes nothing.
int stat_cached(int dir, const char* name, struct statx& sx) {
  const unsigned mask = STATX_TYPE | STATX_INO | STATX_NLINK | STATX_SIZE | STATX_MNT_ID;
  return ::statx(dir, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC, mask, &sx) == 0 ? 0 : -errno;
}

Result<bool> measure(int fd, const std::string& path, const EntryStat& root, TreeSize& out,
                     std::map<std::pair<dev_t, ino_t>, bool>& seen, unsigned depth) {
  if (depth > kMaxCopyDepth) return Error{kExitRefused, too_deep(path)};
  std::vector<std::string> names;
  if (int rc = list_names(fd, names); rc < 0) return config_error(path + ": " + errno_text(rc));
  for (const auto& name : names) {
    struct statx st;
    if (int rc = stat_cached(fd, name.c_str(), st); rc < 0) return config_error(path + "/" + name + ": " + errno_text(rc));
    ++out.entries;
    const bool mount_point = ((st.stx_mask & STATX_MNT_ID) && st.stx_mnt_id != root.mnt_id) ||
                             (st.stx_attributes_mask & st.stx_attributes & STATX_ATTR_MOUNT_ROOT);
    if (mount_point) continue;  // not entered, not asked (copy_tree refuses it)
    const auto key = std::make_pair(makedev(st.stx_dev_major, st.stx_dev_minor), ino_t(st.stx_ino));
    if (S_ISREG(st.stx_mode) && (st.stx_nlink == 1 || seen.emplace(key, true).second)) out.bytes += st.stx_size;
    if (!S_ISDIR(st.stx_mode)) continue;
    int d = open_subdir_same_mount(fd, name.c_str());
    if (d == -ENOSYS || d == -EPERM) d = open_dir_at(fd, name.c_str());  // no openat2: checked below
    if (d == -EXDEV) continue;  // mounted on since: not entered
    if (d < 0) return config_error(path + "/" + name + ": " + errno_text(d));
    UniqueFd sub(d);
    EntryStat es;
    if (stat_at(d, "", es) == 0 && es.mnt_id == root.mnt_id && !es.mount_root)
      if (auto r = measure(d, path + "/" + name, root, out, seen, depth + 1); !r) return r;
  }
  return true;
}

Result<bool> remove_below(int fd, const std::string& path, const EntryStat& root) {
  std::vector<std::string> names;
  if (int rc = list_names(fd, names); rc < 0) return config_error(path + ": " + errno_text(rc));
  for (const auto& name : names) {
    struct stat st;
    if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return config_error(path + "/" + name + ": " + errno_text(errno));
    if (S_ISDIR(st.st_mode)) {
      int d = open_dir_at(fd, name.c_str());
      if (d < 0) return config_error(path + "/" + name + ": " + errno_text(d));
      UniqueFd sub(d);
      EntryStat es;
      if (int rc = stat_at(d, "", es); rc < 0) return config_error(path + "/" + name + ": " + errno_text(rc));
      if (es.mnt_id != root.mnt_id || es.mount_root)
        return Error{kExitRefused, path + "/" + name + " is a mount point; not removed"};
      if (auto r = remove_below(d, path + "/" + name, root); !r) return r;
    }
    if (::unlinkat(fd, name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0)
      return config_error("cannot remove " + path + "/" + name + ": " + errno_text(errno));
  }
  return true;
}

}  // namespace

Result<CopyStats> copy_tree(int src, const std::string& src_path, int dst_parent, const std::string& name,
                            const std::string& dst_path, std::function<void(const std::string&)> on_file,
                            uint64_t max_bytes) {
  auto root = root_stat(src, src_path);
  if (!root) return root.error();
  struct stat st;
  if (::fstat(src, &st) != 0) return config_error(src_path + ": " + errno_text(errno));
  if (::mkdirat(dst_parent, name.c_str(), 0700) != 0) return config_error("cannot create " + dst_path + ": " + errno_text(errno));
  int d = open_dir_at(dst_parent, name.c_str());
  if (d < 0) return config_error(dst_path + ": " + errno_text(d));
  UniqueFd dst(d);
  Copier c;
  c.dst_root = d;
  c.src_root_path = src_path;
  c.dst_root_path = dst_path;
  c.mnt_id = root->mnt_id;
  c.dev_major = root->dev_major;
  c.dev_minor = root->dev_minor;
  c.on_file = std::move(on_file);
  c.max_bytes = max_bytes;
  if (auto r = on_deep_stack([&] { return c.copy_dir(src, st, d, "", 0); }); !r) return r.error();
  if (auto r = c.all_links_inside(src); !r) return r.error();
  if (auto r = c.copy_meta("", src, false, st, d, -1, ""); !r) return r.error();
  ++c.stats.dirs;
  if (::syncfs(d) != 0) return config_error("cannot sync " + dst_path + ": " + errno_text(errno));
  std::sort(c.stats.skipped.begin(), c.stats.skipped.end());
  return std::move(c.stats);
}

Result<TreeSize> measure_tree(int src, const std::string& src_path) {
  auto root = root_stat(src, src_path);
  if (!root) return root.error();
  TreeSize out;
  out.entries = 1;
  std::map<std::pair<dev_t, ino_t>, bool> seen;
  if (auto r = on_deep_stack([&] { return measure(src, src_path, *root, out, seen, 0); }); !r) return r.error();
  return out;
}

Result<bool> remove_tree(int parent, const std::string& name, const std::string& path) {
  int d = open_dir_at(parent, name.c_str());
  if (d == -ENOENT) return true;
  if (d < 0) return config_error("cannot open " + path + " without following a symlink: " + errno_text(d));
  UniqueFd dir(d);
  auto root = root_stat(d, path);
  if (!root) return root.error();
  if (auto r = on_deep_stack([&] { return remove_below(d, path, *root); }); !r) return r;
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0)
    return config_error("cannot remove " + path + ": " + errno_text(errno));
  return true;
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace volprep
