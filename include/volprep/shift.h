// The census before a shift: every id the shift would translate in a volume, read before
// anything changes. A shift is not idempotent, so the two things that make it wrong are
// refused with nothing changed: a tree that reads as shifted already, and ids the map cannot
// translate. The policy that makes the changes is in policy.h (make_shift_policy).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "volprep/engine.h"
#include "volprep/policy.h"
#include "volprep/volume.h"

namespace volprep {

struct CensusOptions {
  bool cross_filesystems = false;
  std::vector<std::string> excludes;  // as the run's: an excluded entry is not counted
  // False: every id is not needed (no --unmapped=refuse), only the shifted-already verdict:
  // the census stops at the first id that refutes it, most often the first entry.
  bool every_id = true;
  // The other volumes of the command: a tree that holds one would shift it twice.
  std::vector<const VolumeRoot*> others;
};

struct UnmappedId {
  bool gid = false;
  uint32_t id = 0;
  uint64_t count = 0;                // times seen: owners, groups, ACL entries, capabilities
  std::vector<std::string> samples;  // the first few paths (sorted), relative to the root
};

struct Census {
  uint64_t entries = 0;  // examined (devices and skipped entries are not)
  uint64_t ids = 0;      // ids seen on them
  uint64_t in_host_range = 0;   // of those, in the map's host range
  std::vector<UnmappedId> unmapped;  // sorted by uid first, then id
  std::vector<Note> errors;     // entries whose ids could not all be read
  std::string nested;           // the path of another volume of the command found in the tree
  bool complete = true;         // false: stopped early (every_id false, or nested)

  // Every id lies in the host range (forward), or none does (reverse).
  bool shifted_already(bool reverse) const {
    return ids > 0 && (reverse ? in_host_range == 0 : in_host_range == ids);
  }
};

inline constexpr size_t kCensusSamples = 3;

Census take_census(const VolumeRoot& volume, const ShiftSpec& spec, const CensusOptions& options);

}  // namespace volprep
