// `volprep shift`: keep who owns what when remapping is turned on (or, --reverse, off) over
// existing data. The pipeline: resolve the map, open and vet every PATH, read back an
// earlier shift left unfinished (to finish it), refuse what a census of every tree says would
// go wrong (a tree shifted already, ids the map cannot translate), then hand the jobs to the
// driver core (driver.h) with the shift policy, each inode changed once.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"
#include "volprep/clock.h"
#include "volprep/driver.h"
#include "volprep/rollback.h"
#include "volprep/shift.h"
#include "volprep/shift_history.h"

namespace volprep {

void setup_shift(CLI::App& app, ShiftOptions& o) {
  app.add_option("path", o.paths, "Volume directories (or single files) to shift")->required();
  app.add_flag("--reverse", o.reverse,
               "Remapping is being turned off: translate host ids back to the container ids they stand for, "
               "through the map the options give, else (remapping off, no map named) the one the PATH's "
               "forward shift recorded in its journal");
  add_unmapped_option(app, o.unmapped);
  app.add_flag("--keep-setid", o.keep_setid,
               "With --reverse: keep set-id bits and file capabilities on files that become root's "
               "(dropped by default: container root made them)");
  add_tree_options(app, o.excludes, o.run, "A dry run that exits 1 when anything would change (0 for a tree shifted already, "
                   "counted unchanged in its summary)", o.cross_filesystems,
                   o.allow_system_path, o.follow_path_symlinks);
  app.add_flag("--force", o.force,
               "Shift a tree that reads as shifted already (--reverse: shifted back), by its ids or by a "
               "shift the same way its journals record and nothing undid (a second shift)");
  setup_source_options(app, o.source);
}

namespace {

bool finished(const Journal& j) { return j.end && !j.end->failed; }

// The records of the unfinished shifts of `v` (oldest first), when each ran the way this one
// does (the same map, the same direction); else the reason it cannot finish them.
Result<bool> load_unfinished(const std::vector<Journal>& unfinished, const ShiftSpec& spec, const VolumeRoot& v,
                             const std::string& journal_dir, ResumedShift& into) {
  for (const Journal& summary : unfinished) {
    const JournalHeader& h = summary.header;
    if (h.uid_map != spec.uid_map.to_proc() || h.gid_map != spec.gid_map.to_proc() ||
        is_reverse_run(h) != spec.reverse)
      return Error{kExitRefused,
                   v.given + ": an earlier shift of it did not finish (journal " + summary.path + "), and it ran " +
                       "through another map or the other way (" + h.command_line + "): rerun it as it was to finish " +
                       "it, or undo it with `volprep rollback " + summary.path + "`; nothing changed"};
    auto j = read_journal(summary.path);
    if (!j) return unreadable_unfinished_shift(v.given, summary.path, h, j.error().message, journal_dir);
    translate_devices(*j, summary.moved_devices);  // a remount's, as take_remounted found them
    for (const JournalRecord& r : j->records)
      if (r.root == 0) into.add(r);
  }
  return true;
}

// A finished run that resumed unfinished shifts and changed nothing wrote no journal: an
// empty finished one says they are settled, or the next shift would finish them again.
void settle(const DriverOptions& run, const VolumeRoot& v, const std::string& command_line, const Mapping& mapping,
            int64_t started) {
  std::vector<std::string> unreadable;
  for (const Journal& j : read_journal_dir(run.journal_dir, unreadable, JournalRead::kList))
    if (j.header.start_ns >= started && j.header.volume == v.real && j.header.ino == v.st.ino && finished(j)) return;
  JournalHeader h;
  h.volprep_version = VOLPREP_VERSION;
  h.volume = v.real;
  h.dev_major = v.st.dev_major;
  h.dev_minor = v.st.dev_minor;
  h.ino = v.st.ino;
  h.btime_ns = v.st.btime_ns;
  h.uid_map = mapping.uid_map.to_proc();
  h.gid_map = mapping.gid_map.to_proc();
  h.command_line = command_line;
  h.command = run.header.command;
  h.reverse = run.header.reverse;
  h.start_ns = now_ns();
  auto w = JournalWriter::create(run.journal_dir, "", h);
  Result<bool> done = w ? (*w)->finish(JournalEnd{0, 0, 0, now_ns(), 0}) : Result<bool>(w.error());
  if (!done) spdlog::warn("{}: cannot journal that the unfinished shift is finished: {}", v.given, done.error().message);
}

// The journals of `v` made before its filesystem was remounted on another device number
// (btrfs, NFS and FUSE get one at mount time; loop and device-mapper minors go in activation
// order): taken as rollback takes them (find_moved_devices: the root's inode and birth time),
// their devices given as they are now. One of its path and inode that cannot be told so and
// did not finish refuses: it may have shifted part of the tree, which a shift now would shift
// again.
Result<bool> take_remounted(std::vector<Journal>& journals, const VolumeRoot& v) {
  for (Journal& j : journals) {
    const JournalRoot r = root_of(j.header);
    if (r.volume != v.real || r.ino != v.st.ino || (r.dev_major == v.st.dev_major && r.dev_minor == v.st.dev_minor))
      continue;
    auto summary = read_journal(j.path, JournalRead::kSummary);
    auto moved = summary ? find_moved_devices(*summary) : Result<std::vector<MovedDevice>>(summary.error());
    const bool ours = moved && std::any_of(moved->begin(), moved->end(), [&](const MovedDevice& m) {
      return m.from_major == r.dev_major && m.from_minor == r.dev_minor && m.to_major == v.st.dev_major &&
             m.to_minor == v.st.dev_minor;
    });
    if (ours) {
      translate_devices(j, device_moves(*moved));
    } else if (!finished(j) && is_run_of(j.header, "shift")) {
      return Error{kExitRefused,
                   v.given + ": an earlier shift of it did not finish (journal " + j.path + "), on device " +
                       std::to_string(r.dev_major) + ":" + std::to_string(r.dev_minor) + ", and it is not known to " +
                       "be this filesystem remounted (" + (moved ? std::string("its root's birth time does not say") : moved.error().message) +
                       "); nothing changed. Roll it back (`volprep rollback " + j.path + "`) or move it out of the " +
                       "journal directory once you know it is no shift of this tree"};
    }
  }
  return true;
}

// What the journal directory says of each tree's shifts, in the order of `volumes`.
Result<std::vector<ShiftHistory>> read_histories(const std::vector<VolumeRoot>& volumes, const std::string& journal_dir) {
  std::vector<UnreadJournal> unread;
  std::vector<Journal> journals = read_journal_dir(journal_dir, unread, JournalRead::kList);
  for (const UnreadJournal& u : unread)
    if (u.headerless) spdlog::warn("{}; ignored: it holds no record of a change", u.reason);
  std::vector<ShiftHistory> out;
  for (const auto& v : volumes) {
    if (auto r = take_remounted(journals, v); !r) return r.error();
    auto h = shift_history(journals, unread, {v.real, v.st.dev_major, v.st.dev_minor, v.st.ino}, v.given, journal_dir);
    if (!h) return h.error();
    out.push_back(std::move(*h));
  }
  return out;
}

// The map of the way back put into `mapping`, with where it came from (choose_reverse_map).
Result<bool> take_reverse_map(Mapping& mapping, bool named, const std::vector<VolumeRoot>& volumes,
                              const std::vector<ShiftHistory>& histories, const std::string& journal_dir) {
  std::vector<ForwardShift> forwards;
  for (size_t i = 0; i < volumes.size(); ++i)
    forwards.push_back({volumes[i].given, histories[i].forward ? &*histories[i].forward : nullptr});
  auto chosen = choose_reverse_map(mapping, named, forwards, journal_dir);
  if (!chosen) return chosen.error();
  for (const auto& w : chosen->warnings) spdlog::warn("{}", w);
  mapping.uid_map = chosen->uid_map;
  mapping.gid_map = chosen->gid_map;
  mapping.source = chosen->source;
  return true;
}

}  // namespace

Result<Mapping> options_mapping(SourceOptions& source) {
  auto host = open_host_db(source);
  auto mapping = resolve_mapping(source.remap, *host);
  if (!mapping) return mapping.error();
  if (mapping->has_errors()) {
    log_findings(mapping->findings);
    return config_error("the remap configuration has errors; refusing to shift through it");
  }
  log_findings(mapping->findings);
  return mapping;
}

bool names_map(const RemapOptions& r) {
  return !r.maps.empty() || !r.uid_maps.empty() || !r.gid_maps.empty() || r.pid || r.rootless_user ||
         r.podman_rootless_user || r.userns_remap;
}

// The map, as a shift needs it: active (or, --reverse, the one that was), without errors.
Result<Mapping> shift_mapping(SourceOptions& source, bool reverse) {
  auto mapping = options_mapping(source);
  if (!mapping) return mapping.error();
  // Docker's own source says "remapping is off" already.
  const std::string off = mapping->source.ends_with("remapping is off") ? "" : ": remapping is off";
  if (!shifts_ids(*mapping))
    return config_error(mapping->source + off + ", so container ids are host ids and there is nothing to " +
                        (reverse ? "shift back: name the map that was in use" : "shift: name the map containers will get") +
                        " (--userns-remap default, --map 0:500000:65536, ...)");
  return mapping;
}

Result<ShiftSpec> shift_spec(const Mapping& mapping, bool reverse, const std::string& unmapped) {
  ShiftSpec spec;
  spec.uid_map = mapping.uid_map;
  spec.gid_map = mapping.gid_map;
  spec.reverse = reverse;
  spec.unmapped = unmapped == "skip" ? Unmapped::kSkip : unmapped == "nobody" ? Unmapped::kNobody : Unmapped::kRefuse;
  if (spec.unmapped == Unmapped::kNobody && !spec.reverse) {
    auto uid = spec.uid_map.to_host(65534), gid = spec.gid_map.to_host(65534);
    if (!uid || !gid)
      return config_error("--unmapped=nobody: the map (" + spec.uid_map.describe() + ") from " + mapping.source +
                               " gives container id 65534 no host id");
    spec.nobody_uid = *uid;
    spec.nobody_gid = *gid;
  }
  return spec;
}

// The verdicts of the census, in order: a nested volume, a tree shifted already, ids the map
// cannot translate. kExitOk, or the exit status with the reason logged.
int judge_census(const VolumeRoot& v, const Census& c, const ShiftSpec& spec, bool force, bool check, bool& shifted) {
  for (const auto& e : c.errors) spdlog::warn("{}: {} (not examined before the run)", v.show(e.path), e.text);
  if (!c.nested.empty()) {
    spdlog::error("{} holds {}, another PATH of this command: it would be shifted twice; nothing changed",
                  v.given, v.show(c.nested));
    return kExitUsage;
  }
  if (c.shifted_already(spec.reverse) && !force) {
    shifted = true;
    const IdMap& map = spec.uid_map;
    std::string why = spec.reverse ? "none of its " + std::to_string(c.ids) + " ids lies in the map's host range"
                                   : "all of its " + std::to_string(c.ids) + " ids lie in the map's host range";
    if (check) {
      spdlog::info("{}: already {}: {} ({})", v.given, spec.reverse ? "shifted back" : "shifted", why, map.describe());
      return kExitOk;
    }
    spdlog::error("{}: already {}: {} ({}); nothing changed (--force shifts it again)", v.given,
                  spec.reverse ? "shifted back" : "shifted", why, map.describe());
    return kExitFound;
  }
  if (spec.unmapped == Unmapped::kRefuse && !c.unmapped.empty()) {
    for (const UnmappedId& u : c.unmapped) {
      std::string samples;
      for (const auto& p : u.samples) samples += (samples.empty() ? "" : ", ") + v.show(p);
      spdlog::error("{}: {} {}: {} time{} ({}{})", v.given, u.gid ? "gid" : "uid", u.id, u.count, u.count == 1 ? "" : "s",
                    samples, u.count > u.samples.size() ? ", ..." : "");
    }
    spdlog::error("{}: {} id{} the map cannot {} ({}; {}); nothing changed. --unmapped=skip leaves them as "
                  "they are, --unmapped=nobody gives them the id the container sees as 65534",
                  v.given, c.unmapped.size(), c.unmapped.size() == 1 ? "" : "s",
                  spec.reverse ? "translate back" : "translate", spec.uid_map.describe(),
                  spec.reverse ? "a host id outside the range" : "a container id past the range");
    return kExitConfig;
  }
  return kExitOk;
}

// A tree the journals say a standing shift shifted (finished, neither rolled back nor shifted
// the other way since) is shifted already, whatever its ids say: a file made since reads as
// unshifted, and where the map's host range lies in its container range, or with
// --unmapped=nobody, a second shift would take every shifted id again. kExitOk, or the exit
// status with the reason logged (--check: kExitOk, `shifted` set).
int judge_history(const VolumeRoot& v, const ShiftHistory& history, bool reverse, bool check, bool& shifted) {
  const std::optional<Journal>& last = reverse ? history.back : history.forward;
  if (!last || (!reverse && history.back && history.back->header.start_ns > last->header.start_ns)) return kExitOk;
  const JournalHeader& h = last->header;
  shifted = true;
  auto map = IdMap::parse_proc(h.uid_map, last->path);
  const char* done = reverse ? "already shifted back" : "already shifted";
  std::string why = std::string(reverse ? "its shift back" : "its shift") + " of " + format_utc(h.start_ns) +
                    " (journal " + last->path + ", uid map " + (map ? map->describe() : h.uid_map) +
                    ") stands: neither a rollback nor a shift the other way undid it";
  if (check) {
    spdlog::info("{}: {}: {}", v.given, done, why);
    return kExitOk;
  }
  spdlog::error("{}: {}: {}; nothing changed (--force shifts it again)", v.given, done, why);
  return kExitFound;
}

int run_shift(const ShiftOptions& options) {
  ShiftOptions o = options;
  if (o.keep_setid && !o.reverse) {
    spdlog::error("--keep-setid goes with --reverse");
    return kExitUsage;
  }

  // 1. The map of the options. The way back with remapping off and no map named waits for
  // the forward shift's journal (3).
  const bool from_journal = o.reverse && !names_map(o.source.remap);
  auto mapping = from_journal ? options_mapping(o.source) : shift_mapping(o.source, o.reverse);
  if (!mapping) return fail(mapping.error());

  warn_if_cannot_chown(o.run);
  // 2. Every PATH opened and vetted before anything changes, each tree given once.
  auto opened = open_tree_volumes(o.paths, *mapping, o.allow_system_path, o.follow_path_symlinks, "shifting");
  if (!opened) return fail(opened.error());
  auto& volumes = *opened;
  if (auto r = refuse_twice(volumes, o.cross_filesystems, "shifted"); !r) return fail(r.error());
  // Locked before its journals are read: a shift still going on a tree is not one that did
  // not finish, to finish by shifting again what it shifts after this one looked.
  std::vector<VolumeRoot*> trees;
  for (auto& v : volumes) trees.push_back(&v);
  if (int rc = lock_volumes(trees, o.run, {o.cross_filesystems, {}}); rc != kExitOk) return rc;

  // 3. What the journals say of each tree's shifts: one unfinished (to finish), the forward
  // one (whose map the way back takes); one that cannot be read far enough refuses.
  auto histories = read_histories(volumes, o.run.journal_dir);
  if (!histories) return fail(histories.error());
  if (o.reverse)
    if (auto r = take_reverse_map(*mapping, !from_journal, volumes, *histories, o.run.journal_dir); !r)
      return fail(r.error());

  // 4. What the shift does with the map.
  auto made = shift_spec(*mapping, o.reverse, o.unmapped);
  if (!made) return fail(made.error());
  ShiftSpec spec = *made;
  spec.keep_setid = o.keep_setid;
  // The way back says where its map came from, the remap setting being gone or going.
  spdlog::log(o.reverse && !o.quiet ? spdlog::level::warn : spdlog::level::info,
              "{} through uid map {} and gid map {} (map from {})", o.reverse ? "shifting back" : "shifting",
              spec.uid_map.describe(), spec.gid_map.describe(), mapping->source);

  // 5. An earlier shift left unfinished: which of its entries it shifted is in its journals,
  // read to finish it.
  auto resumed = std::make_shared<ResumedShift>();
  std::vector<const VolumeRoot*> resuming;
  for (size_t i = 0; i < volumes.size(); ++i) {
    const VolumeRoot& v = volumes[i];
    const auto& unfinished = (*histories)[i].unfinished;
    if (unfinished.empty()) continue;
    if (auto loaded = load_unfinished(unfinished, spec, v, o.run.journal_dir, *resumed); !loaded) return fail(loaded.error());
    for (const Journal& j : unfinished)
      spdlog::warn("{}: finishing the shift that did not finish (journal {}, {} change{} recorded)", v.given, j.path,
                   j.changes, j.changes == 1 ? "" : "s");
    resuming.push_back(&v);
  }

  // 6. The census of every tree, before the first change: the verdicts that refuse it.
  const bool need_census = !o.force || spec.unmapped == Unmapped::kRefuse;
  // Every tree's census first: a PATH inside another (a usage error) is said before what the
  // census of either says of its ids.
  std::vector<Census> censuses;
  for (size_t i = 0; need_census && i < volumes.size(); ++i) {
    const VolumeRoot& v = volumes[i];
    CensusOptions census;
    census.cross_filesystems = o.cross_filesystems;
    census.threads = o.run.threads;
    census.excludes = o.excludes;
    // --check counts a tree shifted already in its summary: every entry of it.
    census.every_id = spec.unmapped == Unmapped::kRefuse || o.run.check;
    census.resumed = resumed.get();
    for (const auto& other : volumes)
      if (&other != &v) census.others.push_back(&other);
    censuses.push_back(take_census(v, spec, census));
    if (!censuses.back().nested.empty()) break;
  }
  if (!censuses.empty() && !censuses.back().nested.empty()) {
    bool shifted = false;
    return judge_census(volumes[censuses.size() - 1], censuses.back(), spec, o.force, o.run.check, shifted);
  }
  std::vector<const VolumeRoot*> to_shift;
  auto bare = std::make_shared<BareInodes>();  // what the run need not read again
  for (size_t i = 0; i < volumes.size(); ++i) {
    const VolumeRoot& v = volumes[i];
    if (!need_census) {
      to_shift.push_back(&v);
      continue;
    }
    bool shifted = false;
    Census& c = censuses[i];
    if (int rc = judge_census(v, c, spec, o.force, o.run.check, shifted); rc != kExitOk) return rc;
    if (!shifted && !o.force)
      if (int rc = judge_history(v, (*histories)[i], o.reverse, o.run.check, shifted); rc != kExitOk) return rc;
    if (!shifted) to_shift.push_back(&v);  // --check: a tree shifted already would not change
    if (shifted) {
      o.run.counted.scanned += c.entries;
      o.run.counted.unchanged += c.entries;
    }
    bare->merge(std::move(c.bare));
  }
  if (to_shift.empty()) {
    if (o.run.check && !o.quiet)  // the summary a --check prints, as when it walks a tree
      std::printf("%s\n", (o.run.json ? format_summary_json(o.run.counted, true) : format_summary(o.run.counted, true)).c_str());
    return kExitOk;
  }

  // 7. Walk, plan and apply (or record) each volume, a real run journaling first, each
  // inode changed once; report.
  const auto policy = make_shift_policy(spec, std::move(bare), resumed->size() ? resumed : nullptr);
  RunConfig config;
  config.cross_filesystems = o.cross_filesystems;
  config.excludes = o.excludes;
  config.change_once = true;
  o.run.quiet = o.quiet;
  const int64_t started = now_ns();
  const int rc = run_policy(to_shift, *policy, config, *mapping, o.run, o.command_line);
  if (rc == kExitOk && !o.run.dry_run && !o.run.check && !o.run.no_journal)
    for (const VolumeRoot* v : resuming) settle(o.run, *v, o.command_line, *mapping, started);
  return rc;
}

}  // namespace volprep
