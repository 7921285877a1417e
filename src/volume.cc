#include "volprep/volume.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace volprep {
namespace {

// Trees no volume lives in, refused with everything below them.
const char* const kSystemTrees[] = {"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                    "/libx32", "/boot", "/dev", "/proc", "/sys"};
// Directories that hold volumes below them but must not be prepared as a whole.
const char* const kSystemDirs[] = {"/", "/var", "/home", "/root", "/run", "/tmp", "/var/tmp",
                                   "/var/lib", "/opt", "/srv", "/mnt", "/media"};

bool under(const std::string& path, const std::string& top) {
  return path == top || (path.size() > top.size() && path.starts_with(top) && path[top.size()] == '/');
}

std::string display_of(std::string given) {
  while (given.size() > 1 && given.back() == '/') given.pop_back();
  while (given.starts_with("./") && given.size() > 2) given.erase(0, 2);
  return given;
}

}  // namespace

std::string refusal_reason(const std::string& real, const VolumeSafety& safety) {
  if (safety.allow_system_path) return {};
  for (const char* top : kSystemTrees)
    if (under(real, top)) return std::string("it is in the system tree ") + top;
  for (const char* dir : kSystemDirs)
    if (real == dir) return "it is the system directory " + real;
  for (const auto& dir : safety.refused_exactly)
    if (real == dir) return "it is Docker's data root " + dir;
  return {};
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
  char resolved[PATH_MAX];
  if (!::realpath(path.c_str(), resolved)) {
    int err = errno;
    return Error{err == ENOENT ? kExitUsage : kExitConfig,
                 path + ": " + std::strerror(err)};
  }
  v.real = resolved;
  const std::string refuse_hint = " (--allow-system-path overrides)";
  if (auto why = refusal_reason(v.real, safety); !why.empty())
    return Error{kExitRefused, "refusing " + path + (v.real != path ? " (" + v.real + ")" : "") +
                                   ": " + why + refuse_hint};

  // Held by descriptor from here on. realpath resolved every symlink, so the real path is
  // opened without following any: one swapped in since (say by whoever owns a directory on
  // the way) is refused, not followed to what it points at.
  UniqueFd top(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  auto open_real = [&](const std::string& p, int flags) -> Result<UniqueFd> {
    int fd = open_beneath(top.get(), p.substr(1), flags);
    if (fd >= 0) return UniqueFd(fd);
    return config_error(p + ": " + std::strerror(-fd) +
                        (fd == -ELOOP ? " (a symlink appeared on the way since it was resolved; refused)" : ""));
  };
  auto opened = open_real(v.real, O_PATH);
  if (!opened) return opened.error();
  UniqueFd any = std::move(*opened);
  if (int rc = stat_at(any.get(), "", v.st); rc < 0)
    return config_error(v.real + ": " + std::strerror(-rc));
  v.fs_magic = fs_type(any.get());
  if (is_pseudo_fs(v.fs_magic))
    return Error{kExitRefused, "refusing " + path + ": it is on a " + fs_type_name(v.fs_magic) +
                                   " filesystem"};
  if (S_ISDIR(v.st.mode)) {
    int fd = open_dir_at(any.get(), ".");
    if (fd < 0) return config_error(v.real + ": " + std::strerror(-fd));
    v.fd.reset(fd);
    v.display = display_of(path);
    return v;
  }
  // A single entry: walk it as the one entry of its parent directory.
  auto slash = v.real.rfind('/');
  std::string parent = slash == 0 ? "/" : v.real.substr(0, slash);
  v.file_name = v.real.substr(slash + 1);
  auto parent_fd = open_real(parent, O_RDONLY | O_DIRECTORY);
  if (!parent_fd) return parent_fd.error();
  v.fd = std::move(*parent_fd);
  EntryStat check;
  if (stat_at(v.fd.get(), v.file_name.c_str(), check) < 0 || !check.same_inode(v.st))
    return config_error(v.real + ": changed while it was being opened");
  v.display = display_of(path);
  return v;
}

}  // namespace volprep
