#include "volprep/engine.h"

#include <fnmatch.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>
#include <tbb/concurrent_hash_map.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for_each.h>
#include <tbb/parallel_sort.h>
#include <tbb/task_arena.h>

namespace volprep {

ExcludeSet::ExcludeSet(const std::vector<std::string>& patterns)
    : hit_(std::make_unique<std::atomic<bool>[]>(patterns.size())) {
  for (const std::string& given : patterns) {
    Pattern p{given, given};
    p.dirs_only = p.glob.size() > 1 && p.glob.back() == '/';
    if (p.dirs_only) p.glob.pop_back();
    // Any '/' anchors the pattern at PATH, a leading "./" too ("./cache" is PATH's own cache,
    // not every cache below it); the "./" itself is not part of the relative paths matched.
    p.anchored = p.glob.find('/') != std::string::npos;
    while (p.glob.starts_with("./")) p.glob.erase(0, 2);
    patterns_.push_back(std::move(p));
  }
}

bool ExcludeSet::matches(std::string_view rel, bool is_dir) const {
  if (rel.empty()) return false;
  const std::string path(rel);
  const auto slash = path.rfind('/');
  const char* name = path.c_str() + (slash == std::string::npos ? 0 : slash + 1);
  bool matched = false;
  for (size_t i = 0; i < patterns_.size(); ++i) {
    const Pattern& p = patterns_[i];
    // Once one pattern matched, the rest are tried only to note that they match too.
    if ((p.dirs_only && !is_dir) || (matched && hit_[i].load(std::memory_order_relaxed))) continue;
    if (fnmatch(p.glob.c_str(), p.anchored ? path.c_str() : name, p.anchored ? FNM_PATHNAME : 0) != 0) continue;
    matched = true;
    if (!hit_[i].load(std::memory_order_relaxed)) hit_[i].store(true, std::memory_order_relaxed);
  }
  return matched;
}

std::vector<std::string> ExcludeSet::unmatched() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < patterns_.size(); ++i)
    if (!hit_[i].load(std::memory_order_relaxed)) out.push_back(patterns_[i].given);
  return out;
}

namespace {

struct ThreadState final : ChangeSink {
  Summary summary;
  std::vector<RecordedChange> recorded;
  std::vector<Note> notes, errors;
  std::unique_ptr<Applier> applier;
  std::vector<Change> batch;
  Progress* progress = nullptr;
  RefusalWatch* refusals = nullptr;  // the run's
  bool journaled = false;            // a real run with a journal
  // Entries left alone below directory paths longer than a journal takes, and the shortest
  // such path: reported once, not one path as long as the tree is deep per entry.
  uint64_t too_deep = 0;
  std::string too_deep_dir;

  void done(const std::string& dir_path, const Change& c) override {
    const uint64_t entries = 1 + c.other_links;
    if (c.err == ENOENT) {
      summary.vanished += entries;
    } else if (c.err == kNotAttempted) {
      summary.not_attempted += entries;
    } else if (c.err) {
      summary.failed += entries;
      errors.push_back({join_path(dir_path, c.name), failure_text(c)});
    } else {
      summary.changed += entries;
      if (c.keeps_set_id()) summary.set_id_kept += entries;
      // Taken off with no ctime journaled (no lease to be had: a process had it open for
      // writing; linked meanwhile; ctimes too coarse): rollback will not trust the file with them.
      if (journaled && S_ISREG(c.before.mode) && !c.arms() && c.disarms() && !c.armed_ctime_ns)
        notes.push_back({join_path(dir_path, c.name),
                         "its set-id bits or capabilities are off, and no state of it after that is journaled (a "
                         "process had it open for writing, or its ctimes are too coarse to tell a later write): "
                         "rollback puts them back only with --force"});
      if (progress) progress->changed.fetch_add(entries, std::memory_order_relaxed);
    }
  }
  void tried(const Change& c) const override {
    if (c.err)
      refusals->refused(c.err, c.failed_step);
    else
      refusals->made();
  }
  bool stopped() const override { return refusals->stopping(); }
};

// A hardlinked file waits here until the walk has counted how many of its links it found.
// One link: the directory it is in (device, inode) and its name there. A directory renamed
// while the walk runs can be listed under two paths: it is one directory all the same.
using LinkName = std::tuple<uint64_t, uint64_t, std::string>;
LinkName link_name(const EntryStat& dir, std::string name) {
  return {uint64_t(dir.dev_major) << 32 | dir.dev_minor, dir.ino, std::move(name)};
}

struct PendingLink {
  uint32_t nlink = 0;
  std::vector<std::string> paths;  // every path a link was found at, relative to the root
  std::set<LinkName> links;        // the links those are: counted, not the paths
  Change change;
};
using LinkKey = std::pair<uint64_t, uint64_t>;  // (device, inode)
struct LinkKeyHash {
  static size_t hash(const LinkKey& k) { return std::hash<uint64_t>()(k.first * 0x9e3779b97f4a7c15ull ^ k.second); }
  static bool equal(const LinkKey& a, const LinkKey& b) { return a == b; }
};
using PendingLinks = tbb::concurrent_hash_map<LinkKey, PendingLink, LinkKeyHash>;

}  // namespace

