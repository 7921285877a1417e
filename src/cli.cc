#include "volprep/cli.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdlib>
#include <spdlog/spdlog.h>

namespace volprep {

void setup_source_options(CLI::App& app, SourceOptions& o) {
  auto& r = o.remap;
  const char* group = "Remap source (highest precedence first)";
  app.add_option("--map", r.maps, "Explicit mapping CONTAINER:HOST[:COUNT] for uids and gids (repeatable)")
      ->allow_extra_args(false)->group(group);
  app.add_option("--uid-map", r.uid_maps, "Explicit uid mapping CONTAINER:HOST[:COUNT] (repeatable)")
      ->allow_extra_args(false)->group(group);
  app.add_option("--gid-map", r.gid_maps, "Explicit gid mapping CONTAINER:HOST[:COUNT] (repeatable)")
      ->allow_extra_args(false)->group(group);
  app.add_option("--pid", r.pid, "Read /proc/PID/uid_map and gid_map of a running process")->group(group);
  app.add_option("--rootless", r.rootless_user, "Rootless Docker run by USER")->group(group);
  app.add_option("--podman-rootless", r.podman_rootless_user, "Rootless Podman run by USER")->group(group);
  app.add_option("--dockerd-pid", r.dockerd_pid, "The running dockerd to read when several run")->group(group);
  app.add_option("--config-file", r.config_file, "dockerd's daemon.json (default /etc/docker/daemon.json)")
      ->group(group);
  app.add_option("--userns-remap", r.userns_remap, "Stands for dockerd's --userns-remap flag")->group(group);
  app.add_option("--docker-version", r.docker_version,
                 "Read daemon.json and subuid/subgid as this Docker release does (X.Y; default: the installed package, "
                 "else the running dockerd)")
      ->group(group);
  app.add_option("--host-root", o.host_root,
                 "Read host files (etc/passwd, etc/subuid, daemon.json, ...) under DIR")
      ->group(group);
}

int fail(const Error& error) {
  spdlog::error("{}", error.message);
  return error.code;
}

void log_findings(const std::vector<Finding>& findings) {
  for (const auto& f : findings) {
    if (f.level == Finding::kError)
      spdlog::error("{}", f.located());
    else
      spdlog::warn("{}", f.located());
  }
}

void add_unmapped_option(CLI::App& app, std::string& unmapped) {
  app.add_option("--unmapped", unmapped,
                 "Ids the map cannot translate: refuse (list them, change nothing), skip (leave them), "
                 "nobody (the id the container sees as 65534)")
      ->check(CLI::IsMember({"refuse", "skip", "nobody"}))
      ->capture_default_str();
}

void add_no_wait_option(CLI::App& app, bool& no_wait) {
  app.add_flag("--no-wait", no_wait,
               "Refuse at once (exit 5) while another volprep run changes the tree, a tree it is in or one in it; "
               "by default wait for that run to end");
}

void add_threads_option(CLI::App& app, unsigned& threads, const char* help) {
  app.add_option("--threads", threads, help);
}

namespace {
// CLI11 takes the word after an option that needs a value, whatever it is: `--exclude -n`
// would exclude "-n" and make a real run of what was meant as a dry run.
CLI::Validator not_an_option(const std::string& what) {
  return CLI::Validator(
      [what](std::string& value) -> std::string {
        if (!value.starts_with('-') || value == "-") return "";
        // A GLOB's "./" anchors it at PATH; "[-]" keeps one that matches a name at any depth.
        const std::string written =
            what == "GLOB" ? "[-]" + value.substr(1) + ", or ./" + value + " for PATH's own only" : "./" + value;
        return "\"" + value + "\" was taken for its " + what + " and looks like an option: was the " + what +
               " left out? (a " + what + " that starts with - is written " + written + ")";
      },
      "");
}
}  // namespace

void add_run_options(CLI::App& app, DriverOptions& o, const char* check_help) {
  app.add_flag("-n,--dry-run", o.dry_run, "Print the changes as a diff, sorted by path; change nothing");
  app.add_flag("--check", o.check, std::string(check_help) + " (quiet, the global option: errors only, the exit status says the rest)");
  app.add_flag("--json", o.json, "Print the plan, every failed entry and the summary as JSON Lines");
  add_threads_option(app, o.threads);
  add_no_wait_option(app, o.no_wait);
  auto* journal = app.add_option("--journal", o.journal_file,
                                 "Write the rollback journal to FILE (a run that changes nothing writes none)")
                      ->check(not_an_option("FILE"));
  app.add_option("--journal-dir", o.journal_dir,
                 "Directory of rollback journals (a given one: only its last component is made, unless it ends in "
                 "/var/lib/volprep/journals, the default below a host root mounted elsewhere)")
      ->capture_default_str()
      ->check(not_an_option("DIR"));
  // Asked for a journal and for none: which one was meant is not for volprep to guess.
  app.add_flag("--no-journal", o.no_journal, "Write no rollback journal (the run cannot be undone; not with --journal)")
      ->excludes(journal);
}

void add_tree_options(CLI::App& app, std::vector<std::string>& excludes, DriverOptions& run, const char* check_help,
                      bool& cross_filesystems, bool& allow_system_path, bool& follow_path_symlinks) {
  // The paths a pattern is matched against are PATH's own, relative: an absolute one matches
  // none of them, and the run would change what its user meant to leave alone.
  const CLI::Validator relative(
      [](std::string& glob) -> std::string {
        if (!glob.starts_with('/')) return "";
        return "\"" + glob + "\" starts with /, and matches nothing: a pattern is matched against the path "
               "relative to PATH (for PATH/a/b, a/b), or with no '/' against any name";
      },
      "");
  app.add_option("--exclude", excludes,
                 "Skip entries matching GLOB (relative to PATH: ./cache is PATH's own cache only; with no '/', "
                 "any name; repeatable; one that matched nothing is warned of)")
      ->allow_extra_args(false)
      ->check(relative)
      ->check(not_an_option("GLOB"));
  add_run_options(app, run, check_help);
  app.add_flag("--cross-filesystems", cross_filesystems,
               "Enter mount points and btrfs subvolumes below PATH (never proc, sysfs and the like, nor a read-only "
               "mount or subvolume; a PATH on a read-only mount with changes to make is refused)");
  app.add_flag("--allow-system-path", allow_system_path, "Allow /, system trees and Docker's data root as PATH");
  add_follow_path_symlinks(app, follow_path_symlinks);
}

void warn_if_cannot_chown(const DriverOptions& run) {
  if (run.dry_run || run.check) return;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct caps[2]{};
  if (::syscall(SYS_capget, &header, caps) == 0 && (caps[0].effective & (1u << CAP_CHOWN))) return;
  spdlog::warn("running as uid {} without CAP_CHOWN, so no owner can be changed: run volprep as root (sudo volprep ...)",
               ::geteuid());
}

void add_follow_path_symlinks(CLI::App& app, bool& follow) {
  app.add_flag("--follow-path-symlinks", follow,
               "Follow symlinks in PATH that a user other than root owns or could replace "
               "(refused by default, exit 5)");
}

std::unique_ptr<HostDb> open_host_db(SourceOptions& o) {
  auto& r = o.remap;
  r.caller_uid = ::geteuid();
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) r.caller_xdg_config_home = x;
  if (const char* h = std::getenv("HOME"); h && *h) r.caller_home = h;
  if (o.host_root) {
    // Another host's files: this machine's daemons say nothing about it unless named.
    r.scan_for_daemon = false;
    return make_file_host_db(*o.host_root);
  }
  return make_system_host_db();
}

