// Docker's side of the configuration: daemon.json, a running dockerd's command line, and
// which release of dockerd is installed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "volprep/error.h"

namespace volprep {

struct DaemonJson {
  std::string origin;  // the file read
  std::optional<std::string> userns_remap;
  int userns_remap_line = 0;
  std::optional<std::string> data_root;
};

// Parses daemon.json. Malformed JSON is an error naming file, line and column.
Result<DaemonJson> parse_daemon_json(std::string_view text, const std::string& origin);

// The settings of dockerd's command line that bear on remapping.
struct DockerdFlags {
  std::optional<std::string> userns_remap;
  std::optional<std::string> config_file;
  std::optional<std::string> data_root;
};
DockerdFlags parse_dockerd_args(const std::vector<std::string>& args);

struct DockerdProcess {
  int pid = 0;
  uint32_t uid = 0;                  // real uid: not 0 for rootless Docker
  std::vector<std::string> args;     // argv[1..]
  std::string exe;                   // /proc/PID/exe, for --version
  std::optional<std::string> xdg_config_home, home;  // from its environment
};

// Every dockerd under `proc_root` (normally /proc).
Result<std::vector<DockerdProcess>> find_dockerd_processes(const std::string& proc_root);
Result<DockerdProcess> read_dockerd_process(const std::string& proc_root, int pid);

struct DockerVersion {
  int major = 0, minor = 0, patch = 0;
  std::string text;  // as printed
};
// "Docker version 20.10.24+dfsg1, build 5d6db84" -> 20.10.24
std::optional<DockerVersion> parse_docker_version(std::string_view text);
// Runs `binary --version`; nullopt when it cannot be run.
std::optional<DockerVersion> docker_version_of(const std::string& binary);

}  // namespace volprep
