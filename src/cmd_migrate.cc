// `volprep migrate-volumes`: the named volumes Docker's local driver keeps in
// <data-root>/volumes moved into the remapped root's volumes directory, where a dockerd with
// userns-remap looks for them, each shifted as `volprep shift` shifts a tree (--reverse: moved
// back out and shifted back; with remapping off and no map named, through the forward
// migration's map, from its journal). The pipeline: resolve the map and the two volumes directories,
// take dockerd's lock on both volume stores, choose the volumes and refuse what would go wrong
// (another driver's, a name taken, an earlier migration unfinished), a census of every
// volume, across filesystems (or with --copy) each volume copied beside the target (the
// original kept; copy_tree.h), then the driver core (driver.h) with two jobs per volume, in
// one journal: its directory, renamed first (the rename journaled before it is made; a copy
// renamed in from beside the target) and given Docker's owner and mode, then its _data
// shifted where it has arrived. A copy keeps the source's owners and is shifted by the same
// job as a renamed volume: one census, one plan, one dry-run diff, one journal and rollback.
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/statvfs.h>

#include <chrono>
#include <ctime>

#include <CLI/CLI.hpp>
#include <cstring>
#include <map>
#include <set>
#include <tuple>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"
#include "volprep/copy_tree.h"
#include "volprep/driver.h"
#include "volprep/migrate.h"
#include "volprep/idmount.h"
#include "volprep/report.h"
#include "volprep/shift_history.h"
#include "volprep/volume_store.h"

