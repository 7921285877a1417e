// Walker: a parallel walk of a directory tree by descriptor only. Every entry is stat'ed once
// relative to its parent's open descriptor, symlinks are never followed, and the walk stays
// on the root's mount unless told otherwise. The visitor sees one directory's entries at a
// time (a batch), so it can plan, record and apply them together; a large directory comes in
// several batches (chunks of its listing), visited in parallel.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "volprep/fd.h"

namespace volprep {

enum class Visit { kContinue, kQuit };

// Why an entry was left alone: the walk says so for the first four, the subvolumes and the
// read-only mounts, a run for the others.
enum class Skip : uint8_t {
  kExcluded,           // matched --exclude
  kMountPoint,         // another mount; the walk stays on the root's
  kPseudoFs,           // proc, sysfs and the like: never entered
  kReplaced,           // swapped for something else while the walk ran
  kLinkedFromOutside,  // a hardlink whose other links are outside the tree
  kDevice,             // device nodes keep their owner: a container must not own a device
  kSymlink,            // --acl: symlinks have no ACLs
  // A btrfs subvolume or snapshot: a filesystem of its own (its own st_dev, as find -xdev and
  // du -x see it) on the same mount. Entered, as a mount point is, with --cross-filesystems.
  kSubvolume,
  kReadOnlySubvolume,  // a read-only one (btrfs subvolume snapshot -r): never entered
  kSubvolumePlaceholder,  // what a snapshot holds for a subvolume nested in the original: never entered
  // --cross-filesystems: a mount (a filesystem mounted ro, a bind mount made ro) where nothing
  // can change (EROFS): never entered, its root not planned. Without the option it is a mount
  // point like any other, and nothing is asked of it.
  kReadOnlyMount,
  kCount
};
const char* skip_name(Skip s);

struct Entry {
  std::string name;  // relative to the batch's directory; empty: the directory itself
  EntryStat st;
  std::optional<Skip> skip;  // set: neither planned nor entered
  bool descend = false;  // a directory the walk will enter after the batch; the visitor may clear it
  uint32_t mark = 0;     // set by the visitor on a directory; handed back with its own batch
  // Set by the visitor on a directory whose entries will likely change: the walk then opens
  // each of its non-directory entries with open_entry() and stats it through that descriptor,
  // which the entry carries in `pin` (one lookup, where a stat by name and a pin take two).
  bool pin_entries = false;
  SharedFd pin;  // the entry's O_PATH descriptor, `st` stat'ed through it; or none
};

struct DirView {
  int fd;                   // the open directory the batch's names are relative to
  const SharedFd& held;     // the same descriptor, for a visitor that needs it after visit()
  const std::string& path;  // relative to the walk root, "" for the root; for messages only
  uint32_t mark = 0;        // what the visitor set on this directory's entry in its parent
};

// One per thread; the walker never calls one visitor from two threads.
class WalkVisitor {
 public:
  virtual ~WalkVisitor() = default;
  // One batch: all of a directory's entries, or a chunk of them. A directory with more than
  // WalkOptions::chunk_entries entries is visited once per chunk, by any threads, in any
  // order, each chunk with the same DirView (fd, path, mark); the directory's own entry
  // comes in its parent's batch (the root's in a batch of its own), before any chunk.
  virtual Visit visit(const DirView& dir, std::span<Entry> entries) = 0;
  // An entry that was listed but was gone when the walk reached it.
  virtual void vanished(const std::string& path) = 0;
  // An entry left out of its batch for `why` (a pseudo filesystem, a directory replaced or
  // mounted over since it was listed); `what` says so in words.
  virtual void skipped(const std::string& path, Skip why, const char* what) = 0;
  // A failure on one entry: the walk goes on without it.
  virtual void error(const std::string& path, int err, const char* what) = 0;
};

struct WalkOptions {
  bool cross_filesystems = false;
  // A read-only mount or btrfs subvolume is entered as any other (check: it changes nothing);
  // else it is left alone (kReadOnlyMount, kReadOnlySubvolume).
  bool enter_read_only = false;
  // Relative path, is-directory -> skip this entry (and its subtree).
  std::function<bool(std::string_view, bool)> excluded;
  // Threads walking, each with one request in flight. 0 chooses: the threads the caller
  // asked oneTBB for (requested_threads(): a global_control, as --threads sets today), else
  // by the root's filesystem (choose_concurrency: one per core, 64 where latency-bound).
  // More than the current arena runs: the walk runs in a RunArena of its own.
  int in_flight = 0;
  // Entries per batch: a directory with more is listed chunk by chunk (getdents64 as the
  // chunks are taken, never the whole listing at once) and each chunk is stat'ed and visited
  // as a task of its own, so one directory is planned on every thread and memory is bounded
  // by the chunks in progress, not by the directory's size. 0 chooses: kChunkEntries, or
  // kLatencyBoundChunkEntries on a latency-bound filesystem, where a chunk costs a round trip
  // per entry and many small ones keep the requests in flight.
  size_t chunk_entries = 0;
  static constexpr size_t kChunkEntries = 1024;
  static constexpr size_t kLatencyBoundChunkEntries = 16;
};

// Joins a relative directory path and a name ("" + "a" = "a", "a" + "b" = "a/b").
std::string join_path(std::string_view dir, std::string_view name);
// The names of `path` between its slashes, empty ones (a leading, doubled or trailing slash)
// left out: "/a//b/" = {"a", "b"}.
std::vector<std::string> path_parts(std::string_view path);

class Walker {
 public:
  using VisitorFactory = std::function<std::unique_ptr<WalkVisitor>()>;
  explicit Walker(WalkOptions options) : options_(std::move(options)) {}

  // Walks the directory `root_fd` (whose own statx is `root_st`): first a batch holding the
  // root itself (name ""), then every directory below. Runs on the current oneTBB arena, or
  // on one of its own with WalkOptions::in_flight threads where that differs.
  // Returns false if a visitor asked to quit.
  bool walk(int root_fd, const EntryStat& root_st, const VisitorFactory& make_visitor);

 private:
  bool walk_here(int root_fd, const EntryStat& root_st, int64_t root_magic, const VisitorFactory& make_visitor);
  size_t chunk_for(int64_t magic) const;  // WalkOptions::chunk_entries for a filesystem
  WalkOptions options_;
};

}  // namespace volprep
