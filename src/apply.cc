#include "volprep/apply.h"

#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <utility>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "volprep/concurrency.h"
#include "volprep/journal.h"
#include "volprep/report.h"

namespace volprep {
namespace {

// fchmod, or through /proc/self/fd for an O_PATH descriptor (which fchmod refuses).
int chmod_fd(int fd, mode_t mode) {
  if (::fchmod(fd, mode) == 0) return 0;
  if (errno != EBADF) return -errno;
  char proc_path[40];
  std::snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd);
  return ::chmod(proc_path, mode) == 0 ? 0 : -errno;
}

bool needs_chmod(const Change& c) {
  return !S_ISLNK(c.before.mode) && ((c.changes_mode() && !c.mode_by_acl) || c.restores_set_id());
}

// Set what must be there (after the chown, which removes capabilities), remove what must not.
bool xattr_due(const Change& c, const XattrChange& x) {
  return x.after ? (x.after != x.before || c.changes_owner()) : bool(x.before);
}

// Not the inode planned, or changed since (a container may chmod its own files): applying the
// plan would undo that change, so the entry is left alone and reported.
bool changed_since_plan(const EntryStat& now, const Change& c) {
  return !now.same_inode(c.before) || S_ISLNK(now.mode) || now.mode != c.before.mode ||
         now.uid != c.before.uid || now.gid != c.before.gid;
}

// A file that gets set-id bits or capabilities back is changed while no one can write it:
// under a read lease, which the kernel grants only while nobody has the file open for writing
// and which makes whoever opens it for writing (or truncates it) wait until it is released.
// Without it, the new owner (a container) could rewrite the file between the chown and the
// chmod after it, and the bits, and the ctime journaled for rollback, would go onto content
// nobody decided about. The break of the lease is signalled with SIGURG, ignored by default
// (SIGIO, the default, would end volprep). 0, or -errno: EAGAIN when it is open for writing.
int hold_unwritten(int pin, UniqueFd& out) {
  char proc_path[40];
  std::snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", pin);
  const int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  int fd = ::open(proc_path, flags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(proc_path, flags);
  if (fd < 0) return -errno;
  UniqueFd held(fd);
  if (::fcntl(fd, F_SETSIG, SIGURG) != 0 || ::fcntl(fd, F_SETLEASE, F_RDLCK) != 0) return -errno;
  out = std::move(held);
  return 0;
}

// What NFS and a path-based FUSE server (libfuse's high-level API: sshfs, bindfs) answer for
// an inode no name reaches any more, replaced or removed since it was pinned: gone from the
// tree, as ENOENT says of a name (counted as vanished), not a failure. Only for the calls
// that decide about the inode and the chown, before anything of it has changed.
int gone_if_stale(int err) { return err == ESTALE ? ENOENT : err; }

// Waits (at most 100 ms) until the coarse clock, which the kernel stamps ctimes from where it
// keeps no finer ones, is past `ctime_ns`: a write after this gets a later ctime. False, at
// once, where that cannot be told: a ctime in whole seconds (a filesystem that keeps no finer
// ones: a write in the same second keeps it), or one ahead of this clock (a server's).
bool hold_past(int64_t ctime_ns) {
  constexpr int64_t kSecond = 1000000000;
  if (ctime_ns % kSecond == 0) return false;
  for (int i = 0; i < 100; ++i) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    const int64_t now_ns = int64_t(now.tv_sec) * kSecond + now.tv_nsec;
    if (now_ns > ctime_ns) return true;
    if (ctime_ns - now_ns > 50000000) return false;  // more than a few ticks ahead
    const timespec ms{0, 1000000};
    ::nanosleep(&ms, nullptr);
  }
  return false;
}

int fail(Change& c, int err, const char* step) {
  c.err = err;
  c.failed_step = step;
  return err;
}

// Tries `c` unless the run has stopped (then it is left as it is, reported as not attempted).
int try_change(int dirfd, Change& c, const ChangeSink& sink) {
  if (sink.stopped()) return fail(c, kNotAttempted, "not attempted (the run stopped)");
  apply_change(dirfd, c);
  sink.tried(c);
  return c.err;
}

class RealApplier final : public Applier {
 public:
  bool apply(const SharedFd& dir, const std::string& dir_path, std::span<Change> changes,
             ChangeSink& sink) override {
    for (Change& c : changes) {
      try_change(dir->get(), c, sink);
      c.entry.reset();
      sink.done(dir_path, c);
    }
    return true;
  }
};

// Descriptors (directories, and the entries planned in them) one thread's journaling applier
// may hold: its share of half the descriptor limit (which volprep raises to the hard limit);
// the walk holds up to a quarter.
size_t held_fds_budget() {
  rlimit rl{};
  size_t limit = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 ? size_t(rl.rlim_cur) : 1024;
  size_t threads = size_t(std::max(1, tbb::this_task_arena::max_concurrency()));
  return std::max<size_t>(limit / 2 / threads, 8);
}

// Write-ahead, pipelined: a batch's records are written, and the batch is applied once the
// journal's background sync has them on disk. Meanwhile the walk goes on planning the next
// batches, so no thread waits for the disk unless it holds too many batches or directories.
// A batch is sealed when full or 50 ms old (poll()), so no change waits long between its
// statx and its chown.
class JournalingApplier final : public Applier {
 public:
  JournalingApplier(JournalWriter& journal, size_t max_path) : journal_(journal), max_path_(max_path) {}

