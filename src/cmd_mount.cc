// `volprep mount` and `volprep umount`: show a tree to a container's ids through an idmapped
// bind mount, changing no file. The pipeline: resolve the mapping, derive the mount's id
// mapping (one owner to the container user, or --shift: the whole remap), open and vet SRC and
// DST, then mount, or with -n walk SRC's owners and say what each will show as.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <mutex>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"
#include "volprep/engine.h"
#include "volprep/idmount.h"
#include "volprep/walk.h"

namespace volprep {

void setup_mount(CLI::App& app, MountOptions& o) {
  app.add_option("src", o.src, "The tree to show (SRC)");
  app.add_option("dst", o.dst, "Where to show it: an empty directory (DST)");
  app.add_option("--as", o.as, "Container user UID[:GID], numbers, that owns what SRC's owner owns, seen through DST");
  app.add_option("--from", o.from,
                 "With --as: the disk owner HOSTUID[:HOSTGID] shown as the container user (default: SRC's owner)");
  app.add_flag("--shift", o.shift, "Show every disk id as the host id its container id maps to (remap on over old data)");
  app.add_flag("--reverse", o.reverse, "With --shift: the other way (data written under remap, remap off)");
  app.add_flag("-n,--dry-run", o.dry_run, "Print the mapping and what SRC's owners will show as; mount nothing");
  app.add_flag("--list", o.list, "List the idmapped mounts present");
  app.add_flag("--persist", o.persist, "Also write a systemd unit that makes the mount at boot, before docker.service");
  app.add_option("--unit-dir", o.unit_dir, "Where --persist writes the unit")->capture_default_str();
  app.add_flag("--allow-system-path", o.allow_system_path, "Allow / and system trees as SRC or DST");
  add_follow_path_symlinks(app, o.follow_path_symlinks);
  setup_source_options(app, o.source);
}

void setup_umount(CLI::App& app, MountOptions& o) {
  app.add_option("dst", o.dst, "An idmapped mount (DST of volprep mount)")->required();
  app.add_flag("--force", o.force, "Also an idmapped mount volprep mount did not make (it has no record of it)");
  app.add_flag("--persist", o.persist, "Also remove the systemd unit volprep mount --persist wrote");
  app.add_option("--unit-dir", o.unit_dir,
                 "Where that unit is (also where the mount's record says mount --persist wrote it)")
      ->capture_default_str();
}

namespace {

// The owners of a tree, each with how many entries have it: a walk that reads owners only.
class OwnerCensus final : public WalkVisitor {
 public:
  using Owners = std::map<std::pair<uint32_t, uint32_t>, uint64_t>;
  OwnerCensus(Owners& owners, std::mutex& mu, uint64_t& errors) : owners_(owners), mu_(mu), errors_(errors) {}
  ~OwnerCensus() override {
    std::lock_guard lock(mu_);
    for (auto& [k, n] : local_) owners_[k] += n;
  }
  Visit visit(const DirView&, std::span<Entry> entries) override {
    for (const Entry& e : entries)
      if (!e.skip) ++local_[{e.st.uid, e.st.gid}];
    return Visit::kContinue;
  }
  void vanished(const std::string&) override {}
  void skipped(const std::string&, Skip, const char*) override {}
  void error(const std::string& path, int err, const char* what) override {
    spdlog::warn("{}: {}: {}", path, what, std::strerror(err));
    std::lock_guard lock(mu_);
    ++errors_;
  }

 private:
  Owners local_;
  Owners& owners_;
  std::mutex& mu_;
  uint64_t& errors_;
};

// What a disk id shows as through the mount: an id outside its mapping shows as the overflow
// id, nobody.
std::string shown_as(const IdMap& m, uint32_t id) {
  auto to = m.to_host(id);
  return to ? std::to_string(*to) : "65534";
}

IdMap inverse(const IdMap& m) {
  std::vector<Extent> out;
  for (const Extent& e : m.extents()) out.push_back({e.host, e.container, e.count});
  return IdMap(std::move(out));
}

// A word of a unit's setting, quoted as systemd reads it: no specifier (%) or escape (\) in it
// is expanded, nor on a command line (`command_line`) a variable ($), which systemd expands
// there only. Words with control characters never get here.
std::string unit_word(const std::string& w, bool command_line = true) {
  std::string out = "\"";
  for (char c : w) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '%' || (c == '$' && command_line)) out += c;
    out += c;
  }
  return out + "\"";
}


