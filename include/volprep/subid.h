// SubidFile: /etc/subuid and /etc/subgid, read the way a given Docker release reads them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "volprep/error.h"
#include "volprep/finding.h"
#include "volprep/id_map.h"

namespace volprep {

// Docker changed how it reads subordinate id files in release 28.
enum class SubidRules {
  kDocker28,    // lenient: junk numbers read as 0, every matching line used in file order
  kDocker2010,  // strict: every line must have 3 fields; uid-keyed lines win over name-keyed
  kDocker2010Early,  // 20.10.0 to 20.10.3: as strict; name-keyed lines, then uid-keyed ones
  // strict as 20.10, but every line of the name or uid is used in file order: the Go readers
  // forked from Docker's, in containers/storage (Podman) and RootlessKit's static source
  kGoIdtools,
};

struct SubidRange {
  uint32_t start = 0;
  uint32_t count = 0;
  std::string where;  // "file:line"
  std::string line;   // the line as written, trimmed
};

struct SubidLookup {
  std::vector<SubidRange> ranges;  // in the order Docker uses them
  std::vector<Finding> findings;
};

class SubidFile {
 public:
  // `display_path` is the path as the host sees it ("/etc/subuid"), used in Docker's wording;
  // `origin` is the file volprep actually read, used in file:line locations.
  SubidFile(std::string content, std::string display_path, std::string origin)
      : content_(std::move(content)),
        display_path_(std::move(display_path)),
        origin_(std::move(origin)) {}

  // The ranges Docker would use for `user` (name and uid), with every line it would misread.
  // Strict rules turn the first misread line into an error, as Docker does.
  Result<SubidLookup> lookup(const std::string& user, uint32_t uid, SubidRules rules) const;
  // The lines of one key alone, name or number as written (Docker 19.03 looks up one at a time).
  Result<SubidLookup> lookup_key(const std::string& key, SubidRules rules) const;
  // Every line's range (Docker 27 and older look at them all to place a new range).
  Result<SubidLookup> all_lines(SubidRules rules) const;

  const std::string& display_path() const { return display_path_; }

 private:
  Result<SubidLookup> lookup_lines(const std::string& user, const std::string& uid_text,
                                   SubidRules rules) const;
  std::string content_;
  std::string display_path_;
  std::string origin_;
};

// Container ids handed out as a running total from `first_container`, one extent per range.
// A range whose host or container ids reach 4294967295 is an error naming its line.
Result<IdMap> ranges_to_map(const std::vector<SubidRange>& ranges, uint32_t first_container);

// A finding for each range that overlaps another in the host ids, at the one later in the
// file; n log n, for files of any size.
std::vector<Finding> overlapping_ranges(const std::vector<SubidRange>& ranges);

}  // namespace volprep
