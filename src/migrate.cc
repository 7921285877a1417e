#include "volprep/migrate.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "volprep/idmount.h"
#include "volprep/report.h"

namespace volprep {

namespace {

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

// Whether someone other than root could change the names in a directory.
std::string others_may_write(const std::string& path, const EntryStat& st) {
  if (!S_ISDIR(st.mode)) return path + " is not a directory";
  if (st.uid != 0) return path + " belongs to uid " + std::to_string(st.uid) + ", not root";
  if (st.mode & (S_IWGRP | S_IWOTH)) return path + " is writable by its group or others";
  return "";
}

}  // namespace

Result<VolumesDir> open_volumes_dir(const std::string& path) {
  if (!path.starts_with('/')) return usage_error(path + ": not an absolute path");
  int fd = open_absolute(path, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return Error{fd == -ENOENT ? kExitConfig : kExitRefused,
                 "cannot open " + path + " without following a symlink: " + errno_text(fd)};
  VolumesDir d{path, UniqueFd(fd), {}};
  if (int rc = stat_at(d.fd.get(), "", d.st); rc < 0) return config_error(path + ": " + errno_text(rc));
  if (auto why = others_may_write(path, d.st); !why.empty())
    return Error{kExitRefused, why + ": someone else could swap volumes in it while they are moved; refusing"};
  return d;
}

Result<bool> make_owned_dir(int parent, const std::string& parent_path, const std::string& name, uint32_t mode,
                            uint32_t uid, uint32_t gid) {
  const std::string path = parent_path + "/" + name;
  if (::mkdirat(parent, name.c_str(), 0700) != 0) {
    if (errno == EEXIST) return false;
    return config_error("cannot create " + path + ": " + errno_text(errno));
  }
  int fd = open_dir_at(parent, name.c_str());
  if (fd < 0) return config_error(path + ": " + errno_text(fd));
  UniqueFd dir(fd);
  if (::fchown(fd, uid, gid) != 0 || ::fchmod(fd, mode) != 0)
    return config_error(path + ": cannot set its owner and mode: " + errno_text(errno));
  return true;
}

bool is_volume_name(const std::string& name) {
  auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (!first && (c == '_' || c == '.' || c == '-'));
  };
  if (name.size() < 2 || !ok(name[0], true)) return false;
  return std::all_of(name.begin() + 1, name.end(), [&](char c) { return ok(c, false); });
}

Result<std::vector<DockerVolume>> list_volumes(const VolumesDir& dir) {
  int fd = ::openat(dir.fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return config_error(dir.path + ": " + errno_text(errno));
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return config_error(dir.path + ": " + errno_text(errno));
  }
  std::vector<DockerVolume> out;
  std::string failed;
  while (dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (!is_volume_name(name)) continue;  // ".", "..", and nothing Docker names a volume
    DockerVolume v;
    v.name = name;
    if (int rc = stat_at(dir.fd.get(), name.c_str(), v.st); rc < 0) {
      failed = dir.path + "/" + name + ": " + errno_text(rc);
      break;
    }
    if (!S_ISDIR(v.st.mode)) continue;  // metadata.db
    int vfd = open_dir_at(dir.fd.get(), name.c_str());
    EntryStat data;
    if (vfd < 0) {
      v.why_not = "cannot open it: " + errno_text(vfd);
    } else {
      UniqueFd vol(vfd);
      // From the kernel's cache: a FUSE mount on _data (its owner may make one) is not asked.
      int rc = stat_at_cached(vfd, "_data", data);
      std::optional<uint32_t> fuse;
      if (rc == 0 && (data.mnt_id != v.st.mnt_id || data.mount_root)) fuse = fuse_user_of(data.mnt_id);
      if (rc == -ENOENT)
        v.why_not = "no _data directory: not the local driver's";
      else if (rc < 0)
        v.why_not = "_data: " + errno_text(rc);
      else if (fuse && *fuse != 0)
        v.why_not = "_data is a FUSE mount served for uid " + std::to_string(*fuse) +
                    ", whose server decides every answer, or gives none: unmount it";
      else if (!S_ISDIR(data.mode))
        v.why_not = S_ISLNK(data.mode) ? "_data is a symlink" : "_data is not a directory";
      else
        v.local = true;
    }
    out.push_back(std::move(v));
  }
  ::closedir(d);
  if (!failed.empty()) return config_error(failed);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Result<UniqueFd> lock_volume_store(const VolumesDir& dir) {
  const std::string path = dir.path + "/metadata.db";
  int fd = ::openat(dir.fd.get(), "metadata.db", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return UniqueFd();
    return config_error("cannot open " + path + ": " + errno_text(errno));
  }
  UniqueFd db(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return Error{kExitRefused, path + " is not a regular file; refusing"};
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Error{kExitRefused, "a dockerd is running on this data root: it holds " + path +
                                     "; stop it first (--force goes on anyway)"};
    return config_error("cannot lock " + path + ": " + errno_text(errno));
  }
  return db;
}

Result<bool> move_volume(const VolumesDir& from, const VolumesDir& to, const DockerVolume& v, JournalWriter* journal) {
  return move_entry(from, v.name, v.st, to, v.name, journal);
}

Result<bool> move_entry(const VolumesDir& from, const std::string& from_name, const EntryStat& st, const VolumesDir& to,
                        const std::string& to_name, JournalWriter* journal) {
  const std::string old_path = from.path + "/" + from_name, new_path = to.path + "/" + to_name;
  int pin_fd = open_entry(from.fd.get(), from_name.c_str());
  if (pin_fd < 0) return config_error(old_path + ": " + errno_text(pin_fd));
  UniqueFd pin(pin_fd);
  EntryStat now;
  if (int rc = stat_at(pin_fd, "", now); rc < 0) return config_error(old_path + ": " + errno_text(rc));
  if (!now.same_inode(st)) return Error{kExitRefused, old_path + " is no longer the volume listed; not moved"};
  EntryStat taken;
  if (stat_at(to.fd.get(), to_name.c_str(), taken) == 0)
    return Error{kExitRefused, new_path + " exists now; " + old_path + " not moved"};
  if (journal) {
    JournalMove m;
    m.from_dir = from.path;
    m.from_name = from_name;
    m.to_dir = to.path;
    m.to_name = to_name;
    m.from_dir_ino = from.st.ino;
    m.to_dir_ino = to.st.ino;
    m.dev_major = now.dev_major;
    m.dev_minor = now.dev_minor;
    m.ino = now.ino;
    m.mode = now.mode;
    m.btime_ns = now.btime_ns;
    if (auto r = journal->record_move(m); !r) return r.error();
  }
  if (::renameat2(from.fd.get(), from_name.c_str(), to.fd.get(), to_name.c_str(), RENAME_NOREPLACE) != 0)
    return config_error("cannot move " + old_path + " to " + new_path + ": " + errno_text(errno));
  EntryStat arrived;
  if (stat_at(to.fd.get(), to_name.c_str(), arrived) != 0 || !arrived.same_inode(now))
    return config_error(new_path + ": moved, but it is not the volume checked: renamed meanwhile");
  return true;
}

void mark_other_drivers(std::vector<DockerVolume>& here, const VolumeStore& store) {
  for (const auto& entry : store.volumes) {
    const std::string& name = entry.first;  // not a structured binding: clang 14 cannot capture one
    const VolumeRecord& rec = entry.second;
    if (rec.driver == "local" || !is_volume_name(name)) continue;
    auto v = std::find_if(here.begin(), here.end(), [&](const DockerVolume& d) { return d.name == name; });
    if (v == here.end()) v = here.insert(here.end(), DockerVolume{name, {}, false, ""});
    v->local = false;
    v->why_not = "driver " + escape_control(rec.driver) + " in " + store.path + ": its data is the plugin's, not a directory to move";
  }
  std::sort(here.begin(), here.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
}

JournaledRecords journaled_records(const std::string& journal_dir, const std::string& project, const std::string& dir) {
  std::vector<std::string> unreadable;
  JournaledRecords out;
  auto all = read_journal_dir(journal_dir, unreadable, JournalRead::kList);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->header.project != project || !it->header.rollback_of.empty()) continue;
    auto j = read_journal(it->path, JournalRead::kSummary);
    if (!j) continue;
    for (const auto& v : j->docker_volumes)
      if (std::any_of(j->moves.begin(), j->moves.end(), [&](const JournalMove& m) { return m.to_dir == dir && m.to_name == v.name; }))
        out.emplace(v.name, std::pair(v, "journaled by " + j->path));
  }
  return out;
}

std::optional<std::string> normal_data_root(std::string_view path) {
  if (!path.starts_with('/')) return std::nullopt;
  std::string out;
  for (size_t at = 0; at < path.size();) {
    size_t end = path.find('/', at);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(at, end - at);
    at = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return std::nullopt;
    out += "/";
    out += part;
  }
  return out.empty() ? "/" : out;
}

std::optional<std::string> migrated_data_root(const JournalHeader& h) {
  if (!h.project.starts_with(kMigrateProject)) return std::nullopt;
  auto remapped = normal_data_root(std::string_view(h.project).substr(kMigrateProject.size()));
  if (!remapped || *remapped == "/") return std::nullopt;
  size_t slash = remapped->rfind('/');
  return remapped->substr(0, std::max<size_t>(slash, 1));
}

std::string migration_journal_fault(const JournalHeader& h) {
  auto root = migrated_data_root(h);
  if (!root) return "its project " + h.project + " names no absolute remapped root";
  auto uid = IdMap::parse_proc(h.uid_map, "uid map"), gid = IdMap::parse_proc(h.gid_map, "gid map");
  auto uid0 = uid ? uid->to_host(0) : std::nullopt, gid0 = gid ? gid->to_host(0) : std::nullopt;
  if (!uid0 || !gid0) return "its map gives container root no host id";
  const std::string ids = std::to_string(*uid0) + "." + std::to_string(*gid0);
  if (!normal_data_root(std::string_view(h.project).substr(kMigrateProject.size()))->ends_with("/" + ids))
    return "its project " + h.project + " is not the remapped root of its map (" + ids + ")";
  return {};
}

RunsOf migrations_of(const std::string& data_root) {
  return {"migrate-volumes", "migration", data_root, "this data root",
          [data_root](const JournalHeader& h) { return migrated_data_root(h) == data_root; },
          [](const JournalHeader& h) { return gives_option(h.command_line, "--volume"); },
          [](const Journal& j) {
            std::vector<std::string> moved;
            for (const JournalMove& m : j.moves) moved.push_back(m.to_name);
            return moved;
          }};
}

}  // namespace volprep
