#include "volprep/volume.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>

#include "volprep/idmount.h"
#include "volprep/report.h"

namespace volprep {
namespace {

// Trees no volume lives in, refused with everything below them: the system's own, the
// package managers' and systemd's state, and volprep's (its journals and run locks, which a
// container given them could rewrite for root's next rollback).
const char* const kSystemTrees[] = {"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
                                    "/boot", "/dev", "/proc", "/sys", "/var/lib/dpkg", "/var/lib/apt",
                                    "/var/lib/rpm", "/var/lib/dnf", "/var/lib/systemd", "/var/cache/apt",
                                    "/var/cache/debconf", "/var/lib/volprep", "/run/volprep", "/run/systemd",
                                    // Who may do what as root, and the daemons' sockets and state.
                                    "/var/lib/polkit-1", "/var/lib/private", "/var/spool/cron", "/root/.ssh",
                                    "/run/dbus", "/run/docker", "/run/containerd"};
// Directories that hold volumes below them (/var/log/nginx, /var/lib/jenkins, a Docker
// volume's _data) but must not be prepared as a whole.
const char* const kSystemDirs[] = {"/", "/var", "/home", "/root", "/run", "/tmp", "/var/tmp", "/var/lib",
                                   "/opt", "/srv", "/mnt", "/media", "/var/log", "/var/cache", "/var/spool",
                                   "/var/mail", "/var/backups", "/var/local", "/var/opt", "/run/user",
                                   "/run/lock", "/var/lib/docker", "/var/lib/docker/volumes",
                                   "/var/lib/containerd"};

bool under(const std::string& path, const std::string& top) {
  return path == top || (path.size() > top.size() && path.starts_with(top) && path[top.size()] == '/');
}

// Why a symlink met while resolving PATH is not followed, or "" if it may be: only root may
// have made it or be able to replace it, so root owns it and the directory it is in, and
// neither that directory's group nor others may write there (unless the sticky bit keeps
// them from renaming or removing root's entries). Anything else could be the tree owner's
// way to send a root process elsewhere, at any moment.
std::string unsafe_symlink(const EntryStat& link, const EntryStat& dir) {
  if (link.uid != 0) return "owned by uid " + std::to_string(link.uid);
  if (dir.uid != 0) return "in a directory owned by uid " + std::to_string(dir.uid);
  if ((dir.mode & (S_IWGRP | S_IWOTH)) && !(dir.mode & S_ISVTX))
    return "in a directory its group or others may write";
  return {};
}

std::deque<std::string> components(const std::string& path) {
  std::deque<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

std::string display_of(std::string given) {
  while (given.size() > 1 && given.back() == '/') given.pop_back();
  while (given.starts_with("./") && given.size() > 2) given.erase(0, 2);
  return given;
}

}  // namespace

// Whether `real` is Docker's own state below the data root `root`, or below a remapped root
// in it (ROOT/UID.GID): containers, image layers, the remapped root and its volumes directory
// themselves. Volumes' _data below them stays allowed.
std::string docker_state_reason(const std::string& real, const std::string& root) {
  if (!under(real, root) || real == root) return {};
  std::string rest = real.substr(root.size() + (root == "/" ? 0 : 1));
  std::string base = root;
  // A remapped root: digits '.' digits.
  const size_t slash = rest.find('/');
  const std::string first = rest.substr(0, slash);
  const size_t dot = first.find('.');
  if (dot != std::string::npos && dot > 0 && dot + 1 < first.size() &&
      first.find_first_not_of("0123456789.") == std::string::npos && first.find('.', dot + 1) == std::string::npos) {
    base += "/" + first;
    if (slash == std::string::npos) return "it is Docker's remapped root " + base;
    rest = rest.substr(slash + 1);
    if (rest == "volumes") return "it is the volumes directory of Docker's remapped root " + base;
  }
  for (const char* state : {"containers", "image", "overlay2", "buildkit", "containerd"})
    if (under(rest, state)) return "it is in Docker's state " + base + "/" + state;
  return {};
}

std::string refusal_reason(const std::string& real, const VolumeSafety& safety) {
  if (safety.allow_system_path) return {};
  for (const auto& root : safety.refused_exactly)
    if (auto why = docker_state_reason(real, root); !why.empty()) return why;
  if (auto why = docker_state_reason(real, "/var/lib/docker"); !why.empty()) return why;
  for (const char* top : kSystemTrees)
    if (under(real, top)) return std::string("it is in the system tree ") + top;
  for (const char* dir : kSystemDirs)
    if (real == dir) return "it is the system directory " + real;
  for (const auto& dir : safety.refused_exactly)
    if (real == dir) return "it is Docker's data root " + dir;
  return {};
}

Result<ResolvedPath> resolve_path(const std::string& path, bool follow_any_symlink) {
  if (path.empty()) return usage_error("an empty PATH");
  std::string absolute = path;
  if (path[0] != '/') {
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd))
      return config_error(path + ": cannot tell the current directory: " + std::strerror(errno));
    absolute = std::string(cwd) + "/" + path;
  }
  struct Level {
    UniqueFd fd;  // O_PATH
    std::string name;
    EntryStat st;
  };
  Level root{UniqueFd(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)), "", {}};
  if (!root.fd.valid() || stat_at(root.fd.get(), "", root.st) < 0)
    return config_error(std::string("/: ") + std::strerror(errno));
  std::vector<Level> done;  // the components resolved so far, below "/"
  auto so_far = [&] {
    std::string p;
    for (const auto& l : done) p += "/" + l.name;
    return p.empty() ? std::string("/") : p;
  };
  ResolvedPath out;
  std::deque<std::string> todo = components(absolute);
  int links = 0;
  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    if (name == ".") continue;
    if (name == "..") {  // the directory this one was reached from, not whatever ".." is now
      if (!done.empty()) done.pop_back();
      continue;
    }
    const Level& dir = done.empty() ? root : done.back();
    std::string at = (done.empty() ? "" : so_far()) + "/" + name;
    int fd = ::openat(dir.fd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return Error{err == ENOENT ? kExitUsage : kExitConfig,
                   path + ": " + std::strerror(err) + (at != absolute ? " (at " + at + ")" : "")};
    }
    Level next{UniqueFd(fd), name, {}};
    // A FUSE mount an unprivileged user serves (fusermount3) answers as that user decides, or
    // never: one request to it can hang volprep for good. Such a mount is refused from the
    // kernel's cache and mountinfo, before any request could reach its server.
    if (uint64_t mnt = cached_mount_id(fd); mnt && mnt != dir.st.mnt_id)
      if (auto user = fuse_user_of(mnt); user && *user != 0)
        return Error{kExitRefused, "refusing " + path + ": " + at + " is a FUSE mount served for uid " +
                                       std::to_string(*user) + ", whose server decides every answer, or gives none"};
    if (int rc = stat_at(fd, "", next.st); rc < 0) return config_error(at + ": " + std::strerror(-rc));
    if (!S_ISLNK(next.st.mode)) {
      done.push_back(std::move(next));
      continue;
    }
    if (++links > 40) return config_error(path + ": " + std::strerror(ELOOP));
    if (auto why = unsafe_symlink(next.st, dir.st); !why.empty() && !follow_any_symlink)
      return Error{kExitRefused, "refusing " + path + ": " + at + " is a symlink " + why +
                                     " (--follow-path-symlinks follows it)"};
    char target[PATH_MAX];
    ssize_t n = ::readlinkat(fd, "", target, sizeof target);  // this very symlink
    if (n < 0) return config_error(at + ": " + std::strerror(errno));
    if (n == 0 || size_t(n) == sizeof target) return config_error(at + ": an empty or too long symlink");
    std::string dest(target, size_t(n));
    out.followed.push_back(at + " -> " + dest);
    auto more = components(dest);
    todo.insert(todo.begin(), more.begin(), more.end());
    if (dest[0] == '/') done.clear();
  }
  out.real = so_far();
  if (done.empty()) {
    out.fd = std::move(root.fd);
    out.st = root.st;
    return out;
  }
  out.name = done.back().name;
  out.st = done.back().st;
  out.fd = std::move(done.back().fd);
  done.pop_back();
  out.parent = std::move(done.empty() ? root.fd : done.back().fd);
  return out;
}