std::string unit_name(const std::string& dst) { return "volprep-mount-" + systemd_escape_path(dst) + ".service"; }

// The units `systemctl enable` would link: wanted at boot, required by docker.service.
const char* const kUnitLinks[] = {"multi-user.target.wants", "docker.service.requires"};

// Removes the unit of the mount at `dst` and its links; whether there was one.
bool remove_unit(const std::string& unit_dir, const std::string& dst) {
  const std::string name = unit_name(dst);
  for (const char* dir : kUnitLinks) ::unlink((unit_dir + "/" + dir + "/" + name).c_str());
  return ::unlink((unit_dir + "/" + name).c_str()) == 0;
}

// `dir` as an absolute path (a relative one below the current directory), "." and "" parts
// and a trailing slash dropped: the same directory given two ways is one.
std::string absolute_dir(const std::string& dir) {
  std::string path = dir;
  if (!dir.starts_with('/')) {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return dir;
    path = std::string(cwd) + "/" + dir;
  }
  std::string out;
  for (const std::string& part : path_parts(path))
    if (part != ".") out += "/" + part;
  return out.empty() ? "/" : out;
}

// --persist: a oneshot unit that runs this same mount at boot, with the maps written out (the
// remap in force now, not whatever is configured then), linked as `systemctl enable` would.
Result<std::string> write_unit(const MountOptions& o, const std::string& src, const std::string& dst,
                               const Mapping& mapping, const std::optional<IdPair>& disk) {
  // A line break in a path would end its line of the unit and start another, of its own; a
  // setting that is not UTF-8 makes systemd refuse the unit, which docker.service requires.
  for (const std::string* p : {&src, &dst})
    if (escape_control(*p) != *p)
      return usage_error("refusing --persist: " + escape_path(*p) +
                         " holds a control character or bytes that are not UTF-8, which a unit file cannot hold");
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return config_error(std::string("cannot read /proc/self/exe: ") + std::strerror(errno));
  std::string self(exe, size_t(n));
  // Root runs the unit: never a binary someone else could replace, nor rename into place.
  if (auto why = why_not_root_only(self); !why.empty())
    return Error{kExitRefused, "refusing --persist: the unit would run " + self + ", but " + why + "; install volprep first"};
  std::string exec = unit_word(self) + " mount " + unit_word(src) + " " + unit_word(dst);
  if (o.shift) exec += o.reverse ? " --shift --reverse" : " --shift";
  if (o.as) exec += " --as " + unit_word(*o.as);
  // The disk owner as it is now, not whoever owns SRC at boot.
  if (disk) exec += " --from " + std::to_string(disk->uid) + ":" + std::to_string(disk->gid);
  if (o.allow_system_path) exec += " --allow-system-path";
  for (const Extent& e : mapping.uid_map.extents())
    exec += " --uid-map " + std::to_string(e.container) + ":" + std::to_string(e.host) + ":" + std::to_string(e.count);
  for (const Extent& e : mapping.gid_map.extents())
    exec += " --gid-map " + std::to_string(e.container) + ":" + std::to_string(e.host) + ":" + std::to_string(e.count);
  std::string unit =
      "# Written by volprep mount --persist; volprep umount --persist removes it.\n"
      "[Unit]\n"
      "Description=volprep idmapped mount (volprep mount --list names it)\n"
      "RequiresMountsFor=" + unit_word(src, false) + " " + unit_word(dst, false) + "\n"
      "Before=docker.service\n"
      "\n[Service]\n"
      "Type=oneshot\n"
      "RemainAfterExit=yes\n"
      "ExecStart=" + exec + "\n"
      "ExecStop=" + unit_word(self) + " umount " + unit_word(dst) + "\n"
      "\n[Install]\n"
      "WantedBy=multi-user.target\n"
      "RequiredBy=docker.service\n";
  const std::string name = unit_name(dst);
  const std::string path = o.unit_dir + "/" + name;
  // Written beside it and renamed into place: systemd never reads half a unit.
  const std::string temp = o.unit_dir + "/." + name + ".tmp";
  ::unlink(temp.c_str());
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  bool written = fd.valid() && ::write(fd.get(), unit.data(), unit.size()) == ssize_t(unit.size()) && ::fsync(fd.get()) == 0;
  int err = errno;
  fd.reset();
  if (!written || ::rename(temp.c_str(), path.c_str()) < 0) {
    err = written ? errno : err;
    ::unlink(temp.c_str());
    return config_error("cannot write " + path + ": " + std::strerror(err));
  }
  // A unit that is not linked as a whole is not left half enabled: it would mount at boot
  // what the caller was told failed.
  for (const char* dir : kUnitLinks) {
    std::string d = o.unit_dir + "/" + dir;
    std::string link = d + "/" + name;
    err = ::mkdir(d.c_str(), 0755) < 0 && errno != EEXIST ? errno : 0;
    if (!err && ::unlink(link.c_str()) < 0 && errno != ENOENT) err = errno;
    if (!err && ::symlink(("../" + name).c_str(), link.c_str()) < 0) err = errno;
    if (err) {
      remove_unit(o.unit_dir, dst);
      return config_error("cannot link " + link + ": " + std::strerror(err));
    }
  }
  return path;
}

