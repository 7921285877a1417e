// prepare_volume: walk one volume, plan each directory's changes and hand them to an
// applier (the real one, or the dry-run one that only records). Hardlinked files wait
// until the walk has counted their links.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "volprep/apply.h"
#include "volprep/journal.h"
#include "volprep/plan.h"
#include "volprep/report.h"
#include "volprep/volume.h"

namespace volprep {

struct PrepareConfig {
  Target target;
  bool dry_run = false;
  bool cross_filesystems = false;
  std::vector<std::string> excludes;  // globs relative to the volume root
  JournalWriter* journal = nullptr;   // a real run: every batch recorded here first
  // The run journals (a dry run: the real run would): what lies deeper than a journal takes
  // is reported as failed and left alone, in the dry run too.
  bool journaled = false;
};

struct Note {
  std::string path;  // relative to the volume root, raw bytes
  std::string text;
  bool operator<(const Note& o) const { return path < o.path || (path == o.path && text < o.text); }
};

struct PrepareResult {
  Summary summary;
  std::vector<RecordedChange> planned;  // dry run: every change, sorted by path
  std::vector<Note> notes;              // entries left alone that the user should hear of
  std::vector<Note> errors;             // entries that failed
  std::string stopped;                  // non-empty: the run stopped early, and why
};

// Read by a progress display while a run goes on.
struct Progress {
  std::atomic<uint64_t> scanned{0}, changed{0};
};

PrepareResult prepare_volume(const VolumeRoot& volume, const PrepareConfig& config,
                             Progress* progress = nullptr);

// --exclude: a pattern with a '/' matches the whole relative path, one without matches the
// entry's name at any depth; a trailing '/' matches directories only.
bool excluded_by(const std::vector<std::string>& patterns, std::string_view rel_path, bool is_dir);

}  // namespace volprep
