#include "volprep/rollback.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_sort.h>

namespace volprep {

Result<UniqueFd> open_journal_root(const JournalHeader& h, bool& single_file) {
  UniqueFd slash(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::string rel = h.volume.substr(1);
  int fd = open_beneath(slash.get(), rel, O_PATH);
  if (fd < 0)
    return Error{fd == -ENOENT ? kExitConfig : kExitRefused,
                 "cannot open the volume " + h.volume + " without following a symlink: " +
                     std::strerror(-fd)};
  UniqueFd root(fd);
  EntryStat st;
  if (int rc = stat_at(root.get(), "", st); rc < 0)
    return config_error(h.volume + ": " + std::strerror(-rc));
  if (st.ino != h.ino || st.dev_major != h.dev_major || st.dev_minor != h.dev_minor)
    return Error{kExitRefused, h.volume + " is no longer the tree the run changed (device " +
                                   std::to_string(st.dev_major) + ":" + std::to_string(st.dev_minor) +
                                   " inode " + std::to_string(st.ino) + ", the journal says " +
                                   std::to_string(h.dev_major) + ":" + std::to_string(h.dev_minor) +
                                   " inode " + std::to_string(h.ino) + "); refusing"};
  single_file = !S_ISDIR(st.mode);
  if (single_file) {
    // A single-file volume: its records are named relative to its parent.
    auto cut = h.volume.rfind('/');
    int parent = open_beneath(slash.get(), h.volume.substr(1, cut == 0 ? 0 : cut - 1), O_RDONLY | O_DIRECTORY);
    if (parent < 0) return config_error(h.volume + ": cannot open its directory: " + std::strerror(-parent));
    return UniqueFd(parent);
  }
  int dir = open_beneath(root.get(), "", O_RDONLY | O_DIRECTORY);
  if (dir < 0) return config_error(h.volume + ": " + std::strerror(-dir));
  return UniqueFd(dir);
}

Restore classify_restore(const JournalRecord& rec, const EntryStat& now,
                         std::span<const std::optional<std::string>> xattrs_now) {
  constexpr uint32_t kSetId = S_ISUID | S_ISGID;
  const bool link = S_ISLNK(now.mode);
  auto perms = [](uint32_t m) { return m & 07777; };
  auto owner_is = [&](uint32_t u, uint32_t g) { return now.uid == u && now.gid == g; };
  // A chown clears setuid/setgid; a run killed right after one leaves the bits off.
  auto mode_is = [&](uint32_t m, bool or_without_set_id) {
    return link || perms(now.mode) == perms(m) ||
           (or_without_set_id && (m & kSetId) && perms(now.mode) == perms(m & ~kSetId));
  };
  // Each xattr the run set (ACLs) must match; one it kept (capabilities, which a chown drops
  // and the run put back) may be missing after a kill between the chown and putting it back.
  auto xattrs_are = [&](bool after, bool kept_too) {
    for (size_t k = 0; k < rec.xattrs.size(); ++k) {
      const auto& x = rec.xattrs[k];
      const bool kept = x.before == x.after;
      if ((!kept || kept_too) && xattrs_now[k] != (after ? x.after : x.before)) return false;
    }
    return true;
  };
  if (owner_is(rec.uid_before, rec.gid_before) && mode_is(rec.mode_before, false) && xattrs_are(false, true))
    return Restore::kAlready;
  const bool as_the_run_left = owner_is(rec.uid_after, rec.gid_after) && mode_is(rec.mode_after, true) &&
                               xattrs_are(true, false);
  // A rollback killed between its own chown and putting bits and capabilities back.
  const bool half_restored = owner_is(rec.uid_before, rec.gid_before) && mode_is(rec.mode_before, true) &&
                             xattrs_are(false, false);
  return as_the_run_left || half_restored ? Restore::kRestore : Restore::kChanged;
}

JournalHeader rollback_header(const Journal& j, const std::string& command_line) {
  JournalHeader h = j.header;
  h.volprep_version = VOLPREP_VERSION;
  h.command_line = command_line;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  h.start_ns = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  auto slash = j.path.rfind('/');
  h.rollback_of = slash == std::string::npos ? j.path : j.path.substr(slash + 1);
  return h;
}

namespace {

struct ThreadState final : ChangeSink {
  RollbackResult r;
  std::unique_ptr<Applier> applier;
  std::vector<Change> batch;
  // Directories opened lately, each below the root without a symlink: the next one is opened
  // relative to its nearest cached ancestor, so a deep tree is not resolved from the root each
  // time.
  std::vector<std::pair<std::string, SharedFd>> open_dirs;

  SharedFd open_dir(int root_fd, const std::string& dir, bool cross_mounts) {
    int base = root_fd;
    size_t best = 0;
    bool found = false;
    for (auto& [path, fd] : open_dirs) {
      if (path == dir) return fd;
      if ((path.empty() || (dir.size() > path.size() && dir.starts_with(path) && dir[path.size()] == '/')) &&
          (!found || path.size() > best)) {
        base = fd->get();
        best = path.size();
        found = true;
      }
    }
    std::string rel = !found ? dir : best == 0 ? dir : dir.substr(best + 1);
    int fd = open_beneath(base, rel, O_RDONLY | O_DIRECTORY, !cross_mounts);
    if (fd < 0) return nullptr;
    if (open_dirs.size() >= 64) open_dirs.erase(open_dirs.begin());
    open_dirs.emplace_back(dir, std::make_shared<UniqueFd>(fd));
    return open_dirs.back().second;
  }

  void done(const std::string& dir_path, const Change& c) override {
    if (c.err == ENOENT) {
      ++r.missing;
    } else if (c.err) {
      ++r.failed;
      r.errors.push_back({join_path(dir_path, c.name), std::string(c.failed_step) + ": " + std::strerror(c.err)});
    } else {
      ++r.restored;
    }
  }
};

std::string ids_text(uint32_t u, uint32_t g, uint32_t mode, bool link) {
  char buf[64];
  if (link) std::snprintf(buf, sizeof buf, "%u:%u", u, g);
  else std::snprintf(buf, sizeof buf, "%u:%u %04o", u, g, mode & 07777);
  return buf;
}

// Whether restoring `c` gives an inode set-id bits or file capabilities it does not have now.
bool rearms(const Change& c) {
  constexpr uint32_t kSetId = S_ISUID | S_ISGID;
  if (!S_ISDIR(c.before.mode) && (c.mode & kSetId & ~c.before.mode)) return true;
  if (!S_ISDIR(c.before.mode) && (c.mode & kSetId) && c.changes_owner()) return true;  // the chown drops them
  for (const auto& x : c.xattrs)
    if (x.name == kCapabilityXattr && x.after && (x.after != x.before || c.changes_owner())) return true;
  return false;
}

// Restores `c` without set-id bits or capabilities.
void disarm(Change& c) {
  c.mode &= ~uint32_t(S_ISUID | S_ISGID);
  for (auto& x : c.xattrs)
    if (x.name == kCapabilityXattr) x.after.reset();
}

}  // namespace

Result<RollbackResult> rollback(const Journal& j, const RollbackConfig& config) {
  // Journals before version 3: no change the run made is later than their last write.
  const int64_t run_end_ns = j.last_written_ns;
  bool single_file = false;
  auto root = open_journal_root(j.header, single_file);
  if (!root) return root.error();
  std::string single_name;
  if (single_file) single_name = j.header.volume.substr(j.header.volume.rfind('/') + 1);

  tbb::enumerable_thread_specific<ThreadState> states;
  std::mutex stop_mu;
  std::string stopped;
  std::atomic<bool> stop{false};
  std::vector<RecordedChange> planned_all;
  std::mutex planned_mu;

  // The records, in runs that share a directory: each run is one open and one batch.
  const auto& recs = j.records;
  std::vector<size_t> runs;
  for (size_t i = 0; i < recs.size(); ++i)
    if (i == 0 || recs[i].dir != recs[i - 1].dir) runs.push_back(i);
  runs.push_back(recs.size());

  tbb::parallel_for(tbb::blocked_range<size_t>(0, runs.size() - 1, 8), [&](const auto& range) {
    ThreadState& ts = states.local();
    if (!ts.applier)
      ts.applier = config.journal ? make_journaling_applier(*config.journal, kMaxRecordPath) : make_real_applier();
    for (size_t run = range.begin(); run != range.end(); ++run) {
      if (stop.load(std::memory_order_relaxed)) return;
      const std::string& dir = j.dirs[recs[runs[run]].dir];
      // A single-file volume's records are all in its parent, the root here: any other
      // directory is outside the volume and never opened.
      SharedFd dirfd = single_file && !dir.empty() ? nullptr : ts.open_dir(root->get(), dir, config.cross_filesystems);
      ts.batch.clear();
      for (size_t i = runs[run]; i != runs[run + 1]; ++i) {
        const JournalRecord& rec = recs[i];
        const std::string& name = rec.name;
        if (single_file && (!dir.empty() || name != single_name)) {
          ++ts.r.missing;
          ts.r.notes.push_back({path_of(j, rec), "not the journal's single-file volume: left alone"});
          continue;
        }
        if (!dirfd) {
          ++ts.r.missing;
          ts.r.notes.push_back({path_of(j, rec), "its directory is gone, or reached through a symlink or a mount now: left alone"});
          continue;
        }
        // Pinned: what is read below and what is restored are this one inode, checked to be
        // the one the run changed, whatever happens to the name meanwhile.
        int fd = open_entry(dirfd->get(), name.c_str(), config.cross_filesystems);
        EntryStat now;
        int rc = fd < 0 ? fd : stat_at(fd, "", now);
        SharedFd pin = fd < 0 ? nullptr : std::make_shared<const UniqueFd>(fd);
        if (rc < 0) {
          ++ts.r.missing;
          ts.r.notes.push_back({path_of(j, rec), rc == -EXDEV ? "a mount point now: left alone (--cross-filesystems enters it)"
                                                              : std::string("gone: ") + std::strerror(-rc)});
          continue;
        }
        // The same inode number is not the same file once it was freed and reused (ext4 does
        // at once): its birth time tells, where the journal and the filesystem have one.
        if (now.ino != rec.ino || now.dev_major != rec.dev_major || now.dev_minor != rec.dev_minor ||
            (now.mode & S_IFMT) != (rec.mode_before & S_IFMT) ||
            (rec.btime_ns && now.btime_ns && now.btime_ns != rec.btime_ns)) {
          ++ts.r.missing;
          ts.r.notes.push_back({path_of(j, rec), "another file has this name now: left alone"});
          continue;
        }
        const bool link = S_ISLNK(now.mode);
        // Every xattr the record names, as it is now.
        std::vector<std::optional<std::string>> xnow;
        for (const auto& x : rec.xattrs) {
          std::string v;
          xnow.push_back(get_xattr_at(pin->get(), "", x.name.c_str(), v) == 0 ? std::optional<std::string>(std::move(v))
                                                                           : std::nullopt);
        }
        const Restore verdict = classify_restore(rec, now, xnow);
        if (verdict == Restore::kAlready) {
          ++ts.r.already;
          continue;
        }
        if (verdict == Restore::kChanged) {
          ts.r.notes.push_back({path_of(j, rec), "changed since the run: now " +
                                              ids_text(now.uid, now.gid, now.mode, link) + ", the run left " +
                                              ids_text(rec.uid_after, rec.gid_after, rec.mode_after, link) +
                                              (config.force ? "; restored anyway (--force)" : "; left alone (--force restores it)")});
          if (!config.force) {
            ++ts.r.conflicts;
            continue;
          }
        }
        Change c;
        c.name = name;
        c.entry = std::move(pin);
        c.before = now;
        c.uid = rec.uid_before;
        c.gid = rec.gid_before;
        c.mode = rec.mode_before & 07777;
        // From what is there now to what was there before the run.
        for (size_t k = 0; k < rec.xattrs.size(); ++k)
          c.xattrs.push_back({rec.xattrs[k].name, xnow[k], rec.xattrs[k].before});
        // Set-id bits and capabilities are trusted for the content they were on. An inode
        // changed since volprep left it (its content rewritten, say: the container owned it)
        // does not get them back unless asked. Version 3 journals hold the ctime the run left
        // each such inode with; older ones only when the run ended.
        auto armed = j.armed_ctime.find({uint64_t(rec.dev_major) << 32 | rec.dev_minor, rec.ino});
        const bool untouched = j.version >= 3 ? armed != j.armed_ctime.end() && armed->second == now.ctime_ns
                                              : now.ctime_ns <= run_end_ns;
        if (!untouched && rearms(c)) {
          ts.r.notes.push_back({path_of(j, rec), config.force
              ? "changed after the run: set-id bits and capabilities put back anyway (--force)"
              : "changed after the run: set-id bits and capabilities not put back (--force puts them back)"});
          if (!config.force) disarm(c);
        }
        if (config.dry_run) {
          ++ts.r.restored;
          std::lock_guard lock(planned_mu);
          c.entry.reset();
          planned_all.push_back({path_of(j, rec), c});
          continue;
        }
        ts.batch.push_back(std::move(c));
      }
      if (ts.batch.empty() ? !ts.applier->poll(ts) : !ts.applier->apply(dirfd, dir, ts.batch, ts)) {
        std::lock_guard lock(stop_mu);
        if (stopped.empty()) stopped = ts.applier->error();
        stop = true;
      }
    }
  });

  RollbackResult out;
  for (auto& ts : states) {
    if (ts.applier && !ts.applier->flush(ts) && stopped.empty()) stopped = ts.applier->error();
    auto& r = ts.r;
    out.restored += r.restored;
    out.already += r.already;
    out.conflicts += r.conflicts;
    out.missing += r.missing;
    out.failed += r.failed;
    std::move(r.notes.begin(), r.notes.end(), std::back_inserter(out.notes));
    std::move(r.errors.begin(), r.errors.end(), std::back_inserter(out.errors));
  }
  out.planned = std::move(planned_all);
  tbb::parallel_sort(out.planned.begin(), out.planned.end(), [](auto& a, auto& b) { return a.path < b.path; });
  std::sort(out.notes.begin(), out.notes.end());
  std::sort(out.errors.begin(), out.errors.end());
  out.stopped = stopped;
  return out;
}

}  // namespace volprep
