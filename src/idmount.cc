#include "volprep/idmount.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sstream>

#include "volprep/journal.h"  // crc32c
#include "volprep/report.h"

namespace volprep {
namespace {

Result<bool> write_proc(pid_t pid, const char* file, const std::string& text) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || ::write(fd.get(), text.data(), text.size()) != ssize_t(text.size()))
    return config_error("cannot write " + path + " (" + text.substr(0, text.find('\n')) + "...): " +
                        std::strerror(errno));
  return true;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += char((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Result<UniqueFd> make_user_namespace(const IdMap& uid_map, const IdMap& gid_map) {
  int ready[2], done[2];
  if (::pipe2(ready, O_CLOEXEC) < 0) return config_error(std::string("pipe: ") + std::strerror(errno));
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  if (::pipe2(done, O_CLOEXEC) < 0) return config_error(std::string("pipe: ") + std::strerror(errno));
  UniqueFd done_r(done[0]), done_w(done[1]);
  pid_t child = ::fork();
  if (child < 0) return config_error(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    // Only async-signal-safe calls here: unshare, say so, wait for the parent to let go.
    char c = ::unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
    if (::write(ready[1], &c, 1) != 1) ::_exit(1);
    ::close(done[1]);
    if (::read(done[0], &c, 1) < 0) ::_exit(1);
    ::_exit(0);
  }
  ready_w.reset();
  done_r.reset();
  auto reap = [&] {
    done_w.reset();  // the child reads EOF and exits
    int status;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {}
  };
  char c = 0;
  if (::read(ready_r.get(), &c, 1) != 1 || c != 'y') {
    reap();
    return config_error("cannot create a user namespace (unshare(CLONE_NEWUSER) failed; is "
                        "/proc/sys/user/max_user_namespaces 0?)");
  }
  auto written = write_proc(child, "uid_map", uid_map.to_proc());
  if (written) written = write_proc(child, "gid_map", gid_map.to_proc());
  if (!written) {
    reap();
    return written.error();
  }
  std::string ns = "/proc/" + std::to_string(child) + "/ns/user";
  UniqueFd fd(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  int err = errno;
  reap();
  if (!fd.valid()) return config_error("cannot open " + ns + ": " + std::strerror(err));
  return fd;
}

Result<UniqueFd> idmapped_bind(int src, int dst, int userns, const std::string& src_name, const std::string& dst_name) {
  UniqueFd tree(::open_tree(src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
  if (!tree.valid()) {
    if (errno == ENOSYS) return config_error("this kernel has no open_tree(): idmapped mounts need Linux 5.12 or later");
    return config_error("cannot clone the mount of " + src_name + ": " + std::strerror(errno));
  }
  mount_attr attr{};
  // nosuid and nodev: through the mapping a file its owner made setuid could show as root's, a
  // device node as another owner's. Nothing a container needs from a data tree.
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.userns_fd = uint64_t(userns);
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
    int err = errno;
    if (err == ENOSYS) return config_error("this kernel has no mount_setattr(): idmapped mounts need Linux 5.12 or later");
    if (err == EINVAL || err == EOPNOTSUPP)
      return config_error(src_name + " is on a " + fs_type_name(fs_type(src)) +
                          " filesystem, which does not support idmapped mounts here (mount_setattr: " +
                          std::strerror(err) + "); nothing mounted. volprep prepare changes the owners instead");
    // The kernel idmaps a mount once: SRC seen through another idmapped mount cannot be.
    if (err == EPERM)
      for (const uint64_t src_mount = mount_ids(src, "").id; const MountEntry& m : read_mounts())
        if (m.mnt_id == src_mount && m.idmapped)
          return config_error(src_name + " is on an idmapped mount already (" + escape_path(m.mount_point) +
                              "), which cannot be idmapped again; nothing mounted. Give the tree it shows as SRC");
    return config_error("cannot idmap the mount of " + src_name + ": " + std::strerror(err));
  }
  if (::move_mount(tree.get(), "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return config_error("cannot mount at " + dst_name + ": " + std::strerror(errno));
  return tree;
}

MountIds mount_ids(int dirfd, const char* name) {
  // Not in Debian 12's headers.
  constexpr unsigned kStatxMntIdUnique = 0x4000;
  const int flags = AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH);
  MountIds ids;
  struct statx sx{};
  if (::statx(dirfd, name, flags, STATX_MNT_ID, &sx) == 0 && (sx.stx_mask & STATX_MNT_ID)) ids.id = sx.stx_mnt_id;
  sx = {};
  if (::statx(dirfd, name, flags, kStatxMntIdUnique, &sx) == 0 && (sx.stx_mask & kStatxMntIdUnique))
    ids.unique = sx.stx_mnt_id;
  else
    ids.unique = ids.id;
  return ids;
}

std::optional<uint64_t> listed_id_of(uint64_t unique) {
  // statmount(2) with STATMOUNT_MNT_BASIC; neither is in Debian 12's headers.
  constexpr long kStatmount = 457;
  constexpr uint64_t kStatmountMntBasic = 0x2;
  struct {
    uint32_t size = 24, spare = 0;
    uint64_t mnt_id, param;
  } req;
  req.mnt_id = unique;
  req.param = kStatmountMntBasic;
  alignas(8) unsigned char buf[1024] = {};  // struct statmount: mask at 8, mnt_id_old at 56
  if (::syscall(kStatmount, &req, buf, sizeof buf, 0) != 0) return errno == ENOENT ? std::optional<uint64_t>(0) : std::nullopt;
  uint64_t mask;
  uint32_t old_id;
  std::memcpy(&mask, buf + 8, sizeof mask);
  std::memcpy(&old_id, buf + 56, sizeof old_id);
  if (!(mask & kStatmountMntBasic)) return std::nullopt;
  return old_id;
}

bool MountRecord::is_of_listed(uint64_t listed_id) const {
  if (mnt_id != listed_id) return false;
  if (mnt_unique == 0 || mnt_unique == mnt_id) return true;  // no unique id known: mountinfo's it is
  auto now = listed_id_of(mnt_unique);
  return !now || *now == listed_id;
}

int detach_mount(int mnt) {
  // Through our own descriptor: the mount it is of, never whatever a path names now.
  const std::string self = "/proc/self/fd/" + std::to_string(mnt);
  return ::umount2(self.c_str(), MNT_DETACH) == 0 ? 0 : -errno;
}

int is_empty_dir(int dir) {
  int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  int empty = 1;
  errno = 0;
  while (dirent* de = ::readdir(d))
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) {
      empty = 0;
      break;
    }
  int err = errno;
  ::closedir(d);
  return empty == 1 && err ? -err : empty;
}

std::vector<MountEntry> read_mounts() {
  std::vector<MountEntry> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options [optional fields] - type source super-options
    std::istringstream f(line);
    MountEntry m;
    std::string parent, dev, options, field, source, super;
    if (!(f >> m.mnt_id >> parent >> dev >> m.root >> m.mount_point >> options)) continue;
    while (f >> field && field != "-") {}
    f >> m.fs_type >> source >> super;
    m.root = unescape(m.root);
    m.mount_point = unescape(m.mount_point);
    std::istringstream opts(options);
    while (std::getline(opts, field, ','))
      if (field == "idmapped") m.idmapped = true;
    if (m.fs_type.starts_with("fuse")) {
      m.fuse_user = 0;  // served for root unless it says otherwise
      std::istringstream sopts(super);
      while (std::getline(sopts, field, ','))
        if (field.starts_with("user_id=")) {
          m.fuse_user = uint32_t(std::strtoul(field.c_str() + 8, nullptr, 10));
          break;
        }
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<uint32_t> fuse_user_of(uint64_t mnt_id) {
  for (const MountEntry& m : read_mounts())
    if (m.mnt_id == mnt_id) return m.fuse_user;
  return std::nullopt;
}

std::string mount_point_of(uint64_t mnt_id) {
  for (const MountEntry& m : read_mounts())
    if (m.mnt_id == mnt_id) return m.mount_point;
  return "?";
}

std::vector<std::string> mounts_below(const std::string& dir) {
  std::vector<std::string> out;
  const std::string prefix = dir == "/" ? "/" : dir + "/";
  for (MountEntry& m : read_mounts())
    if (m.mount_point.starts_with(prefix) && m.mount_point != dir) out.push_back(std::move(m.mount_point));
  return out;
}

std::string mount_record_dir() {
  const char* env = std::getenv("VOLPREP_MOUNT_DIR");
  return env && *env ? env : "/run/volprep/mounts";
}

std::string systemd_escape_path(const std::string& path) {
  // As systemd simplifies it first: no repeated '/', no "." component.
  std::string p;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '/' && !p.empty() && p.back() == '/') continue;
    if (path[i] == '.' && (p.empty() || p.back() == '/') && (i + 1 == path.size() || path[i + 1] == '/')) {
      ++i;  // "." and the '/' after it
      continue;
    }
    p += path[i];
  }
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t start = p.find_first_not_of('/');
  if (start == std::string::npos) return "-";
  p = p.substr(start);
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    unsigned char c = p[i];
    if (c == '/') {
      out += '-';
    } else if (std::isalnum(c) || c == ':' || c == '_' || (c == '.' && i > 0)) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

namespace {
// DST escaped as systemd escapes a path; where that is too long for a file name, its start, a
// '~' (which escaping never leaves) and a checksum of the whole. read_mount_record checks the
// DST inside, so two paths with one name lose a record, never swap them.
std::string record_path(const std::string& dst) {
  std::string name = systemd_escape_path(dst);
  if (name.size() > 200) {
    char sum[24];
    std::snprintf(sum, sizeof sum, "~%08x%08x", crc32c(dst.data(), dst.size()), crc32c(dst.data(), dst.size(), 0x9e3779b9));
    name = name.substr(0, 160) + sum;
  }
  return mount_record_dir() + "/" + name + ".json";
}
}  // namespace

Result<bool> write_mount_record(const MountRecord& r) {
  const std::string dir = mount_record_dir();
  // Each component made root's and 0700 if missing; an existing one is used as it is.
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    std::string part = dir.substr(0, slash);
    if (::mkdir(part.c_str(), 0700) < 0 && errno != EEXIST)
      return config_error("cannot create " + part + ": " + std::strerror(errno));
    if (slash == std::string::npos) break;
  }
  nlohmann::json j = {{"src", r.src}, {"dst", r.dst}, {"mnt_id", r.mnt_id}, {"mnt_unique", r.mnt_unique}, {"uid_map", r.uid_map},
                      {"gid_map", r.gid_map}, {"what", r.what}, {"source", r.source}};
  if (!r.unit_dir.empty()) j["unit_dir"] = r.unit_dir;
  std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::string path = record_path(r.dst);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid() || ::write(fd.get(), text.data(), text.size()) != ssize_t(text.size()))
    return config_error("cannot write " + path + ": " + std::strerror(errno));
  return true;
}

std::optional<MountRecord> read_mount_record(const std::string& dst) {
  UniqueFd fd(::open(record_path(dst).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st{};
  if (!fd.valid() || ::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & 022) || st.st_size > (1 << 20))
    return std::nullopt;
  std::string text(size_t(st.st_size), '\0');
  if (::read(fd.get(), text.data(), text.size()) != ssize_t(text.size())) return std::nullopt;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  MountRecord r;
  try {
    r.src = j.at("src").get<std::string>();
    r.dst = j.at("dst").get<std::string>();
    r.mnt_id = j.at("mnt_id").get<uint64_t>();
    r.mnt_unique = j.value("mnt_unique", uint64_t(0));
    r.uid_map = j.at("uid_map").get<std::string>();
    r.gid_map = j.at("gid_map").get<std::string>();
    r.what = j.at("what").get<std::string>();
    r.source = j.at("source").get<std::string>();
    r.unit_dir = j.value("unit_dir", std::string());
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  if (r.dst != dst) return std::nullopt;
  return r;
}

void remove_mount_record(const std::string& dst) { ::unlink(record_path(dst).c_str()); }

}  // namespace volprep