std::optional<IdPair> parse_id_pair(const std::string& text) {
  auto colon = text.find(':');
  auto uid = parse_u32(text.substr(0, colon));
  if (!uid) return std::nullopt;
  if (colon == std::string::npos) return IdPair{*uid, *uid};
  auto gid = parse_u32(text.substr(colon + 1));
  if (!gid) return std::nullopt;
  return IdPair{*uid, *gid};
}

Result<IdPair> to_host_ids(const Mapping& m, IdPair c) {
  auto uid = m.uid_map.to_host(c.uid);
  auto gid = m.gid_map.to_host(c.gid);
  if (uid && gid) return IdPair{*uid, *gid};
  bool u = !uid;
  return config_error(std::string("container ") + (u ? "uid " : "gid ") + std::to_string(u ? c.uid : c.gid) +
                      " is not mapped by the " + (u ? "uid" : "gid") + " map (" +
                      (u ? m.uid_map : m.gid_map).describe() + ") from " + m.source);
}

Result<IdPair> parse_as(const std::string& as) {
  if (auto ids = parse_id_pair(as)) return *ids;
  std::string why = "--as \"" + as + "\": expected UID[:GID], container ids";
  // A name is the container's: the image's /etc/passwd holds it, not the host's.
  auto named = [](std::string_view part) { return !part.empty() && (std::isalpha(uint8_t(part[0])) || part[0] == '_'); };
  const auto colon = as.find(':');
  if (named(std::string_view(as).substr(0, colon)) ||
      (colon != std::string::npos && named(std::string_view(as).substr(colon + 1))))
    why += ", not names: a name is the image's, which the host cannot look up (`docker run --rm --entrypoint id IMAGE "
           "NAME` prints its ids)";
  return usage_error(why);
}

