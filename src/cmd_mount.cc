// `volprep mount` and `volprep umount`: show a tree to a container's ids through an idmapped
// bind mount, changing no file. The pipeline: resolve the mapping, derive the mount's id
// mapping (one owner to the container user, or --shift: the whole remap), open and vet SRC and
// DST, then mount, or with -n walk SRC's owners and say what each will show as.
#include <sys/mount.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <mutex>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"
#include "volprep/engine.h"
#include "volprep/idmount.h"

namespace volprep {

void setup_mount(CLI::App& app, MountOptions& o) {
  app.add_option("src", o.src, "The tree to show (SRC)");
  app.add_option("dst", o.dst, "Where to show it: an empty directory (DST)");
  app.add_option("--as", o.as, "Container user UID[:GID] that owns what SRC's owner owns, seen through DST");
  app.add_option("--from", o.from,
                 "With --as: the disk owner HOSTUID[:HOSTGID] shown as the container user (default: SRC's owner)");
  app.add_flag("--shift", o.shift, "Show every disk id as the host id its container id maps to (remap on over old data)");
  app.add_flag("--reverse", o.reverse, "With --shift: the other way (data written under remap, remap off)");
  app.add_flag("-n,--dry-run", o.dry_run, "Print the mapping and what SRC's owners will show as; mount nothing");
  app.add_flag("--list", o.list, "List the idmapped mounts present");
  app.add_flag("--allow-system-path", o.allow_system_path, "Allow / and system trees as SRC or DST");
  add_follow_path_symlinks(app, o.follow_path_symlinks);
  setup_source_options(app, o.source);
}

void setup_umount(CLI::App& app, MountOptions& o) {
  app.add_option("dst", o.dst, "An idmapped mount (DST of volprep mount)")->required();
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

int list_mounts() {
  bool any = false;
  for (const MountEntry& m : read_mounts()) {
    if (!m.idmapped) continue;
    any = true;
    std::printf("%s  %s of a %s filesystem, idmapped\n", escape_path(m.mount_point).c_str(),
                escape_path(m.root).c_str(), m.fs_type.c_str());
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
  if (int rc = is_empty_dir(dst->fd.get()); rc != 1) {
    spdlog::error("refusing {}: {}", dst->real, rc < 0 ? std::string(std::strerror(-rc)) : "not an empty directory");
    return kExitRefused;
  }

  // 2. The mount's id mapping: disk id -> the id it shows as.
  auto host = open_host_db(o.source);
  auto mapping = resolve_mapping(o.source.remap, *host);
  if (!mapping) return fail(mapping.error());
  for (const auto& f : mapping->findings) spdlog::warn("{}", f.text());
  IdMap uid_map, gid_map;
  std::string what;
  if (o.shift) {
    uid_map = o.reverse ? inverse(mapping->uid_map) : mapping->uid_map;
    gid_map = o.reverse ? inverse(mapping->gid_map) : mapping->gid_map;
    what = o.reverse ? "disk ids as the container ids they map from" : "disk ids as container ids, mapped to host ids";
  } else {
    auto container = parse_id_pair(*o.as);
    if (!container) return fail(usage_error("--as \"" + *o.as + "\": expected UID[:GID], container ids"));
    auto host_ids = to_host_ids(*mapping, *container);
    if (!host_ids) return fail(host_ids.error());
    IdPair disk{src->st.uid, src->st.gid};
    if (o.from) {
      auto from = parse_id_pair(*o.from);
      if (!from) return fail(usage_error("--from \"" + *o.from + "\": expected HOSTUID[:HOSTGID]"));
      disk = *from;
    }
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
      std::printf("  disk %u:%u  shows as %s:%s%s  %llu entries\n", ids.first, ids.second,
                  shown_as(uid_map, ids.first).c_str(), shown_as(gid_map, ids.second).c_str(),
                  mapped ? "" : " (nobody: outside the mapping)", (unsigned long long)n);
    }
    if (overflow)
      std::printf("%llu entries have ids outside the mapping: they show as nobody (65534) and cannot be changed "
                  "through %s\n", (unsigned long long)overflow, dst->show("").c_str());
    return errors ? kExitPartial : kExitOk;
  }

  // 3. Mount.
  auto userns = make_user_namespace(uid_map, gid_map);
  if (!userns) return fail(userns.error());
  if (auto r = idmapped_bind(src->fd.get(), dst->fd.get(), userns->get(), src->real, dst->real); !r)
    return fail(r.error());
  std::printf("mounted %s at %s: %s\n", src->show("").c_str(), dst->show("").c_str(), what.c_str());
  return kExitOk;
}

int run_umount(const MountOptions& o) {
  std::string real;
  uint64_t mnt_id = 0;
  {
    auto dst = resolve_path(*o.dst, /*follow_any_symlink=*/false);
    if (!dst) return fail(dst.error());
    real = dst->real;
    mnt_id = dst->st.mnt_id;
  }  // its descriptors let go: they would keep the mount busy
  for (const MountEntry& m : read_mounts())
    if (m.mount_point == real && m.mnt_id == mnt_id) {
      if (!m.idmapped) {
        spdlog::error("refusing {}: not an idmapped mount (a {} mount); volprep umount only undoes volprep mount",
                      real, m.fs_type);
        return kExitRefused;
      }
      if (::umount2(real.c_str(), UMOUNT_NOFOLLOW) < 0) {
        spdlog::error("cannot unmount {}: {}", real, std::strerror(errno));
        return kExitPartial;
      }
      std::printf("unmounted %s\n", escape_path(real).c_str());
      return kExitOk;
    }
  spdlog::error("refusing {}: nothing is mounted there", real);
  return kExitRefused;
}

}  // namespace volprep
