// The driver core: what every command that runs policies over volumes does around the engine
// (engine.h), in one place: the descriptor limit and thread count, the journal (its header,
// created with the first change, finished at the end), the progress line, the report
// of each run (the dry-run diff or JSON Lines, notes, errors) and the summary, and the exit
// status. A command resolves what it needs (a mapping, a policy per volume, opened volumes)
// and hands the jobs here.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>

#include "volprep/engine.h"
#include "volprep/journal.h"

namespace volprep {

// One volume root and the policy run over it (compose gives each bind mount its own).
struct VolumeJob {
  const VolumeRoot* volume = nullptr;  // null: a job that only reports its heading
  std::string heading;       // printed before the job's lines (compose: service and mount)
  std::string heading_json;  // the same as a JSON object, with --json
  const Policy* policy = nullptr;
  RunConfig config;  // `journal` and `journaled` are the driver's to set
  // A real run's step before the job's run, given its journal (null with --no-journal) once
  // every record of the previous job is written and this job's root is started: a rename
  // journaled (JournalWriter::record_move) and made, say. An error stops the command there.
  std::function<Result<bool>(JournalWriter* journal)> before;
};

struct DriverOptions {
  bool dry_run = false;
  bool check = false;  // a dry run that exits kExitFound when anything would change
  bool json = false;
  bool quiet = false;
  unsigned threads = 0;  // 0: all cores
  bool no_journal = false;
  bool no_wait = false;  // refuse, not wait, while another run changes a tree (lock_volumes)
  std::optional<std::string> journal_file;  // one job only
  std::string journal_dir = default_journal_dir();
  // Every journal's header: maps, command line. With a project (compose), the run writes one
  // journal, a root per job, that one rollback undoes whole; else one journal per job.
  JournalHeader header;
  // Entries the command counted before the run, in its summary: those of the trees a
  // `shift --check` found shifted already, which it does not walk again.
  Summary counted;
};

// Runs every job in turn and reports; returns the exit status. A run that stops (its journal
// cannot be written) ends the command there. A real run first locks every tree (lock_volumes).
int run_volumes(std::span<const VolumeJob> jobs, const DriverOptions& options);

// A real run locks `volumes` for the rest of the process, all at once (run_lock.h), before it
// reads anything it will act on (a shift: its journals, an unfinished run among them). While
// another run changes one of them or a tree they are in or hold, it says so and waits for it
// to end, then stats their roots again; with --no-wait it returns kExitRefused, said. kExitOk
// to go on. A lock file that cannot be used is warned of, and the run goes on. A dry run locks
// nothing and warns of a tree another run is changing now.
struct LockAlso {
  bool cross_filesystems = false;         // the mounts below each root, each a tree of the run
  std::vector<std::string> destinations;  // where it makes or moves something: locked shared
};
int lock_volumes(std::span<VolumeRoot* const> volumes, const DriverOptions& options, const LockAlso& also = {});
// What a run says once while it waits for another run on its trees (without --no-wait).
void say_waiting(const std::string& shown);

// Failed entries on stderr, the first 20 (-v: all), then how many more; with `json_lines`,
// each as a JSON line on stdout too. `show` gives a path as the user reads it.
void report_failures(const std::vector<Note>& errors, const std::function<std::string(const std::string&)>& show,
                     bool json_lines);

}  // namespace volprep