  bool apply(const SharedFd& dir, const std::string& dir_path, std::span<Change> changes,
             ChangeSink& sink) override {
    if (failed_) return false;
    if (dir_path.size() > max_path_) {
      // Deeper than a journal takes (rollback holds every journaled directory's path): not
      // journaled, so not changed.
      for (Change& c : changes) {
        c.err = ENAMETOOLONG;
        c.failed_step = "journal it (its path is too long)";
        sink.done(dir_path, c);
      }
      return true;
    }
    if (!fs_known_) {
      // Where every change waits for a server, the disk's sync is short next to it: each
      // batch is applied as soon as it is durable, by the thread that planned it, and no
      // thread holds changes for flush() to apply one thread at a time after the walk.
      applies_at_once_ = is_latency_bound_fs(fs_type(dir->get()));
      fs_known_ = true;
    }
    if (open_.dirs.empty()) open_.started = Clock::now();
    // The directory once, then each entry by name: records stay small however deep the tree.
    // Coded against the batch's last directory: a batch reaches the file whole.
    append_directory_record(records_, dir_path, open_.dirs.empty() ? std::string_view() : open_.dirs.back().path);
    for (const Change& c : changes) append_change_record(records_, c);
    Dir& d = open_.dirs.emplace_back();
    d.fd = dir;
    d.path = dir_path;
    d.changes.assign(std::make_move_iterator(changes.begin()), std::make_move_iterator(changes.end()));
    open_.count += changes.size();
    held_fds_ += 1 + changes.size();
    if (applies_at_once_ || open_.count >= kBatchChanges || open_.dirs.size() >= kBatchDirs ||
        held_fds_ >= max_held_fds_)
      if (!seal()) return false;
    return apply_durable(sink, applies_at_once_ ? 0 : kMaxWritten);
  }

  bool poll(ChangeSink& sink) override {
    if (failed_) return false;
    if (!open_.dirs.empty() && Clock::now() - open_.started >= kMaxAge && !seal()) return false;
    return apply_durable(sink, kMaxWritten);
  }

  bool flush(ChangeSink& sink) override {
    if (failed_) return false;
    if (!open_.dirs.empty() && !seal()) return false;
    return apply_durable(sink, 0, /*at_end=*/true);
  }

  std::string error() const override { return error_; }

 private:
  using Clock = std::chrono::steady_clock;
  // A batch of 1024 changes is about 45 KB of records; a thread keeps at most 16 of them
  // written and waiting for the background sync, which syncs every 128 KiB.
  static constexpr size_t kBatchChanges = 1024;
  static constexpr size_t kBatchDirs = 64;
  static constexpr size_t kMaxWritten = 16;
  static constexpr auto kMaxAge = std::chrono::milliseconds(50);
  struct Dir {
    SharedFd fd;
    std::string path;
    std::vector<Change> changes;
  };
  struct Batch {
    std::vector<Dir> dirs;
    size_t count = 0;
    Clock::time_point started;
    uint64_t end = 0;  // the journal offset after its records
  };

  // Writes the open batch's records to the journal, not waiting for the disk.
  bool seal() {
    auto at = journal_.write(records_);
    records_.clear();
    if (!at) return fail(at.error().message);
    open_.end = *at;
    written_.push_back(std::move(open_));
    open_ = Batch{};
    return true;
  }

