// What the journal directory says of the runs of a command that is not idempotent on one
// target (`shift` on a volume, `migrate-volumes` on a Docker data root), read before it changes
// anything: the runs left unfinished (a rerun of shift finishes them), and the forward run
// whose map a `--reverse` takes once remapping is off. A journal that cannot be read far enough
// to know whether it is an unfinished run on the target refuses the run, since going on might
// shift the entries that run changed a second time.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "volprep/error.h"
#include "volprep/id_map.h"
#include "volprep/journal.h"
#include "volprep/remap.h"

namespace volprep {

// Whether a journal's run was a `command` (shift, migrate-volumes), and whether it ran
// --reverse: what the header says (version 5), else what its command line does (older
// journals).
bool is_run_of(const JournalHeader& h, std::string_view command);
bool is_reverse_run(const JournalHeader& h);
// From a command line: `command` its first word after the program and its global flags;
// --reverse as CLI11 reads it ("--reverse", "--reverse=true", "--reverse=0", ...).
bool is_run_of(const std::string& command_line, std::string_view command);
bool is_reverse_run(const std::string& command_line);
// Whether a command line gives `option` ("--volume" or "--volume=VALUE") before any "--".
bool gives_option(const std::string& command_line, std::string_view option);
inline bool is_shift_run(const JournalHeader& h) { return is_run_of(h, "shift"); }
inline bool is_shift_run(const std::string& command_line) { return is_run_of(command_line, "shift"); }

// Which runs a history is of: one command's, on one target.
struct RunsOf {
  std::string command;  // as headers and command lines name it: "shift", "migrate-volumes"
  std::string noun;     // a run of it, in messages: "shift", "migration"
  std::string given;    // the target, as the command line names it (or as found)
  std::string target;   // the target in messages: "this tree", "this data root"
  std::function<bool(const JournalHeader&)> on_target;  // a run of the command on it
  // A run that chose part of the target only (migrate-volumes --volume): alone, its reverse
  // does not use up the forward run. Empty: every run is of the whole target.
  std::function<bool(const JournalHeader&)> partial = {};
  // The parts of the target a run took (the volumes a migration moved, by name): reverses of
  // parts use up a forward run once together they took back every part it took.
  std::function<std::vector<std::string>(const Journal&)> parts = {};
};
// A shift of the volume root `volume`, named `given` on the command line.
RunsOf shifts_of(const JournalRoot& volume, const std::string& given);

struct RunHistory {
  // Runs on the target left unfinished (no end record: killed, or stopped; or failed
  // entries counted), oldest first, that nothing settled since: no finished rollback undid
  // it, and no later run on the target finished and stands (a shift finishes the ones left
  // unfinished, or is refused, so a later one that finished finished them too).
  std::vector<Journal> unfinished;
  // The newest finished forward run on the target that no finished rollback undid, unless
  // finished reverse runs through the same map came after it and took back all of it (one of
  // the whole target, or partial ones that together took every part it took): that used it up.
  std::optional<Journal> forward;
  // The newest finished reverse run of the whole target that no finished rollback undid and
  // no finished forward run came after: the target is shifted back already.
  std::optional<Journal> back;
};
using ShiftHistory = RunHistory;

// The history of the runs `runs` picks, from a journal directory as read_journal_dir(kList)
// reads it. Refused (kExitRefused, naming the file, the reason and what to do) when a journal
// in `unread` might be an unfinished one of them: its header could not be read, or it could
// and names such a run that did not end.
Result<RunHistory> run_history(std::span<const Journal> journals, std::span<const UnreadJournal> unread,
                               const RunsOf& runs, const std::string& journal_dir);
// The history of the shifts of `volume` (named `given` on the command line).
Result<ShiftHistory> shift_history(std::span<const Journal> journals, std::span<const UnreadJournal> unread,
                                   const JournalRoot& volume, const std::string& given,
                                   const std::string& journal_dir);

// The refusal for a shift of the volume (named `given`) that did not finish and whose journal
// at `path` cannot be read (`reason`).
Error unreadable_unfinished_shift(const std::string& given, const std::string& path, const JournalHeader& header,
                                  const std::string& reason, const std::string& journal_dir);

// A PATH of `shift --reverse` (the data root of `migrate-volumes --reverse`) and its forward
// run (nullptr: none stands).
struct ForwardShift {
  std::string given;
  const Journal* journal = nullptr;
};

// The map a shift --reverse goes through, and where it came from.
struct ReverseMap {
  IdMap uid_map, gid_map;
  std::string source;                 // the options' source, or "the forward shift's journal FILE of DATE"
  std::vector<std::string> warnings;  // forward runs that ran through another map
};

// Whether the map of `m` is one a shift can go through: remapping on, neither map the identity.
bool shifts_ids(const Mapping& m);

// The choice: the options' map (`options`: what the remap options resolve to, explicit or
// the active remap) when it shifts ids, each forward shift's journal with another map warned
// of; else, unless `named` (the options name a map themselves: --map, --userns-remap, ...,
// which then is an error), the map of the PATHs' forward shifts, which must all have one and
// agree. Errors name the PATH and what to give. `noun` names the forward runs in messages:
// "shift", "migration".
Result<ReverseMap> choose_reverse_map(const Mapping& options, bool named, std::span<const ForwardShift> forwards,
                                      const std::string& journal_dir, const std::string& noun = "shift");

}  // namespace volprep
