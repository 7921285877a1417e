// What an engine answers, as compose reads it: an HTTP body (chunked or not), an image's
// config, and a file tarred by GET /containers/ID/archive. A rootless engine is its user's, so
// every byte here is theirs to choose. The first byte picks the reader.
#include "fuzz_input.h"
#include "volprep/docker_engine.h"

using namespace volprep;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string body(fuzz::as_text(data + 1, size - 1));
  std::vector<std::string> layers;
  switch (data[0] % 3) {
    case 0:
      (void)dechunk(body);
      break;
    case 1:
      (void)image_facts(body, layers);
      break;
    default:
      (void)first_file_in_tar(body, "fuzz");
      break;
  }
  return 0;
}