bool InodeSet::insert(const EntryStat& st) {
  uint64_t k = st.ino ^ ((uint64_t(st.dev_major) << 32 | st.dev_minor) * 0x9e3779b97f4a7c15ull);
  k *= 0xbf58476d1ce4e5b9ull;  // odd: a bijection, as is the shift-xor after it
  k ^= k >> 31;
  Shard& s = shards_[k >> (64 - kShardBits)];
  std::lock_guard lock(s.mu);
  if (k == 0) return !std::exchange(s.has_zero, true);  // 0 marks an empty slot
  if ((s.used + 1) * 2 > s.slots.size()) s.grow();
  for (size_t i = k & (s.slots.size() - 1);; i = (i + 1) & (s.slots.size() - 1)) {
    if (s.slots[i] == k) return false;
    if (s.slots[i] == 0) {
      s.slots[i] = k;
      ++s.used;
      return true;
    }
  }
}

bool RefusalWatch::refused(int err, const char* step) {
  if (err != EPERM && err != EACCES) {
    if (err != ENOENT && !other_.load(std::memory_order_relaxed)) other_.store(true, std::memory_order_relaxed);
    return false;
  }
  const uint64_t n = refused_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n == 1) first_ = std::string(step) + ": " + std::strerror(err);
  return refuses_everything(n, made_.load(std::memory_order_relaxed)) && !stopping_.exchange(true);
}

void InodeSet::Shard::grow() {
  const size_t size = std::max<size_t>(64, slots.size() * 2);
  std::vector<uint64_t> old = std::exchange(slots, std::vector<uint64_t>(size));
  for (uint64_t k : old)
    if (k)
      for (size_t i = k & (slots.size() - 1);; i = (i + 1) & (slots.size() - 1))
        if (!slots[i]) {
          slots[i] = k;
          break;
        }
}

namespace {

// What the walk left alone without entering it, as the run reports it; null: nothing to say.
const char* left_alone_by_walk(Skip why) {
  switch (why) {
    case Skip::kMountPoint: return "mount point: left alone (--cross-filesystems enters it)";
    case Skip::kSubvolume: return "btrfs subvolume: left alone (--cross-filesystems enters it)";
    case Skip::kReadOnlySubvolume:
      return "read-only btrfs subvolume: left alone (nothing in it can change, with or without --cross-filesystems)";
    case Skip::kSubvolumePlaceholder:
      return "btrfs subvolume placeholder (a snapshot does not take the subvolumes nested in the original): left alone";
    case Skip::kReadOnlyMount: return "read-only mount: left alone (nothing in it can change)";
    default: return nullptr;
  }
}

class Run {
 public:
  Run(const VolumeRoot& v, const Policy& policy, const RunConfig& c, Progress* p)
      : volume_(v), policy_(policy), config_(c), progress_(p) {}