Result<std::vector<VolumeRoot>> open_volumes(const std::vector<std::string>& paths,
                                             const VolumeSafety& safety) {
  std::vector<VolumeRoot> out;
  for (const auto& path : paths) {
    auto v = open_volume(path, safety);
    if (!v) return v.error();
    out.push_back(std::move(*v));
  }
  return out;
}

Result<VolumeRoot> open_volume(const std::string& path, const VolumeSafety& safety) {
  VolumeRoot v;
  v.given = path;
  // Resolved once, from "/", component by component: the descriptors it ends with are the
  // volume from here on, whatever happens to the names since.
  auto resolved = resolve_path(path, safety.follow_path_symlinks);
  if (!resolved) return resolved.error();
  v.real = resolved->real;
  v.followed = std::move(resolved->followed);
  const std::string refuse_hint = " (--allow-system-path overrides)";
  if (auto why = refusal_reason(v.real, safety); !why.empty())
    return Error{kExitRefused, "refusing " + path + (v.real != path ? " (" + v.real + ")" : "") +
                                   ": " + why + refuse_hint};
  const UniqueFd& any = resolved->fd;
  v.st = resolved->st;
  v.fs_magic = fs_type(any.get());
  if (is_pseudo_fs(v.fs_magic))
    return Error{kExitRefused, "refusing " + path + ": it is on a " + fs_type_name(v.fs_magic) +
                                   " filesystem"};
  v.display = display_of(path);
  if (S_ISDIR(v.st.mode)) {
    int fd = open_dir_at(any.get(), ".");
    if (fd < 0) return config_error(v.real + ": " + std::strerror(-fd));
    v.fd.reset(fd);
    return v;
  }
  // A single entry: walk it as the one entry of its parent directory.
  v.file_name = resolved->name;
  int parent = open_dir_at(resolved->parent.get(), ".");
  if (parent < 0) return config_error(v.real + ": cannot open its directory: " + std::strerror(-parent));
  v.fd.reset(parent);
  EntryStat check;
  if (stat_at(v.fd.get(), v.file_name.c_str(), check) < 0 || !check.same_inode(v.st))
    return config_error(v.real + ": changed while it was being opened");
  return v;
}

std::string VolumeRoot::show(std::string_view rel) const {
  if (!file_name.empty() || rel.empty() || rel == ".") return escape_path(display);
  std::string below = summarize_path(rel);
  return escape_path(display == "/" ? "/" + below : display + "/" + below);
}

std::string why_not_root_only(const std::string& path) {
  std::string p = path;
  bool links = false;
  for (;;) {
    struct stat st;
    if (::lstat(p.c_str(), &st) < 0) return p + ": " + std::strerror(errno);
    if (st.st_uid != 0) return p + " is owned by uid " + std::to_string(st.st_uid);
    links |= S_ISLNK(st.st_mode);
    if (!S_ISLNK(st.st_mode) && (st.st_mode & (S_IWGRP | S_IWOTH)) && !(S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX)))
      return p + " is writable by its group or others";
    if (p == "/") break;
    p = std::filesystem::path(p).parent_path().string();
  }
  if (!links) return {};
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return path + ": " + std::strerror(errno);
  return real == path ? std::string() : why_not_root_only(real);
}

}  // namespace volprep
