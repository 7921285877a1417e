// Idmapped bind mounts (Linux 5.12+): a tree shown through a mount whose user namespace maps
// the ids on disk to other ids, changing no file. open_tree(OPEN_TREE_CLONE) copies the
// source's mount (not the mounts below it), mount_setattr(MOUNT_ATTR_IDMAP) attaches the
// mapping, move_mount() puts it at the destination. Through the mount, an inode owned by disk
// id D shows as the id the mapping maps D to; an id the mapping lacks shows as the overflow id
// (nobody), and what a process writes there is stored as the disk id mapped to its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "volprep/error.h"
#include "volprep/fd.h"
#include "volprep/id_map.h"

namespace volprep {

// A user namespace whose maps are `uid_map` and `gid_map` (disk id -> shown id, in the
// kernel's format: first column the disk id, second what it shows as), held by an O_RDONLY
// descriptor of its /proc/PID/ns/user. Made by a child that exits once it is held.
Result<UniqueFd> make_user_namespace(const IdMap& uid_map, const IdMap& gid_map);

// Bind-mounts the mount of `src` (an O_PATH descriptor of a directory) at `dst` (a descriptor
// of an empty directory) through `userns`, nosuid and nodev; returns a descriptor of the
// mount made (its root), which follows it wherever it is. `src_name` and `dst_name` are for
// messages. Errors name what refused: a kernel without idmapped mounts, a filesystem that
// does not support them (by its type), a destination that moved.
Result<UniqueFd> idmapped_bind(int src, int dst, int userns, const std::string& src_name, const std::string& dst_name);

// The ids of the mount the entry `name` of `dirfd` is on ("": dirfd itself): mountinfo's,
// which a later mount may get once this one is gone, and the one no other mount ever gets
// (STATX_MNT_ID_UNIQUE, Linux 6.8; before, mountinfo's again). Zero where unknown.
struct MountIds {
  uint64_t id = 0;
  uint64_t unique = 0;
};
MountIds mount_ids(int dirfd, const char* name);

// The mountinfo id of the mount whose unique id is `unique` (statmount(2), Linux 6.8): 0 if
// there is no such mount now, nullopt where the kernel cannot say.
std::optional<uint64_t> listed_id_of(uint64_t unique);

// Unmounts the mount whose root `mnt` is a descriptor of (as idmapped_bind returns), wherever
// it is now; lazily (MNT_DETACH), as that descriptor keeps it busy. 0 or -errno.
int detach_mount(int mnt);

// Whether the directory `dir` holds no entry but "." and "..": 1, 0, or -errno.
int is_empty_dir(int dir);

struct MountEntry {
  uint64_t mnt_id = 0;
  std::string root;         // the directory of its filesystem it shows
  std::string mount_point;  // where it is mounted
  std::string fs_type;      // ext4, xfs, ...
  bool idmapped = false;
  // FUSE: the uid it is served for (the super options' user_id=, which fusermount3 sets to
  // its caller's; 0 when absent); nullopt for a mount that is not FUSE.
  std::optional<uint32_t> fuse_user;
};
// The mounts of this mount namespace (/proc/self/mountinfo), in its order; paths unescaped.
std::vector<MountEntry> read_mounts();
// The uid the FUSE mount with this mountinfo id is served for (MountEntry::fuse_user), or
// nullopt for a mount that is not FUSE, or not listed.
std::optional<uint32_t> fuse_user_of(uint64_t mnt_id);
// Where the mount with this mountinfo id is mounted, or "?".
std::string mount_point_of(uint64_t mnt_id);
// Mount points strictly below `dir` (an absolute, resolved path), in mountinfo's order.
std::vector<std::string> mounts_below(const std::string& dir);

// What volprep mount records of each mount it makes, so that --list can say which map a mount
// has and where it came from (the kernel shows an idmapped mount's map to no one before 6.15).
// One file per mount point in mount_record_dir(), a directory only root may write; kept with
// the mount (/run goes with a reboot as mounts do), removed by volprep umount.
struct MountRecord {
  std::string src, dst;
  uint64_t mnt_id = 0;       // the mount's id in mountinfo: a record of an older mount is stale
  uint64_t mnt_unique = 0;   // its id no later mount gets (0 in a record of volprep before it)
  std::string uid_map, gid_map;  // the mount's maps (disk id, shown as, count)
  std::string what;          // "disk owner 1000:1000 as container 1000:1000"
  std::string source;        // where the remap came from
  // The directory mount --persist wrote the mount's unit in (absolute), so that umount finds
  // it there whatever its --unit-dir; "" for none, and in a record of volprep before it.
  std::string unit_dir;
  // Whether this records the mount with `ids`, not an older one whose mountinfo id it got.
  bool is_of(const MountIds& ids) const { return mnt_id == ids.id && (mnt_unique == 0 || mnt_unique == ids.unique); }
  // The same for the mount mountinfo lists with `listed_id`, asking the kernel by the unique id
  // (statmount(2), Linux 6.8) rather than a path, which a FUSE mount above could hang.
  bool is_of_listed(uint64_t listed_id) const;
};
// $VOLPREP_MOUNT_DIR if set, else /run/volprep/mounts.
std::string mount_record_dir();
Result<bool> write_mount_record(const MountRecord& r);
// The record of the mount at `dst`, if there is one and it is root's own.
std::optional<MountRecord> read_mount_record(const std::string& dst);
void remove_mount_record(const std::string& dst);

// systemd's escaping of a path for a unit name (systemd-escape --path).
std::string systemd_escape_path(const std::string& path);

}  // namespace volprep
