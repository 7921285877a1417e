// --as UID[:GID] (and map's ids), --map, --uid-map and --gid-map: one argument per line.
#include "fuzz_input.h"
#include "volprep/cli.h"
#include "volprep/remap.h"

using namespace volprep;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args;
  for (auto& line : fuzz::split(fuzz::as_text(data, size), '\n')) args.push_back(fuzz::c_string(line));
  IdMap map = IdMap::identity();
  if (auto parsed = parse_map_specs(args, "--map")) map = *parsed;
  Mapping mapping;
  mapping.uid_map = mapping.gid_map = map;
  for (const auto& arg : args) {
    (void)parse_u32(arg);
    if (auto ids = parse_id_pair(arg)) (void)to_host_ids(mapping, *ids);
  }
  return 0;
}