  // Applies the written batches that are on disk, oldest first, and waits for the disk while
  // more than `max_written` batches, or more descriptors than the budget, are held. At the
  // end of the run (flush) the walk's threads are idle, and a batch is applied on all of them.
  bool apply_durable(ChangeSink& sink, size_t max_written, bool at_end = false) {
    while (!written_.empty()) {
      Batch& b = written_.front();
      if (!journal_.durable(b.end)) {
        if (written_.size() <= max_written && held_fds_ < max_held_fds_) return true;
        if (auto r = journal_.wait_durable(b.end); !r) return fail(r.error().message);
      }
      if (at_end && b.count > 1) {
        apply_in_parallel(b, sink);
      } else {
        for (Dir& d : b.dirs)
          for (Change& c : d.changes) apply_one(d.fd->get(), c, sink);
      }
      for (Dir& d : b.dirs)
        for (Change& c : d.changes) sink.done(d.path, c);
      held_fds_ -= b.dirs.size() + b.count;
      written_.pop_front();
    }
    return true;
  }

  void apply_one(int dirfd, Change& c, const ChangeSink& sink) {
    if (try_change(dirfd, c, sink) == 0 && (c.arms() || c.disarms())) record_armed(dirfd, c);
    c.entry.reset();
  }

  void apply_in_parallel(Batch& b, const ChangeSink& sink) {
    std::vector<std::pair<int, Change*>> all;
    all.reserve(b.count);
    for (Dir& d : b.dirs)
      for (Change& c : d.changes) all.emplace_back(d.fd->get(), &c);
    tbb::parallel_for(tbb::blocked_range<size_t>(0, all.size(), 16), [&](const tbb::blocked_range<size_t>& r) {
      for (size_t i = r.begin(); i < r.end(); ++i) apply_one(all[i].first, *all[i].second, sink);
    });
  }

  // After a change that left set-id bits or capabilities, or took them off: the inode's ctime
  // then, for rollback (an 'A' record). Not waited for: a lost one only makes rollback withhold them.
  // A regular file's was taken while nobody could write it (apply_change); no 'A' record
  // for it without one.
  void record_armed(int dirfd, const Change& c) {
    EntryStat now;
    if (S_ISREG(c.before.mode)) {
      if (!c.armed_ctime_ns) return;
      now = c.before;  // the same inode (checked under the hold), its ctime then
      now.ctime_ns = c.armed_ctime_ns;
    } else if (stat_at(c.name.empty() ? dirfd : c.entry->get(), "", now) != 0) {
      return;
    }
    (void)journal_.write(frame('A', encode_armed(now)));
  }

  bool fail(const std::string& why) {
    error_ = why;
    failed_ = true;
    written_.clear();  // recorded, never applied: rollback counts them as already in place
    open_ = Batch{};  // with its records: the batch and records_ are emptied together
    records_.clear();
    held_fds_ = 0;
    return false;
  }

  JournalWriter& journal_;
  const size_t max_path_;
  const size_t max_held_fds_ = held_fds_budget();
  size_t held_fds_ = 0;        // directories and entries of open_ and written_
  bool fs_known_ = false;      // applies_at_once_ decided, on the first batch's filesystem
  bool applies_at_once_ = false;
  Batch open_;                 // being planned
  std::deque<Batch> written_;  // records written, waiting for the disk
  std::string records_;        // the open batch's records
  bool failed_ = false;
  std::string error_;
};

class DryRunApplier final : public Applier {
 public:
  explicit DryRunApplier(std::vector<RecordedChange>& out) : out_(out) {}
  bool apply(const SharedFd&, const std::string& dir_path, std::span<Change> changes,
             ChangeSink& sink) override {
    for (Change& c : changes) {
      c.entry.reset();
      // Kept for the diff, which shows a path this long summarized anyway: kept whole, the
      // paths of a tree thousands of levels deep take memory quadratic in its depth.
      out_.push_back({summarize_path(join_path(dir_path, c.name)), c});
      sink.done(dir_path, c);
    }
    return true;
  }

 private:
  std::vector<RecordedChange>& out_;
};

}  // namespace

