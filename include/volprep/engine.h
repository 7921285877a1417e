// The engine: one run of a policy over one volume. Walk (walk.h) -> the policy decides each
// entry (policy.h) -> journal -> apply (apply.h) -> a result to report (report.h). The
// engine owns what every policy shares: skips, pinning each entry that may change and
// checking it is the inode the walk saw, reading what the policy asks for through that
// descriptor, hardlinks (changed once, after the walk has counted their links), batches
// within a budget of descriptors, stopping, and a result the same whatever the threads did.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "volprep/apply.h"
#include "volprep/journal.h"
#include "volprep/policy.h"
#include "volprep/report.h"
#include "volprep/volume.h"

namespace volprep {

// The inodes planned a change for under RunConfig::change_once. Insert-only, shared by the
// threads: shards chosen by a key's top bits, each an open-addressing table of 64-bit keys
// under its own lock (8 to 16 bytes an inode). For one device the key is a bijection of the
// inode number, so two inodes never share one; across devices a shared key only leaves an
// entry alone.
class InodeSet {
 public:
  // False when the inode is in the set already.
  bool insert(const EntryStat& st);

 private:
  static constexpr int kShardBits = 6;
  struct Shard {
    std::mutex mu;
    std::vector<uint64_t> slots;
    size_t used = 0;
    bool has_zero = false;
    void grow();
  };
  Shard shards_[size_t(1) << kShardBits];
};

// Tells a filesystem that refuses every change (an NFS export that squashes root, a FUSE
// filesystem that lets no one change owners, volprep without CAP_CHOWN) from a few entries it
// refuses (immutable files, say): the first kRefusedToStop changes made all refused (EPERM,
// EACCES), none made. Shared by a run's threads, and written only when a change fails and by
// the first change made: the changes that succeed only read it.
// A run that ends before kRefusedToStop (a small tree) with every change it tried refused is
// told the same way at its end (refused_all), so that its cause is said too.
class RefusalWatch {
 public:
  static constexpr uint64_t kRefusedToStop = 100;
  // The decisions, pure: `refused` changes refused so far, `made` whether any succeeded,
  // `other` whether any failed otherwise (EROFS, EIO: not a refusal; an entry gone is none).
  static bool refuses_everything(uint64_t refused, bool made) { return !made && refused >= kRefusedToStop; }
  static bool refused_all(uint64_t refused, bool made, bool other) { return refused > 0 && !made && !other; }

  // A change failed with `err`; true for the refusal that decides the run stops (once a run).
  bool refused(int err, const char* step);
  // A change made: stored once, only read after.
  void made() {
    if (!made_.load(std::memory_order_relaxed)) made_.store(true, std::memory_order_relaxed);
  }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  // Every change tried was refused, at least one: read once the run's threads are done.
  bool refused_all() const {
    return refused_all(refused_count(), made_.load(std::memory_order_relaxed), other_.load(std::memory_order_relaxed));
  }
  uint64_t refused_count() const { return refused_.load(std::memory_order_relaxed); }
  // The first refusal ("chown: Operation not permitted"): read once the run's threads are done.
  const std::string& first() const { return first_; }

 private:
  // Read before every change (stopping_), written on refusals (refused_): apart from each
  // other and from what the threads write for every change.
  alignas(64) std::atomic<bool> stopping_{false};
  alignas(64) std::atomic<uint64_t> refused_{0};
  alignas(64) std::atomic<bool> made_{false};
  std::atomic<bool> other_{false};  // a change failed otherwise: rare, beside made_
  std::string first_;  // written by the first refusal only
};

struct RunConfig {
  bool dry_run = false;
  bool cross_filesystems = false;
  std::vector<std::string> excludes;  // globs relative to the volume root
  JournalWriter* journal = nullptr;   // a real run: every batch recorded here first
  // The run journals (a dry run: the real run would): what lies deeper than a journal takes
  // is reported as failed and left alone, in the dry run too.
  bool journaled = false;
  // A policy that must not change an inode twice (shift: a second change shifts it twice).
  // The walk can reach an inode twice when a directory or file is moved during the run from
  // where it has been to where it is going; the run then plans each inode once and leaves a
  // second sighting alone, reported as replaced.
  bool change_once = false;
  // With change_once: the inodes the command has changed so far, shared by its runs (the
  // driver's to set), so that one moved from a tree shifted already into the next one is not
  // changed again; null: the run keeps its own.
  std::shared_ptr<InodeSet> changed;
};

struct Note {
  std::string path;  // relative to the volume root, raw bytes
  std::string text;
  bool operator<(const Note& o) const { return path < o.path || (path == o.path && text < o.text); }
};

struct RunResult {
  Summary summary;
  std::vector<RecordedChange> planned;  // dry run: every change, sorted by path
  std::vector<Note> notes;              // entries left alone that the user should hear of
  std::vector<Note> errors;             // entries that failed
  std::string stopped;                  // non-empty: the run stopped early, and why
  std::vector<std::string> unmatched_excludes;  // --exclude patterns that matched nothing
  // The filesystem refused every change the run tried (RefusalWatch): how many it refused, and
  // the first refusal ("chown: Operation not permitted"); whether the run stopped for it
  // (kRefusedToStop refused) or ended with every change tried refused. 0: it did not.
  uint64_t refused = 0;
  std::string refused_first;
  bool refused_stopped = false;
};

// Read by a progress display while a run goes on.
struct Progress {
  std::atomic<uint64_t> scanned{0}, planned{0}, changed{0};
  std::atomic<bool> walked{false};  // the walk is over: `scanned` and `planned` are final
};

RunResult run_tree(const VolumeRoot& volume, const Policy& policy, const RunConfig& config,
                   Progress* progress = nullptr);

// Walks a volume: a directory's tree, or a single-file volume's one entry as the only batch.
void walk_volume(const VolumeRoot& volume, WalkOptions options, const Walker::VisitorFactory& make_visitor);

// --exclude: a pattern with a '/' (a leading "./" too) matches the whole relative path, one
// without matches the entry's name at any depth; a trailing '/' matches directories only. Each pattern is parsed
// once; a run's threads share the set, which notes which patterns matched something, so a
// pattern that matched nothing (a typo, a path copied with PATH's own name first) is warned of
// even when another one matched.
class ExcludeSet {
 public:
  explicit ExcludeSet(const std::vector<std::string>& patterns);
  bool matches(std::string_view rel_path, bool is_dir) const;
  // The patterns, as given, that have matched nothing so far.
  std::vector<std::string> unmatched() const;

 private:
  struct Pattern {
    std::string given, glob;
    bool dirs_only = false, anchored = false;
  };
  std::vector<Pattern> patterns_;
  std::unique_ptr<std::atomic<bool>[]> hit_;
};

}  // namespace volprep