  ThreadState& local() {
    auto& ts = states_.local();
    if (!ts.applier) {
      ts.progress = progress_;
      ts.refusals = &refusals_;
      ts.journaled = !config_.dry_run && config_.journal;
      ts.applier = config_.dry_run   ? make_dry_run_applier(ts.recorded)
                   : config_.journal ? make_journaling_applier(*config_.journal, kMaxJournalPath)
                                     : make_real_applier();
    }
    return ts;
  }

  // Plans one directory's entries and applies them as one batch. False: stop the run.
  bool visit(const DirView& dir, std::span<Entry> entries) {
    if (refusals_.stopping()) return false;  // the walk quits: its other threads see it late
    ThreadState& ts = local();
    ts.batch.clear();
    // Deeper than a journal takes (rollback holds every journaled directory's path): not
    // journaled, so not changed; the dry run says the same.
    const bool too_deep = (config_.journaled || config_.journal) && dir.path.size() > kMaxJournalPath;
    EntryStat dir_st;  // the directory itself, once a hardlinked file needs it
    bool have_dir_st = false;
    for (Entry& e : entries) {
      ++ts.summary.scanned;
      if (e.skip) {
        ++ts.summary.skipped[size_t(*e.skip)];
        if (const char* note = left_alone_by_walk(*e.skip)) ts.notes.push_back({join_path(dir.path, e.name), note});
        continue;
      }
      // The walk's statx of the name rules out most entries with no syscall more; an entry
      // that may change is pinned, and decided again on what the pin holds.
      if (Triage t = policy_.triage(e.st); t.kind != Triage::kMayChange) {
        if (t.kind == Triage::kUnchanged) {
          ++ts.summary.unchanged;
        } else {
          ++ts.summary.skipped[size_t(t.skip)];
          if (t.note) ts.notes.push_back({join_path(dir.path, e.name), t.note});
        }
        continue;
      }
      if (too_deep) {
        ++ts.summary.failed;
        if (!ts.too_deep++ || dir.path.size() < ts.too_deep_dir.size()) ts.too_deep_dir = dir.path;
        continue;
      }
      SharedFd pin;
      if (!e.name.empty() && !(pin = pin_entry(ts, dir, e))) continue;
      std::optional<Change> change;
      if (!plan_pinned(ts, pin ? pin->get() : dir.fd, dir.path, e.name, e.st, change)) continue;
      if (!change) {
        ++ts.summary.unchanged;
        continue;
      }
      change->name = e.name;
      if (!S_ISDIR(e.st.mode) && e.st.nlink > 1) {
        // Decided again, and counted once, when its links are.
      } else if (!first_change(ts, dir.path, e.name, e.st)) {
        continue;
      }
      if (progress_) progress_->planned.fetch_add(1, std::memory_order_relaxed);
      // A directory that changes likely holds entries that do: the walk pins them for us.
      if (S_ISDIR(e.st.mode)) e.pin_entries = true;
      if (!S_ISDIR(e.st.mode) && e.st.nlink > 1) {
        // Decided again once the walk has counted its links: no descriptor held meanwhile.
        if (!have_dir_st)
          if (int rc = stat_at(dir.fd, "", dir_st); rc < 0) {
            run_error(ts, join_path(dir.path, e.name), -rc, "cannot stat its directory");
            continue;
          }
        have_dir_st = true;
        defer_link(join_path(dir.path, e.name), link_name(dir_st, e.name), std::move(*change));
        continue;
      }
      change->entry = std::move(pin);
      ts.batch.push_back(std::move(*change));
      // A wide directory goes in parts, so its pinned entries stay within the budget.
      if (ts.batch.size() >= max_pinned_) {
        if (!apply_batch(ts, dir.held, dir.path)) return false;
        ts.batch.clear();
      }
    }
    if (progress_) progress_->scanned.fetch_add(entries.size(), std::memory_order_relaxed);
    return apply_batch(ts, dir.held, dir.path);
  }

