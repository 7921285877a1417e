#include "volprep/driver.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <spdlog/spdlog.h>
#include <thread>

#include "volprep/cli.h"
#include "volprep/clock.h"
#include "volprep/concurrency.h"
#include "volprep/idmount.h"
#include "volprep/run_lock.h"
#include "volprep/walk.h"

namespace volprep {
namespace {

// One line on stderr, refreshed at most 10 times a second, while a run goes on at a terminal:
// what the walk has counted, then, once it has counted every entry, how far the changes are.
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
      auto scanned = (unsigned long long)progress_.scanned.load(std::memory_order_relaxed);
      auto changed = (unsigned long long)progress_.changed.load(std::memory_order_relaxed);
      if (progress_.walked.load(std::memory_order_relaxed))
        std::fprintf(stderr, "\r\033[Kscanned %llu, changed %llu of %llu, %.0fs", scanned, changed,
                     (unsigned long long)progress_.planned.load(std::memory_order_relaxed), secs);
      else
        std::fprintf(stderr, "\r\033[Kscanned %llu, changed %llu, %.0f entries/s, %.0fs", scanned, changed,
                     secs > 0 ? scanned / secs : 0.0, secs);
    }
  }
  Progress& progress_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The journal of one job's run, created with its first change.
Result<std::unique_ptr<JournalWriter>> open_journal(const VolumeRoot& v, const DriverOptions& o) {
  JournalHeader h = o.header;
  h.volprep_version = VOLPREP_VERSION;
  h.volume = v.real;
  h.dev_major = v.st.dev_major;
  h.dev_minor = v.st.dev_minor;
  h.ino = v.st.ino;
  h.btime_ns = v.st.btime_ns;  // the same statx: told apart from another filesystem after a remount
  h.start_ns = now_ns();
  return JournalWriter::create(o.journal_dir, o.journal_file.value_or(""), h, /*lazy=*/true);
}

// The capability a refused step needs, if volprep has not got it: the cause, then.
const char* missing_capability(const std::string& step) {
  const unsigned cap = step.starts_with("chown:") ? CAP_CHOWN : CAP_FOWNER;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct caps[2]{};
  if (::syscall(SYS_capget, &header, caps) != 0 || (caps[0].effective & (1u << cap))) return nullptr;
  return cap == CAP_CHOWN ? "CAP_CHOWN" : "CAP_FOWNER";
}

}  // namespace

// Listed one a line: the first ones, then how many more (-v lists them all, --json prints
// them all).
constexpr size_t kFailuresListed = 20;

void report_failures(const std::vector<Note>& errors, const std::function<std::string(const std::string&)>& show,
                     bool json_lines) {
  const bool all = spdlog::should_log(spdlog::level::info);
  const size_t listed = all ? errors.size() : std::min(errors.size(), kFailuresListed);
  for (size_t i = 0; i < listed; ++i) spdlog::error("{}: {}", show(errors[i].path), errors[i].text);
  if (listed < errors.size())
    spdlog::error("... and {} more failed entries ({}-v lists them all)", errors.size() - listed,
                  json_lines ? "the JSON lines name each, " : "");
  if (json_lines)
    for (const auto& e : errors) std::printf("%s\n", format_failure_json(show(e.path), e.text).c_str());
}

