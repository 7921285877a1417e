// /etc/subuid and /etc/subgid, as every modelled Docker release reads them.
#include "fuzz_input.h"
#include "volprep/subid.h"

using namespace volprep;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string content(fuzz::as_text(data, size));
  SubidFile file(content, "/etc/subuid", "subuid");
  for (auto rules : {SubidRules::kDocker28, SubidRules::kDocker2010, SubidRules::kDocker2010Early,
                     SubidRules::kGoIdtools}) {
    for (auto lookup : {file.lookup("dockremap", 1000, rules), file.lookup_key("1000", rules),
                        file.all_lines(rules)}) {
      if (!lookup) continue;
      (void)overlapping_ranges(lookup->ranges);
      for (uint32_t first : {0u, 1u, 4294967295u}) {
        auto map = ranges_to_map(lookup->ranges, first);
        if (map) (void)map->validate();
      }
    }
  }
  return 0;
}