  // Opens the entry the walk stat'ed by name (open_entry) and stats it through the new
  // descriptor, which must hold the same inode: `e.st` becomes what the descriptor says.
  // Null when it is left alone (counted and reported).
  SharedFd pin_entry(ThreadState& ts, const DirView& dir, Entry& e) {
    if (e.pin) return std::move(e.pin);  // pinned by the walk, `e.st` stat'ed through it
    auto path = [&] { return join_path(dir.path, e.name); };  // to report: not joined otherwise
    int fd = open_entry(dir.fd, e.name.c_str(), config_.cross_filesystems);
    if (fd == -ENOENT) {
      ++ts.summary.vanished;
      return nullptr;
    }
    if (fd == -EXDEV) {
      ++ts.summary.skipped[size_t(Skip::kMountPoint)];
      ts.notes.push_back({path(), "mount point: left alone (--cross-filesystems enters it)"});
      return nullptr;
    }
    if (fd < 0) {
      run_error(ts, path(), -fd, "cannot open");
      return nullptr;
    }
    auto pin = std::make_shared<const UniqueFd>(fd);
    EntryStat now;
    if (int rc = stat_at(fd, "", now); rc < 0) {
      run_error(ts, path(), -rc, "cannot stat");
      return nullptr;
    }
    if (!now.same_inode(e.st)) {
      ++ts.summary.skipped[size_t(Skip::kReplaced)];
      ts.notes.push_back({path(), "replaced during the run: left alone"});
      return nullptr;
    }
    e.st = now;
    return pin;
  }

  // Decides the entry `name` of `dir_path` on `fd`, the entry itself (pinned, or the directory
  // of its batch), stat'ed as `st`: the policy's extended attributes are read through `fd`.
  // False: one could not be read (counted as failed); else `out` is the change, or empty if
  // none is due. The path is joined only to report a failure: not once an entry.
  bool plan_pinned(ThreadState& ts, int fd, std::string_view dir_path, std::string_view name, const EntryStat& st,
                   std::optional<Change>& out) {
    // The same type as the walk saw; decided on what the pin holds, maybe as planned already.
    if (policy_.triage(st).kind != Triage::kMayChange) return true;
    const auto reads = policy_.reads(st);
    std::optional<std::string> values[kMaxXattrReads];
    if (reads.size() > kMaxXattrReads) {
      run_error(ts, join_path(dir_path, name), EINVAL, "too many extended attributes to read");
      return false;
    }
    const char* names[kMaxXattrReads];
    int rcs[kMaxXattrReads];
    for (size_t i = 0; i < reads.size(); ++i) names[i] = reads[i].name;
    get_xattrs_at(fd, "", std::span(names, reads.size()), listed_, std::span(values, reads.size()),
                  std::span(rcs, reads.size()));
    for (size_t i = 0; i < reads.size(); ++i) {
      const int rc = rcs[i];
      if (rc != 0 && rc != -ENODATA && !(rc == -EOPNOTSUPP && reads[i].unsupported_is_absent)) {
        run_error(ts, join_path(dir_path, name), -rc, reads[i].unreadable);
        return false;
      }
    }
    out = policy_.plan(st, std::span(values, reads.size()));
    return true;
  }

  bool apply_batch(ThreadState& ts, const SharedFd& dir, const std::string& dir_path) {
    if (!(ts.batch.empty() ? ts.applier->poll(ts) : ts.applier->apply(dir, dir_path, ts.batch, ts))) {
      stop(ts.applier->error());
      return false;
    }
    if (!refusals_.stopping()) return true;
    stop("the filesystem refuses every change");
    return false;
  }

  void stop(const std::string& why) {
    std::lock_guard lock(stop_mu_);
    if (stopped_.empty()) stopped_ = why;
  }

  // Applies what appliers still hold (a journaling applier's last batch).
  void flush() {
    tbb::parallel_for_each(states_.begin(), states_.end(), [&](ThreadState& ts) {
      if (ts.applier && !ts.applier->flush(ts)) stop(ts.applier->error());
    });
    if (refusals_.stopping()) stop("the filesystem refuses every change");
  }

