// Rollback: put every entry a journal recorded back into its state before the run, and every
// entry it renamed back under its old name. Verifies first (journal checksums, the volume
// roots' identity), then streams the journal from its end, one segment at a time (see
// JournalSegment): a root's records restored in parallel through its own journal, touching
// only the fields still in the state the run left them in; a rename undone on its own.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "volprep/apply.h"
#include "volprep/id_map.h"
#include "volprep/journal.h"
#include "volprep/prepare.h"

namespace volprep {

struct RollbackConfig {
  bool force = false;    // also restore entries changed by someone else since the run
  bool dry_run = false;  // only say what would be restored
  // Enter mounts below the volume root (a run with --cross-filesystems did); else an entry
  // reached through one is left alone, and nothing is asked of its filesystem.
  bool cross_filesystems = false;
  // Keep every restored entry in RollbackResult::entries (--json prints them); a dry run
  // always keeps what it would restore.
  bool keep_restored = false;
  JournalWriter* journal = nullptr;  // the rollback's own journal
  // Requests in flight (--threads); 0 chooses by each root's filesystem, as a run does (one
  // per core; 64 on a network or FUSE filesystem, where every call waits on a server).
  int threads = 0;
  // The directory of the lock file runs lock their trees in (run_lock.h): every root is
  // locked before anything is restored. While another run changes one, `lock_waiting` is
  // called once and the rollback waits for that run to end; without it, the rollback is
  // refused (kExitRefused). Empty: no lock.
  std::string lock_dir;
  std::function<void(const std::string& shown)> lock_waiting;
};

// A rename undone (or to undo, in a dry run): from where the entry is now back to where it was.
struct UndoneMove {
  std::string from, to;  // absolute paths, raw bytes
};

struct RollbackResult {
  uint64_t restored = 0;   // to restore, in a dry run
  uint64_t already = 0;    // already in the state before the run
  uint64_t conflicts = 0;  // changed since the run: left alone (without --force)
  uint64_t missing = 0;    // gone, or another inode under that name now
  uint64_t failed = 0;
  // What was restored (with keep_restored) or would be (dry run): absolute paths, raw bytes,
  // sorted.
  std::vector<RecordedChange> entries;
  std::vector<UndoneMove> moves;  // in the order undone
  std::vector<Note> notes, errors;  // absolute paths, raw bytes, sorted
  // Per root restored: its path and the concurrency it ran with (Concurrency::describe()).
  std::vector<std::pair<std::string, std::string>> concurrency;
  std::string stopped;
};

// The volume root `root`, opened without following symlinks and checked to be the same
// directory (device and inode) the run changed. kExitRefused if it is not.
Result<UniqueFd> open_journal_root(const JournalRoot& root, bool& single_file);

// How the entry `rel` (relative to `root`, "" the root itself) is shown: below its volume, or
// for a single-file volume below the file's directory. Absolute, raw bytes.
std::string journal_path(const JournalRoot& root, bool single_file, std::string_view rel);

// Where the root of the records of segment `at` of `journal` is now: at its recorded path; or
// where the journal's renames put it: back where it was once rollback undid the renames
// journaled before those records (a second rollback), or still renamed while rollback has not
// undone those journaled after them (a dry run, a rename back left alone). The same directory
// (device and inode) wherever it is found; else the error of its recorded path.
struct FoundRoot {
  UniqueFd fd;  // as open_journal_root returns it
  bool single_file = false;
  JournalRoot root;  // where it is now
};
Result<FoundRoot> locate_root(const Journal& journal, size_t at);

// A filesystem's device number is not kept across mounts (btrfs subvolumes, NFS and FUSE get
// an anonymous one at mount time; loop and device-mapper minors go in activation order). A
// journaled device is taken to be another device now only on the word of a root of the
// journal: found at its path on that device with the inode and the birth time the journal
// holds (no owner of a tree can set a birth time, or choose an inode number).
struct DeviceAnchor {
  std::string path;                       // a root of the journal
  uint32_t dev_major = 0, dev_minor = 0;  // as journaled
  uint64_t ino = 0;
  int64_t btime_ns = 0;                   // journaled (0: none recorded)
  std::optional<EntryStat> now;           // what is at `path` now (none: nothing to ask)
};
struct MovedDevice {
  std::string path;  // the root that tells
  uint32_t from_major = 0, from_minor = 0, to_major = 0, to_minor = 0;
};
// Decides, from what is at each root now, which journaled devices are which devices now (none
// where nothing moved). A root with the inode it had but on another device, without a birth
// time on both sides or with another one, is refused (kExitRefused) saying why; a root with
// another inode is left to locate_root to refuse. Refused too: one journaled device found on
// two devices, two (of `journaled`, every device the journal names) on one.
Result<std::vector<MovedDevice>> match_moved_devices(std::span<const DeviceAnchor> anchors,
                                                     const std::set<uint64_t>& journaled);
// match_moved_devices on every root of `j` (read with kSummary or kAll) as it is at its path.
Result<std::vector<MovedDevice>> find_moved_devices(const Journal& j);
DeviceMoves device_moves(std::span<const MovedDevice> moved);

// Checks that every root of the journal is found (locate_root): kExitRefused if one is no
// longer the tree the run changed.
Result<bool> check_journal_roots(const Journal& journal);

// Undoes (or, in a dry run, checks it could undo) the rename `move`, counting it into `out`
// (restored, already, conflicts, missing or failed, with a note or error; `stopped` if the
// rollback's own journal cannot record it).
void undo_move(const JournalMove& move, const RollbackConfig& config, RollbackResult& out);

// `journal` comes from read_journal (kSummary is enough): its records are streamed again
// from its file, and must be the records read then.
Result<RollbackResult> rollback(const Journal& journal, const RollbackConfig& config);

// What rollback makes of an entry the journal recorded, field by field (owner, mode, each
// xattr), given the recorded inode as it is now (`now`; `xattrs_now` holds each of rec.xattrs
// as it is now, nullopt where absent): kAlready, in its state before the run; kRestore, as the
// run left it (set-id bits or kept capabilities may be missing after a kill between a chown
// and putting them back), or as a killed rollback left it; kChanged, someone changed it since.
enum class Restore { kAlready, kRestore, kChanged };
struct RestoreFields {
  Restore owner = Restore::kAlready, mode = Restore::kAlready;
  std::vector<Restore> xattrs;  // one per rec.xattrs
  // kChanged if any field is, else kRestore if any is, else kAlready.
  Restore overall() const;
  // The fields that are kChanged: "owner", "mode", xattr names.
  std::vector<std::string> changed(const JournalRecord& rec) const;
};
RestoreFields classify_fields(const JournalRecord& rec, const EntryStat& now,
                              std::span<const std::optional<std::string>> xattrs_now);
inline Restore classify_restore(const JournalRecord& rec, const EntryStat& now,
                                std::span<const std::optional<std::string>> xattrs_now) {
  return classify_fields(rec, now, xattrs_now).overall();
}

// The change that restores the fields of `rec` that need it (kRestore, and kChanged with
// `force`) from `now` to their state before the run; every other field stays as it is now.
// Capabilities are in it whenever the owner changes (the kernel drops them on chown).
Change restore_change(const JournalRecord& rec, const EntryStat& now,
                     std::span<const std::optional<std::string>> xattrs_now, const RestoreFields& fields,
                     bool force);

// ACLs the run did not set are not journaled (as before the run, unless someone set one
// since). The container owns an entry until rollback takes it back, and can give itself one:
// a named entry for an id the run gave it keeps its access afterwards (a default ACL: to every
// file made there later). The ids the run gave a container are the host ids of the journal's
// maps (`uids`, `gids`; with an empty map, the record's owner after the run); rollback takes
// the entry back from it when the record's owner after the run is one and its owner before is
// not. These are the named entries of the ACL `raw` (an ACL xattr's value) such an id has, as
// "u:501000:rwx" ("(unreadable)" for a value that is no ACL); none if the entry is not taken
// back.
std::vector<std::string> acl_entries_kept_by_container(const std::string& raw, const JournalRecord& rec,
                                                       const IdMap& uids, const IdMap& gids);

// The header a rollback's own journal starts with.
JournalHeader rollback_header(const Journal& journal, const std::string& command_line);

}  // namespace volprep
