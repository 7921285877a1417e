// /proc/PID/uid_map and gid_map (--pid), and what is done with a map once read.
#include "fuzz_input.h"
#include "volprep/id_map.h"

using namespace volprep;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto map = IdMap::parse_proc(fuzz::as_text(data, size), "/proc/1/uid_map");
  if (!map) return 0;
  (void)map->validate();
  (void)map->describe();
  (void)map->is_identity();
  auto again = IdMap::parse_proc(map->to_proc(), "again");
  if (!again || !(*again == *map)) __builtin_trap();  // to_proc writes what parse_proc reads
  for (const auto& e : map->extents()) {
    (void)reaches_last_id(e);
    for (uint32_t id : {e.container, e.container + e.count - 1, e.container + e.count}) {
      if (auto host = map->to_host(id)) (void)map->to_container(*host);
    }
  }
  return 0;
}
