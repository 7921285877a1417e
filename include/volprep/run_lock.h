// One changing run per tree at a time. Two runs on one tree step on each other: a second
// shift takes the first, still going, for one that did not finish, and shifts again what the
// first shifts after it looked; a prepare inside a shifting tree is undone by the shift that
// reaches it later; a rollback undoes a run that goes on changing behind it. So a run that
// changes trees (prepare, compose, shift, migrate-volumes, rollback) locks them all at once,
// before it reads anything it acts on, and holds the locks until it exits: open file
// description locks (F_OFD_SETLK) on bytes of one lock file, each byte standing for a
// directory's device and inode. Each root is locked exclusively, and each directory above it
// (found by "..", by descriptor) shared: a run on a tree inside another run's tree, or holding
// one, conflicts with it; runs on two trees side by side do not. The kernel drops the locks
// when the process ends, however it ends (kill -9 too): no stale lock is left.
//
// The lock file is kRunLockDir/runs.lock for root, whatever the journal options (a run with
// --no-journal or another --journal-dir is seen too), made 0600 in a directory only root may
// write: the trees' owners cannot take the locks or hold a run off with them. Another user's
// runs lock in $XDG_RUNTIME_DIR/volprep, or not at all without it: such a run changes only
// what that user may change anyway.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>

#include "volprep/error.h"
#include "volprep/fd.h"

namespace volprep {

inline constexpr const char* kRunLockDir = "/run/volprep";
inline constexpr const char* kRunLockFile = "runs.lock";

// The directory of the lock file for this user (empty: none, see above).
std::string run_lock_dir();

// A tree a run changes: its root entry `st`; `dir_fd` is the root directory itself, or for a
// single file the directory it is in; `shown` names it in messages. `shared`: a directory the
// run makes something in or moves something into (a missing Compose source's, a volume's
// target), locked shared as the directories above a tree are: a run on a tree holding it
// conflicts, one beside it in that directory does not.
struct LockedTree {
  int dir_fd = -1;
  bool single_file = false;
  EntryStat st;
  std::string shown;
  bool shared = false;
};

// The deepest directory of the absolute `path` that exists and is reached from "/" through no
// symlink (the path itself, or the nearest one above it), opened to be locked shared (LockedTree::shared) for a run that will make or move something
// there; nullopt if not even "/" can be opened. For the lock only: the run opens what it acts
// on by its own rules.
struct HeldDir {
  UniqueFd fd;
  LockedTree tree;
};
std::optional<HeldDir> dir_to_lock_shared(const std::string& path);

// Locks every tree of `trees` for this process until it exits, in `lock_dir`'s lock file (both
// made if missing): each root exclusively, each directory above one (not itself a root of
// `trees`) shared; all or none. While another process holds a conflicting lock: without
// `waiting`, kExitRefused naming the tree; with it, `waiting` is called once with that tree's
// name and the locks are tried again, a few times a second, until they are all free (a run
// that waits never holds some of them meanwhile, so two waiting runs cannot deadlock).
// kExitConfig when the lock file cannot be used (the directory is not this user's alone, say).
// Again with the same trees: true, as before.
Result<bool> lock_trees(const std::string& lock_dir, std::span<const LockedTree> trees,
                        const std::function<void(const std::string& shown)>& waiting = {});

// The first of `trees` another process holds a conflicting lock of now, for a dry run to say
// its plan is of a tree changing under it; -1 if none (or no lock file). Makes nothing.
int tree_locked_elsewhere(const std::string& lock_dir, std::span<const LockedTree> trees);

// "PATH is being changed by another volprep now (...)": what a refusal and a wait say first.
std::string tree_busy(const std::string& shown);
// The refusal's words: tree_busy, then ": let it finish, then run this again".
std::string tree_locked_message(const std::string& shown);

}  // namespace volprep