namespace volprep {

void setup_migrate(CLI::App& app, MigrateOptions& o) {
  app.add_option("--volume", o.volumes, "Only this volume (repeatable; default: every volume not in the target)")
      ->allow_extra_args(false);
  app.add_flag("--reverse", o.reverse,
               "Remapping is being turned off: move the volumes back out of the remapped root and shift them back, "
               "through the map the options give, else (remapping off, no map named) the one the forward "
               "migration recorded in its journal, whose data root it also takes when none is named");
  app.add_flag("--copy", o.copy,
               "Copy each volume and keep the original, even where a rename would do (across filesystems "
               "volumes are always copied)");
  app.add_option("--data-root", o.data_root,
                 "dockerd's data root (default: the running dockerd's, daemon.json's data-root, else /var/lib/docker)");
  add_unmapped_option(app, o.unmapped);
  app.add_flag("--keep-setid", o.keep_setid,
               "With --reverse: keep set-id bits and file capabilities on files that become root's "
               "(dropped by default, as volprep shift --reverse drops them)");
  app.add_flag("-n,--dry-run", o.run.dry_run, "Print the moves and the shift plan as a diff; change nothing");
  add_threads_option(app, o.run.threads);
  add_no_wait_option(app, o.run.no_wait);
  app.add_option("--journal-dir", o.run.journal_dir,
                 "Directory of rollback journals (a given one: only its last component is made, unless it ends in "
                 "/var/lib/volprep/journals)")
      ->capture_default_str();
  app.add_flag("--force", o.force,
               "Go on while a dockerd holds the volume store (for a rename; never for a copy, which a running "
               "container could tear), and shift volumes whose ids read as shifted already");
  setup_source_options(app, o.source);
}

namespace {

// Where the volumes are and where they go.
struct Roots {
  std::string base, remapped;  // dockerd's data root, and the remapped root below it
  std::string from, to;        // the volumes directories: from one to the other
  uint32_t root_gid = 0;       // the remapped root's group: the host gid of container gid 0
};

Result<Roots> roots_of(const Mapping& m, const MigrateOptions& o) {
  auto uid0 = m.uid_map.to_host(0), gid0 = m.gid_map.to_host(0);
  if (!uid0 || !gid0) return config_error("the map (" + m.uid_map.describe() + ") gives container root no host id");
  Roots r;
  if (o.data_root) {
    r.base = *o.data_root;  // normal_data_root: absolute
    r.remapped = r.base + "/" + std::to_string(*uid0) + "." + std::to_string(*gid0);
  } else if (m.data_root && m.base_data_root) {
    r.base = *m.base_data_root;
    r.remapped = *m.data_root;
  } else {
    return usage_error(m.source + " names no Docker data root: give it with --data-root (e.g. /var/lib/docker)");
  }
  r.root_gid = *gid0;
  r.from = r.base + "/volumes";
  r.to = r.remapped + "/volumes";
  if (o.reverse) std::swap(r.from, r.to);
  return r;
}

// The map of the way back put into `m` (choose_reverse_map), and the data root into
// `o.data_root` when neither it nor the configuration names one and no map is named: the
// forward migration's, the newest of the data root that stands (of any data root when none is
// named, which must then be of one only). `named`: the options name the map themselves (then
// a data root the options do not name is not taken from a journal: roots_of asks for it).
Result<bool> take_reverse_map(Mapping& m, MigrateOptions& o, bool named) {
  const std::string& dir = o.run.journal_dir;
  std::vector<UnreadJournal> unread;
  const std::vector<Journal> journals = read_journal_dir(dir, unread, JournalRead::kList);
  if (!o.data_root && !m.data_root_unusable.empty())
    return config_error(m.data_root_unusable + ": the data root dockerd's configuration names cannot be used; " +
                        "give it with --data-root");
  std::optional<std::string> named_root = o.data_root ? o.data_root
                                          : m.data_root || m.data_root_named ? m.base_data_root
                                                                              : std::nullopt;
  std::set<std::string> roots;  // the data roots whose migrations count
  auto add_root = [&](const JournalHeader& h, const std::string& path) {
    if (!is_run_of(h, "migrate-volumes")) return;
    if (auto root = migrated_data_root(h)) roots.insert(*root);
    else if (h.project.starts_with(kMigrateProject))
      spdlog::warn("{}: its project {} names no absolute remapped root; ignored", path, h.project);
  };
  if (named_root) {
    roots.insert(*named_root);
  } else if (!named) {  // a named map takes nothing from the journals: the data root must be named too
    for (const Journal& j : journals) add_root(j.header, j.path);
    for (const UnreadJournal& u : unread)
      if (u.header) add_root(*u.header, u.path);
  }
  // Each data root's forward migration; a journal that might be an unfinished migration of
  // one refuses (a journal with no header might be of any).
  std::vector<std::pair<std::string, Journal>> forwards;
  if (roots.empty() && !named)
    if (auto h = run_history(journals, unread, migrations_of("a Docker data root"), dir); !h) return h.error();
  for (const std::string& root : roots) {
    auto h = run_history(journals, unread, migrations_of(root), dir);
    if (!h) return h.error();
    if (!h->forward) continue;
    if (auto fault = migration_journal_fault(h->forward->header); !fault.empty())
      spdlog::warn("{}: {}; not taken for the way back", h->forward->path, fault);
    else
      forwards.emplace_back(root, std::move(*h->forward));
  }
  if (forwards.size() > 1) {
    std::string which;
    for (const auto& [root, j] : forwards) which += (which.empty() ? "" : "; ") + root + ": journal " + j.path;
    return usage_error("finished migrations of " + std::to_string(forwards.size()) + " data roots stand in " + dir +
                       " (" + which + "): name the data root with --data-root");
  }
  ForwardShift forward{named_root.value_or("a Docker data root"), forwards.empty() ? nullptr : &forwards[0].second};
  auto chosen = choose_reverse_map(m, named, std::span(&forward, 1), dir, "migration");
  if (!chosen) return chosen.error();
  for (const auto& w : chosen->warnings) spdlog::warn("{}", w);
  m.uid_map = chosen->uid_map;
  m.gid_map = chosen->gid_map;
  m.source = chosen->source;
  if (!named_root && forward.journal) {
    o.data_root = forwards[0].first;
    spdlog::warn("data root {} from the forward migration's journal {} (the options name no data root)",
                 *o.data_root, forward.journal->path);
  } else if (named_root && !o.data_root && !m.data_root) {
    o.data_root = named_root;  // remapping off: daemon.json's data root, no remapped root beside it
  }
  return true;
}

// dockerd's lock on a volume store, taken (or, with --force, the refusal said and passed):
// the store's descriptor, or -1 when there is none or it is not locked.
// `forced` gathers the refusals --force passed (a copy is refused on them all the same).
Result<int> lock_store(const VolumesDir& dir, bool force, std::vector<UniqueFd>& held, std::vector<std::string>& forced) {
  auto lock = lock_volume_store(dir);
  if (lock) {
    held.push_back(std::move(*lock));
    return held.back().get();
  }
  if (!force || lock.error().code != kExitRefused) return lock.error();
  spdlog::warn("{}; --force: going on", lock.error().message);
  forced.push_back(lock.error().message);
  return -1;
}

// What Docker's store in `dir` holds, read through the descriptor locked (-1: none, or not
// locked); nullopt, said (of the source: the target's store may well not be there yet),
// when it is not read.
std::optional<VolumeStore> read_store(const VolumesDir& dir, int fd, bool source) {
  const std::string path = dir.path + "/metadata.db";
  if (fd < 0) {
    if (source)
      spdlog::warn("{}: not read (there is none, or a dockerd holds it): the volumes' drivers are told by their "
                   "directories, and their labels are not journaled", path);
    return std::nullopt;
  }
  auto store = read_volume_store(fd, path);
  if (!store) {
    spdlog::warn("{}; the volumes' drivers are told by their directories, and their labels are not journaled",
                 store.error().message);
    return std::nullopt;
  }
  return std::move(*store);
}

const VolumeRecord* record_of(const std::optional<VolumeStore>& store, const std::string& name) {
  if (!store) return nullptr;
  auto it = store->volumes.find(name);
  return it == store->volumes.end() ? nullptr : &it->second;
}

// The volumes to move, chosen and vetted: every one local, none already in the target. With
// none named, those missing from the target (a volume in both places, the copy of an earlier
// --copy for one, is left alone and put in `in_both`); one named that is in both is refused.
Result<std::vector<DockerVolume>> choose(const std::vector<DockerVolume>& here, const std::vector<DockerVolume>& there,
                                         const Roots& r, const std::vector<std::string>& wanted,
                                         std::vector<std::string>& in_both) {
  auto find = [](const std::vector<DockerVolume>& in, const std::string& name) {
    return std::find_if(in.begin(), in.end(), [&](const DockerVolume& v) { return v.name == name; });
  };
  std::vector<DockerVolume> chosen;
  for (const auto& name : wanted) {
    auto v = find(here, name);
    if (v == here.end())
      return usage_error("--volume " + name + ": no such volume in " + r.from +
                         (find(there, name) != there.end() ? " (it is in " + r.to + ")" : ""));
    if (find(chosen, name) == chosen.end()) chosen.push_back(*v);
  }
  if (wanted.empty())
    for (const auto& v : here) {
      if (find(there, v.name) == there.end()) chosen.push_back(v);
      else in_both.push_back(v.name);
    }
  std::string other, taken;
  for (const auto& v : chosen) {
    if (!v.local) other += (other.empty() ? "" : "; ") + r.from + "/" + v.name + " (" + v.why_not + ")";
    if (find(there, v.name) != there.end()) taken += (taken.empty() ? "" : ", ") + v.name;
  }
  if (!other.empty())
    return Error{kExitRefused, "not a volume of the local driver (a directory with a _data directory), which is all "
                               "volprep moves: " + other + "; choose the others with --volume; nothing changed"};
  if (!taken.empty())
    return Error{kExitRefused, "already in " + r.to + ": " + taken +
                                   "; a volume of that name exists in both places: remove one, or choose the others "
                                   "with --volume; nothing changed"};
  return chosen;
}

// A volume's two roots, held by descriptor from before the move: its directory and its _data.
struct OpenedVolume {
  VolumeRoot dir, data;
};

Result<VolumeRoot> root_at(int parent, const std::string& name, const std::string& path) {
  VolumeRoot v;
  // Pinned, and a FUSE mount an unprivileged user serves there (the owner of _data may mount
  // one on it at any time) refused from the kernel's cache: opening it would ask its server,
  // which may never answer.
  int pin_fd = open_entry(parent, name.c_str(), /*cross_mounts=*/true);
  if (pin_fd < 0) return config_error(path + ": " + std::strerror(-pin_fd));
  UniqueFd pin(pin_fd);
  if (uint64_t mnt = cached_mount_id(pin_fd); mnt && mnt != cached_mount_id(parent))
    if (auto user = fuse_user_of(mnt); user && *user != 0)
      return Error{kExitRefused, path + " is a FUSE mount served for uid " + std::to_string(*user) +
                                     ", whose server decides every answer, or gives none: unmount it; nothing changed"};
  int fd = open_dir_at(pin_fd, ".");
  if (fd < 0) return config_error(path + ": " + std::strerror(-fd));
  v.fd.reset(fd);
  if (int rc = stat_at(fd, "", v.st); rc < 0) return config_error(path + ": " + std::strerror(-rc));
  v.fs_magic = fs_type(fd);
  v.given = v.real = v.display = path;
  return v;
}

// A real run names a volume (in journals and messages) where it puts it.
void name_at_target(OpenedVolume& v, const std::string& to, const std::string& name) {
  v.dir.given = v.dir.real = v.dir.display = to + "/" + name;
  v.data.given = v.data.real = v.data.display = to + "/" + name + "/_data";
}

// Opened and named where it is.
Result<OpenedVolume> open_docker_volume(const VolumesDir& from, const DockerVolume& dv) {
  auto dir = root_at(from.fd.get(), dv.name, from.path + "/" + dv.name);
  if (!dir) return dir.error();
  if (!dir->st.same_inode(dv.st)) return Error{kExitRefused, dir->real + " was replaced while volprep read it"};
  auto data = root_at(dir->fd.get(), "_data", dir->real + "/_data");
  if (!data) return data.error();
  return OpenedVolume{std::move(*dir), std::move(*data)};
}

// The directory `dir` of the target, made as Docker makes it when missing (a dry run says so).
Result<bool> make_target(const std::string& parent, const std::string& name, uint32_t mode, uint32_t gid,
                         bool dry_run) {
  int fd = open_absolute(parent, O_RDONLY | O_DIRECTORY);
  if (fd < 0 && !(dry_run && fd == -ENOENT))  // a dry run: the parent is to be made too
    return config_error("cannot open " + parent + " without following a symlink: " + std::strerror(-fd));
  UniqueFd dir(fd);
  EntryStat st;
  if (fd >= 0 && stat_at(fd, name.c_str(), st) == 0) return false;
  char m[8];
  std::snprintf(m, sizeof m, "%04o", mode);
  if (dry_run) {
    std::printf("create %s/%s (0:%u %s)\n", escape_control(parent).c_str(), escape_control(name).c_str(), gid, m);
    return true;
  }
  auto made = make_owned_dir(fd, parent, name, mode, 0, gid);
  if (made && *made) spdlog::info("created {}/{} (0:{} {}), as dockerd makes it", parent, name, gid, m);
  return made;
}

// Where the target volumes directory is, or will be: the device and free room of it, else of
// its nearest existing parent (a dry run, or before anything is made).
struct TargetPlace {
  std::pair<uint32_t, uint32_t> dev;
  uint64_t free = UINT64_MAX;  // bytes an unprivileged user may take (f_bavail), UINT64_MAX: unknown
};
Result<TargetPlace> target_device(const std::string& to) {
  for (std::string dir = to; dir.size() > 1; dir = dir.substr(0, std::max<size_t>(dir.rfind('/'), 1))) {
    int fd = open_absolute(dir, O_RDONLY | O_DIRECTORY);
    if (fd == -ENOENT) continue;
    if (fd < 0) return config_error("cannot open " + dir + " without following a symlink: " + std::strerror(-fd));
    UniqueFd d(fd);
    EntryStat st;
    if (int rc = stat_at(fd, "", st); rc < 0) return config_error(dir + ": " + std::strerror(-rc));
    TargetPlace place{{st.dev_major, st.dev_minor}};
    struct statvfs fs;
    if (::fstatvfs(fd, &fs) == 0) place.free = uint64_t(fs.f_bavail) * fs.f_frsize;
    return place;
  }
  return config_error(to + ": no parent of it exists");
}

// A volume copied into the copies directory, as NAME.partial: where it is, and its roots
// held by descriptor and named where the rename puts them.
struct StagedCopy {
  std::string name;  // the volume's
  EntryStat st;      // the copy's directory
};

// The copies directory beside the target's volumes directory, made root's and 0700.
Result<VolumesDir> open_copies_dir(const std::string& to, const VolumesDir& target) {
  const std::string parent = to.substr(0, to.rfind('/'));
  int fd = open_absolute(parent, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return config_error("cannot open " + parent + " without following a symlink: " + std::strerror(-fd));
  UniqueFd p(fd);
  if (auto made = make_owned_dir(fd, parent, kCopiesDir, 0700, 0, 0); !made) return made.error();
  auto copies = open_volumes_dir(parent + "/" + kCopiesDir);
  if (!copies) return copies.error();
  if (copies->st.dev_major != target.st.dev_major || copies->st.dev_minor != target.st.dev_minor)
    return Error{kExitRefused, copies->path + " and " + target.path + " are on different filesystems (" + target.path +
                                   " is a mount point?): a copy could not be renamed into place; nothing changed"};
  return copies;
}

// Copies volume `v` (opened from `from`) into `copies` as NAME.partial (one left by an
// interrupted run removed first), no more than `measured` bytes of content (measure_tree's),
// then holds the copy's roots in `v`, named at `to`.
Result<StagedCopy> copy_volume(const VolumesDir& from, const VolumesDir& copies, const std::string& name,
                               const std::string& to, uint64_t measured, OpenedVolume& v) {
  const std::string partial = name + kPartialSuffix, path = copies.path + "/" + partial;
  EntryStat old;
  if (stat_at(copies.fd.get(), partial.c_str(), old) == 0) {
    if (auto r = remove_tree(copies.fd.get(), partial, path); !r) return r.error();
    spdlog::info("removed {}, a copy an interrupted run left unfinished", path);
  }
  const auto start = std::chrono::steady_clock::now();
  auto stats = copy_tree(v.dir.fd.get(), from.path + "/" + name, copies.fd.get(), partial, path, {}, measured);
  if (!stats) {
    auto removed = remove_tree(copies.fd.get(), partial, path);
    return Error{stats.error().code,
                 stats.error().message +
                     (removed ? "; the partial copy removed, nothing moved"
                              : "; nothing moved, but the partial copy " + path + " could not be removed (" +
                                    removed.error().message + "): the next run removes it")};
  }
  for (const auto& s : stats->skipped) spdlog::warn("{}", s);
  spdlog::info("copied {}/{} to {} in {:.2f}s: {} directories, {} files ({}), {} hardlinks, {} symlinks, {} fifos "
               "and devices", from.path, name, path,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), stats->dirs,
               stats->files, human_bytes(stats->bytes), stats->hardlinks, stats->symlinks, stats->specials);
  auto dir = root_at(copies.fd.get(), partial, path);
  if (!dir) return dir.error();
  auto data = root_at(dir->fd.get(), "_data", path + "/_data");
  if (!data) return data.error();
  dir->given = dir->real = dir->display = to + "/" + name;
  data->given = data->real = data->display = to + "/" + name + "/_data";
  StagedCopy staged{name, dir->st};
  v = OpenedVolume{std::move(*dir), std::move(*data)};
  return staged;
}

// NAME.partial renamed to NAME.<UTC time> in the copies directory (not journaled: neither
// name is Docker's), then journaled into the volumes directory.
Result<bool> move_copy(const VolumesDir& copies, const VolumesDir& to, const StagedCopy& c, const std::string& stamp,
                       JournalWriter* journal) {
  const std::string partial = c.name + kPartialSuffix;
  std::string dated = c.name + "." + stamp;
  // A copy an earlier run's rollback set aside in the same second keeps its name.
  for (int n = 2; ::renameat2(copies.fd.get(), partial.c_str(), copies.fd.get(), dated.c_str(), RENAME_NOREPLACE) != 0;
       ++n) {
    if (errno != EEXIST || n > 100)
      return config_error("cannot rename " + copies.path + "/" + partial + " to " + dated + ": " + std::strerror(errno));
    dated = c.name + "." + stamp + "-" + std::to_string(n);
  }
  if (::fsync(copies.fd.get()) != 0) return config_error(copies.path + ": fsync: " + std::strerror(errno));
  return move_entry(copies, dated, c.st, to, c.name, journal);
}

std::string utc_stamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

int run_migrate(const MigrateOptions& options) {
  MigrateOptions o = options;
  const bool dry_run = o.run.dry_run;

  // 1. The map, the shift through it, and where the volumes are and go. The way back with
  // remapping off and no map named takes the forward migration's map from its journal.
  if (o.data_root) {  // as journals name it, before any is read
    auto normal = normal_data_root(*o.data_root);
    if (!normal)
      return fail(usage_error("--data-root " + *o.data_root +
                              (o.data_root->starts_with('/') ? ": has a \"..\"" : ": not an absolute path")));
    o.data_root = *normal;
  }
  const bool from_journal = o.reverse && !names_map(o.source.remap);
  auto mapping = from_journal ? options_mapping(o.source) : shift_mapping(o.source, o.reverse);
  if (!mapping) return fail(mapping.error());
  if (o.reverse)
    if (auto taken = take_reverse_map(*mapping, o, !from_journal); !taken) return fail(taken.error());
  auto spec = shift_spec(*mapping, o.reverse, o.unmapped);
  if (!spec) return fail(spec.error());
  if (o.keep_setid && !o.reverse) return fail(usage_error("--keep-setid goes with --reverse"));
  spec->keep_setid = o.keep_setid;
  auto roots = roots_of(*mapping, o);
  if (!roots) return fail(roots.error());
  const Roots& r = *roots;
  // The way back says where its map came from, the remap setting being gone or going.
  spdlog::log(o.reverse && !o.quiet ? spdlog::level::warn : spdlog::level::info,
              "moving volumes from {} to {}, {} through uid map {} and gid map {} (map from {})", r.from, r.to,
              o.reverse ? "shifting back" : "shifting", spec->uid_map.describe(), spec->gid_map.describe(),
              mapping->source);

  // 2. Both volumes directories, and dockerd's lock on both stores, held until the end.
  auto from = open_volumes_dir(r.from);
  if (!from) return fail(from.error());
  std::optional<VolumesDir> to;
  if (auto t = open_volumes_dir(r.to)) {
    to = std::move(*t);
  } else if (t.error().code != kExitConfig) {
    return fail(t.error());
  }
  std::vector<UniqueFd> locks;
  std::vector<std::string> forced;  // the stores --force went on without dockerd's lock of
  int store_fds[2] = {-1, -1};  // from, to
  for (int i : {0, 1})
    if (const VolumesDir* d = i == 0 ? &*from : to ? &*to : nullptr) {
      auto l = lock_store(*d, o.force, locks, forced);
      if (!l) return fail(l.error());
      store_fds[i] = *l;
    }

  // 3. An earlier migration that did not finish: its volumes are half shifted.
  const std::string project = std::string(kMigrateProject) + r.remapped;
  std::vector<UnreadJournal> ignored;
  auto unfinished = unfinished_runs(o.run.journal_dir, [&](const JournalHeader& h) { return h.project == project; },
                                    ignored);
  if (!unfinished) return fail(unfinished.error());
  for (const UnreadJournal& u : ignored) spdlog::warn("{}; ignored: it holds no record of a change", u.reason);
  if (!unfinished->empty())
    return fail({kExitRefused, "an earlier migrate-volumes on " + r.remapped + " did not finish (journal " +
                                   unfinished->front() + "): undo it with `volprep rollback " + unfinished->front() +
                                   "`, then migrate; nothing changed"});

  // 4. The volumes, chosen and vetted.
  auto here = list_volumes(*from);
  if (!here) return fail(here.error());
  std::vector<DockerVolume> there;
  if (to) {
    auto t = list_volumes(*to);
    if (!t) return fail(t.error());
    there = std::move(*t);
  }
  // What Docker knows of them: drivers, labels and options, in both stores.
  auto from_store = read_store(*from, store_fds[0], true);
  auto to_store = to ? read_store(*to, store_fds[1], false) : std::nullopt;
  if (from_store) mark_other_drivers(*here, *from_store);
  std::vector<std::string> in_both;
  auto chosen = choose(*here, there, r, o.volumes, in_both);
  for (const auto& name : in_both)
    spdlog::warn("volume {}: in {} and in {} already; left alone (--volume {} says more)", name, r.from, r.to, name);
  if (!chosen) return fail(chosen.error());
  if (chosen->empty() && !in_both.empty()) {
    std::printf("nothing to move: every volume in %s is in %s too\n", escape_control(r.from).c_str(),
                escape_control(r.to).c_str());
    return kExitOk;
  }
  if (chosen->empty()) {
    spdlog::info("no volume in {} to move", r.from);
    std::printf("nothing to move: no volume in %s\n", escape_control(r.from).c_str());
    return kExitOk;
  }

  // 5. Every volume held by descriptor and locked (another run on one of them refuses this
  // one before anything is made), then its census, before the first change.
  std::vector<OpenedVolume> volumes;
  for (const auto& dv : *chosen) {
    auto v = open_docker_volume(*from, dv);
    if (!v) return fail(v.error());
    volumes.push_back(std::move(*v));
  }
  std::vector<VolumeRoot*> data;
  for (auto& v : volumes) data.push_back(&v.data);
  // With the directories the volumes go to (the remapped root's volumes directory, and its
  // parent, where --copy stages): a run on a tree holding one holds this one off too.
  if (int rc = lock_volumes(data, o.run, {false, {r.to, r.to.substr(0, r.to.rfind('/'))}}); rc != kExitOk) return rc;
  // Named where it is until locked (a refusal names the tree the other run changes), then,
  // for a real run, where it goes.
  for (size_t i = 0; i < volumes.size() && !dry_run; ++i) name_at_target(volumes[i], r.to, (*chosen)[i].name);
  for (const auto& v : volumes) {
    CensusOptions census;
    census.threads = o.run.threads;
    census.every_id = spec->unmapped == Unmapped::kRefuse;
    bool shifted = false;
    if (int rc = judge_census(v.data, take_census(v.data, *spec, census), *spec, o.force, false, shifted);
        rc != kExitOk)
      return rc;
  }

  // 6. Across filesystems (or with --copy): the volumes measured, and the copies directory's
  // filesystem and room checked against the target's, before anything is made.
  auto dev = target_device(r.to);
  if (!dev) return fail(dev.error());
  const bool other_fs = dev->dev != std::make_pair(from->st.dev_major, from->st.dev_minor);
  const bool copy = o.copy || other_fs;
  const char* why = other_fs ? "different filesystems" : "--copy";
  const std::string copies_parent = r.to.substr(0, r.to.rfind('/'));
  std::vector<TreeSize> sizes;
  if (copy) {
    // --force goes on past dockerd's lock for a rename, which is atomic; a copy is not: the
    // containers live-restore keeps running would write to the volumes while they are read.
    if (!forced.empty())
      return fail({kExitRefused, forced.front() + ": a copy (" + why + ") is not made while a dockerd holds the "
                                 "store, even with --force: its containers may write to the volumes while they are "
                                 "copied and the copy would be torn; stop dockerd; nothing changed"});
    uint64_t need = 0;
    for (size_t i = 0; i < volumes.size(); ++i) {
      auto size = measure_tree(volumes[i].dir.fd.get(), r.from + "/" + (*chosen)[i].name);
      if (!size) return fail(size.error());
      need += size->bytes;
      sizes.push_back(*size);
    }
    auto beside = target_device(copies_parent);
    if (!beside) return fail(beside.error());
    if (beside->dev != dev->dev)
      return fail({kExitRefused, copies_parent + "/" + kCopiesDir + " and " + r.to + " would be on different "
                                 "filesystems (" + r.to + " is a mount point?): a copy could not be renamed into "
                                 "place; nothing changed"});
    if (beside->free < need)
      return fail({kExitRefused, "copying needs " + human_bytes(need) + " in " + copies_parent + "/" + kCopiesDir +
                                     ", which has " + human_bytes(beside->free) + " free; nothing changed"});
  }

  // 7. The target made as dockerd makes it, when no dockerd has made it yet.
  if (!to) {
    if (!o.reverse)
      if (auto m = make_target(r.base, r.remapped.substr(r.base.size() + 1), kDockerRemappedRootMode, r.root_gid, dry_run); !m)
        return fail(m.error());
    if (auto m = make_target(copies_parent, "volumes", kDockerVolumeDirMode, 0, dry_run); !m) return fail(m.error());
    if (!dry_run) {
      auto t = open_volumes_dir(r.to);
      if (!t) return fail(t.error());
      to = std::move(*t);
      if (auto l = lock_store(*to, o.force, locks, forced); !l) return fail(l.error());
    }
  }
  // Each volume copied beside the target, out of dockerd's sight, and renamed in from there;
  // the original stays where it is.
  std::optional<VolumesDir> copies;
  std::vector<StagedCopy> staged;
  const std::string stamp = utc_stamp();
  if (copy) {
    if (dry_run) {
      for (size_t i = 0; i < volumes.size(); ++i)
        std::printf("copy (%s) %s/%s -> %s/%s: %llu entries, %s; the original stays\n", why,
                    escape_control(r.from).c_str(), escape_control((*chosen)[i].name).c_str(),
                    escape_control(r.to).c_str(), escape_control((*chosen)[i].name).c_str(),
                    (unsigned long long)sizes[i].entries, human_bytes(sizes[i].bytes).c_str());
    } else {
      raise_fd_limit();  // the copy holds two descriptors per level of depth
      auto c = open_copies_dir(r.to, *to);
      if (!c) return fail(c.error());
      copies = std::move(*c);
      for (size_t i = 0; i < volumes.size(); ++i) {
        const std::string& name = (*chosen)[i].name;
        if (!o.quiet)
          std::printf("copying (%s) %s/%s -> %s/%s: %llu entries, %s; the original stays\n", why,
                      escape_control(r.from).c_str(), escape_control(name).c_str(), escape_control(r.to).c_str(),
                      escape_control(name).c_str(), (unsigned long long)sizes[i].entries,
                      human_bytes(sizes[i].bytes).c_str());
        std::fflush(stdout);
        auto s = copy_volume(*from, *copies, name, r.to, sizes[i].bytes, volumes[i]);
        if (!s) return fail(s.error());
        staged.push_back(std::move(*s));
      }
    }
  }

  // 8. What Docker will not know of each volume where it goes: its labels and options, said
  // now and journaled before its move.
  const auto journaled = journaled_records(o.run.journal_dir, project, r.from);
  std::vector<std::optional<VolumeRecord>> records;
  for (const auto& dv : *chosen) {
    const VolumeRecord* had = record_of(from_store, dv.name);
    std::string where = from_store ? from_store->path : "";
    // A store with no record, or one without labels (a dockerd there made it anew), falls
    // back on the labels the move that brought it here journaled.
    if (auto j = journaled.find(dv.name); j != journaled.end() && (!had || (had->labels.empty() && had->options.empty())))
      std::tie(had, where) = std::pair(&j->second.first, j->second.second);
    if (had)
      if (auto lost = labels_after_move(*had, where, record_of(to_store, dv.name), o.reverse ? r.base : r.remapped);
          !lost.empty())
        spdlog::warn("{}", lost);
    records.push_back(had ? std::optional(*had) : std::nullopt);
  }
  if (!from_store)
    spdlog::warn("Docker keeps a volume's labels and options in {}/metadata.db, which moving its directory does not "
                 "carry: the dockerd on {} lists the moved volumes as local with no labels or options",
                 r.from, o.reverse ? r.base : r.remapped);

  // 9. Two jobs per volume in one journal: its directory (its record journaled, then moved, or
  // its copy moved in, then given Docker's owner and mode), then its _data shifted where it
  // arrived.
  const auto shift = make_shift_policy(*spec);
  std::vector<std::unique_ptr<Policy>> dir_policies;
  std::vector<VolumeJob> jobs;
  for (size_t i = 0; i < volumes.size(); ++i) {
    const DockerVolume& dv = (*chosen)[i];
    OpenedVolume& v = volumes[i];
    dir_policies.push_back(make_entry_policy(v.dir.st, 0, 0, kDockerVolumeDirMode));
    VolumeJob& dir = jobs.emplace_back();
    dir.volume = &v.dir;
    dir.policy = dir_policies.back().get();
    dir.heading = "volume " + dv.name + ": " + r.from + "/" + dv.name + " -> " + r.to + "/" + dv.name;
    dir.config.excludes = {"_data/"};
    if (!dry_run)
      dir.before = [&from, &to, &copies, &stamp, copy, dv, record = records[i],
                    staged_copy = copy ? std::optional(staged[i]) : std::nullopt](JournalWriter* journal) -> Result<bool> {
        if (journal && record)
          if (auto j = journal->record_docker_volume(*record); !j) return j.error();
        if (copy) return move_copy(*copies, *to, *staged_copy, stamp, journal);
        return move_volume(*from, *to, dv, journal);
      };
    VolumeJob& data = jobs.emplace_back();
    data.volume = &v.data;
    data.policy = shift.get();
    data.config.change_once = true;
  }
  o.run.quiet = o.quiet;
  o.run.header.project = project;
  o.run.header.uid_map = mapping->uid_map.to_proc();
  o.run.header.gid_map = mapping->gid_map.to_proc();
  o.run.header.command_line = o.command_line;
  return run_volumes(jobs, o.run);
}

}  // namespace volprep