// The mount `mnt` (a descriptor of its root) if `dst` names it now, by a path resolved afresh.
// The owner of a directory on DST's path may have renamed DST's directory, with the mount on it
// since, away from DST: the mount is taken away again rather than left where they chose.
Result<UniqueFd> mounted_at(UniqueFd mnt, const std::string& dst) {
  auto now = resolve_path(dst, /*follow_any_symlink=*/false);
  if (now && mount_ids(now->fd.get(), "").unique == mount_ids(mnt.get(), "").unique) return mnt;
  int rc = detach_mount(mnt.get());
  return Error{kExitRefused, "refusing " + escape_path(dst) + ": it moved while it was being mounted (renamed by the owner of a "
                             "directory above it?); " + (rc < 0 ? std::string("cannot unmount it from where it went: ") +
                             std::strerror(-rc) : "nothing mounted")};
}

// "a" or "an" before a filesystem's type as it is said: an ext4, an xfs, an nfs, an iso9660,
// a btrfs, a udf.
const char* article(const std::string& fs_type) {
  static const std::string spelled[] = {"nfs", "nfs4", "f2fs", "smb3", "hfs", "hfsplus", "ntfs", "ntfs3"};
  if (fs_type.empty()) return "a";
  if (std::string_view("aeiox").find(fs_type[0]) != std::string_view::npos) return "an";
  for (const auto& s : spelled)
    if (fs_type == s) return "an";
  return "a";
}

int list_mounts() {
  bool any = false;
  for (const MountEntry& m : read_mounts()) {
    if (!m.idmapped) continue;
    any = true;
    std::printf("%s  %s of %s %s filesystem, idmapped\n", escape_path(m.mount_point).c_str(),
                escape_path(m.root).c_str(), article(m.fs_type), m.fs_type.c_str());
    auto r = read_mount_record(m.mount_point);
    if (!r || !r->is_of_listed(m.mnt_id)) {
      std::printf("  map not recorded: not made by volprep mount\n");
      continue;
    }
    std::printf("  %s, by volprep mount from %s\n  uid map (disk id, shown as, count): %s\n"
                "  gid map (disk id, shown as, count): %s\n  remap: %s\n",
                escape_control(r->what).c_str(), escape_path(r->src).c_str(), r->uid_map.c_str(),
                r->gid_map.c_str(), escape_control(r->source).c_str());
  }
  if (!any) std::printf("no idmapped mounts\n");
  return kExitOk;
}

}  // namespace

