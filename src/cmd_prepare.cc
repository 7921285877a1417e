// `volprep prepare`: give a container user a volume tree. The pipeline: resolve the mapping,
// translate --as, open and vet every PATH, walk-plan-apply each (for real or as a dry run),
// report.
#include <sys/stat.h>
#include <unistd.h>


#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <spdlog/spdlog.h>
#include <tbb/global_control.h>
#include <thread>

#include "volprep/cli.h"
#include "volprep/prepare.h"

namespace volprep {

void setup_prepare(CLI::App& app, PrepareOptions& o) {
  app.add_option("path", o.paths, "Volume directories (or single files) to prepare")->required();
  app.add_option("--as", o.as, "Container user UID[:GID] that must own the tree (GID defaults to UID)")
      ->required();
  app.add_option("--chmod", o.chmod, "Also adjust modes, chmod's symbolic syntax (e.g. u+rwX,g+rX)");
  app.add_option("--exclude", o.excludes,
                 "Skip entries matching GLOB (relative to PATH; with no '/', any name; repeatable)")
      ->allow_extra_args(false);
  app.add_flag("-n,--dry-run", o.dry_run, "Print the changes as a diff, sorted by path; change nothing");
  app.add_flag("--check", o.check, "A dry run that exits 1 when anything would change");
  app.add_flag("--json", o.json, "Print the plan and summary as JSON Lines");
  app.add_option("--threads", o.threads, "Worker threads (default: all cores)");
  app.add_flag("--cross-filesystems", o.cross_filesystems,
               "Enter mount points below PATH (never proc, sysfs and the like)");
  app.add_flag("--allow-system-path", o.allow_system_path, "Allow / and system trees as PATH");
  add_follow_path_symlinks(app, o.follow_path_symlinks);
  app.add_flag("--force", o.force, "Proceed although the remap configuration has errors");
  app.add_flag("--acl", o.acl,
               "Leave owners and modes alone; grant the container user a POSIX ACL entry "
               "(u:HOSTUID:rwX, with --as UID:GID also g:HOSTGID:rwX; default entries on directories)");
  app.add_option("--acl-perms", o.acl_perms, "What --acl grants: r, rX, rw or rwX")->capture_default_str();
  app.add_option("--journal", o.journal_file, "Write the rollback journal to FILE (one PATH only; a run that changes nothing writes none)");
  app.add_option("--journal-dir", o.journal_dir, "Directory of rollback journals")
      ->capture_default_str();
  app.add_flag("--no-journal", o.no_journal, "Write no rollback journal (the run cannot be undone)");
  setup_source_options(app, o.source);
}

namespace {

// One line on stderr, refreshed at most 10 times a second, while a run goes on at a terminal.
class ProgressLine {
 public:
  explicit ProgressLine(Progress& p) : progress_(p), thread_([this] { loop(); }) {}
  ~ProgressLine() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
    std::fprintf(stderr, "\r\033[K");
  }

 private:
  void loop() {
    auto start = std::chrono::steady_clock::now();
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return done_; })) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      uint64_t scanned = progress_.scanned.load(std::memory_order_relaxed);
      std::fprintf(stderr, "\r\033[Kscanned %llu, changed %llu, %.0f entries/s",
                   (unsigned long long)scanned,
                   (unsigned long long)progress_.changed.load(std::memory_order_relaxed),
                   secs > 0 ? scanned / secs : 0.0);
    }
  }
  Progress& progress_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

