// daemon.json, as each modelled dockerd release reads it, and without a release.
#include "fuzz_input.h"
#include "volprep/daemon_config.h"

using namespace volprep;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = fuzz::as_text(data, size);
  (void)parse_daemon_json(text, "/etc/docker/daemon.json");
  for (const char* release : {"Docker version 19.03.15", "Docker version 20.10.24",
                              "Docker version 23.0.0", "Docker version 28.0.1"})
    (void)parse_daemon_json(text, "/etc/docker/daemon.json", parse_docker_version(release));
  return 0;
}