  void defer_link(std::string path, LinkName name, Change change) {
    PendingLinks::accessor a;
    LinkKey key{uint64_t(change.before.dev_major) << 32 | change.before.dev_minor, change.before.ino};
    const uint32_t nlink = change.before.nlink;  // the most any sighting saw: a link may be added
    if (links_.insert(a, key)) a->second.change = std::move(change);
    a->second.nlink = std::max(a->second.nlink, nlink);
    a->second.paths.push_back(std::move(path));
    a->second.links.insert(std::move(name));
  }

  // Hardlinked files whose every link was found inside the tree: reached again from the root
  // one component at a time without following symlinks, checked to be the same inode, changed.
  void apply_links() {
    ThreadState& ts = local();
    auto split = [](const std::string& p) {  // a path below the root: its directory, its name
      auto slash = p.rfind('/');
      return slash == std::string::npos ? std::pair<std::string, std::string>("", p)
                                        : std::pair(p.substr(0, slash), p.substr(slash + 1));
    };
    std::vector<PendingLink*> pending;
    for (auto& [key, link] : links_) pending.push_back(&link);
    for (PendingLink* link : pending) {  // a path seen twice is one link
      std::sort(link->paths.begin(), link->paths.end());
      link->paths.erase(std::unique(link->paths.begin(), link->paths.end()), link->paths.end());
    }
    std::sort(pending.begin(), pending.end(), [](auto* a, auto* b) { return a->paths[0] < b->paths[0]; });
    for (PendingLink* link : pending) {
      const std::string& first = link->paths[0];
      const uint64_t found = link->paths.size();
      if (link->links.size() < link->nlink) {
        ts.summary.skipped[size_t(Skip::kLinkedFromOutside)] += found;
        for (const auto& p : link->paths)
          ts.notes.push_back({p, "has " + std::to_string(link->nlink) + " links, " +
                                     std::to_string(link->links.size()) + " inside the tree: left alone"});
        continue;
      }
      // One inode, changed once through its first link, pinned and decided again there;
      // every link is an entry of the plan.
      auto [dir_path, name] = split(first);
      SharedFd dir = std::make_shared<UniqueFd>(open_below_root(dir_path));
      if (!dir->valid()) {
        ts.summary.failed += found;
        ts.errors.push_back({first, "cannot reach it again without following a symlink"});
        continue;
      }
      Entry e;
      e.name = name;
      e.st = link->change.before;
      SharedFd pin = pin_entry(ts, {dir->get(), dir, dir_path}, e);
      if (!pin) {
        // Counted once by pin_entry: the other links go with it.
        ts.summary.skipped[size_t(Skip::kReplaced)] += found - 1;
        continue;
      }
      // Every link found must still be this inode, and be all its links: a link can be added,
      // and a directory moved during the walk (or now) can show one link under two paths,
      // so links are counted by their directory's inode and their name, not by path.
      std::set<LinkName> still;
      for (const std::string& p : link->paths) {
        auto [d_path, d_name] = split(p);
        UniqueFd d = open_below_root(d_path);
        EntryStat d_st, other;
        UniqueFd other_pin(d.valid() && stat_at(d.get(), "", d_st) == 0
                               ? open_entry(d.get(), d_name.c_str(), config_.cross_filesystems) : -1);
        if (other_pin.valid() && stat_at(other_pin.get(), "", other) == 0 && other.same_inode(e.st))
          still.insert(link_name(d_st, d_name));
      }
      if (still.size() < e.st.nlink) {
        ts.summary.skipped[size_t(Skip::kLinkedFromOutside)] += found;
        for (const auto& p : link->paths)
          ts.notes.push_back({p, "has " + std::to_string(e.st.nlink) + " links now, " + std::to_string(still.size()) +
                                     " of them found inside the tree: left alone"});
        continue;
      }
      std::optional<Change> change;
      if (!plan_pinned(ts, pin->get(), dir_path, name, e.st, change)) {
        ts.summary.failed += found - 1;  // counted once: the other links go with it
        continue;
      }
      if (!change) {
        ts.summary.unchanged += found;
        continue;
      }
      if (!first_change(ts, dir_path, name, e.st)) {
        ts.summary.skipped[size_t(Skip::kReplaced)] += found - 1;  // counted once: the other links go with it
        continue;
      }
      change->name = name;
      change->entry = std::move(pin);
      change->other_links = uint32_t(found - 1);
      if (progress_) progress_->planned.fetch_add(found, std::memory_order_relaxed);
      ts.batch.clear();
      ts.batch.push_back(*change);
      if (!apply_batch(ts, dir, dir_path)) return;
      if (config_.dry_run) {  // the plan lists every name of the inode
        change->entry.reset();
        for (size_t i = 1; i < link->paths.size(); ++i) ts.recorded.push_back({link->paths[i], *change});
      }
    }
  }

