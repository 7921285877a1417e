// `volprep shift`: keep who owns what when remapping is turned on (or, --reverse, off) over
// existing data. The pipeline: resolve the map, open and vet every PATH, refuse what a
// census of every tree says would go wrong (a tree shifted already, ids the map cannot
// translate, an earlier shift left unfinished), then hand the jobs to the driver core
// (driver.h) with the shift policy, each inode changed once.
#include <dirent.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"
#include "volprep/driver.h"
#include "volprep/shift.h"

namespace volprep {

void setup_shift(CLI::App& app, ShiftOptions& o) {
  app.add_option("path", o.paths, "Volume directories (or single files) to shift")->required();
  app.add_flag("--reverse", o.reverse,
               "Remapping is being turned off: translate host ids back to the container ids they stand for");
  app.add_option("--unmapped", o.unmapped,
                 "Ids the map cannot translate: refuse (list them, change nothing), skip (leave them), "
                 "nobody (the id the container sees as 65534)")
      ->check(CLI::IsMember({"refuse", "skip", "nobody"}))
      ->capture_default_str();
  add_tree_options(app, o.excludes, o.run, "A dry run that exits 1 when anything would change (0 for a tree shifted already)", o.cross_filesystems,
                   o.allow_system_path, o.follow_path_symlinks);
  app.add_flag("--force", o.force, "Shift a tree whose ids all read as shifted already (a second shift)");
  setup_source_options(app, o.source);
}

namespace {

std::string base_name(const std::string& p) { return p.substr(p.rfind('/') + 1); }

// Whether a journal's command line ran `shift`: its first word after the program and its
// global flags.
bool is_shift(const std::string& command_line) {
  size_t at = command_line.find(' ');
  while (at != std::string::npos) {
    size_t next = command_line.find(' ', at + 1);
    std::string word = command_line.substr(at + 1, next == std::string::npos ? next : next - at - 1);
    if (!word.empty() && word[0] != '-') return word == "shift";
    at = next;
  }
  return false;
}

// A shift of this volume whose journal has no end record (killed, or stopped) or counts
// failed entries, and that no finished rollback undid: its path, or "". Its entries are half
// shifted, and a second shift would shift again the ones it reached where the map's ranges
// overlap (a rootless map: host 1000 is also container 1000).
std::string unfinished_shift(const std::string& journal_dir, const VolumeRoot& v) {
  std::vector<Journal> journals;
  if (DIR* d = ::opendir(journal_dir.c_str())) {
    while (dirent* de = ::readdir(d)) {
      std::string name = de->d_name;
      if (!name.ends_with(".vpj")) continue;
      if (auto j = read_journal(journal_dir + "/" + name, JournalRead::kSummary)) journals.push_back(std::move(*j));
    }
    ::closedir(d);
  }
  for (const Journal& j : journals) {
    const JournalHeader& h = j.header;
    if ((j.end && !j.end->failed) || h.volume != v.real || h.ino != v.st.ino || h.dev_major != v.st.dev_major ||
        h.dev_minor != v.st.dev_minor || !is_shift(h.command_line))
      continue;
    bool undone = std::any_of(journals.begin(), journals.end(), [&](const Journal& r) {
      return r.header.rollback_of == base_name(j.path) && r.end && !r.end->failed;
    });
    if (!undone) return j.path;
  }
  return "";
}

// The map, as a shift needs it: active (or, --reverse, the one that was), without errors.
Result<Mapping> shift_mapping(ShiftOptions& o) {
  auto host = open_host_db(o.source);
  auto mapping = resolve_mapping(o.source.remap, *host);
  if (!mapping) return mapping.error();
  if (mapping->has_errors()) {
    for (const auto& f : mapping->findings) spdlog::error("{}", f.text());
    return config_error("the remap configuration has errors; refusing to shift through it");
  }
  for (const auto& f : mapping->findings) spdlog::warn("{}", f.text());
  if (mapping->remapping_off || mapping->uid_map.is_identity() || mapping->gid_map.is_identity())
    return config_error(mapping->source + ": remapping is off, so container ids are host ids and there is nothing to " +
                        (o.reverse ? "shift back: name the map that was in use" : "shift: name the map containers will get") +
                        " (--userns-remap default, --map 0:500000:65536, ...)");
  return mapping;
}

// The verdicts of the census, in order: a nested volume, a tree shifted already, ids the map
// cannot translate. kExitOk, or the exit status with the reason logged.
int judge(const VolumeRoot& v, const Census& c, const ShiftSpec& spec, const ShiftOptions& o, bool& shifted) {
  for (const auto& e : c.errors) spdlog::warn("{}: {} (not examined before the run)", v.show(e.path), e.text);
  if (!c.nested.empty()) {
    spdlog::error("{} holds {}, another PATH of this command: it would be shifted twice; nothing changed",
                  v.given, v.show(c.nested));
    return kExitUsage;
  }
  if (c.shifted_already(spec.reverse) && !o.force) {
    shifted = true;
    const IdMap& map = spec.uid_map;
    std::string why = spec.reverse ? "none of its " + std::to_string(c.ids) + " ids lies in the map's host range"
                                   : "all of its " + std::to_string(c.ids) + " ids lie in the map's host range";
    if (o.run.check) {
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

}  // namespace

int run_shift(const ShiftOptions& options) {
  ShiftOptions o = options;

  // 1. The map, and what the shift does with it.
  auto mapping = shift_mapping(o);
  if (!mapping) return fail(mapping.error());
  ShiftSpec spec;
  spec.uid_map = mapping->uid_map;
  spec.gid_map = mapping->gid_map;
  spec.reverse = o.reverse;
  spec.unmapped = o.unmapped == "skip" ? Unmapped::kSkip : o.unmapped == "nobody" ? Unmapped::kNobody : Unmapped::kRefuse;
  if (spec.unmapped == Unmapped::kNobody && !spec.reverse) {
    auto uid = spec.uid_map.to_host(65534), gid = spec.gid_map.to_host(65534);
    if (!uid || !gid)
      return fail(config_error("--unmapped=nobody: the map (" + spec.uid_map.describe() + ") from " + mapping->source +
                               " gives container id 65534 no host id"));
    spec.nobody_uid = *uid;
    spec.nobody_gid = *gid;
  }
  spdlog::info("{} through uid map {} and gid map {} ({})", o.reverse ? "shifting back" : "shifting",
               spec.uid_map.describe(), spec.gid_map.describe(), mapping->source);

  // 2. Every PATH opened and vetted before anything changes, each tree given once.
  auto opened = open_tree_volumes(o.paths, *mapping, o.allow_system_path, o.follow_path_symlinks, "shifting");
  if (!opened) return fail(opened.error());
  const auto& volumes = *opened;
  for (size_t i = 0; i < volumes.size(); ++i)
    for (size_t k = 0; k < i; ++k)
      if (volumes[i].st.same_inode(volumes[k].st) && volumes[i].file_name == volumes[k].file_name) {
        spdlog::error("{} and {} are the same tree: it would be shifted twice; nothing changed", volumes[k].given,
                      volumes[i].given);
        return kExitUsage;
      }

  // 3. An earlier shift left unfinished: which of its entries it shifted is in its journal only.
  for (const auto& v : volumes)
    if (auto j = unfinished_shift(o.run.journal_dir, v); !j.empty()) {
      spdlog::error("{}: an earlier shift of it did not finish (journal {}): some entries are shifted, some not, "
                    "and a second shift would shift those again; undo it with `volprep rollback {}`, then shift; "
                    "nothing changed",
                    v.given, j, j);
      return kExitRefused;
    }

  // 4. The census of every tree, before the first change: the verdicts that refuse it.
  const bool need_census = !o.force || spec.unmapped == Unmapped::kRefuse;
  std::vector<const VolumeRoot*> to_shift;
  auto bare = std::make_shared<BareInodes>();  // what the run need not read again
  for (const auto& v : volumes) {
    if (!need_census) {
      to_shift.push_back(&v);
      continue;
    }
    CensusOptions census;
    census.cross_filesystems = o.cross_filesystems;
    census.excludes = o.excludes;
    census.every_id = spec.unmapped == Unmapped::kRefuse;
    for (const auto& other : volumes)
      if (&other != &v) census.others.push_back(&other);
    bool shifted = false;
    Census c = take_census(v, spec, census);
    if (int rc = judge(v, c, spec, o, shifted); rc != kExitOk) return rc;
    if (!shifted) to_shift.push_back(&v);  // --check: a tree shifted already would not change
    bare->merge(std::move(c.bare));
  }
  if (to_shift.empty()) return kExitOk;

  // 5. Walk, plan and apply (or record) each volume, a real run journaling first, each
  // inode changed once; report.
  const auto policy = make_shift_policy(spec, std::move(bare));
  RunConfig config;
  config.cross_filesystems = o.cross_filesystems;
  config.excludes = o.excludes;
  config.change_once = true;
  o.run.quiet = o.quiet;
  return run_policy(to_shift, *policy, config, *mapping, o.run, o.command_line);
}

}  // namespace volprep