int run_mount(const MountOptions& options) {
  MountOptions o = options;
  if (o.list) {
    if (o.src || o.dst || o.as || o.shift) {
      spdlog::error("--list takes no SRC, DST, --as or --shift");
      return kExitUsage;
    }
    return list_mounts();
  }
  if (!o.src || !o.dst) {
    spdlog::error("volprep mount SRC DST needs both SRC and DST (or --list)");
    return kExitUsage;
  }
  if (o.shift == bool(o.as)) {
    spdlog::error("give either --as UID[:GID] (one owner to the container user) or --shift");
    return kExitUsage;
  }
  if (o.reverse && !o.shift) {
    spdlog::error("--reverse goes with --shift");
    return kExitUsage;
  }
  if (o.from && !o.as) {
    spdlog::error("--from goes with --as");
    return kExitUsage;
  }

  // 1. SRC and DST, resolved once and vetted, before anything else is asked of the host.
  VolumeSafety safety;
  safety.allow_system_path = o.allow_system_path;
  safety.follow_path_symlinks = o.follow_path_symlinks;
  auto src = open_volume(*o.src, safety);
  if (!src) return fail(src.error());
  auto dst = open_volume(*o.dst, safety);
  if (!dst) return fail(dst.error());
  if (!src->file_name.empty() || !dst->file_name.empty()) {
    spdlog::error("volprep mount shows directories: {} is not one", !src->file_name.empty() ? *o.src : *o.dst);
    return kExitUsage;
  }
  auto below = [](const std::string& a, const std::string& b) {
    return a == b || b == "/" || (a.starts_with(b) && a[b.size()] == '/');
  };
  if (below(src->real, dst->real) || below(dst->real, src->real)) {
    spdlog::error("refusing: {} and {} hold one another; SRC and DST must be apart", src->real, dst->real);
    return kExitRefused;
  }
  // volprep's own mount there already (DST resolved to the mount's root): say so, and the way out.
  if (auto record = read_mount_record(dst->real); record && record->is_of(mount_ids(dst->fd.get(), ""))) {
    spdlog::error("refusing {}: volprep's idmapped mount of {} is already there; volprep umount {} first",
                  dst->real, escape_path(record->src), dst->real);
    return kExitRefused;
  }
  if (int rc = is_empty_dir(dst->fd.get()); rc != 1) {
    spdlog::error("refusing {}: {}", dst->real, rc < 0 ? std::string(std::strerror(-rc)) : "not an empty directory");
    return kExitRefused;
  }

  // 2. The mount's id mapping: disk id -> the id it shows as.
  auto host = open_host_db(o.source);
  auto mapping = resolve_mapping(o.source.remap, *host);
  if (!mapping) return fail(mapping.error());
  log_findings(mapping->findings);
  IdMap uid_map, gid_map;
  std::string what;
  std::optional<IdPair> disk_owner;  // --as: the disk owner shown as the container user
  if (o.shift) {
    uid_map = o.reverse ? inverse(mapping->uid_map) : mapping->uid_map;
    gid_map = o.reverse ? inverse(mapping->gid_map) : mapping->gid_map;
    what = o.reverse ? "disk ids as the container ids they map from" : "disk ids as container ids, mapped to host ids";
  } else {
    auto container = parse_as(*o.as);
    if (!container) return fail(container.error());
    auto host_ids = to_host_ids(*mapping, *container);
    if (!host_ids) return fail(host_ids.error());
    IdPair disk{src->st.uid, src->st.gid};
    if (o.from) {
      auto from = parse_id_pair(*o.from);
      if (!from) return fail(usage_error("--from \"" + *o.from + "\": expected HOSTUID[:HOSTGID]"));
      disk = *from;
    }
    disk_owner = disk;
    uid_map = IdMap({{disk.uid, host_ids->uid, 1}});
    gid_map = IdMap({{disk.gid, host_ids->gid, 1}});
    what = "disk owner " + std::to_string(disk.uid) + ":" + std::to_string(disk.gid) + " as container " +
           std::to_string(container->uid) + ":" + std::to_string(container->gid);
  }
  for (const IdMap* m : {&uid_map, &gid_map})
    if (auto why = m->validate(); !why.empty()) return fail(config_error("the mount's id mapping is invalid: " + why));
  spdlog::info("{} -> {}: {} ({}); uid map {}, gid map {}", src->real, dst->real, what, mapping->source,
               uid_map.describe(), gid_map.describe());

  if (o.dry_run) {
    // What each owner in SRC will show as through DST.
    OwnerCensus::Owners owners;
    std::mutex mu;
    uint64_t errors = 0;
    raise_fd_limit();
    walk_volume(*src, {}, [&] { return std::make_unique<OwnerCensus>(owners, mu, errors); });
    std::printf("%s -> %s: %s\nuid map (disk id, shown as, count): %s\ngid map (disk id, shown as, count): %s\n",
                src->show("").c_str(), dst->show("").c_str(), what.c_str(), uid_map.describe().c_str(),
                gid_map.describe().c_str());
    uint64_t overflow = 0;
    for (const auto& [ids, n] : owners) {
      bool mapped = uid_map.to_host(ids.first) && gid_map.to_host(ids.second);
      if (!mapped) overflow += n;
      std::printf("  disk %u:%u  shows as %s:%s%s  %llu %s\n", ids.first, ids.second,
                  shown_as(uid_map, ids.first).c_str(), shown_as(gid_map, ids.second).c_str(),
                  mapped ? "" : " (nobody: outside the mapping)", (unsigned long long)n, n == 1 ? "entry" : "entries");
    }
    if (overflow)
      std::printf("%llu %s outside the mapping: %s as nobody (65534) and cannot be changed through %s\n",
                  (unsigned long long)overflow, overflow == 1 ? "entry has ids" : "entries have ids",
                  overflow == 1 ? "it shows" : "they show", dst->show("").c_str());
    return errors ? kExitPartial : kExitOk;
  }

  // 3. The unit first (--persist), then the mount: a refused unit mounts nothing, a failed
  // mount removes the unit.
  std::optional<std::string> unit;
  if (o.persist) {
    auto written = write_unit(o, src->real, dst->real, *mapping, disk_owner);
    if (!written) {
      spdlog::error("{}; nothing mounted", written.error().message);
      return written.error().code;
    }
    unit = *written;
  }
  auto userns = make_user_namespace(uid_map, gid_map);
  auto mounted = userns ? idmapped_bind(src->fd.get(), dst->fd.get(), userns->get(), src->real, dst->real)
                        : Result<UniqueFd>(userns.error());
  if (mounted) mounted = mounted_at(std::move(*mounted), dst->real);
  if (!mounted) {
    if (unit) remove_unit(o.unit_dir, dst->real);
    return fail(mounted.error());
  }
  std::printf("mounted %s at %s: %s\n", src->show("").c_str(), dst->show("").c_str(), what.c_str());
  if (unit)
    std::printf("wrote %s: the mount comes back at boot, before docker.service (systemctl daemon-reload reads it now)\n",
                escape_path(*unit).c_str());
  // Recorded for --list and umount; the mount is made whether or not this works.
  const MountIds ids = mount_ids(mounted->get(), "");
  // With the unit's directory: umount looks for the unit there, whatever its --unit-dir.
  MountRecord record{src->real, dst->real, ids.id, ids.unique, uid_map.describe(), gid_map.describe(), what,
                     mapping->source, unit ? absolute_dir(o.unit_dir) : ""};
  if (auto r = write_mount_record(record); !r) spdlog::warn("{}; --list will not show this mount's map", r.error().message);
  return kExitOk;
}

