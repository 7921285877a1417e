// HostDb: the host's users, groups and configuration files, either under a --host-root
// directory (read as files) or on this host (users and groups through NSS).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "volprep/error.h"

namespace volprep {

struct PwEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
};

struct GrEntry {
  std::string name;
  uint32_t gid = 0;
};

struct HostFile {
  std::string content;
  std::string origin;  // the path volprep read, for file:line locations
};

class HostDb {
 public:
  virtual ~HostDb() = default;
  // nullopt: no such entry. An Error: the database could not be read.
  virtual Result<std::optional<PwEntry>> user_by_name(const std::string& name) const = 0;
  virtual Result<std::optional<PwEntry>> user_by_uid(uint32_t uid) const = 0;
  virtual Result<std::optional<GrEntry>> group_by_name(const std::string& name) const = 0;
  virtual Result<std::optional<GrEntry>> group_by_gid(uint32_t gid) const = 0;

  // Reads a host file given by its absolute path on the host ("/etc/subuid"), as
  // read_text_file does; under a host root, symlinks resolve inside it.
  // nullopt: the file does not exist.
  virtual Result<std::optional<HostFile>> read(const std::string& host_path) const = 0;
  // A host directory's path with its symlinks resolved, as the host sees it (under a host
  // root, inside it); nullopt if it does not exist.
  virtual Result<std::optional<std::string>> resolve_dir(const std::string& host_path) const = 0;
  // Where a host path is on this machine (under the host root).
  virtual std::string local_path(const std::string& host_path) const = 0;
  virtual bool is_host_root() const = 0;
};

// Everything read from files under `root` (etc/passwd, etc/group, ...).
std::unique_ptr<HostDb> make_file_host_db(std::string root);
// This host: NSS for users and groups (LDAP and SSSD accounts resolve), files from "/".
std::unique_ptr<HostDb> make_system_host_db();

// Reads a whole regular file of at most 16 MiB; nullopt if it does not exist, an Error naming
// it on any other failure. Anything else found at `path` (a FIFO, a device) is refused without
// waiting on it.
Result<std::optional<std::string>> read_text_file(const std::string& path);

}  // namespace volprep
