// Appliers carry out planned changes, one directory's batch at a time. The real one makes the
// syscalls; the journaling one records each batch durably first; the dry-run one only records
// what the real one would do, so all of them run the same plan.
#pragma once

#include <cerrno>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "volprep/plan.h"

namespace volprep {

class JournalWriter;

// Told of every change an applier has finished with (c.err says how it went).
class ChangeSink {
 public:
  virtual ~ChangeSink() = default;
  virtual void done(const std::string& dir_path, const Change& c) = 0;
  // Told of each change as soon as it is tried (c.err says how it went; done() follows, maybe
  // once its batch is through), from whichever thread tried it.
  virtual void tried(const Change&) const {}
  // True once the run has stopped (the filesystem refuses every change): an applier makes no
  // more changes, and reports each one it still holds to done() with err kNotAttempted.
  // Asked before every change.
  virtual bool stopped() const { return false; }
};

// Change::err of a change an applier did not attempt because the run stopped.
inline constexpr int kNotAttempted = ECANCELED;

// One per thread.
class Applier {
 public:
  virtual ~Applier() = default;
  // `dir` is the open directory the changes' names are relative to; `dir_path` its path
  // relative to the volume root. An applier may hold changes (and `dir`) back until flush().
  // Returns false when the run must stop (the journal cannot be written): nothing more is
  // applied.
  virtual bool apply(const SharedFd& dir, const std::string& dir_path, std::span<Change> changes,
                     ChangeSink& sink) = 0;
  // Called between batches (once per directory walked): an applier holding changes back
  // applies what it may. False: stop, as for apply().
  virtual bool poll(ChangeSink&) { return true; }
  virtual bool flush(ChangeSink&) { return true; }
  virtual std::string error() const { return {}; }
};

// Every change through the descriptor it was planned on (Change::entry): owner by
// fchownat(AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW), modes and xattrs after checking the inode is
// still as planned.
std::unique_ptr<Applier> make_real_applier();
// The real applier behind a write-ahead journal: batches of changes (many directories'
// worth) are written and fdatasync'ed before any of them is applied; each holds its entry's
// descriptor until then, within a budget of descriptors per thread. A directory whose path
// is longer than `max_path` is not journaled: its changes fail (ENAMETOOLONG), unapplied.
std::unique_ptr<Applier> make_journaling_applier(JournalWriter& journal, size_t max_path);

struct RecordedChange {
  std::string path;  // relative to the volume root, raw bytes
  Change change;
};

// Records into `out` (one recorder per thread) and touches nothing; lets go of each entry's
// descriptor.
std::unique_ptr<Applier> make_dry_run_applier(std::vector<RecordedChange>& out);

// Applies one change with the real applier's syscalls; returns 0 or an errno, and the step.
int apply_change(int dirfd, Change& c);
// The step of a change left alone because its entry is not what was planned any more (its
// owner chmodded it, another run changed it), with ESTALE.
inline constexpr const char* kChangedSincePlanned = "changed since it was planned";
// What the user is told of a failed change: "chown: Operation not permitted", or for one
// changed since it was planned, that it was left alone.
std::string failure_text(const Change& c);

}  // namespace volprep
