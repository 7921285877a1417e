// One changing run per tree at a time. Two runs on one tree step on each other: a second
// shift takes the first, still going, for one that did not finish, and shifts again what the
// first shifts after it looked; a rollback undoes a run that goes on changing behind it. So a
// run that changes a tree (prepare, compose, shift, rollback) holds, until it exits, a lock of
// the tree's root: an open file description lock (F_OFD_SETLK) on one byte of the lock file
// in the journal directory, at an offset made of the root's device and inode. The kernel
// drops it when the process ends, however it ends (kill -9 too): no stale lock is left. The
// tree's owner cannot take it or hold it: the journal directory is this user's and no one
// else may write there (open_journal_dir), and the lock file is made 0600.
#pragma once

#include <string>

#include "volprep/error.h"
#include "volprep/fd.h"

namespace volprep {

inline constexpr const char* kRunLockFile = ".runs.lock";

// Locks the tree whose root entry is `st` for this process until it exits, in the lock file
// of `journal_dir` (both made if missing; without `create`, a missing directory locks nothing
// and returns false: a run that writes no journal makes no journal directory). kExitRefused,
// naming `shown`, while another process holds it; kExitConfig when the lock file cannot be
// used (the directory cannot be made, or is not this user's alone).
Result<bool> lock_tree(const std::string& journal_dir, const EntryStat& st, const std::string& shown,
                       bool create = true);

// Whether another process holds that lock now, for a dry run to say its plan is of a tree
// changing under it. Makes nothing; false when there is no lock file to ask.
bool tree_locked_elsewhere(const std::string& journal_dir, const EntryStat& st);

// "PATH is being changed by another volprep run now ...": the refusal's words, for a caller
// that reports a stop rather than an error.
std::string tree_locked_message(const std::string& shown);

}  // namespace volprep
