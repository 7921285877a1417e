// `volprep check`: would the container user get the access it needs? The pipeline: resolve
// the mapping, translate --as and --groups, open every PATH, check each tree, report.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "volprep/check.h"
#include "volprep/cli.h"

namespace volprep {

void setup_check(CLI::App& app, CheckOptions& o) {
  app.add_option("path", o.paths, "Volume directories (or single files) to check")->required();
  app.add_option("--as", o.as, "Container user UID[:GID], numbers (GID defaults to UID)")->required();
  app.add_option("--groups", o.groups, "Supplementary container groups G1,G2,...")->delimiter(',');
  app.add_option("--need", o.need, "The access needed: r, rw or rwx")->capture_default_str();
  app.add_flag("--json", o.json, "JSON Lines: one object per reported entry, then the summary");
  app.add_flag("--all", o.all, "Report every entry, not only denied ones");
  app.add_flag("--cross-filesystems", o.cross_filesystems,
               "Check mount points and btrfs subvolumes below PATH too (never proc, sysfs and the like; read-only "
               "ones only without w in --need); without it each is named on stderr, not checked");
  app.add_flag("--allow-system-path", o.allow_system_path, "Allow / and system trees as PATH");
  add_follow_path_symlinks(app, o.follow_path_symlinks);
  add_threads_option(app, o.threads);
  setup_source_options(app, o.source);
}

namespace {

std::string missing_words(uint16_t missing, bool dir) {
  std::string s;
  auto add = [&](const char* w) { s += (s.empty() ? "" : ", ") + std::string(w); };
  if (missing & 4) add(dir ? "list" : "read");
  if (missing & 2) add(dir ? "create/delete" : "write");
  if (missing & 1) add(dir ? "enter" : "execute");
  return s;
}

}  // namespace

int run_check(const CheckOptions& options) {
  CheckOptions o = options;
  auto user = resolve_user(o.source, o.as);
  if (!user) return fail(user.error());
  const Mapping* mapping = &user->mapping;
  log_findings(mapping->findings);
  CheckConfig config;
  config.container_uid = user->container.uid;
  config.uid_map = &mapping->uid_map;
  config.gid_map = &mapping->gid_map;
  config.all = o.all;
  config.cross_filesystems = o.cross_filesystems;
  config.who.uid = user->host.uid;
  config.who.gids.push_back(user->host.gid);
  for (const auto& g : o.groups) {
    auto cg = parse_u32(g);
    if (!cg) {
      spdlog::error("--groups: \"{}\" is not a group id", g);
      return kExitUsage;
    }
    auto hg = mapping->gid_map.to_host(*cg);
    if (!hg) {
      spdlog::error("container gid {} is not mapped ({})", *cg, mapping->source);
      return kExitConfig;
    }
    config.who.gids.push_back(*hg);
  }
  if (o.need.empty() || o.need.find_first_not_of("rwx") != std::string::npos) {
    spdlog::error("--need \"{}\": expected the letters r, w and x (r, rw, rwx, ...)", o.need);
    return kExitUsage;
  }
  config.need = uint16_t((o.need.find('r') != std::string::npos ? 4 : 0) |
                         (o.need.find('w') != std::string::npos ? 2 : 0) |
                         (o.need.find('x') != std::string::npos ? 1 : 0));

  VolumeSafety safety;
  safety.allow_system_path = o.allow_system_path;
  safety.follow_path_symlinks = o.follow_path_symlinks;
  auto opened = open_volumes(o.paths, safety);
  if (!opened) return fail(opened.error());
  const auto& volumes = *opened;
  raise_fd_limit();
  config.threads = o.threads;

  uint64_t checked = 0, denied = 0, symlinks = 0, reachable = 0, errors = 0, not_checked = 0;
  for (const auto& v : volumes) {
    auto r = check_volume(v, config);
    for (const auto& e : r.entries) {
      std::string shown = v.show(e.path);
      bool dir = S_ISDIR(e.mode);
      if (o.json) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", e.mode & 07777);
        nlohmann::json j = {{"path", shown},
                            {"type", dir ? "directory" : "file"},
                            {"owner", std::to_string(e.uid) + ":" + std::to_string(e.gid)},
                            {"mode", mode},
                            {"acl", e.has_acl},
                            {"class", e.klass},
                            {"granted", perm_text(e.granted)},
                            {"denied", e.missing != 0},
                            {"missing", perm_text(e.missing)}};
        if (!e.blocked_by.empty()) j["blocked_by"] = escape_path(e.blocked_by);
        std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      } else if (!e.missing) {
        std::printf("%s: ok: %s\n", shown.c_str(), describe_denial(e, config).c_str());
      } else if (!e.blocked_by.empty()) {
        std::printf("%s: unreachable: %s cannot be entered by container %u (host %u)\n", shown.c_str(),
                    v.show(e.blocked_by).c_str(),
                    config.container_uid, config.who.uid);
      } else {
        std::printf("%s: %s denied: %s\n", shown.c_str(), missing_words(e.missing, dir).c_str(),
                    describe_denial(e, config).c_str());
      }
    }
    // A container's bind mount shows what is mounted below its source: the answer leaves it out.
    for (const auto& n : r.not_checked) spdlog::warn("{}: {}", v.show(n.path), n.text);
    not_checked += r.mounts_not_checked;
    for (const auto& e : r.errors) spdlog::error("{}: {}", v.show(e.path), e.text);
    errors += r.errors.size();
    checked += r.checked;
    denied += r.denied;
    symlinks += r.symlinks;
    reachable += r.reachable;
  }
  if (o.json) {
    nlohmann::json s = {{"checked", checked}, {"denied", denied}, {"reachable", reachable},
                        {"symlinks_skipped", symlinks}, {"mounts_not_checked", not_checked}, {"need", o.need}};
    std::printf("%s\n", nlohmann::json({{"summary", s}}).dump().c_str());
  } else {
    const std::string mounts =
        not_checked ? ", " + std::to_string(not_checked) + (not_checked == 1 ? " mount" : " mounts") + " not checked" : "";
    std::printf("checked %llu, reachable %llu, denied %llu, skipped %llu symlinks%s (need %s as container %u -> host %u)\n",
                (unsigned long long)checked, (unsigned long long)reachable, (unsigned long long)denied,
                (unsigned long long)symlinks, mounts.c_str(), o.need.c_str(), config.container_uid, config.who.uid);
  }
  // An entry that could not be examined (a directory not listed, an ACL not read) was not
  // shown reachable: the answer is incomplete, which is worse than "denied".
  if (errors) return kExitPartial;
  return denied ? kExitFound : kExitOk;
}

}  // namespace volprep
