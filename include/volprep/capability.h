// File capabilities (security.capability) in the kernel's own format: a u32 magic with the
// revision and the effective flag, then permitted and inheritable sets as two u32 pairs
// (revision 2), and from revision 3 the host uid of the namespace root they are for. A
// revision 2 value grants in every namespace, the host included; a revision 3 value only
// where its root id is root. The kernel shows a revision 3 value whose root id is 0 (seen
// from the reader's namespace) as revision 2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace volprep {

struct FileCaps {
  uint32_t revision = 2;    // 2 or 3 (1, the oldest, is read as 2 with empty upper halves)
  bool effective = false;
  uint32_t permitted[2] = {0, 0}, inheritable[2] = {0, 0};
  uint32_t root_id = 0;     // revision 3 only

  // nullopt for a value the kernel would not take (bad size or revision).
  static std::optional<FileCaps> parse(const std::string& raw);
  // Revision 1 values are never written: a revision 2 one says the same.
  std::string serialize() const;
  // "v2", "v3 rootid 500000": for the diff.
  std::string describe() const;
};

}  // namespace volprep
