// `volprep prepare`: give a container user a volume tree. The pipeline: resolve the mapping,
// translate --as, choose the policy (own, or ACL grant), open and vet every PATH, and hand
// them to the driver core (driver.h) to walk, plan, journal, apply and report.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"
#include "volprep/driver.h"
#include "volprep/idmount.h"

namespace volprep {

void setup_prepare(CLI::App& app, PrepareOptions& o) {
  app.add_option("path", o.paths, "Volume directories (or single files) to prepare")->required();
  app.add_option("--as", o.as, "Container user UID[:GID], numbers, that must own the tree (GID defaults to UID)")
      ->required();
  app.add_option("--chmod", o.chmod, "Also adjust modes, in chmod's symbolic (e.g. u+rwX,g+rX) or octal syntax");
  add_tree_options(app, o.excludes, o.run, "A dry run that exits 1 when anything would change", o.cross_filesystems,
                   o.allow_system_path, o.follow_path_symlinks);
  app.add_flag("--force", o.force, "Proceed although the remap configuration has errors");
  app.add_flag("--acl", o.acl,
               "Leave owners and modes alone; grant the container user a POSIX ACL entry "
               "(u:HOSTUID:rwX, with --as UID:GID also g:HOSTGID:rwX; default entries on directories)");
  app.add_option("--acl-perms", o.acl_perms, "What --acl grants: r, rX, rw, rwX or rwx (x: every file; any of the letters r, w, x, X)")->capture_default_str();
  setup_source_options(app, o.source);
}

int run_prepare(const PrepareOptions& options) {
  PrepareOptions o = options;

  // 1. The active mapping, and the host ids of the container user.
  auto user = resolve_user(o.source, o.as);
  if (!user) return fail(user.error());
  const Mapping* mapping = &user->mapping;
  if (mapping->has_errors() && !o.force) {
    log_findings(mapping->findings);
    spdlog::error("the remap configuration has errors; refusing to change files (--force overrides)");
    return kExitConfig;
  }
  log_findings(mapping->findings);
  if (mapping->remapping_off && !o.quiet)  // right, but a surprise to whoever expected remap on
    spdlog::warn("{}: container ids are host ids, so {} is host {}:{}", mapping->source, o.as, user->host.uid,
                 user->host.gid);
  // 2. The policy: every entry to the container user, or an ACL entry granting it access.
  Target target;
  target.uid = user->host.uid;
  target.gid = user->host.gid;
  if (o.acl) {
    if (o.chmod) {
      spdlog::error("--acl leaves modes alone; it does not combine with --chmod");
      return kExitUsage;
    }
    // The group entry only when the user named a group.
    std::optional<uint32_t> gid;
    if (o.as.find(':') != std::string::npos) gid = user->host.gid;
    auto grant = AclGrant::parse_perms(o.acl_perms, user->host.uid, gid);
    if (!grant) return fail(grant.error());
    target.acl = *grant;
  } else if (o.acl_perms != "rwX") {
    spdlog::error("--acl-perms goes with --acl");
    return kExitUsage;
  }
  if (o.chmod) {
    auto spec = ChmodSpec::parse(*o.chmod);
    if (!spec) return fail(spec.error());
    target.chmod = std::move(*spec);
  }
  spdlog::info("container {}:{} -> host {}:{} ({})", user->container.uid, user->container.gid,
               user->host.uid, user->host.gid, mapping->source);

  const auto policy = make_prepare_policy(target);
  if (!target.acl) warn_if_cannot_chown(o.run);  // ACL entries need only the files' ownership

  // 3. Every PATH opened and vetted before anything changes, each tree given once.
  auto opened = open_tree_volumes(o.paths, *mapping, o.allow_system_path, o.follow_path_symlinks, "preparing");
  if (!opened) return fail(opened.error());
  auto& volumes = *opened;
  if (auto r = refuse_twice(volumes, o.cross_filesystems, "prepared"); !r) return fail(r.error());

  // --acl on a filesystem without ACLs stops here, before any change: the volume's own, and
  // with --cross-filesystems every mount below it.
  if (target.acl)
    for (const auto& v : volumes) {
      std::string ignored;
      auto refuse = [&](const std::string& type, const std::string& where) {
        spdlog::error("{} is on a {} filesystem (mounted at {}), which has no POSIX ACLs; nothing "
                      "changed. Use the ownership mode (volprep {} --as {}, without --acl) instead",
                      v.given, type, where, v.given, o.as);
        return kExitConfig;
      };
      if (get_xattr_at(v.fd.get(), v.file_name, kAclAccessXattr, ignored) == -EOPNOTSUPP)
        return refuse(fs_type_name(v.fs_magic), mount_point_of(v.st.mnt_id));
      if (o.cross_filesystems && v.file_name.empty())
        for (const auto& m : mounts_below(v.real)) {
          // Read-only probes of each mount's root, by a path with no symlink on the way:
          // nothing below is changed yet, and the walk decides again through its own pins.
          UniqueFd fd(open_absolute(m, O_RDONLY | O_DIRECTORY));
          if (fd.valid() && get_xattr_at(fd.get(), "", kAclAccessXattr, ignored) == -EOPNOTSUPP)
            return refuse(fs_type_name(fs_type(fd.get())), m);
        }
    }

  // 4. Each tree locked (or, while another run changes it, waited for), then walked, planned
  // and applied (or recorded), a real run journaling first; report.
  std::vector<VolumeRoot*> locked;
  for (auto& v : volumes) locked.push_back(&v);
  if (int rc = lock_volumes(locked, o.run, {o.cross_filesystems, {}}); rc != kExitOk) return rc;
  std::vector<const VolumeRoot*> trees;
  for (const auto& v : volumes) trees.push_back(&v);
  RunConfig config;
  config.cross_filesystems = o.cross_filesystems;
  config.excludes = o.excludes;
  o.run.quiet = o.quiet;
  return run_policy(trees, *policy, config, *mapping, o.run, o.command_line);
}

}  // namespace volprep