int apply_change(int dirfd, Change& c) {
  // Through the descriptor the change was planned on, never by name: a name renamed or
  // swapped since the plan (for a link to a file outside, a device node, another binary)
  // changes nothing. The directory itself ("") is `dirfd`.
  if (!c.name.empty() && !c.entry) return fail(c, EBADF, "open");
  const int fd = c.name.empty() ? dirfd : c.entry->get();
  const bool chmod = needs_chmod(c);
  bool caps = false, acls = false;
  for (const XattrChange& x : c.xattrs)
    if (xattr_due(c, x)) (x.name == kCapabilityXattr ? caps : acls) = true;
  UniqueFd hold;
  const bool arms = S_ISREG(c.before.mode) && c.arms();
  if (arms)
    if (int rc = hold_unwritten(fd, hold); rc < 0)
      return fail(c, -rc,
                  rc == -EAGAIN ? "hold it unwritten while its set-id bits or capabilities are put back (a process "
                                  "has it open for writing: stop it and run again)"
                                : "hold it unwritten while its set-id bits or capabilities are put back");
  // Taking them off is safe whoever writes the file: held where it can be, so that the ctime
  // after it is this content's and rollback may put them back; else made all the same, with no
  // ctime: rollback withholds them, and the run says so (engine.cc).
  const bool disarms = S_ISREG(c.before.mode) && !arms && c.disarms() && hold_unwritten(fd, hold) == 0;
  uint32_t links = 0;  // the inode's links when checked
  if (chmod || caps || acls || arms || disarms) {
    // The inode is the one planned, but its owner may have chmodded it since: applying the
    // plan would undo that, so it is left alone. Checked before the chown drops set-id bits.
    // A file rollback re-arms because its ctime is the run's must still have it, now that
    // nobody can write it until it is released.
    EntryStat now;
    if (int rc = stat_at(fd, "", now); rc < 0) return fail(c, gone_if_stale(-rc), "stat");
    if (changed_since_plan(now, c) || (arms && c.rearm_if_ctime_ns && now.ctime_ns != c.rearm_if_ctime_ns))
      return fail(c, ESTALE, kChangedSincePlanned);
    links = now.nlink;
  }
  if (c.changes_owner() && ::fchownat(fd, "", c.uid, c.gid, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0)
    return fail(c, gone_if_stale(errno), "chown");
  // A link needs no write, so the lease does not stop one: until rollback's chown, the file's
  // old owner could link it into a directory of theirs outside the tree, and the bits would
  // go there too. After the chown they can link it no more. A file with one link must also
  // still have the name it was reached by: a link out and the removal of that name keep the
  // count.
  if (arms && c.rearm_if_ctime_ns && c.changes_owner()) {
    EntryStat now, named;
    if (int rc = stat_at(fd, "", now); rc < 0) return fail(c, -rc, "stat");
    const bool moved = now.nlink == 1 && !c.name.empty() &&
                       (stat_at(dirfd, c.name.c_str(), named) != 0 || !named.same_inode(now));
    if (now.nlink != links || moved)
      return fail(c, ESTALE, "check it was not linked meanwhile (a link outside the tree would get its set-id bits "
                             "or capabilities)");
  }
  if (chmod)
    if (int rc = chmod_fd(fd, c.mode); rc < 0) return fail(c, -rc, "chmod");
  for (const XattrChange& x : c.xattrs) {
    if (!xattr_due(c, x)) continue;
    int rc = x.after ? set_xattr_at(fd, "", x.name.c_str(), *x.after) : remove_xattr_at(fd, "", x.name.c_str());
    if (rc == -ENODATA && !x.after) rc = 0;  // gone already: the chown removed the capabilities
    if (rc < 0) return fail(c, -rc, x.name == kCapabilityXattr ? "restore file capabilities" : "set ACL");
  }
  if (arms || disarms) {  // still held: what rollback will compare with is this content's
    EntryStat now;
    if (int rc = stat_at(fd, "", now); rc < 0) return fail(c, -rc, "stat");
    // Unless its new owner linked it since the chown (into a directory of theirs outside the
    // tree, say): rollback would give that name root's bits back too.
    // Taken off, nothing is left for a write to clear: the ctime is rollback's only sign of one.
    // Where ctimes come from the coarse clock, a writer the lease held off could write within
    // the same tick and leave it as it is: held until the clock is past it.
    if (now.nlink == links && (!disarms || hold_past(now.ctime_ns))) c.armed_ctime_ns = now.ctime_ns;
  }
  return c.err;
}

std::string failure_text(const Change& c) {
  if (c.err == ESTALE && c.failed_step == kChangedSincePlanned) return std::string(c.failed_step) + ": left alone";
  return std::string(c.failed_step) + ": " + std::strerror(c.err);
}

std::unique_ptr<Applier> make_real_applier() { return std::make_unique<RealApplier>(); }
std::unique_ptr<Applier> make_journaling_applier(JournalWriter& journal, size_t max_path) {
  return std::make_unique<JournalingApplier>(journal, max_path);
}
std::unique_ptr<Applier> make_dry_run_applier(std::vector<RecordedChange>& out) {
  return std::make_unique<DryRunApplier>(out);
}

}  // namespace volprep
