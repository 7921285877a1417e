// The remap engine: from the host's active configuration to the uid and gid maps that
// containers get. Sources, highest precedence first: explicit maps, a running process,
// rootless Docker or Podman for a named user, Docker (a running dockerd, then daemon.json).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "volprep/daemon_config.h"
#include "volprep/error.h"
#include "volprep/finding.h"
#include "volprep/host_db.h"
#include "volprep/id_map.h"
#include "volprep/subid.h"

namespace volprep {

struct RemapOptions {
  std::vector<std::string> maps;      // --map C:H[:N], uids and gids
  std::vector<std::string> uid_maps;  // --uid-map
  std::vector<std::string> gid_maps;  // --gid-map
  std::optional<int> pid;             // --pid
  std::optional<std::string> rootless_user;         // --rootless
  std::optional<std::string> podman_rootless_user;  // --podman-rootless
  std::optional<int> dockerd_pid;                   // --dockerd-pid
  std::optional<std::string> config_file;           // --config-file
  std::optional<std::string> userns_remap;          // --userns-remap
  std::optional<std::string> docker_version;        // --docker-version X.Y
  // Where running processes are listed; a test points it elsewhere.
  std::string proc_root = "/proc";
  // Look for a running dockerd. Off under --host-root unless --dockerd-pid names one.
  bool scan_for_daemon = true;
  // The uid volprep runs as; not root means rootless Docker's daemon.json location.
  uint32_t caller_uid = 0;
  std::optional<std::string> caller_xdg_config_home, caller_home;
};

struct Mapping {
  IdMap uid_map, gid_map;
  // Where each extent came from ("/etc/subuid:3"), parallel to the extents; may be empty.
  std::vector<std::string> uid_origins, gid_origins;
  std::string source;                 // one line: what decided the map
  std::vector<std::string> details;   // lines: the settings that led there, with file:line
  std::optional<std::string> data_root;  // Docker's remapped data root
  // The data root it is below (dockerd's --data-root): its other contents, such as the
  // remapped roots of other maps, are Docker's too. Set with data_root; "" for "/". With
  // remapping off, set alone (Docker's default too, refused as a PATH as with remapping on),
  // unless it does not resolve (then a detail says why, and it is not known).
  std::optional<std::string> base_data_root;
  // Remapping off: dockerd's flags or daemon.json name the data root (not Docker's default):
  // migrate-volumes --reverse moves volumes back there. When it does not resolve, why.
  bool data_root_named = false;
  std::string data_root_unusable;
  std::vector<Finding> findings;
  bool remapping_off = false;
  // --rootless, --podman-rootless: the engine that runs the user's containers is the user's
  // own, served by their uid (not root), its API socket at `engine_socket` below / (rootless
  // Docker's and Podman's default, in the user's runtime directory).
  std::optional<uint32_t> engine_owner;
  std::string engine_socket;

  bool has_errors() const { return has_error(findings); }
};

Result<Mapping> resolve_mapping(const RemapOptions& options, const HostDb& host);

// The pieces, for tests and for the other sources.

// "C:H[:N]" triples, as Podman's --uidmap. Errors are usage errors naming the text.
Result<IdMap> parse_map_specs(const std::vector<std::string>& specs, const std::string& option);

struct RemappedRoot {
  std::string user, group;
  uint32_t uid = 0;
  bool is_root = false;  // remapping is off
  bool to_be_created = false;  // "default" before dockerd has created dockremap
};
// Docker's parseRemappedRoot: default, user, user:group, uid, uid:gid.
Result<RemappedRoot> parse_remapped_root(const std::string& value, const HostDb& host);

// Docker's identity mapping for a remap user, with the errors in the words of `version`
// (without one, the newest release's).
Result<Mapping> docker_remap_mapping(const RemappedRoot& root, SubidRules rules,
                                     const HostDb& host,
                                     const std::optional<DockerVersion>& version = std::nullopt);

enum class RootlessFlavor { kDocker, kPodman };
Result<Mapping> rootless_mapping(const std::string& user, RootlessFlavor flavor,
                                 const HostDb& host);

// Appends the kernel's verdict on both maps to the findings.
void add_validation_findings(Mapping& mapping);

}  // namespace volprep
