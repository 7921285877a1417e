#include "volprep/rollback.h"

#include "volprep/acl.h"
#include "volprep/clock.h"
#include "volprep/concurrency.h"
#include "volprep/idmount.h"
#include "volprep/run_lock.h"
#include "volprep/walk.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/parallel_sort.h>
#include <tbb/task_arena.h>

namespace volprep {

RestoreFields classify_fields(const JournalRecord& rec, const EntryStat& now,
                              std::span<const std::optional<std::string>> xattrs_now) {
  constexpr uint32_t kSetId = S_ISUID | S_ISGID;
  RestoreFields f;
  auto owner_is = [&](uint32_t u, uint32_t g) { return now.uid == u && now.gid == g; };
  f.owner = owner_is(rec.uid_before, rec.gid_before) ? Restore::kAlready
            : owner_is(rec.uid_after, rec.gid_after) ? Restore::kRestore
                                                     : Restore::kChanged;
  // A symlink has no mode of its own. A chown clears setuid/setgid: a run (or a rollback)
  // killed between its chown and putting them back leaves the bits off.
  const uint32_t perms = now.mode & 07777, before = rec.mode_before & 07777, after = rec.mode_after & 07777;
  auto killed_chown = [&](uint32_t m) { return (m & kSetId) && perms == (m & ~kSetId); };
  if (!S_ISLNK(now.mode))
    f.mode = perms == before                                              ? Restore::kAlready
             : perms == after || killed_chown(after) || killed_chown(before) ? Restore::kRestore
                                                                           : Restore::kChanged;
  // Each xattr the run set (ACLs) as before, or as the run left it. Capabilities, which any
  // chown drops and the run put back (as they were, or translated by a shift), may be missing
  // after a kill between the chown and putting them back; whether they go back on is decided
  // later, on the file's ctime (a write drops them too).
  for (size_t k = 0; k < rec.xattrs.size(); ++k) {
    const auto& x = rec.xattrs[k];
    const auto& value = xattrs_now[k];
    const bool dropped_by_chown = !value && (x.before == x.after || x.name == kCapabilityXattr);
    f.xattrs.push_back(value == x.before                        ? Restore::kAlready
                       : value == x.after || dropped_by_chown ? Restore::kRestore
                                                                 : Restore::kChanged);
  }
  return f;
}

Restore RestoreFields::overall() const {
  Restore out = std::max(owner, mode);
  for (Restore x : xattrs) out = std::max(out, x);
  return out;
}

std::vector<std::string> RestoreFields::changed(const JournalRecord& rec) const {
  std::vector<std::string> out;
  if (owner == Restore::kChanged) out.push_back("owner");
  if (mode == Restore::kChanged) out.push_back("mode");
  for (size_t k = 0; k < xattrs.size(); ++k)
    if (xattrs[k] == Restore::kChanged) out.push_back(rec.xattrs[k].name);
  return out;
}

Change restore_change(const JournalRecord& rec, const EntryStat& now,
                      std::span<const std::optional<std::string>> xattrs_now, const RestoreFields& fields,
                      bool force) {
  auto due = [&](Restore r) { return r == Restore::kRestore || (force && r == Restore::kChanged); };
  Change c;
  c.before = now;
  const bool owner = due(fields.owner);
  c.uid = owner ? rec.uid_before : now.uid;
  c.gid = owner ? rec.gid_before : now.gid;
  c.mode = (due(fields.mode) ? rec.mode_before : now.mode) & 07777;
  // From what is there now to what was there before the run.
  for (size_t k = 0; k < rec.xattrs.size(); ++k) {
    const auto& x = rec.xattrs[k];
    const bool dropped_by_chown = x.name == kCapabilityXattr && c.changes_owner() && x.before;
    if (due(fields.xattrs[k]) || dropped_by_chown) c.xattrs.push_back({x.name, xattrs_now[k], x.before});
  }
  return c;
}

std::vector<std::string> acl_entries_kept_by_container(const std::string& raw, const JournalRecord& rec,
                                                       const IdMap& uids, const IdMap& gids) {
  auto given = [](const IdMap& map, uint32_t id, uint32_t after) {
    return map.empty() ? id == after : map.to_container(id).has_value();
  };
  const bool taken_back = (given(uids, rec.uid_after, rec.uid_after) && !given(uids, rec.uid_before, rec.uid_after)) ||
                          (given(gids, rec.gid_after, rec.gid_after) && !given(gids, rec.gid_before, rec.gid_after));
  if (!taken_back) return {};
  auto acl = Acl::parse(raw);
  if (!acl) return {"(unreadable)"};
  std::vector<std::string> out;
  for (const AclEntry& e : acl->entries)
    if ((e.tag == kAclUser && given(uids, e.id, rec.uid_after)) || (e.tag == kAclGroup && given(gids, e.id, rec.gid_after)))
      out.push_back(acl_entry_text(e));
  return out;
}

Result<std::vector<MovedDevice>> match_moved_devices(std::span<const DeviceAnchor> anchors,
                                                     const std::set<uint64_t>& journaled) {
  auto dev = [](uint32_t major, uint32_t minor) { return std::to_string(major) + ":" + std::to_string(minor); };
  auto refuse = [](std::string why) { return Error{kExitRefused, std::move(why) + "; refusing, nothing changed"}; };
  std::map<uint64_t, std::pair<uint64_t, const DeviceAnchor*>> now_of;  // journaled -> now, and who says so
  std::vector<MovedDevice> out;
  for (const DeviceAnchor& a : anchors) {
    if (!a.now) continue;
    const EntryStat& now = *a.now;
    const uint64_t from = device_key(a.dev_major, a.dev_minor), to = device_key(now.dev_major, now.dev_minor);
    const std::string was = a.path + " was device " + dev(a.dev_major, a.dev_minor) + " when the run journaled it, now " +
                            dev(now.dev_major, now.dev_minor);
    if (from != to) {
      if (now.ino != a.ino) continue;  // another directory there: locate_root says so
      const char* unknown = !a.btime_ns ? "the journal holds no birth time of it (a volprep older than journal "
                                          "format 6 wrote it and the run left the root as it was, or its filesystem "
                                          "kept none then)"
                            : !now.btime_ns ? "its filesystem keeps no birth time"
                                            : nullptr;
      if (unknown)
        return refuse(was + ", with the inode it had (" + std::to_string(a.ino) + "), but " + unknown +
                      ": whether it is the same filesystem remounted, or another one with that root inode, cannot "
                      "be told. Check that the filesystem there (findmnt, blkid) is the one the run changed; "
                      "mounted so that it is device " + dev(a.dev_major, a.dev_minor) +
                      " again, it is rolled back; `volprep journal show` lists what the run changed");
      if (now.btime_ns != a.btime_ns)
        return refuse(was + ": the inode number it had (" + std::to_string(a.ino) + "), but born at another time (" +
                      std::to_string(now.btime_ns) + " ns, the journal says " + std::to_string(a.btime_ns) +
                      "): another filesystem is mounted there, not the one the run changed");
    }
    auto [it, fresh] = now_of.try_emplace(from, to, &a);
    if (!fresh && it->second.first != to)
      return refuse("device " + dev(a.dev_major, a.dev_minor) + " of the journal is two devices now: " +
                    it->second.second->path + " is on " + dev(uint32_t(it->second.first >> 32), uint32_t(it->second.first)) +
                    ", " + a.path + " on " + dev(now.dev_major, now.dev_minor));
    if (fresh && from != to) out.push_back({a.path, a.dev_major, a.dev_minor, now.dev_major, now.dev_minor});
  }
  // One device now is one journaled device: a moved one must not land on another's number.
  std::map<uint64_t, uint64_t> journaled_as;  // now -> journaled
  std::set<uint64_t> all = journaled;
  for (auto& [from, to] : now_of) all.insert(from);
  for (uint64_t from : all) {
    auto moved = now_of.find(from);
    const uint64_t to = moved == now_of.end() ? from : moved->second.first;
    auto [it, fresh] = journaled_as.try_emplace(to, from);
    if (!fresh)
      return refuse("devices " + dev(uint32_t(it->second >> 32), uint32_t(it->second)) + " and " +
                    dev(uint32_t(from >> 32), uint32_t(from)) + " of the journal would both be device " +
                    dev(uint32_t(to >> 32), uint32_t(to)) + " now (a remount gave one the other's number)");
  }
  return out;
}

Result<std::vector<MovedDevice>> find_moved_devices(const Journal& j) {
  std::vector<DeviceAnchor> anchors;
  for (size_t i = 0; i < j.roots.size(); ++i) {
    const JournalRoot& r = j.roots[i];
    DeviceAnchor& a = anchors.emplace_back();
    a = {r.volume, r.dev_major, r.dev_minor, r.ino, i < j.root_btime.size() ? j.root_btime[i] : 0, std::nullopt};
    UniqueFd fd(open_absolute(r.volume, O_PATH));
    // Nothing asked of a FUSE server a user runs (open_journal_root refuses it).
    if (!fd.valid()) continue;
    if (auto user = fuse_user_of(cached_mount_id(fd.get())); user && *user != 0) continue;
    EntryStat st;
    if (stat_at(fd.get(), "", st) == 0) a.now = st;
  }
  return match_moved_devices(anchors, j.devices);
}

DeviceMoves device_moves(std::span<const MovedDevice> moved) {
  DeviceMoves out;
  for (const auto& m : moved) out[device_key(m.from_major, m.from_minor)] = device_key(m.to_major, m.to_minor);
  return out;
}

JournalHeader rollback_header(const Journal& j, const std::string& command_line) {
  JournalHeader h = j.header;
  h.volprep_version = VOLPREP_VERSION;
  h.command_line = command_line;
  h.command = "rollback";
  h.reverse = false;
  h.btime_ns = j.root_btime.empty() ? 0 : j.root_btime[0];  // also where only the root's record held it
  h.start_ns = now_ns();
  auto slash = j.path.rfind('/');
  h.rollback_of = slash == std::string::npos ? j.path : j.path.substr(slash + 1);
  return h;
}

namespace {

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

// The records of one directory, read from the journal; a chunk of them is one pipeline token.
struct Run {
  std::string dir;  // relative to the root
  std::vector<JournalRecord> records;
};
using Chunk = std::vector<Run>;

// One root's records, from one segment of the journal.
struct Segment {
  const Journal& journal;
  const RollbackConfig& config;
  int root_fd = -1;
  bool single_file = false;
  std::string single_name;  // a single-file volume: its name in root_fd
  // The host ids the run gave a container (empty: the record's owner after the run), and
  // whether the root's filesystem lists every xattr it holds (get_xattrs_at).
  const IdMap* uids = nullptr;
  const IdMap* gids = nullptr;
  bool xattrs_listed = false;
};

// One worker thread's state: counts and notes (paths relative to the segment's root), and
// what its applier restored or would restore.
struct RestoreState final : ChangeSink {
  RollbackResult r;
  std::vector<RecordedChange> entries;  // the dry-run applier records here too
  bool keep_restored = false;
  std::unique_ptr<Applier> applier;
  std::vector<Change> batch;
  // Directories opened lately, each below the root without a symlink: the next one is opened
  // relative to its nearest cached ancestor, so a deep tree is not resolved from the root each
  // time. Emptied between segments (another root).
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
      r.errors.push_back({join_path(dir_path, c.name), failure_text(c)});
    } else {
      ++r.restored;
      if (keep_restored) entries.push_back({join_path(dir_path, c.name), c});
    }
  }