int run_prepare(const PrepareOptions& options) {
  PrepareOptions o = options;
  const bool dry_run = o.dry_run || o.check;

  // 1. The active mapping, and the host ids of the container user.
  auto user = resolve_user(o.source, o.as);
  if (!user) {
    spdlog::error("{}", user.error().message);
    return user.error().code;
  }
  const Mapping* mapping = &user->mapping;
  if (mapping->has_errors() && !o.force) {
    for (const auto& f : mapping->findings) spdlog::error("{}", f.text());
    spdlog::error("the remap configuration has errors; refusing to change files (--force overrides)");
    return kExitConfig;
  }
  for (const auto& f : mapping->findings) spdlog::warn("{}", f.text());
  if (mapping->remapping_off && !o.quiet)  // right, but a surprise to whoever expected remap on
    spdlog::warn("{}: container ids are host ids, so {} is host {}:{}", mapping->source, o.as, user->host.uid,
                 user->host.gid);
  PrepareConfig config;
  config.dry_run = dry_run;
  config.journaled = !o.no_journal;
  config.cross_filesystems = o.cross_filesystems;
  config.excludes = o.excludes;
  config.target.uid = user->host.uid;
  config.target.gid = user->host.gid;
  if (o.acl) {
    if (o.chmod) {
      spdlog::error("--acl leaves modes alone; it does not combine with --chmod");
      return kExitUsage;
    }
    // The group entry only when the user named a group.
    std::optional<uint32_t> gid;
    if (o.as.find(':') != std::string::npos) gid = user->host.gid;
    auto grant = AclGrant::parse_perms(o.acl_perms, user->host.uid, gid);
    if (!grant) {
      spdlog::error("{}", grant.error().message);
      return grant.error().code;
    }
    config.target.acl = *grant;
  } else if (o.acl_perms != "rwX") {
    spdlog::error("--acl-perms goes with --acl");
    return kExitUsage;
  }
  if (o.chmod) {
    auto spec = ChmodSpec::parse(*o.chmod);
    if (!spec) {
      spdlog::error("{}", spec.error().message);
      return spec.error().code;
    }
    config.target.chmod = std::move(*spec);
  }
  spdlog::info("container {}:{} -> host {}:{} ({})", user->container.uid, user->container.gid,
               user->host.uid, user->host.gid, mapping->source);

  // 2. Every PATH opened and vetted before anything changes.
  VolumeSafety safety;
  safety.allow_system_path = o.allow_system_path;
  safety.follow_path_symlinks = o.follow_path_symlinks;
  if (mapping->data_root) {
    safety.refused_exactly.push_back(*mapping->data_root);
    auto parent = mapping->data_root->substr(0, mapping->data_root->rfind('/'));
    if (!parent.empty()) safety.refused_exactly.push_back(parent);
  }
  auto opened = open_volumes(o.paths, safety);
  if (!opened) {
    spdlog::error("{}", opened.error().message);
    return opened.error().code;
  }
  const auto& volumes = *opened;
  // The only symlinks volprep follows are in PATH, resolved once: say where they led.
  for (const auto& v : volumes)
    for (const auto& link : v.followed) spdlog::warn("{}: followed the symlink {}; preparing {}", v.given, link, v.real);

  // --acl on a filesystem without ACLs stops here, before any change: the volume's own, and
  // with --cross-filesystems every mount below it.
  if (config.target.acl)
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
          // Read-only probes of each mount's root, by path: nothing below is changed yet.
          UniqueFd fd(::open(m.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
          if (fd.valid() && get_xattr_at(fd.get(), "", kAclAccessXattr, ignored) == -EOPNOTSUPP)
            return refuse(fs_type_name(fs_type(fd.get())), m);
        }
    }
  if (o.journal_file && volumes.size() > 1) {
    spdlog::error("--journal names one file; give one PATH (or use --journal-dir)");
    return kExitUsage;
  }
  if (!dry_run && o.no_journal)
    spdlog::warn("--no-journal: this run writes no rollback journal and cannot be undone");

  // 3. Walk, plan and apply (or record) each volume; a real run journals first.
  raise_fd_limit();
  std::optional<tbb::global_control> threads;
  if (o.threads) threads.emplace(tbb::global_control::max_allowed_parallelism, o.threads);
  Summary total;
  int rc = kExitOk;
  for (const auto& v : volumes) {
    std::unique_ptr<JournalWriter> journal;
    if (!dry_run && !o.no_journal) {
      JournalHeader h;
      h.volprep_version = VOLPREP_VERSION;
      h.volume = v.real;
      h.dev_major = v.st.dev_major;
      h.dev_minor = v.st.dev_minor;
      h.ino = v.st.ino;
      h.uid_map = mapping->uid_map.to_proc();
      h.gid_map = mapping->gid_map.to_proc();
      h.command_line = o.command_line;
      timespec ts{};
      ::clock_gettime(CLOCK_REALTIME, &ts);
      h.start_ns = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
      // Created with the first change: a run that changes nothing leaves no journal.
      auto w = JournalWriter::create(o.journal_dir, o.journal_file.value_or(""), h, /*lazy=*/true);
      if (!w) {
        spdlog::error("{}; nothing changed", w.error().message);
        return w.error().code;
      }
      journal = std::move(*w);
      config.journal = journal.get();
    }
    Progress progress;
    PrepareResult result;
    {
      std::optional<ProgressLine> line;
      if (!o.quiet && !o.json && ::isatty(2)) line.emplace(progress);
      result = prepare_volume(v, config, &progress);
    }
    // 4. Report: the plan (dry run), what was left alone, what failed, the summary.
    for (const auto& c : result.planned) {
      auto shown = v.show(c.path);
      std::printf("%s\n", (o.json ? format_change_json(shown, c.change) : format_change(shown, c.change)).c_str());
    }
    for (const auto& n : result.notes) spdlog::warn("{}: {}", v.show(n.path), n.text);
    for (const auto& e : result.errors) spdlog::error("{}: {}", v.show(e.path), e.text);
    total += result.summary;
    if (!result.stopped.empty()) {
      if (journal && journal->created())
        spdlog::error("stopped: {}; every change made so far is in the journal {} (volprep rollback undoes them)",
                      result.stopped, journal->path());
      else
        spdlog::error("stopped: {}; nothing changed", result.stopped);
      std::printf("%s\n", format_summary(total, dry_run).c_str());
      return kExitPartial;
    }
    if (journal && journal->created()) {
      JournalEnd end{result.summary.scanned, result.summary.changed, result.summary.failed, 0};
      if (auto r = journal->finish(end); !r) {  // the changes are journaled; the end record is not
        spdlog::error("{}; the journal reads as interrupted, rollback still undoes the run", r.error().message);
        rc = kExitPartial;
      }
      if (!o.quiet) spdlog::info("rollback journal: {}", journal->path());
    } else if (journal && !o.quiet) {
      spdlog::info("nothing changed: no rollback journal written");
    }
  }
  std::printf("%s\n", (o.json ? format_summary_json(total, dry_run) : format_summary(total, dry_run)).c_str());
  std::fflush(stdout);
  if (total.failed) {
    spdlog::error("{} entries failed", total.failed);
    rc = kExitPartial;
  } else if (o.check && total.changed) {
    rc = kExitFound;
  }
  return rc;
}

}  // namespace volprep