int run_umount(const MountOptions& o) {
  auto dst = resolve_path(*o.dst, /*follow_any_symlink=*/false);
  // The mount's record, read before it is removed: where mount --persist wrote the unit, if
  // not in --unit-dir.
  const auto record = read_mount_record(dst ? dst->real : *o.dst);
  std::vector<std::string> unit_dirs{absolute_dir(o.unit_dir)};
  if (record && !record->unit_dir.empty() && unit_dirs[0] != absolute_dir(record->unit_dir))
    unit_dirs.push_back(record->unit_dir);
  bool removed = false;
  if (o.persist) {
    // The unit first: a mount already gone still leaves a unit to remove.
    std::string real = dst ? dst->real : *o.dst;
    for (const std::string& dir : unit_dirs)
      if (remove_unit(dir, real)) {
        removed = true;
        std::printf("removed %s/%s\n", escape_path(dir).c_str(), escape_path(unit_name(real)).c_str());
      }
    if (!removed) spdlog::warn("no unit {} to remove in {}", unit_name(real),
                               unit_dirs.size() > 1 ? unit_dirs[0] + " or " + unit_dirs[1] : unit_dirs[0]);
  }
  if (!dst) return removed ? kExitOk : fail(dst.error());
  const std::string real = dst->real;
  if (!dst->parent.valid()) {
    spdlog::error("refusing {}: volprep umount does not unmount /", real);
    return kExitRefused;
  }
  // Decided on the mount DST's resolution reached (both its ids from that one descriptor),
  // and unmounted through its parent's descriptor: a directory above renamed and replaced
  // meanwhile changes nothing. DST's own descriptor would keep the mount busy: only the
  // parent's is kept.
  UniqueFd parent = std::move(dst->parent);
  const std::string name = dst->name;
  const MountIds ids = mount_ids(dst->fd.get(), "");
  dst->fd.reset();
  for (const MountEntry& m : read_mounts()) {
    if (m.mount_point != real || m.mnt_id != ids.id) continue;
    if (!m.idmapped) {
      spdlog::error("refusing {}: not an idmapped mount (a {} mount); volprep umount only undoes volprep mount",
                    real, m.fs_type);
      return kExitRefused;
    }
    if ((!record || !record->is_of(ids)) && !o.force) {
      spdlog::error("refusing {}: an idmapped mount volprep mount did not make (no record of it in {}); "
                    "--force unmounts it all the same", real, mount_record_dir());
      return kExitRefused;
    }
    const std::string through = "/proc/self/fd/" + std::to_string(parent.get()) + "/" + name;
    if (::umount2(through.c_str(), UMOUNT_NOFOLLOW) < 0) {
      spdlog::error("cannot unmount {}: {}", real, std::strerror(errno));
      return kExitPartial;
    }
    // umount2 takes the mount on top of DST: one stacked there since the check went instead.
    if (auto still = listed_id_of(ids.unique); still && *still) {
      spdlog::error("{}: another mount, stacked there after volprep checked it, was unmounted; the idmapped mount "
                    "below stays (volprep umount again removes it)", real);
      return kExitPartial;
    }
    remove_mount_record(real);
    std::printf("unmounted %s\n", escape_path(real).c_str());
    // The unit of `mount --persist` would make the mount again at the next boot: said with the
    // --unit-dir that finds it, the record that knew where it is being gone now.
    for (const std::string& dir : unit_dirs)
      if (struct stat st; !o.persist && ::lstat((dir + "/" + unit_name(real)).c_str(), &st) == 0)
        spdlog::warn("{}/{} makes this mount again at boot: volprep umount --persist {}{} removes it",
                     escape_path(dir), unit_name(real), escape_path(real),
                     dir == MountOptions{}.unit_dir ? "" : " --unit-dir " + escape_path(dir));
    return kExitOk;
  }
  if (removed) return kExitOk;  // the unit was all that was left
  spdlog::error("refusing {}: nothing is mounted there", real);
  return kExitRefused;
}

}  // namespace volprep