Result<ResolvedUser> resolve_user(SourceOptions& source, const std::string& as) {
  auto ids = parse_as(as);  // a usage error before any configuration is read
  if (!ids) return ids.error();
  auto host = open_host_db(source);
  auto mapping = resolve_mapping(source.remap, *host);
  if (!mapping) return mapping.error();
  auto host_ids = to_host_ids(*mapping, *ids);
  if (!host_ids) return host_ids.error();
  return ResolvedUser{std::move(*mapping), *ids, *host_ids};
}

Result<std::vector<VolumeRoot>> open_tree_volumes(const std::vector<std::string>& paths, const Mapping& mapping,
                                                  bool allow_system_path, bool follow_path_symlinks,
                                                  const char* verb) {
  VolumeSafety safety;
  safety.allow_system_path = allow_system_path;
  safety.follow_path_symlinks = follow_path_symlinks;
  if (mapping.data_root) safety.refused_exactly.push_back(*mapping.data_root);
  if (mapping.base_data_root && !mapping.base_data_root->empty())
    safety.refused_exactly.push_back(*mapping.base_data_root);
  auto opened = open_volumes(paths, safety);
  if (!opened) return opened.error();
  // The only symlinks volprep follows are in PATH, resolved once: say where they led.
  for (const auto& v : *opened)
    for (const auto& link : v.followed) spdlog::warn("{}: followed the symlink {}; {} {}", v.given, link, verb, v.real);
  return opened;
}

Result<bool> refuse_twice(const std::vector<VolumeRoot>& volumes, bool cross_filesystems, const char* done) {
  for (size_t i = 0; i < volumes.size(); ++i)
    for (size_t k = 0; k < volumes.size(); ++k) {
      const VolumeRoot &outer = volumes[k], &inner = volumes[i];
      if (k < i && inner.st.same_inode(outer.st) && inner.file_name == outer.file_name)
        return usage_error(outer.given + " and " + inner.given + " are the same tree: it would be " + done +
                           " twice; nothing changed");
      // Below the other's root by the paths resolved once, and reached by its walk: on its
      // filesystem, or with --cross-filesystems.
      if (k == i || !outer.file_name.empty() || !inner.real.starts_with(outer.real) || inner.real == outer.real)
        continue;
      const bool root = outer.real == "/";
      if (!root && inner.real[outer.real.size()] != '/') continue;
      if (!cross_filesystems &&
          (inner.st.dev_major != outer.st.dev_major || inner.st.dev_minor != outer.st.dev_minor))
        continue;
      return usage_error(outer.given + " holds " + outer.show(inner.real.substr(outer.real.size() + (root ? 0 : 1))) +
                         ", another PATH of this command: it would be " + done + " twice; nothing changed");
    }
  return true;
}

int run_policy(const std::vector<const VolumeRoot*>& volumes, const Policy& policy, const RunConfig& config,
               const Mapping& mapping, DriverOptions run, const std::string& command_line) {
  std::vector<VolumeJob> jobs;
  for (const VolumeRoot* v : volumes) {
    VolumeJob& job = jobs.emplace_back();
    job.volume = v;
    job.policy = &policy;
    job.config = config;
  }
  run.header.uid_map = mapping.uid_map.to_proc();
  run.header.gid_map = mapping.gid_map.to_proc();
  run.header.command_line = command_line;
  return run_volumes(jobs, run);
}

}  // namespace volprep