  // The ACLs of the pinned entry `fd` that the record does not hold, each with the entries
  // the container keeps by it: "system.posix_acl_default naming u:501000:rwx, not set by the
  // run".
  static std::vector<std::string> acls_kept(const Segment& seg, const JournalRecord& rec, int fd) {
    static constexpr const char* kAcls[] = {kAclAccessXattr, kAclDefaultXattr};
    std::optional<std::string> values[2];
    int rcs[2];
    get_xattrs_at(fd, "", kAcls, seg.xattrs_listed, values, rcs);
    std::vector<std::string> out;
    for (size_t k = 0; k < 2; ++k) {
      if (!values[k] || std::any_of(rec.xattrs.begin(), rec.xattrs.end(), [&](auto& x) { return x.name == kAcls[k]; }))
        continue;
      std::string named;
      for (const auto& e : acl_entries_kept_by_container(*values[k], rec, *seg.uids, *seg.gids))
        named += (named.empty() ? "" : " ") + e;
      if (!named.empty()) out.push_back(std::string(kAcls[k]) + " naming " + named + ", not set by the run");
    }
    return out;
  }

  // Decides each recorded entry of `run` and hands what to restore to the applier. False:
  // the applier says the rollback must stop.
  bool restore(const Segment& seg, const Run& run) {
    const auto& config = seg.config;
    const Journal& j = seg.journal;
    // Journals before version 3: no change the run made is later than their last write.
    const int64_t run_end_ns = j.last_written_ns;
    const std::string& dir = run.dir;
    auto note = [&](const JournalRecord& rec, std::string text) {
      r.notes.push_back({join_path(dir, rec.name), std::move(text)});
    };
    // A single-file volume's records are all in its parent, the root here: any other
    // directory is outside the volume and never opened.
    SharedFd dirfd = seg.single_file && !dir.empty() ? nullptr : open_dir(seg.root_fd, dir, config.cross_filesystems);
    batch.clear();
    for (const JournalRecord& rec : run.records) {
      const std::string& name = rec.name;
      if (seg.single_file && (!dir.empty() || name != seg.single_name)) {
        ++r.missing;
        note(rec, "not the journal's single-file volume: left alone");
        continue;
      }
      if (!dirfd) {
        ++r.missing;
        note(rec, "its directory is gone, or reached through a symlink or a mount now: left alone");
        continue;
      }
      // Pinned: what is read below and what is restored are this one inode, checked to be
      // the one the run changed, whatever happens to the name meanwhile.
      int fd = open_entry(dirfd->get(), name.c_str(), config.cross_filesystems);
      EntryStat now;
      int rc = fd < 0 ? fd : stat_at(fd, "", now);
      SharedFd pin = fd < 0 ? nullptr : std::make_shared<const UniqueFd>(fd);
      if (rc < 0) {
        ++r.missing;
        note(rec, rc == -EXDEV ? "a mount point now: left alone (--cross-filesystems enters it)"
                               : std::string("gone: ") + std::strerror(-rc));
        continue;
      }
      // The same inode number is not the same file once it was freed and reused (ext4 does
      // at once): its birth time tells, where the journal and the filesystem have one.
      if (now.ino != rec.ino || now.dev_major != rec.dev_major || now.dev_minor != rec.dev_minor ||
          (now.mode & S_IFMT) != (rec.mode_before & S_IFMT) ||
          (rec.btime_ns && now.btime_ns && now.btime_ns != rec.btime_ns)) {
        ++r.missing;
        note(rec, "another file has this name now: left alone");
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
      const RestoreFields fields = classify_fields(rec, now, xnow);
      // An ACL the container gave itself (acl_entries_kept_by_container) on an entry taken
      // back from it: a change since the run, which no field of the record shows.
      std::vector<std::string> kept_acls;
      // Read only for an inode changed since the run's last journal write (an ACL set moves
      // the ctime; the coarse clock may give both one tick): one listxattr an entry cost a
      // rollback of the kernel tree a quarter of its time. One set while the run went on is
      // not seen.
      if (fields.owner != Restore::kAlready && !link && now.ctime_ns >= run_end_ns)
        kept_acls = acls_kept(seg, rec, pin->get());
      const Restore verdict = kept_acls.empty() ? fields.overall() : Restore::kChanged;
      if (verdict == Restore::kAlready) {
        ++r.already;
        continue;
      }
      if (verdict == Restore::kChanged) {
        std::string which;
        for (const auto& f : fields.changed(rec)) which += (which.empty() ? "" : ", ") + f;
        for (const auto& a : kept_acls) which += (which.empty() ? "" : ", ") + a;
        note(rec, "changed since the run (" + which + "): now " + ids_text(now.uid, now.gid, now.mode, link) +
                      ", the run left " + ids_text(rec.uid_after, rec.gid_after, rec.mode_after, link) +
                      (!config.force           ? "; left alone (--force restores it)"
                       : kept_acls.empty() ? "; restored anyway (--force)"
                                           : "; restored anyway (--force): the ACL stays"));
        if (!config.force) {
          ++r.conflicts;
          continue;
        }
      }
      Change c = restore_change(rec, now, xnow, fields, config.force);
      c.name = name;
      c.entry = std::move(pin);
      // Set-id bits and capabilities are trusted for the content they were on. An inode
      // changed since volprep left it (its content rewritten, say: the container owned it)
      // does not get them back unless asked. Version 3 journals hold the ctime the run left
      // each such inode with; older ones only when the run ended.
      auto armed = j.armed_ctime.find({uint64_t(rec.dev_major) << 32 | rec.dev_minor, rec.ino});
      const bool untouched = j.version >= 3 ? armed != j.armed_ctime.end() && armed->second == now.ctime_ns
                                            : now.ctime_ns <= run_end_ns;
      if (untouched && rearms(c)) c.rearm_if_ctime_ns = now.ctime_ns;  // checked again while held
      if (!untouched && rearms(c)) {
        // A run killed between its chown (which cleared them) and the record of putting them
        // back leaves the inode looking the same: say both.
        const char* why = j.end || armed != j.armed_ctime.end()
                              ? "changed after the run"
                              : "changed after the run, or the run stopped between its chown and putting them back";
        note(rec, std::string(why) + (config.force ? ": set-id bits and capabilities put back anyway (--force)"
                                                   : ": set-id bits and capabilities not put back (--force puts "
                                                     "them back)"));
        if (!config.force) disarm(c);
      }
      batch.push_back(std::move(c));
    }
    return batch.empty() ? applier->poll(*this) : applier->apply(dirfd, dir, batch, *this);
  }
};

// Streams one root's records in [seg.begin, seg.end) through a pipeline: one thread reads
// runs of records, the others restore them, a bounded number of chunks in flight.
void restore_root(JournalReader& reader, const JournalSegment& js, const Segment& seg,
                  tbb::enumerable_thread_specific<RestoreState>& states, std::atomic<bool>& stop,
                  std::string& stopped, std::mutex& stop_mu, bool latency_bound) {
  auto halt = [&](const std::string& why) {
    std::lock_guard lock(stop_mu);
    if (stopped.empty()) stopped = why;
    stop = true;
  };
  reader.restart(js.begin, js.end, js.root);
  JournalItem item;
  uint64_t last_seq = 0;
  // A chunk ends after this many records, directories or bytes of paths: a journal repeating
  // a long path in a few bytes a record must not fill memory. Where every call waits on a
  // server, small chunks keep all the threads' requests in flight (as the walk's chunks do).
  constexpr size_t kChunkRuns = 32, kChunkBytes = 1 << 20;
  const size_t kChunkRecords = latency_bound ? WalkOptions::kLatencyBoundChunkEntries : 512;
  const size_t tokens = 4 * size_t(std::max(1, tbb::this_task_arena::max_concurrency()));
  tbb::parallel_pipeline(
      tokens,
      tbb::make_filter<void, std::shared_ptr<Chunk>>(
          tbb::filter_mode::serial_in_order,
          [&](tbb::flow_control& fc) -> std::shared_ptr<Chunk> {
            auto chunk = std::make_shared<Chunk>();
            size_t records = 0, bytes = 0;
            while (!stop.load(std::memory_order_relaxed) && records < kChunkRecords && chunk->size() < kChunkRuns &&
                   bytes < kChunkBytes) {
              auto more = reader.next(item);
              if (!more) {
                halt(more.error().message);
                break;
              }
              if (!*more) break;
              if (item.kind != 'C') continue;
              if (chunk->empty() || item.dir_seq != last_seq) {
                chunk->push_back({std::string(item.dir), {}});
                bytes += item.dir.size();
                last_seq = item.dir_seq;
              }
              bytes += item.change.name.size();
              chunk->back().records.push_back(std::move(item.change));
              ++records;
            }
            if (chunk->empty()) fc.stop();
            return chunk;
          }) &
          tbb::make_filter<std::shared_ptr<Chunk>, void>(
              tbb::filter_mode::parallel, [&](const std::shared_ptr<Chunk>& chunk) {
                RestoreState& ts = states.local();
                if (!ts.applier) {
                  const auto& config = seg.config;
                  ts.keep_restored = config.keep_restored && !config.dry_run;
                  ts.applier = config.dry_run   ? make_dry_run_applier(ts.entries)
                               : config.journal ? make_journaling_applier(*config.journal, kMaxRecordPath)
                                                : make_real_applier();
                }
                for (const Run& run : *chunk) {
                  if (stop.load(std::memory_order_relaxed)) return;
                  if (!ts.restore(seg, run)) halt(ts.applier->error());
                }
              }));
  if (!stop && (reader.offset() != js.end || reader.torn_at()))
    halt("journal " + seg.journal.path + " changed while it was rolled back (offset " +
         std::to_string(reader.offset()) + ")");
}

}  // namespace