  UniqueFd open_below_root(const std::string& rel) {
    UniqueFd cur(::fcntl(volume_.fd.get(), F_DUPFD_CLOEXEC, 3));
    size_t start = 0;
    while (cur.valid() && start < rel.size()) {
      size_t slash = rel.find('/', start);
      std::string part = rel.substr(start, slash == std::string::npos ? slash : slash - start);
      start = slash == std::string::npos ? rel.size() : slash + 1;
      // Never into a mount made meanwhile (a FUSE server there could hang the run).
      int fd = config_.cross_filesystems ? -ENOSYS : open_subdir_same_mount(cur.get(), part.c_str());
      if (fd == -ENOSYS || fd == -EPERM) fd = open_dir_at(cur.get(), part.c_str());  // no openat2
      cur.reset(fd < 0 ? -1 : fd);
    }
    return cur;
  }

  // Hardlinked files not changed because the run stopped before they were.
  void links_not_attempted() {
    ThreadState& ts = local();
    for (auto& [key, link] : links_) ts.summary.not_attempted += link.paths.size();
  }

  RunResult collect() {
    RunResult r;
    r.stopped = stopped_;
    if (refusals_.stopping() || refusals_.refused_all()) {
      r.refused = refusals_.refused_count();
      r.refused_first = refusals_.first();
      r.refused_stopped = refusals_.stopping();
    }
    uint64_t too_deep = 0;
    const std::string* too_deep_dir = nullptr;
    for (auto& ts : states_) {
      if (ts.too_deep && (!too_deep_dir || ts.too_deep_dir.size() < too_deep_dir->size())) too_deep_dir = &ts.too_deep_dir;
      too_deep += ts.too_deep;
      r.summary += ts.summary;
      std::move(ts.recorded.begin(), ts.recorded.end(), std::back_inserter(r.planned));
      std::move(ts.notes.begin(), ts.notes.end(), std::back_inserter(r.notes));
      std::move(ts.errors.begin(), ts.errors.end(), std::back_inserter(r.errors));
    }
    // Sorted, so the output is the same whatever the threads did.
    tbb::parallel_sort(r.planned.begin(), r.planned.end(),
                       [](const auto& a, const auto& b) { return a.path < b.path; });
    if (too_deep)
      r.errors.push_back({*too_deep_dir, std::to_string(too_deep) + " entries here and below left alone: a path over " +
                                             std::to_string(kMaxJournalPath >> 10) + " KiB is not journaled"});
    std::sort(r.notes.begin(), r.notes.end());
    std::sort(r.errors.begin(), r.errors.end());
    return r;
  }

  // With RunConfig::change_once: whether this is the run's first change of the inode; if not,
  // it is left alone (counted and reported).
  bool first_change(ThreadState& ts, std::string_view dir_path, std::string_view name, const EntryStat& st) {
    if (!changed_ || changed_->insert(st)) return true;
    ++ts.summary.skipped[size_t(Skip::kReplaced)];
    ts.notes.push_back({join_path(dir_path, name), "reached a second time (moved during the run): changed once already, left alone"});
    return false;
  }

  void run_error(ThreadState& ts, const std::string& path, int err, const char* what) {
    ++ts.summary.failed;
    ts.errors.push_back({path, std::string(what) + ": " + std::strerror(err)});
  }

