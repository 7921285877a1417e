// `volprep rollback` and `volprep journal list|show`: undo a run from its journal, and see
// what journals there are.
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <ctime>
#include <tuple>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "volprep/cli.h"
#include "volprep/run_lock.h"
#include "volprep/shift_history.h"
#include "volprep/clock.h"
#include "volprep/driver.h"
#include "volprep/migrate.h"
#include "volprep/rollback.h"
#include "volprep/volume.h"
#include "volprep/volume_store.h"

namespace volprep {

void setup_rollback(CLI::App& app, RollbackOptions& o) {
  app.add_option("journal", o.journal, "The journal of the run to undo");
  app.add_option("--last", o.last,
                 "Undo the newest journaled run on the volume PATH (warned of if it was rolled back already; "
                 "refused, never an older one taken, if it cannot be told from a remount; a shift that finished "
                 "an interrupted one: both)");
  app.add_option("--project", o.project, "Undo the newest volprep compose run of the Compose project NAME");
  app.add_option("--project-directory", o.project_directory,
                 "Undo the newest volprep compose run of the project in DIR (with --project: of that name there)")
      ->type_name("DIR");
  add_follow_path_symlinks(app, o.follow_path_symlinks);
  app.add_option("--journal-dir", o.journal_dir,
                 "Directory of rollback journals (also where a JOURNAL named without a '/' and not in the "
                 "current directory is looked for)")
      ->capture_default_str();
  auto* own = app.add_option("--journal", o.own_journal,
                             "Write the rollback's own journal to FILE (a rollback that restores nothing writes none)");
  // Asked for a journal and for none, as prepare refuses it.
  app.add_flag("--no-journal", o.no_journal, "Write no journal for the rollback itself (not with --journal)")
      ->excludes(own);
  app.add_flag("--force", o.force,
               "Also restore entries changed by someone else since the run, and put set-id bits and "
               "capabilities back on files changed after it");
  app.add_flag("-n,--dry-run", o.dry_run, "Print what would be restored; change nothing");
  app.add_flag("--json", o.json, "JSON Lines: one object per entry restored (or to restore), then the summary");
  app.add_flag("--cross-filesystems", o.cross_filesystems,
               "Enter mount points below the volume, as a run with --cross-filesystems did");
  add_threads_option(app, o.threads);
  add_no_wait_option(app, o.no_wait);
}

void setup_journal_list(CLI::App& app, JournalOptions& o) {
  app.add_option("--journal-dir", o.journal_dir, "Directory of rollback journals")->capture_default_str();
  app.add_flag("--json", o.json, "One JSON object per journal");
}

void setup_journal_show(CLI::App& app, JournalOptions& o) {
  app.add_option("journal", o.show,
                 "The journal to show (a name without a '/' not in the current directory: in --journal-dir)")
      ->required();
  app.add_option("--journal-dir", o.journal_dir, "Directory of rollback journals")->capture_default_str();
}

namespace {

std::string base_name(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

struct Listed {
  Journal journal;
  std::string status;
};

// How the journal `r` undid the journal named `name` (its file name): not at all (another
// journal's, a run's, or a rollback interrupted), whole, or with entries left.
enum class Undid { kNo, kWhole, kPartly };
Undid undid(const Journal& r, const std::string& name) {
  if (r.header.rollback_of != name || !r.end) return Undid::kNo;
  return r.end->failed ? Undid::kPartly : Undid::kWhole;
}

// Every readable journal in `dir`, oldest first, with its status; header and end record only.
std::vector<Listed> list_journals(const std::string& dir, std::vector<std::string>& unreadable) {
  std::vector<Listed> out;
  for (auto& j : read_journal_dir(dir, unreadable)) out.push_back({std::move(j), ""});
  for (auto& l : out) {
    // A later complete rollback with nothing left undone makes a run "rolled back".
    const std::string name = base_name(l.journal.path);
    bool undone = std::any_of(out.begin(), out.end(),
                              [&](const Listed& o) { return undid(o.journal, name) == Undid::kWhole; });
    bool partly = std::any_of(out.begin(), out.end(),
                              [&](const Listed& o) { return undid(o.journal, name) == Undid::kPartly; });
    l.status = undone          ? "rolled back"
               : partly        ? "partly rolled back"
               : l.journal.end ? "complete"
                               : "interrupted";
    if (!l.journal.header.rollback_of.empty()) l.status += " (rollback of " + l.journal.header.rollback_of + ")";
  }
  return out;
}

Change change_of(const JournalRecord& r) {
  Change c;
  c.before.uid = r.uid_before;
  c.before.gid = r.gid_before;
  c.before.mode = r.mode_before;
  c.uid = r.uid_after;
  c.gid = r.gid_after;
  c.mode = r.mode_after;
  c.xattrs = r.xattrs;  // the ACL and capability lines of the dry-run diff
  return c;
}

std::string shown(const std::string& volume, const std::string& rel, bool single_file) {
  if (rel.empty()) return escape_path(volume);
  if (single_file) return escape_path(volume.substr(0, volume.rfind('/')) + "/" + rel);
  return escape_path(volume + "/" + rel);
}

}  // namespace

namespace {

std::string described(const std::optional<JournalRoot>& dir) {
  if (!dir) return "(directory not recorded: a journal of an older volprep)";
  return fmt::format("{} (device {}:{} inode {})", escape_path(dir->volume), dir->dev_major, dir->dev_minor, dir->ino);
}

// The journal `rollback --project NAME` / `--project-directory DIR` undoes. A name is the
// compose file's to choose, anyone's: runs of that name from two directories are refused.
Result<std::string> last_journal_of_project(const RollbackOptions& o) {
  JournalMatch match{std::nullopt, o.project.value_or(""), std::nullopt};
  std::string what = o.project ? "the project \"" + *o.project + "\"" : "";
  if (o.project_directory) {
    auto dir = resolve_path(*o.project_directory, o.follow_path_symlinks);
    if (!dir) return Error{dir.error().code, "--project-directory: " + dir.error().message};
    match.project_dir = JournalRoot{dir->real, dir->st.dev_major, dir->st.dev_minor, dir->st.ino};
    what += (what.empty() ? "the project in " : " in ") + described(match.project_dir);
  }
  auto last = find_last_journal(o.journal_dir, match);
  for (const auto& u : last.unreadable) spdlog::warn("not considered for --project: {}", u);
  if (!last.ambiguous.empty()) {
    for (const auto& r : last.ambiguous)
      spdlog::error("project \"{}\" in {}: newest run {}, journal {}", o.project.value_or(""), described(r.dir), format_utc(r.start_ns),
                    escape_path(r.path));
    return Error{kExitRefused, fmt::format("journals of the project \"{}\" come from {} directories (a project's name "
                                           "is its compose file's to choose): name the one to undo with "
                                           "--project-directory DIR, or give the journal; nothing changed",
                                           *o.project, last.ambiguous.size())};
  }
  if (last.path.empty())
    return config_error("no journal of a volprep compose run of " + what + " in " + o.journal_dir);
  return last.path;
}

Result<std::string> last_journal_of(const RollbackOptions& o) {
  // PATH resolved as prepare resolves it, and a journal taken only if it is of this very
  // directory (or file): its path and its device and inode.
  auto volume = resolve_path(*o.last, o.follow_path_symlinks);
  if (!volume) return volume.error();
  const std::string& real = volume->real;
  const auto& st = volume->st;
  // A run still going on PATH may not have written its journal yet: the newest journal is not
  // the newest run, and no run of it is undone now. The rollback locks the tree again, by the
  // roots the journal names, before it restores anything.
  if (const std::string dir = run_lock_dir(); !o.dry_run && !dir.empty()) {
    const LockedTree tree{S_ISDIR(st.mode) ? volume->fd.get() : volume->parent.get(), !S_ISDIR(st.mode), st, real};
    auto locked = o.no_wait ? lock_trees(dir, std::span(&tree, 1)) : lock_trees(dir, std::span(&tree, 1), say_waiting);
    if (!locked && locked.error().code == kExitRefused) return locked.error();
  }
  // A journal of this path and inode on another device is of this filesystem remounted when
  // rollback would take it so (find_moved_devices): why not, if it is the newest.
  std::string why_not_remounted;
  std::string why_untold;  // the newest untold one's
  auto remounted = [&](const Journal& j) {
    auto moved = find_moved_devices(j);
    const std::string why = moved ? "" : moved.error().message;
    if (!moved && why_not_remounted.empty()) why_not_remounted = why;  // the newest's
    if (moved && std::any_of(moved->begin(), moved->end(), [&](const MovedDevice& m) {
          return m.from_major == j.roots[0].dev_major && m.from_minor == j.roots[0].dev_minor;
        }))
      return JournalMatch::Remount::kSame;
    // Both birth times known and different: another filesystem was mounted there. Else untold.
    const int64_t then = j.root_btime.empty() ? 0 : j.root_btime[0];
    if (then && st.btime_ns && then != st.btime_ns) return JournalMatch::Remount::kOther;
    if (why_untold.empty()) why_untold = why;
    return JournalMatch::Remount::kUntold;
  };
  auto last = find_last_journal(o.journal_dir,
                                {JournalRoot{real, st.dev_major, st.dev_minor, st.ino}, "", std::nullopt, remounted});
  // One of them may be this volume's newest: say so, not roll back an older run in silence.
  for (const auto& u : last.unreadable) spdlog::warn("not considered for --last: {}", u);
  // A newer run of this directory on a device it is not on now, untold from a remount (no
  // birth time to go by): the older run that matches is not the newest to undo.
  if (!last.path.empty() && !last.undecided.empty())
    return Error{kExitRefused,
                 fmt::format("the newest run on {} ({}) is not undone here: {}. An older run ({}) is of {} as it "
                             "is now; --last does not skip the newer run to undo it: to undo it anyway, give its "
                             "journal (volprep rollback JOURNAL)",
                             real, escape_path(last.undecided),
                             why_untold.empty()
                                 ? "whether it is this filesystem remounted cannot be told; refusing, nothing changed"
                                 : why_untold,
                             escape_path(last.path), real)};
  if (const auto& other = last.other_inode; other && other->ino == st.ino && !why_not_remounted.empty())
    return Error{kExitRefused, fmt::format("the newest run on {} ({}) is not undone here: {}", real,
                                           escape_path(last.other_path), why_not_remounted)};
  if (const auto& other = last.other_inode)
    return Error{kExitRefused, fmt::format("the newest run on {} changed another directory there (device {}:{} inode "
                                           "{}; {} is device {}:{} inode {}): refusing",
                                           real, other->dev_major, other->dev_minor, other->ino, real,
                                           st.dev_major, st.dev_minor, st.ino)};
  if (last.path.empty()) return config_error("no journal of a run on " + real + " in " + o.journal_dir);
  for (const auto& link : volume->followed) spdlog::warn("{}: followed the symlink {}", *o.last, link);
  return last.path;
}

void print_rollback(const RollbackResult& r, const RollbackOptions& o) {
  for (const auto& m : r.moves) {
    if (o.json)
      std::printf("%s\n", nlohmann::json({{"path", m.from}, {"type", "directory"}, {"move", {{"before", m.from}, {"after", m.to}}}})
                              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    else
      std::printf("%s  moved back -> %s\n", escape_path(m.from).c_str(), escape_path(m.to).c_str());
  }
  for (const auto& c : r.entries) {
    const std::string shown = escape_path(c.path);
    std::printf("%s\n", (o.json ? format_change_json(shown, c.change) : format_change(shown, c.change)).c_str());
  }
  for (const auto& n : r.notes) spdlog::warn("{}: {}", escape_path(n.path), n.text);
  report_failures(r.errors, [](const std::string& p) { return escape_path(p); }, o.json);
  if (o.json) {
    nlohmann::json s = {{o.dry_run ? "to_restore" : "restored", r.restored}, {"already", r.already},
                        {"changed_since", r.conflicts}, {"missing", r.missing}, {"failed", r.failed},
                        {"dry_run", o.dry_run}};
    std::printf("%s\n", nlohmann::json({{"summary", s}}).dump().c_str());
  } else {
    std::printf("%s %llu, already as before %llu, changed since the run %llu, missing %llu, failed %llu\n",
                o.dry_run ? "to restore" : "restored", (unsigned long long)r.restored,
                (unsigned long long)r.already, (unsigned long long)r.conflicts, (unsigned long long)r.missing,
                (unsigned long long)r.failed);
  }
  std::fflush(stdout);
}

// The volumes directory a copied volume's original stayed in, for a move of migrate-volumes
// from its copies directory (across filesystems, or --copy), else "": the project's other
// data root (the remapped root's volumes and its parent's).
std::string original_dir_of_copy(const Journal& j, const JournalMove& m) {
  if (!j.header.project.starts_with(kMigrateProject) || !m.from_dir.ends_with(std::string("/") + kCopiesDir)) return "";
  const std::string remapped = j.header.project.substr(kMigrateProject.size());
  const std::string base = remapped.substr(0, remapped.rfind('/'));
  return (m.to_dir == remapped + "/volumes" ? base : remapped) + "/volumes";
}

// A copy set aside while its original is gone (the docs let users remove it after the
// migration): Docker then has the volume nowhere. Said, not mended: the copy is not moved to
// where the original was (it is on another filesystem when the copy was made for that, and an
// original removed may have been removed for good); the user decides, told where it is.
void report_copies_without_original(const Journal& j, const RollbackResult& r, bool dry_run) {
  for (const auto& u : r.moves) {
    auto m = std::find_if(j.moves.begin(), j.moves.end(), [&](const JournalMove& m) {
      return (m.from_dir == "/" ? "" : m.from_dir) + "/" + m.from_name == u.to;
    });
    if (m == j.moves.end()) continue;
    const std::string dir = original_dir_of_copy(j, *m);
    if (dir.empty()) continue;
    const std::string original = dir + "/" + m->to_name;
    struct stat st;
    if (::lstat(original.c_str(), &st) == 0) continue;  // a message only: nothing acts on it
    spdlog::warn("volume {}: its copy {} set aside at {}, and its original {} is not there (removed after the "
                 "migration?): no dockerd has this volume now; to give it back, stop dockerd and move the copy "
                 "there (mv, or cp -a across filesystems), or migrate again", escape_path(m->to_name),
                 dry_run ? "would be" : "is", escape_path(u.to), escape_path(original));
  }
}

// The labels and options of the Docker volumes the run moved (a migrate-volumes journal's 'V'
// records), against the store of the data root each goes back to: kept there, or lost. Only
// of the volumes moved back (or, in a dry run, to be).
void report_docker_labels(const Journal& j, const RollbackResult& r) {
  for (const auto& v : j.docker_volumes) {
    auto m = std::find_if(j.moves.begin(), j.moves.end(), [&](const JournalMove& m) { return m.to_name == v.name; });
    if (m == j.moves.end() || (v.labels.empty() && v.options.empty())) continue;
    const std::string back = (m->from_dir == "/" ? "" : m->from_dir) + "/" + m->from_name;
    if (std::none_of(r.moves.begin(), r.moves.end(), [&](const auto& u) { return u.to == back; })) continue;
    // A copy goes aside; the volume's record is in the store of the data root its original
    // stayed in, not in the copies directory.
    const std::string original = original_dir_of_copy(j, *m), dir = original.empty() ? m->from_dir : original;
    auto store = read_volume_store_at(dir);
    if (!store) spdlog::warn("{}", store.error().message);
    const VolumeRecord* there = nullptr;
    if (store)
      if (auto it = store->volumes.find(v.name); it != store->volumes.end()) there = &it->second;
    const std::string root = dir.substr(0, dir.rfind('/'));
    spdlog::warn("{}", labels_after_move(v, "journaled by " + j.path, there, root.empty() ? "/" : root));
  }
}

// The journal `path`, locked (flock) for this rollback; an empty descriptor where it cannot be
// opened (read_journal then says why), kExitRefused while another rollback holds it.
Result<UniqueFd> hold_journal(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return UniqueFd();
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Error{kExitRefused, path + " is being rolled back by another volprep now; nothing changed"};
    return config_error("cannot lock " + path + ": " + std::strerror(errno));
  }
  return fd;
}

// The journal file a JOURNAL argument names: as given; or, for a bare file name (what
// `journal list` prints after "rollback of") that is not in the current directory, the one
// in the journal directory. Either is opened with the checks of any journal.
std::string journal_named(const std::string& name, const std::string& dir) {
  struct stat st;
  if (name.find('/') != std::string::npos || ::lstat(name.c_str(), &st) == 0 || errno != ENOENT) return name;
  return dir + "/" + name;
}

// The newest rollback in `dir` that undid `j` whole (of its volume root), if any.
std::optional<Journal> rolled_back_by(const std::string& dir, const Journal& j) {
  std::vector<std::string> unreadable;  // journal list and --last name them; not this one's business
  auto all = read_journal_dir(dir, unreadable);
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (undid(*it, base_name(j.path)) == Undid::kWhole && root_of(it->header) == root_of(j.header))
      return std::move(*it);
  return std::nullopt;
}

// Whether a rollback finished with nothing left undone has undone `j` already. Said, and
// undone again: its entries still as it left them go back (a later run with --no-journal that
// changed them so, or nothing), which is what the user asked for; a rollback is one to run
// again (after a kill, or a run killed before it wrote its journal) and must not fail so.
// `newest`: found as the newest run (--last, --project), not named nor the shift it finished.
bool rolled_back_already(const Journal& j, const RollbackOptions& o, bool newest) {
  auto by = rolled_back_by(o.journal_dir, j);
  if (!by) return false;
  const std::string run = fmt::format("{} (started {})", escape_path(j.path), format_utc(j.header.start_ns));
  spdlog::warn("{}{} was rolled back already by {} (started {}){}: undoing it again (its entries a later run changed "
               "as it did go back too)", newest ? "the newest journaled run, " : "", run, escape_path(by->path),
               format_utc(by->header.start_ns),
               newest ? "; no run on it since is journaled (one with --no-journal, or that changed nothing, is not)" : "");
  return true;
}

// The shifts the finished shift `j` finished: a shift run again after one was killed finishes
// it, and journals only what it changed itself; the killed run's journal holds the rest. They
// are the shifts of its tree left unfinished before it started that nothing settled then.
// Empty when that cannot be told (said).
std::vector<Journal> shifts_finished_by(const Journal& j, const std::string& journal_dir) {
  if (!is_shift_run(j.header) || !j.end || !j.header.project.empty()) return {};
  std::vector<UnreadJournal> unread;
  std::vector<Journal> before;
  for (Journal& k : read_journal_dir(journal_dir, unread, JournalRead::kList))
    if (k.header.start_ns < j.header.start_ns) before.push_back(std::move(k));
  auto history = shift_history(before, {}, root_of(j.header), j.header.volume, journal_dir);
  if (!history) {
    spdlog::warn("cannot tell whether {} finished a shift that did not finish: {}", escape_path(j.path),
                 history.error().message);
    return {};
  }
  return std::move(history->unfinished);
}

// Undoes the run of the journal `journal_path` (`newest`: as rolled_back_already).
int rollback_journal(const std::string& journal_path, const RollbackOptions& o, bool newest) {
  const std::string* path = &journal_path;
  // One rollback of a journal at a time: a second one (a retry while the first is slow) would
  // restore every entry again, and say so, and journal it as its own.
  UniqueFd held;
  if (!o.dry_run) {
    auto lock = hold_journal(*path);
    if (!lock) return fail(lock.error());
    held = std::move(*lock);
  }
  // Verify before anything else: format, version, every checksum, every path. The records
  // are not kept: rollback streams them again.
  auto journal = read_journal(*path, JournalRead::kSummary);
  if (!journal) return fail(journal.error());
  // A filesystem remounted on another device since the run: its devices as they are now, from
  // here on (said once).
  auto moved = find_moved_devices(*journal);
  if (!moved) return fail(moved.error());
  for (const auto& m : *moved)
    spdlog::warn("{} was device {}:{} when the run journaled it, now {}:{} (remounted): the same filesystem (its "
                 "root's inode and birth time match); rolling back there",
                 escape_path(m.path), m.from_major, m.from_minor, m.to_major, m.to_minor);
  translate_devices(*journal, device_moves(*moved));
  const Journal& j = *journal;
  const bool again = rolled_back_already(j, o, newest);
  if (j.torn_at && j.torn_by_hole)
    spdlog::warn("{}: torn tail at offset {} ({} bytes ignored): it starts with a hole the disk "
                 "never got, from power lost during a sync; no change recorded after it was made",
                 *path, *j.torn_at, j.torn_bytes);
  else if (j.torn_at)
    spdlog::warn("{}: torn tail at offset {} ({} bytes after the last complete record, ignored): "
                 "the run was interrupted", *path, *j.torn_at, j.torn_bytes);
  else if (!j.end)
    spdlog::warn("{}: the run was interrupted before its end record", *path);
  spdlog::info("rolling back {} records of {} on {}", j.changes + j.moves.size(), base_name(*path), j.header.volume);
  // Whose compose project this is: said every time, the name alone being anyone's.
  if (j.header.project_dir)
    spdlog::warn("undoing the run of the project \"{}\" in {}: {}", j.header.project, described(j.header.project_dir),
                 base_name(*path));

  std::unique_ptr<JournalWriter> own;
  RollbackConfig config;
  config.force = o.force;
  config.dry_run = o.dry_run;
  config.cross_filesystems = o.cross_filesystems;
  config.keep_restored = o.json;
  config.threads = int(o.threads);
  config.lock_dir = run_lock_dir();
  if (!o.no_wait) config.lock_waiting = say_waiting;
  if (!o.dry_run && !o.no_journal) {
    // A refused rollback writes no journal of its own.
    if (auto roots = check_journal_roots(j); !roots) return fail(roots.error());
    // Lazy, as a run's: created with the first record, so a rollback that restores nothing
    // leaves none; each record is still durable before the change it describes.
    auto w = JournalWriter::create(o.journal_dir, o.own_journal.value_or(""), rollback_header(j, o.command_line),
                                   /*lazy=*/true);
    if (!w) {
      spdlog::error("{}; nothing changed", w.error().message);
      return w.error().code;
    }
    own = std::move(*w);
    config.journal = own.get();
  }
  auto result = rollback(j, config);
  if (!result) return fail(result.error());
  for (const auto& [root, concurrency] : result->concurrency) spdlog::info("{}: {}", root, concurrency);
  print_rollback(*result, o);
  report_docker_labels(j, *result);
  report_copies_without_original(j, *result, o.dry_run);
  if (!result->stopped.empty()) {
    spdlog::error("stopped: {}", result->stopped);
    return kExitPartial;
  }
  if (own) {
    // Entries left alone count as not done: the run is then only partly rolled back.
    JournalEnd end{j.changes + j.moves.size(), result->restored, result->failed + result->conflicts, 0};
    // One that restored nothing writes its journal, with no entries, only to mark the run
    // rolled back (journal list; prepare's unfinished runs) when no rollback did yet.
    if (auto r = own->finish(end, /*even_empty=*/!again); !r) spdlog::error("{}", r.error().message);
  }
  if (result->failed) return kExitPartial;
  if (result->conflicts) return kExitFound;
  return kExitOk;
}

}  // namespace

int run_rollback(const RollbackOptions& o) {
  const bool by_project = o.project || o.project_directory;
  if (int(o.journal.has_value()) + int(o.last.has_value()) + int(by_project) != 1) {
    spdlog::error("give one of a JOURNAL, --last PATH or --project NAME (and/or --project-directory DIR)");
    return kExitUsage;
  }
  auto path = o.journal ? Result<std::string>(journal_named(*o.journal, o.journal_dir)) : o.last ? last_journal_of(o) : last_journal_of_project(o);
  if (!path) return fail(path.error());
  // A shift finished by running it again is one shift in two journals: --last undoes both,
  // the newest first; a journal named is undone alone, and what else stands is said.
  std::vector<Journal> finished;
  if (auto j = read_journal(*path, JournalRead::kList); j) finished = shifts_finished_by(*j, o.journal_dir);
  // One rolled back since (by name) stands no more.
  std::erase_if(finished, [&](const Journal& k) { return rolled_back_by(o.journal_dir, k).has_value(); });
  if (!o.last) {
    const int rc = rollback_journal(*path, o, /*newest=*/!o.journal);
    for (const Journal& k : finished)
      spdlog::warn("{} finished the shift that did not finish in {}: that one's changes stand (volprep rollback {} "
                   "undoes them; rollback --last {} undoes both)",
                   escape_path(*path), escape_path(k.path), escape_path(k.path), escape_path(k.header.volume));
    return rc;
  }
  // Each rollback writes a journal of its own: one file named cannot hold two.
  if (o.own_journal && !finished.empty()) {
    spdlog::error("--journal names one file, and {} finished the shift that did not finish in {}: this rollback "
                  "writes a journal for each; give no --journal (or roll each back by name); nothing changed",
                  escape_path(*path), escape_path(finished.front().path));
    return kExitUsage;
  }
  int rc = rollback_journal(*path, o, /*newest=*/true);
  // Entries left alone (exit 1) do not stop it: the older journal's are its own. A failure does.
  for (auto it = finished.rbegin(); it != finished.rend(); ++it) {
    if (rc != kExitOk && rc != kExitFound) {
      spdlog::error("{} finished the shift that did not finish in {}: not rolled back, its changes stand (volprep "
                    "rollback {} undoes them)",
                    escape_path(*path), escape_path(it->path), escape_path(it->path));
      continue;
    }
    spdlog::warn("{} finished the shift that did not finish in {}: undoing that one too", escape_path(*path),
                 escape_path(it->path));
    const int older = rollback_journal(it->path, o, /*newest=*/false);
    if (older != kExitOk && (rc == kExitOk || older != kExitFound)) rc = older;
  }
  return rc;
}

int run_journal_list(const JournalOptions& o) {
  std::vector<std::string> unreadable;
  auto all = list_journals(o.journal_dir, unreadable);
  for (const auto& u : unreadable) spdlog::warn("{}", u);
  for (const auto& l : all) {
    const auto& j = l.journal;
    if (o.json) {
      nlohmann::json x = {{"journal", j.path}, {"volume", j.header.volume},
                          {"started", format_utc(j.header.start_ns)}, {"entries", j.changes},
                          {"status", l.status}};
      if (!j.header.project.empty()) x["project"] = j.header.project;
      if (j.header.project_dir) x["project_directory"] = j.header.project_dir->volume;
      std::printf("%s\n", x.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::string project;
      if (!j.header.project.empty())
        project = "  project " + escape_path(j.header.project) + " in " +
                  (j.header.project_dir ? escape_path(j.header.project_dir->volume) : std::string("(not recorded)"));
      std::printf("%s  %s  %zu entries  %s%s  %s\n", format_utc(j.header.start_ns).c_str(),
                  escape_path(j.header.volume).c_str(), size_t(j.changes), escape_control(l.status).c_str(),
                  project.c_str(), escape_path(j.path).c_str());
    }
  }
  return kExitOk;
}

int run_journal_show(const JournalOptions& o) {
  auto journal = read_journal(journal_named(o.show, o.journal_dir));
  if (!journal) return fail(journal.error());
  const Journal& j = *journal;
  std::printf("# volume %s (device %u:%u inode %llu)\n", escape_path(j.header.volume).c_str(),
              j.header.dev_major, j.header.dev_minor, (unsigned long long)j.header.ino);
  std::printf("# started %s by volprep %s: %s\n", format_utc(j.header.start_ns).c_str(),
              escape_path(j.header.volprep_version).c_str(), escape_path(j.header.command_line).c_str());
  if (!j.header.rollback_of.empty()) std::printf("# rollback of %s\n", escape_path(j.header.rollback_of).c_str());
  if (!j.header.project.empty())
    std::printf("# project %s in %s\n", escape_path(j.header.project).c_str(), described(j.header.project_dir).c_str());
  for (size_t i = 1; i < j.roots.size(); ++i)
    std::printf("# volume %s (device %u:%u inode %llu)\n", escape_path(j.roots[i].volume).c_str(),
                j.roots[i].dev_major, j.roots[i].dev_minor, (unsigned long long)j.roots[i].ino);
  for (const auto& m : j.moves)
    std::printf("# moved %s -> %s\n", escape_path(m.from_dir + "/" + m.from_name).c_str(),
                escape_path(m.to_dir + "/" + m.to_name).c_str());
  for (const auto& v : j.docker_volumes)
    std::printf("# docker volume %s (driver %s): %s\n", escape_path(v.name).c_str(), escape_path(v.driver).c_str(),
                describe_labels(v).c_str());
  std::printf("# status %s%s\n", j.end ? "complete" : "interrupted",
              j.torn_at ? (", torn tail at offset " + std::to_string(*j.torn_at) +
                           (j.torn_by_hole ? " (a hole from a crash during a sync)" : "")).c_str() : "");
  // By root, then path. A single-file volume's records are named relative to its directory.
  std::vector<std::tuple<uint32_t, std::string, const JournalRecord*>> sorted;
  std::vector<size_t> per_root(j.roots.size());
  for (const auto& r : j.records) {
    sorted.emplace_back(r.root, path_of(j, r), &r);
    ++per_root[r.root];
  }
  std::stable_sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a)) < std::tie(std::get<0>(b), std::get<1>(b));
  });
  for (const auto& [root, path, r] : sorted) {
    const std::string& volume = j.roots[root].volume;
    const bool single = per_root[root] == 1 && !path.empty() && volume.ends_with("/" + path);
    std::printf("%s\n", format_change(shown(volume, path, single), change_of(*r)).c_str());
  }
  if (j.end)
    std::printf("scanned %llu, changed %llu, failed %llu\n", (unsigned long long)j.end->scanned,
                (unsigned long long)j.end->changed, (unsigned long long)j.end->failed);
  return kExitOk;
}

}  // namespace volprep