Result<RollbackResult> rollback(const Journal& j, const RollbackConfig& config) {
  if (j.changes && j.segments.empty())  // read with JournalRead::kList
    return config_error("journal " + j.path + " was not read whole; rollback needs every record verified");
  if (auto ok = check_journal_roots(j); !ok) return ok.error();
  auto reader = JournalReader::open(j.path);
  if (!reader) return reader.error();
  reader->translate_devices(j.moved_devices);  // as translate_devices gave `j` them
  tbb::enumerable_thread_specific<RestoreState> states;
  std::mutex stop_mu;
  std::atomic<bool> stop{false};
  RollbackResult out;
  JournalRoot own_root = j.roots[0];  // the root the rollback's own journal is at
  // The ids the run gave a container; an identity map (remap off) gives none of its own.
  auto map_of = [](const std::string& text) {
    auto m = IdMap::parse_proc(text, "the journal's map");
    return m && !m->is_identity() ? *m : IdMap();
  };
  const IdMap uids = map_of(j.header.uid_map), gids = map_of(j.header.gid_map);
  // Gathers what the threads did below one root, shown below it.
  auto collect = [&](const JournalRoot& root, bool single_file) {
    for (auto& ts : states) {
      if (ts.applier && !ts.applier->flush(ts)) {
        std::lock_guard lock(stop_mu);
        if (out.stopped.empty()) out.stopped = ts.applier->error();
      }
      auto& r = ts.r;
      out.restored += std::exchange(r.restored, 0);
      out.already += std::exchange(r.already, 0);
      out.conflicts += std::exchange(r.conflicts, 0);
      out.missing += std::exchange(r.missing, 0);
      out.failed += std::exchange(r.failed, 0);
      for (auto* notes : {&r.notes, &r.errors})
        for (auto& n : *notes) n.path = journal_path(root, single_file, n.path);
      std::move(r.notes.begin(), r.notes.end(), std::back_inserter(out.notes));
      std::move(r.errors.begin(), r.errors.end(), std::back_inserter(out.errors));
      r.notes.clear();
      r.errors.clear();
      for (auto& e : ts.entries) e.path = journal_path(root, single_file, e.path);
      std::move(ts.entries.begin(), ts.entries.end(), std::back_inserter(out.entries));
      ts.entries.clear();
      ts.open_dirs.clear();
    }
  };
  // One run per tree: every root of the journal locked before anything of any is restored, and
  // nothing restored while another run changes one of them (that run's own journal, or any
  // other), or a tree one is in or holds; no run starts on them while this one restores them.
  // A root not found here is said when its turn comes, as before.
  if (!config.lock_dir.empty()) {
    std::vector<FoundRoot> found;
    std::vector<HeldDir> back_to;  // where renames are undone into: locked shared
    std::vector<LockedTree> trees;
    std::set<size_t> seen;
    for (const JournalSegment& seg : j.segments) {
      if (seg.move) {
        if (auto h = dir_to_lock_shared(j.moves[*seg.move].from_dir)) {
          trees.push_back(h->tree);
          back_to.push_back(std::move(*h));
        }
        continue;
      }
      if (!seen.insert(seg.root).second) continue;
      auto root = locate_root(j, size_t(&seg - j.segments.data()));
      if (!root) continue;
      LockedTree t{root->fd.get(), root->single_file, {}, root->root.volume};
      const std::string name = root->single_file ? root->root.volume.substr(root->root.volume.rfind('/') + 1) : "";
      if (stat_at(root->fd.get(), name.c_str(), t.st) < 0) continue;
      found.push_back(std::move(*root));
      trees.push_back(std::move(t));
    }
    if (config.dry_run) {
      if (const int busy = tree_locked_elsewhere(config.lock_dir, trees); busy >= 0)
        out.notes.push_back({trees[busy].shown, tree_locked_message("it") + " (this is what would be restored now)"});
    } else if (auto locked = lock_trees(config.lock_dir, trees, config.lock_waiting); !locked) {
      if (locked.error().code != kExitConfig) return locked.error();
      out.notes.push_back({j.roots.empty() ? "" : j.roots[0].volume,
                           locked.error().message + ": another volprep run on the same trees would not be refused"});
    }
  }
  // Newest first: a rename is undone after the records written after it, and before those
  // written before it.
  for (size_t s = j.segments.size(); s-- > 0 && !stop && out.stopped.empty();) {
    const JournalSegment& seg = j.segments[s];
    if (seg.move) {
      undo_move(j.moves[*seg.move], config, out);
      continue;
    }
    auto root = locate_root(j, s);
    if (!root) return root.error();
    // Nothing on a read-only mount can change: refused, not an EROFS failure for each entry.
    // After other roots (or renames) of the journal were undone, a stop: what was restored is
    // reported, and a rollback again once it is read-write finishes it.
    if (!config.dry_run && on_read_only_mount(root->fd.get())) {
      const std::string why =
          root->root.volume + " is on a read-only mount, where nothing can change (mount -o remount,rw first)";
      if (!out.restored && out.moves.empty()) return Error{kExitRefused, why + "; nothing restored"};
      out.stopped = why + "; what is listed above is restored, and a rollback again once it is read-write restores "
                          "the rest";
      break;
    }
    if (config.journal && !(root->root == own_root)) {  // the rollback's own records, below this root
      // Its birth time as the journal undone gives it: the root found is that one (its device
      // and inode, and after a remount its birth time too).
      if (auto r = config.journal->start_root(root->root, j.root_btime[seg.root]); !r) return r.error();
      own_root = root->root;
    }
    Segment one{j, config, root->fd.get(), root->single_file, {}, &uids, &gids, is_local_fs(fs_type(root->fd.get()))};
    if (root->single_file) one.single_name = root->root.volume.substr(root->root.volume.rfind('/') + 1);
    // As many requests in flight as the root's filesystem wants (or --threads).
    const Concurrency concurrency = choose_concurrency_for(root->fd.get(), config.threads);
    out.concurrency.emplace_back(root->root.volume, concurrency.describe());
    RunArena arena(concurrency.threads);
    arena.execute(
        [&] { restore_root(*reader, seg, one, states, stop, out.stopped, stop_mu, concurrency.latency_bound); });
    collect(root->root, root->single_file);
  }
  tbb::parallel_sort(out.entries.begin(), out.entries.end(), [](auto& a, auto& b) { return a.path < b.path; });
  std::sort(out.notes.begin(), out.notes.end());
  std::sort(out.errors.begin(), out.errors.end());
  return out;
}

}  // namespace volprep
