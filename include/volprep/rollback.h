// Rollback: put every entry a journal recorded back into its state before the run.
// Verifies first (journal checksums, the volume root's identity), then restores in parallel,
// through its own journal, touching only entries still in the state the run left them in.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "volprep/journal.h"
#include "volprep/prepare.h"

namespace volprep {

struct RollbackConfig {
  bool force = false;    // also restore entries changed by someone else since the run
  bool dry_run = false;  // only say what would be restored
  // Enter mounts below the volume root (a run with --cross-filesystems did); else an entry
  // reached through one is left alone, and nothing is asked of its filesystem.
  bool cross_filesystems = false;
  JournalWriter* journal = nullptr;  // the rollback's own journal
};

struct RollbackResult {
  uint64_t restored = 0;   // to restore, in a dry run
  uint64_t already = 0;    // already in the state before the run
  uint64_t conflicts = 0;  // changed since the run: left alone (without --force)
  uint64_t missing = 0;    // gone, or another inode under that name now
  uint64_t failed = 0;
  std::vector<RecordedChange> planned;  // dry run: sorted by path
  std::vector<Note> notes, errors;
  std::string stopped;
};

// The volume root the journal belongs to, opened without following symlinks and checked to be
// the same directory (device and inode) the run changed. kExitRefused if it is not.
Result<UniqueFd> open_journal_root(const JournalHeader& header, bool& single_file);

Result<RollbackResult> rollback(const Journal& journal, const RollbackConfig& config);

// What rollback makes of an entry the journal recorded, given the recorded inode as it is now
// (`now`; `xattrs_now` holds each of rec.xattrs as it is now, nullopt where absent):
// kAlready, in its state before the run; kRestore, as the run left it (set-id bits or kept
// capabilities may be missing after a kill between a chown and putting them back), or as a
// killed rollback left it; kChanged, someone changed it since.
enum class Restore { kAlready, kRestore, kChanged };
Restore classify_restore(const JournalRecord& rec, const EntryStat& now,
                         std::span<const std::optional<std::string>> xattrs_now);

// The header a rollback's own journal starts with.
JournalHeader rollback_header(const Journal& journal, const std::string& command_line);

}  // namespace volprep
