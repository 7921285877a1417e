// The whole remap resolution over a host's files, as `--host-root` (a helper container) reads
// them: etc/passwd, etc/group, etc/subuid, etc/subgid and etc/docker/daemon.json, separated in
// the input by a line "%%"; resolved for Docker of several releases, rootless Docker and Podman.
#include <filesystem>

#include "fuzz_input.h"
#include "volprep/host_db.h"
#include "volprep/remap.h"

using namespace volprep;

namespace {
std::string root;
const std::vector<const char*> kFiles = {"etc/passwd", "etc/group", "etc/subuid", "etc/subgid",
                              "etc/docker/daemon.json"};
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  root = fuzz::temp_dir("host");
  std::filesystem::create_directories(root + "/etc/docker");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::write_parts(fuzz::as_text(data, size), root, kFiles);
  auto host = make_file_host_db(root);
  for (int source = 0; source < 6; ++source) {
    RemapOptions options;
    options.scan_for_daemon = false;
    switch (source) {
      case 0: break;
      case 1: options.docker_version = "19.03"; break;
      case 2: options.docker_version = "20.10"; break;
      case 3: options.docker_version = "28.0"; break;
      case 4: options.rootless_user = "alice"; break;
      case 5: options.podman_rootless_user = "alice"; break;
    }
    (void)resolve_mapping(options, *host);
  }
  return 0;
}
