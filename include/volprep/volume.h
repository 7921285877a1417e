// Opening a volume root safely: resolve the command-line path once, refuse system trees and
// pseudo filesystems, and hold the root by descriptor from then on.
#pragma once

#include <string>
#include <vector>

#include "volprep/error.h"
#include "volprep/fd.h"

namespace volprep {

struct VolumeRoot {
  std::string given;    // as on the command line
  std::string real;     // the resolved absolute path, for messages
  std::string display;  // how paths below it are printed ("jenkins_home")
  UniqueFd fd;          // the root directory; for a single-file PATH, its parent directory
  std::string file_name;  // a single-file PATH: its name in `fd`; empty for a directory
  EntryStat st;         // the root entry itself
  int64_t fs_magic = 0;
  std::vector<std::string> followed;  // symlinks followed resolving PATH: "LINK -> TARGET"

  // How the entry `rel` (relative to the root, raw bytes; "" or "." the root itself) is shown
  // on one line: below `display`, escaped, a path over 16 KiB summarized.
  std::string show(std::string_view rel) const;
};

struct VolumeSafety {
  bool allow_system_path = false;
  bool follow_path_symlinks = false;  // also symlinks in PATH that others than root could change
  std::vector<std::string> refused_exactly;  // e.g. the Docker data root
};

// A command-line PATH resolved once, by descriptor, the way systemd's chase() does: from "/"
// (or the current directory's path), one component at a time with O_PATH|O_NOFOLLOW, ".."
// back to the directory it came from. A symlink on the way is followed only if root owns it
// and its directory and no one else may write there (/var/run -> /run), or with
// `follow_any_symlink`; else kExitRefused, naming it. A trailing slash changes nothing.
struct ResolvedPath {
  UniqueFd fd;          // O_PATH, the entry PATH names
  UniqueFd parent;      // O_PATH, the directory it was found in (invalid for "/")
  std::string name;     // its name there ("" for "/")
  std::string real;     // absolute, without symlinks, "." or ".."
  EntryStat st;         // of fd
  std::vector<std::string> followed;  // "LINK -> TARGET" for each symlink followed
};
Result<ResolvedPath> resolve_path(const std::string& path, bool follow_any_symlink);

// Errors: kExitRefused for a refused path, kExitUsage for a path that does not exist.
Result<VolumeRoot> open_volume(const std::string& path, const VolumeSafety& safety);

// Every PATH of a command, opened and vetted before anything changes; the first refusal wins.
Result<std::vector<VolumeRoot>> open_volumes(const std::vector<std::string>& paths,
                                             const VolumeSafety& safety);

// Why `real` (an absolute, resolved path) is refused as a volume root, or "".
std::string refusal_reason(const std::string& real, const VolumeSafety& safety);

// Why someone other than root could change what `path` names, or "" if only root can: the
// entry and every directory above it owned by root and writable by neither group nor others
// (a sticky directory excepted), and through its symlinks (root's too) where they lead. The
// rule for a program root runs, and for a file root trusts.
std::string why_not_root_only(const std::string& path);

}  // namespace volprep