  void skipped(const std::string& path, Skip why, const char* what) {
    ThreadState& ts = local();
    ++ts.summary.skipped[size_t(why)];
    ts.notes.push_back({path, what});
  }
  void error(const std::string& path, int err, const char* what) {
    ThreadState& ts = local();
    ++ts.summary.failed;
    ts.errors.push_back({path, std::string(what) + ": " + std::strerror(err)});
  }
  void vanished() { ++local().summary.vanished; }
  const std::string& stopped() const { return stopped_; }

 private:
  // The most extended attributes a policy reads for one entry.
  static constexpr size_t kMaxXattrReads = 4;
  const VolumeRoot& volume_;
  const Policy& policy_;
  const RunConfig& config_;
  // A listxattr first where the filesystem lists every attribute it holds (a local one, the
  // walk staying on it): one syscall for an entry with none of those the policy reads (shift
  // reads two of each file and directory), where a get of each takes as many as it reads.
  const bool listed_ = is_local_fs(volume_.fs_magic) && !config_.cross_filesystems;
  Progress* progress_;
  // Entries one thread pins before handing them to its applier: an eighth of the descriptor
  // limit, shared by the threads (the walk holds up to a quarter, the appliers half).
  const size_t max_pinned_ = [] {
    rlimit rl{};
    size_t limit = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 ? size_t(rl.rlim_cur) : 1024;
    size_t threads = size_t(std::max(1, tbb::this_task_arena::max_concurrency()));
    return std::clamp<size_t>(limit / 8 / threads, 1, 1024);
  }();
  RefusalWatch refusals_;
  tbb::enumerable_thread_specific<ThreadState> states_;
  PendingLinks links_;
  // The command's set (RunConfig::changed), else one of the run's own.
  const std::shared_ptr<InodeSet> changed_ =
      !config_.change_once ? nullptr : config_.changed ? config_.changed : std::make_shared<InodeSet>();
  std::mutex stop_mu_;
  std::string stopped_;

};

class Visitor final : public WalkVisitor {
 public:
  explicit Visitor(Run& run) : run_(run) {}
  Visit visit(const DirView& dir, std::span<Entry> entries) override {
    return run_.visit(dir, entries) ? Visit::kContinue : Visit::kQuit;
  }
  void vanished(const std::string&) override { run_.vanished(); }
  void skipped(const std::string& path, Skip why, const char* what) override { run_.skipped(path, why, what); }
  void error(const std::string& path, int err, const char* what) override {
    run_.error(path, err, what);
  }

 private:
  Run& run_;
};

}  // namespace

void walk_volume(const VolumeRoot& volume, WalkOptions options, const Walker::VisitorFactory& make_visitor) {
  if (volume.file_name.empty()) {
    Walker(std::move(options)).walk(volume.fd.get(), volume.st, make_visitor);
    return;
  }
  // A single entry: one batch in its parent directory.
  std::vector<Entry> one(1);
  one[0].name = volume.file_name;
  one[0].st = volume.st;
  std::string empty;
  SharedFd held = borrow_fd(volume.fd);  // the volume outlives the walk
  make_visitor()->visit({volume.fd.get(), held, empty, 0}, one);
}

RunResult run_tree(const VolumeRoot& volume, const Policy& policy, const RunConfig& config, Progress* progress) {
  Run run(volume, policy, config, progress);
  WalkOptions options;
  options.cross_filesystems = config.cross_filesystems;
  const ExcludeSet excludes(config.excludes);
  if (!config.excludes.empty())
    options.excluded = [&](std::string_view rel, bool is_dir) { return excludes.matches(rel, is_dir); };
  walk_volume(volume, std::move(options), [&] { return std::make_unique<Visitor>(run); });
  if (progress) progress->walked.store(true, std::memory_order_relaxed);
  run.flush();
  if (run.stopped().empty()) {
    run.apply_links();
    run.flush();
  } else {
    run.links_not_attempted();
  }
  RunResult result = run.collect();
  result.unmatched_excludes = excludes.unmatched();
  return result;
}

}  // namespace volprep
