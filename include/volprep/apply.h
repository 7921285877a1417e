// Appliers carry out one directory's planned changes. The real one makes the syscalls; the
// dry-run one only records what the real one would do, so both run the same plan.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "volprep/plan.h"

namespace volprep {

class Applier {
 public:
  virtual ~Applier() = default;
  // `dirfd` is the open directory the changes' names are relative to; `dir_path` its path
  // relative to the volume root, for records. Sets each change's err.
  virtual void apply(int dirfd, const std::string& dir_path, std::span<Change> changes) = 0;
};

// Owner by fchownat(AT_SYMLINK_NOFOLLOW); modes through an O_PATH|O_NOFOLLOW descriptor whose
// inode is checked first, so a name swapped for a symlink is never followed.
std::unique_ptr<Applier> make_real_applier();

struct RecordedChange {
  std::string path;  // relative to the volume root, raw bytes
  Change change;
};

// Records into `out` (one recorder per thread) and touches nothing.
std::unique_ptr<Applier> make_dry_run_applier(std::vector<RecordedChange>& out);

}  // namespace volprep
