// A directory tree copied by descriptor (migrate-volumes across filesystems, or --copy):
// every entry opened relative to its held parent with O_NOFOLLOW, decided about and read
// through that one descriptor, never a symlink followed, never a mount crossed. The copy keeps
// the owners as they are (the caller shifts it afterwards, as it shifts a renamed volume).
//
// Reproduced: directories, regular files (copy_file_range, else read/write; holes are filled:
// a sparse file is copied whole), symlinks, fifos and device nodes, hardlinks within the tree
// (an inode copied once, then linked), owners, modes (set-id bits set after the chown that
// would clear them), access and modification times (a directory's after its content), and
// extended attributes as raw bytes (ACLs, security.capability, user.*, trusted.*) of
// directories, files, fifos and devices. Not reproduced: sockets (skipped, listed in
// CopyStats::skipped), a symlink's own xattrs, inode flags (chattr), birth and change times.
// Refused: a file with a link outside the tree (not the tree's alone: a copy would hand it to
// whoever the copy is shifted to), a mount point inside the tree (its content is another
// filesystem's: unmount it or move it by hand; a file bind-mounted in too; stat'ed from the
// kernel's cache and never entered, so a FUSE server that never answers is not asked), an entry that changes type or inode while it
// is copied, a file or directory whose size, modification or change time moves while it is
// copied (a live writer: the copy would be torn), a tree deeper than kMaxCopyDepth.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "volprep/error.h"

namespace volprep {

// How deep a tree copy_tree and measure_tree go (levels below the root): each level holds two
// descriptors and a stack frame; a volume deeper than this is refused by measure_tree before
// anything is copied (Docker volumes are nowhere near it; 20,000 levels crashed the stack).
inline constexpr unsigned kMaxCopyDepth = 1024;

struct CopyStats {
  uint64_t dirs = 0, files = 0, symlinks = 0, specials = 0, hardlinks = 0;
  uint64_t bytes = 0;                 // of regular files' content
  std::vector<std::string> skipped;   // "path: why", sorted (sockets, xattrs the target refuses)
};

// Copies the directory `src` (an open directory descriptor; `src_path` names it in messages)
// as the new directory `name` of `dst_parent` (`dst_path` names the copy), then syncs the
// target's filesystem (syncfs): durable when it returns. On error the partial copy stays
// (remove it with remove_tree). `on_file`, when given, is called with each regular file's
// path in the tree once its content is copied, before it is checked unchanged (tests change
// the source there). The copy runs on a thread of its own, with a stack for kMaxCopyDepth
// levels whatever `ulimit -s` says; `on_file` is called there. `max_bytes` (measure_tree's
// bytes, measured before) bounds the content copied: a file that would take the copy past it
// (made or grown since, sparse for free) is refused before its content is copied, as changed.
Result<CopyStats> copy_tree(int src, const std::string& src_path, int dst_parent, const std::string& name,
                            const std::string& dst_path, std::function<void(const std::string&)> on_file = {},
                            uint64_t max_bytes = UINT64_MAX);

struct TreeSize {
  uint64_t entries = 0;  // the root included
  uint64_t bytes = 0;    // regular files' st_size, each inode once
};
// What copy_tree would copy (a dry run's figures); mount points are not entered. A tree deeper
// than kMaxCopyDepth is refused (kExitRefused).
Result<TreeSize> measure_tree(int src, const std::string& src_path);

// Removes the directory `name` of `parent` and everything below it, by descriptor, never
// following a symlink and never into another mount (refused). Absent: true, nothing done.
Result<bool> remove_tree(int parent, const std::string& name, const std::string& path);

// "1.5 MiB" and the like.
std::string human_bytes(uint64_t n);

// Whether copy_tree copies an extended attribute of this name. Not XFS's own stores of what
// it also shows under other names (trusted.SGI_ACL_FILE and _DEFAULT are the ACLs of
// system.posix_acl_*; trusted.SGI_CAP_FILE, _MAC_FILE, _DMI_*, xfsroot.*), as cp leaves them
// (/etc/xattr.conf): copied raw onto another filesystem, they would stay there, dead, with
// the ids from before the shift that follows the copy.
bool copies_xattr(std::string_view name);

}  // namespace volprep
