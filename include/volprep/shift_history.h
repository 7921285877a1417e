// What the journal directory says of a volume's shifts, read before a shift changes anything:
// the shifts of it left unfinished (a rerun finishes them), and the forward shift whose map a
// `shift --reverse` takes once remapping is off. A shift is not idempotent: a journal that
// cannot be read far enough to know whether it is an unfinished shift of the volume refuses
// the shift, since going on might shift the entries that run changed a second time.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "volprep/error.h"
#include "volprep/id_map.h"
#include "volprep/journal.h"
#include "volprep/remap.h"

namespace volprep {

// Whether a journal's run was a `shift`, and whether it ran --reverse: what the header says
// (version 5), else what its command line does (older journals).
bool is_shift_run(const JournalHeader& h);
bool is_reverse_run(const JournalHeader& h);
// From a command line: `shift` its first word after the program and its global flags;
// --reverse as CLI11 reads it ("--reverse", "--reverse=true", "--reverse=0", ...).
bool is_shift_run(const std::string& command_line);
bool is_reverse_run(const std::string& command_line);

struct ShiftHistory {
  // Shifts of the volume left unfinished (no end record: killed, or stopped; or failed
  // entries counted), oldest first, that nothing settled since: no finished rollback undid
  // it, and no later shift of the volume finished and stands (a shift finishes the ones
  // left unfinished, or is refused, so a later one that finished finished them too).
  std::vector<Journal> unfinished;
  // The newest finished forward shift of the volume that no finished rollback undid, unless
  // a finished reverse shift of it through the same map came after it (that used it up).
  std::optional<Journal> forward;
};

// The history of `volume` (named `given` on the command line) from a journal directory as
// read_journal_dir(kList) reads it. Refused (kExitRefused, naming the file, the reason and
// what to do) when a journal in `unread` might be an unfinished shift of the volume: its
// header could not be read, or it could and names a shift of this volume that did not end.
Result<ShiftHistory> shift_history(std::span<const Journal> journals, std::span<const UnreadJournal> unread,
                                   const JournalRoot& volume, const std::string& given,
                                   const std::string& journal_dir);

// The refusal for a shift of the volume (named `given`) that did not finish and whose journal
// at `path` cannot be read (`reason`).
Error unreadable_unfinished_shift(const std::string& given, const std::string& path, const JournalHeader& header,
                                  const std::string& reason, const std::string& journal_dir);

// A PATH of `shift --reverse` and its forward shift (nullptr: none stands).
struct ForwardShift {
  std::string given;
  const Journal* journal = nullptr;
};

// The map a shift --reverse goes through, and where it came from.
struct ReverseMap {
  IdMap uid_map, gid_map;
  std::string source;                 // the options' source, or "the forward shift's journal FILE of DATE"
  std::vector<std::string> warnings;  // forward shifts that ran through another map
};

// Whether the map of `m` is one a shift can go through: remapping on, neither map the identity.
bool shifts_ids(const Mapping& m);

// The choice: the options' map (`options`: what the remap options resolve to, explicit or
// the active remap) when it shifts ids, each forward shift's journal with another map warned
// of; else, unless `named` (the options name a map themselves: --map, --userns-remap, ...,
// which then is an error), the map of the PATHs' forward shifts, which must all have one and
// agree. Errors name the PATH and what to give.
Result<ReverseMap> choose_reverse_map(const Mapping& options, bool named, std::span<const ForwardShift> forwards,
                                      const std::string& journal_dir);

}  // namespace volprep
