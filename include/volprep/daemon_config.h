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

struct DockerVersion {
  int major = 0, minor = 0, patch = 0;
  bool has_patch = false;  // "20.10" names no patch release
  std::string text;  // as printed
};
struct DaemonJson {
  std::string origin;  // the file read
  std::optional<std::string> userns_remap;
  int userns_remap_line = 0;
  std::optional<std::string> data_root;
};

// Parses daemon.json as the dockerd of `version` reads it: malformed JSON, and whatever makes
// that dockerd refuse to start (a directive it does not know, a byte-order mark or an empty file
// before 23.0, "graph" since 23.0), is an error naming file, line and column. Without a version,
// only a directive no modelled release knows is refused, and the file is read as 23.0+ reads it.
Result<DaemonJson> parse_daemon_json(std::string_view text, const std::string& origin,
                                     const std::optional<DockerVersion>& version = std::nullopt);

// The settings of dockerd's command line that bear on remapping.
struct DockerdFlags {
  std::optional<std::string> userns_remap;
  std::optional<std::string> config_file;
  std::optional<std::string> data_root;
};
DockerdFlags parse_dockerd_args(const std::vector<std::string>& args);

// A dockerd volprep trusts: it runs as root (real, effective and saved uid 0) from a binary
// named dockerd that root owns and neither group nor others may write. Anyone can start a
// process named dockerd, with any command line; only such a daemon decides the mapping.
struct DockerdProcess {
  int pid = 0;
  std::vector<std::string> args;  // argv[1..]
  std::string exe;                // /proc/PID/exe
};

struct DockerdScan {
  std::vector<DockerdProcess> trusted;
  std::vector<std::string> ignored;  // the others named dockerd: "dockerd (pid 7): why"
};
// Every process named dockerd under `proc_root` (normally /proc).
Result<DockerdScan> find_dockerd_processes(const std::string& proc_root);
// The process `pid` if it is a dockerd volprep trusts, else an Error saying why not.
Result<DockerdProcess> read_dockerd_process(const std::string& proc_root, int pid);

// "Docker version 20.10.24+dfsg1, build 5d6db84" -> 20.10.24
std::optional<DockerVersion> parse_docker_version(std::string_view text);
// The installed docker.io, docker-ce or docker-engine package in a dpkg status database
// (var/lib/dpkg/status): "20.10.24+dfsg1-1+deb12u1" -> 20.10.24, text "docker.io 20.10.24+...".
std::optional<DockerVersion> docker_version_from_dpkg(std::string_view status);
// Runs a trusted daemon's binary with --version, by descriptor, only if that binary is also
// where its path says, in directories root owns that neither group nor others may write;
// nullopt otherwise, or when it cannot be run.
std::optional<DockerVersion> docker_version_of(const DockerdProcess& daemon);

}  // namespace volprep
