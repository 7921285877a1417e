// --chmod SPEC, applied to every kind of entry.
#include <sys/stat.h>

#include "fuzz_input.h"
#include "volprep/chmod_spec.h"

using namespace volprep;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto spec = ChmodSpec::parse(fuzz::c_string(fuzz::as_text(data, size)));
  if (!spec) return 0;
  for (uint32_t type : {S_IFREG, S_IFDIR, S_IFLNK})
    for (uint32_t perm : {0u, 0644u, 0755u, 07777u, 02750u})
      if (spec->apply(type | perm) & ~07777u) __builtin_trap();  // only permission bits
  return 0;
}
