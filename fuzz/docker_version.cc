// What tells the Docker release: `dockerd --version` output and the dpkg status database.
#include "fuzz_input.h"
#include "volprep/daemon_config.h"

using namespace volprep;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = fuzz::as_text(data, size);
  (void)parse_docker_version(text);
  (void)docker_version_from_dpkg(text);
  return 0;
}