namespace {

// Whether the volume's root is on a read-only mount: a single file's own (a file bind-mounted
// read-write onto a read-only directory is writable), found again by its name and taken only
// if it is the inode the volume is; else its directory's.
bool root_on_read_only_mount(const VolumeRoot& v) {
  if (!v.file_name.empty()) {
    UniqueFd file(::openat(v.fd.get(), v.file_name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    EntryStat now;
    if (file.valid() && stat_at(file.get(), "", now) == 0 && now.same_inode(v.st)) return on_read_only_mount(file.get());
  }
  return on_read_only_mount(v.fd.get());
}

}  // namespace

void say_waiting(const std::string& shown) {
  spdlog::warn("{}: waiting for it to end (--no-wait refuses instead)", tree_busy(shown));
}

namespace {

// The directory `path` names, reached as open_private_dir reaches it (from "/" or ".", no
// symlink followed), or the nearest one above it that exists: an O_PATH descriptor, and how
// many of the path's last components are missing (or cannot be entered).
struct NearestDir {
  UniqueFd fd;
  size_t missing = 0;
  bool absent = false;  // the first one missing does not exist (not a symlink, say)
};
NearestDir nearest_dir(const std::string& path) {
  const std::vector<std::string> parts = path_parts(path);
  NearestDir out{UniqueFd(::open(path.starts_with('/') ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC)), 0};
  for (size_t i = 0; i < parts.size() && out.fd.valid(); ++i) {
    const int fd = ::openat(out.fd.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      out.missing = parts.size() - i;
      out.absent = errno == ENOENT;
      break;
    }
    out.fd.reset(fd);
  }
  return out;
}

// The directory `fd` and every one above it, by its ".." up to "/": what a tree must not be.
std::vector<EntryStat> dir_and_above(int fd) {
  std::vector<EntryStat> out;
  UniqueFd cur(::openat(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  for (int depth = 0; cur.valid() && depth < 4096; ++depth) {
    EntryStat st;
    if (stat_at(cur.get(), "", st) < 0 || (!out.empty() && st.same_inode(out.back()))) break;  // "/"
    out.push_back(st);
    cur.reset(::openat(cur.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
  }
  return out;
}

// The directory `path` is in, as the user wrote it ("." for a bare name).
std::string parent_of(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// volprep's own directories, which no tree of a run may hold: the walk would give them to the
// container (and rollback refuses journals root does not own), and a container could change
// them. The journal directory (or --journal's) and the lock directory, where they are, or where
// they would be made; and a --journal-dir whose parent is missing, which is a typo more often
// than not (open_journal_dir makes only its last component). Checked before anything changes,
// by dry runs too.
// The absolute path `n` stands for: its directory's, then the `missing` last parts of `path`.
std::string would_be(const NearestDir& n, const std::string& path) {
  char proc[40], buf[PATH_MAX];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", n.fd.get());
  const ssize_t len = ::readlink(proc, buf, sizeof buf - 1);
  if (len <= 0) return "";
  std::string out(buf, size_t(len));
  const std::vector<std::string> parts = path_parts(path);
  for (size_t i = parts.size() - std::min(n.missing, parts.size()); i < parts.size(); ++i)
    out += (out == "/" ? "" : "/") + parts[i];
  return out;
}

int refuse_own_dirs(std::span<const VolumeRoot* const> volumes, const DriverOptions& o,
                    std::span<const std::string> to_make) {
  struct Own {
    std::string path, what;
    bool only_if_there;  // nothing would be made there
    std::string why;     // what the container would get
  };
  std::vector<Own> own;
  if (o.journal_file) {
    const std::string dir = parent_of(*o.journal_file);
    own.push_back({dir, "the journal " + *o.journal_file, o.no_journal,
                   "root's journal (give a --journal outside every tree)"});
    if (const auto n = nearest_dir(dir); !o.no_journal && n.missing && n.absent)
      return fail(usage_error("--journal " + *o.journal_file + ": its directory " + dir +
                              " does not exist (volprep makes no directory for --journal); nothing changed"));
    else if (!o.no_journal && n.missing)  // as the real run will find when it opens it: dry runs too
      return fail(usage_error("--journal " + *o.journal_file + ": its directory " + dir +
                              " is not a directory, or a symlink is on its path, which volprep does not follow: "
                              "give the directory's real path; nothing changed"));
  } else {
    own.push_back({o.journal_dir, "the journal directory " + o.journal_dir, o.no_journal,
                   "root's journals (give a --journal-dir outside every tree)"});
    if (const auto n = nearest_dir(o.journal_dir);
        !o.no_journal && !journal_dir_made_with_parents(o.journal_dir) && n.missing > 1 && n.absent)
      return fail(usage_error("--journal-dir " + o.journal_dir + ": its parent " + parent_of(o.journal_dir) +
                              " does not exist; volprep makes only a journal directory's last component (a typo?); "
                              "nothing changed"));
  }
  if (const std::string lock_dir = run_lock_dir(); !lock_dir.empty())
    own.push_back({lock_dir, "volprep's lock directory " + lock_dir, false, "the locks of root's runs"});
  for (const Own& d : own) {
    const NearestDir n = nearest_dir(d.path);
    if (!n.fd.valid() || (n.missing && d.only_if_there)) continue;
    // A directory the run makes (a missing Compose source) that is it, or would hold it: refused
    // before it is made, as a tree holding it is.
    if (const std::string at = to_make.empty() ? "" : would_be(n, d.path); !at.empty())
      for (const std::string& m : to_make)
        if (at == m || (at.starts_with(m) && at[m.size()] == '/'))
          return fail({kExitRefused, "refusing to make " + m + ": it would hold " + d.what +
                                         ": the container would get " + d.why + "; nothing changed"});
    const std::vector<EntryStat> above = dir_and_above(n.fd.get());
    // A tree inside it: its journals (or locks) are what the run would give away.
    if (!n.missing && !(o.journal_file && &d == &own.front()) && !above.empty())
      for (const VolumeRoot* v : volumes) {
        const std::vector<EntryStat> up = dir_and_above(v->fd.get());
        if (std::any_of(up.begin(), up.end(), [&](const EntryStat& st) { return st.same_inode(above.front()); }))
          return fail({kExitRefused, "refusing " + v->given + ": it is inside " + d.what +
                                         ", which is volprep's own and root's alone; nothing changed"});
      }
    for (const VolumeRoot* v : volumes) {
      if (!v->file_name.empty()) continue;  // a single file holds no directory
      const auto at = std::find_if(above.begin(), above.end(), [&](const EntryStat& st) { return st.same_inode(v->st); });
      if (at == above.end()) continue;
      const bool file = o.journal_file && &d == &own.front();  // the journal would be made in it
      const bool is = at == above.begin() && !n.missing && !file;
      const bool would = n.missing || file;
      return fail({kExitRefused, "refusing " + v->given + ": it " + (is ? "is " : would ? "would hold " : "holds ") +
                                     d.what + ": the container would get " + d.why + "; nothing changed"});
    }
  }
  return kExitOk;
}

// lock_volumes, waiting only when `may_wait`; `waited` says whether it did.
int lock_volumes_here(std::span<const VolumeRoot* const> volumes, const DriverOptions& o, const LockAlso& also,
                      bool may_wait, bool& waited) {
  waited = false;
  if (int rc = refuse_own_dirs(volumes, o, also.destinations); rc != kExitOk) return rc;
  const std::string dir = run_lock_dir();
  if (dir.empty()) return kExitOk;  // not root, no XDG_RUNTIME_DIR: see run_lock.h
  std::vector<LockedTree> trees;
  std::vector<HeldDir> held;  // the descriptors of the mounts' and destinations' trees, while locked
  auto add = [&](const LockedTree& t) {
    if (std::none_of(trees.begin(), trees.end(), [&](const LockedTree& u) { return u.st.same_inode(t.st); }))
      trees.push_back(t);
  };
  for (const VolumeRoot* v : volumes) add({v->fd.get(), !v->file_name.empty(), v->st, v->given});
  // With --cross-filesystems, each mount below a root is a tree of the run too: another path to
  // it (a bind mount's source, the filesystem mounted again) is locked by that path's runs.
  for (const VolumeRoot* v : volumes)
    for (const auto& m : also.cross_filesystems && v->file_name.empty() ? mounts_below(v->real) : std::vector<std::string>{})
      if (UniqueFd fd(std::max(-1, open_absolute(m, O_PATH | O_DIRECTORY))); fd.valid()) {
        HeldDir h{std::move(fd), {}};
        h.tree = {h.fd.get(), false, {}, m};
        if (stat_at(h.fd.get(), "", h.tree.st) == 0) held.push_back(std::move(h));
      }
  for (const std::string& to : also.destinations)
    if (auto h = dir_to_lock_shared(to)) held.push_back(std::move(*h));
  for (const HeldDir& h : held) add(h.tree);
  if (o.dry_run || o.check) {
    // Said once, though shift asks before its journals are read and again as it runs.
    static bool warned = false;
    if (const int busy = tree_locked_elsewhere(dir, trees); busy >= 0 && !warned) {
      warned = true;
      spdlog::warn("{} (this plan is of the tree as that run has left it so far)", tree_locked_message(trees[busy].shown));
    }
    return kExitOk;
  }
  auto waiting = [&](const std::string& shown) {
    waited = true;
    say_waiting(shown);
  };
  auto locked = may_wait ? lock_trees(dir, trees, waiting) : lock_trees(dir, trees);
  if (locked) return kExitOk;
  if (locked.error().code != kExitConfig) return fail(locked.error());
  spdlog::warn("{}: another volprep run on the same trees would not be refused", locked.error().message);
  return kExitOk;
}

}  // namespace

int lock_volumes(std::span<VolumeRoot* const> volumes, const DriverOptions& o, const LockAlso& also) {
  bool waited = false;
  const std::vector<const VolumeRoot*> trees(volumes.begin(), volumes.end());
  if (int rc = lock_volumes_here(trees, o, also, !o.no_wait, waited); rc != kExitOk) return rc;
  // What the other run changed meanwhile: the roots as they are now, not as they were opened
  // (a shift's census reads its root's ids there).
  for (VolumeRoot* v : volumes)
    if (waited) stat_at(v->fd.get(), v->file_name.c_str(), v->st);
  return kExitOk;
}

int run_volumes(std::span<const VolumeJob> jobs, const DriverOptions& o) {
  const bool dry_run = o.dry_run || o.check;
  // --check -q (a hook's): nothing on stdout, the exit status says it; errors still on stderr.
  const bool silent = o.check && o.quiet;
  if (o.journal_file && jobs.size() > 1 && o.header.project.empty()) {
    spdlog::error("--journal names one file; give one PATH (or use --journal-dir)");
    return kExitUsage;
  }
  if (!dry_run && o.no_journal)
    spdlog::warn("--no-journal: this run writes no rollback journal and cannot be undone");
  std::vector<const VolumeRoot*> trees;
  for (const VolumeJob& job : jobs)
    if (job.volume) trees.push_back(job.volume);
  // Its callers locked them already (waiting, where they did, before they read what they act
  // on): a no-op then; else refused rather than waited for, its trees read before.
  bool waited = false;
  if (int rc = lock_volumes_here(trees, o, {}, /*may_wait=*/false, waited); rc != kExitOk) return rc;
  raise_fd_limit();
  // A PATH on a read-only mount: nothing in it can change, and a run would fail once for each
  // entry (EROFS). A real run plans it first, as a dry run does, before any run starts: with
  // changes to make there, the command is refused (nothing changed); without, it is walked as a
  // dry run (an idempotent rerun still passes). A dry run or --check says so after its plan.
  std::set<const VolumeJob*> read_only;
  for (const VolumeJob& job : jobs) {
    if (!job.volume || !root_on_read_only_mount(*job.volume)) continue;
    read_only.insert(&job);
    if (dry_run) continue;
    RunConfig config = job.config;
    config.dry_run = true;
    if (config.change_once) config.changed = std::make_shared<InodeSet>();
    RunArena arena(choose_concurrency_for(job.volume->fd.get(), int(o.threads)).threads);
    const RunResult plan = arena.execute([&] { return run_tree(*job.volume, *job.policy, config); });
    ::lseek(job.volume->fd.get(), 0, SEEK_SET);  // the root's listing, read to its end: from the start again
    if (plan.summary.changed) {
      spdlog::error("refusing {}: it is on a read-only mount, where nothing can change, and {} entries need changing "
                    "(mount -o remount,rw first; volprep -n lists them); nothing changed",
                    job.volume->given, plan.summary.changed);
      return kExitRefused;
    }
  }
  Summary total = o.counted;
  int rc = kExitOk;
  // A project's run is one journal, a root per volume, which one rollback undoes whole;
  // else each volume gets its own, which `rollback --last PATH` finds by that PATH.
  const bool one_journal = !o.header.project.empty();
  std::unique_ptr<JournalWriter> journal;
  std::vector<std::string> written;  // journals of the volumes before this one
  // What a run that ends early has done so far: nothing, or the journals that undo it.
  auto so_far = [&] {
    if (journal && journal->created() && (written.empty() || written.back() != journal->path()))
      written.push_back(journal->path());
    if (written.empty()) return std::string("nothing changed");
    std::string list;
    for (const auto& w : written) list += (list.empty() ? "" : ", ") + w;
    return "every change made so far is in the journal" + std::string(written.size() > 1 ? "s " : " ") + list +
           " (volprep rollback undoes them)";
  };
  // The journal's end record, from `s`: false when it cannot be written (said).
  auto finish_journal = [&](const Summary& s) {
    auto r = journal->finish({s.scanned, s.changed, s.failed, 0});
    if (!r) spdlog::error("{}; the journal reads as interrupted, rollback still undoes the run", r.error().message);
    return bool(r);
  };
  // A run that stops ends the command there.
  auto stop = [&](const std::string& why) {
    spdlog::error("stopped: {}; {}", why, dry_run ? "nothing changed" : so_far());
    if (!silent) std::printf("%s\n", format_summary(total, dry_run).c_str());
    return kExitPartial;
  };
  // Each inode changed once by the command, not once by each volume's run: the owner of
  // parts of two trees can move what one run changed into the next tree before its run.
  const auto changed = std::make_shared<InodeSet>();
  for (const VolumeJob& job : jobs) {
    if (!silent && (o.json ? !job.heading_json.empty() : !job.heading.empty()))
      std::printf("%s\n", o.json ? job.heading_json.c_str() : ("# " + escape_control(job.heading)).c_str());
    if (!job.volume) continue;
    const VolumeRoot& v = *job.volume;
    // A volume on a read-only mount with nothing to change (planned above): a dry run.
    const bool plan_only = dry_run || read_only.count(&job);
    RunConfig config = job.config;
    config.dry_run = plan_only;
    config.journaled = !o.no_journal;
    if (config.change_once && !config.changed) config.changed = changed;
    if (!plan_only && !o.no_journal) {
      if (journal && one_journal) {
        JournalHeader h;
        h.volume = v.real;
        h.dev_major = v.st.dev_major;
        h.dev_minor = v.st.dev_minor;
        h.ino = v.st.ino;
        if (auto r = journal->start_root(root_of(h), v.st.btime_ns); !r) {
          spdlog::error("{}; the volumes before {} are in the journal {}", r.error().message, v.given, journal->path());
          return kExitPartial;
        }
      } else {
        auto w = open_journal(v, o);
        if (!w) {
          spdlog::error("{}; {}", w.error().message, so_far());
          return w.error().code;
        }
        if (journal && journal->created()) written.push_back(journal->path());
        journal = std::move(*w);
      }
      config.journal = journal.get();
    }
    if (!plan_only && job.before)
      if (auto r = job.before(journal.get()); !r) return stop(r.error().message);
    // As many requests in flight as the volume's filesystem wants (or --threads, above the
    // core count too).
    const Concurrency concurrency = choose_concurrency_for(v.fd.get(), int(o.threads));
    spdlog::info("{}: {}", v.given, concurrency.describe());
    RunArena arena(concurrency.threads);
    Progress progress;
    RunResult result;
    {
      std::optional<ProgressLine> line;
      if (!o.quiet && !o.json && ::isatty(2)) line.emplace(progress);
      result = arena.execute([&] { return run_tree(v, *job.policy, config, &progress); });
    }
    // The plan (dry run), what was left alone, what failed.
    for (const auto& c : result.planned) {
      if (silent) break;
      auto shown = v.show(c.path);
      std::printf("%s\n", (o.json ? format_change_json(shown, c.change) : format_change(shown, c.change)).c_str());
    }
    for (const auto& n : result.notes) spdlog::warn("{}: {}", v.show(n.path), n.text);
    if (dry_run && read_only.count(&job) && result.summary.changed)
      spdlog::warn("{} is on a read-only mount, where nothing can change: a run would be refused (mount -o remount,rw "
                   "first)",
                   v.given);
    report_failures(result.errors, [&](const std::string& p) { return v.show(p); }, o.json && !silent);
    total += result.summary;
    // A typo, or a pattern copied from the diff, which prints PATH's own name first.
    for (const auto& p : result.unmatched_excludes) {
      const std::string own = v.display + "/";
      // The rest, anchored as the copied pattern was: "vol/cache" meant PATH's own cache, which
      // "./cache" is and "cache" (any name) is not.
      const std::string rest = p.substr(std::min(p.size(), own.size()));
      const auto slash = rest.find('/');
      const std::string meant = slash == std::string::npos || slash + 1 == rest.size() ? "./" + rest : rest;
      const std::string hint = p.starts_with(own) && p.size() > own.size()
                                   ? " (--exclude " + meant + " for " + p + ")"
                               : result.summary.skipped[size_t(Skip::kExcluded)]
                                   ? " (or it matches only below a directory another pattern excluded: nothing there is looked at)"
                                   : "";
      spdlog::warn("--exclude {} matched nothing below {}; patterns are relative to PATH{}", p, v.given, hint);
    }
    if (result.refused) {
      // The filesystem refused every change the run tried: said once, with the cause or the
      // likely ones, after the entries it refused.
      Refusal refusal{v.given, fs_type_name(v.fs_magic), result.refused, result.refused_first,
                      missing_capability(result.refused_first), uint32_t(::geteuid()), "", result.refused_stopped};
      if (!result.refused_stopped) {
        // The run ended so (fewer changes than the stop takes): the command goes on as after any.
        for (const auto& line : format_refusal(refusal)) spdlog::error("{}", line);
        if (o.json && !silent) std::printf("%s\n", format_refusal_json(refusal).c_str());
      } else {
        // It stopped the run: the journal (its records of changes refused or never tried
        // restore nothing) is finished, and the command ends here.
        if (journal && journal->created()) finish_journal(one_journal ? total : result.summary);
        refusal.so_far = !total.changed   ? "nothing changed"
                         : !o.no_journal ? so_far()
                                         : std::to_string(total.changed) + " entries changed (--no-journal: no rollback)";
        for (const auto& line : format_refusal(refusal)) spdlog::error("{}", line);
        if (!silent) {
          if (o.json) std::printf("%s\n", format_refusal_json(refusal).c_str());
          std::printf("%s\n", (o.json ? format_summary_json(total, dry_run) : format_summary(total, dry_run)).c_str());
        }
        std::fflush(stdout);
        return kExitPartial;
      }
    }
    if (!result.stopped.empty()) return stop(result.stopped);
    if (one_journal) continue;  // finished once, after the last volume
    if (journal && journal->created()) {
      if (!finish_journal(result.summary)) rc = kExitPartial;  // the changes are journaled; the end record is not
      if (!o.quiet) spdlog::info("rollback journal: {}", journal->path());
    } else if (journal && !o.quiet) {
      spdlog::info("nothing changed: no rollback journal written");
    }
  }
  if (one_journal && journal && journal->created()) {
    if (!finish_journal(total)) rc = kExitPartial;
    if (!o.quiet) spdlog::info("rollback journal: {}", journal->path());
  } else if (one_journal && journal && !o.quiet) {
    spdlog::info("nothing changed: no rollback journal written");
  }
  if (!silent)
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
