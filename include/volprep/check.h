// check_volume: would a container user get the access it needs to every entry of a tree?
// Decided by the kernel's rules (owner, named users, the group class under the mask, other;
// a directory must be searchable to reach what is below it), on the host ids the user's
// container ids map to. Changes nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "volprep/acl.h"
#include "volprep/id_map.h"
#include "volprep/engine.h"
#include "volprep/volume.h"

namespace volprep {

struct CheckConfig {
  uint32_t container_uid = 0;
  AccessRequest who;     // host uid, host gids (primary first)
  uint16_t need = 4;     // r 4, w 2, x 1; for directories r and w also need x
  // Container root is privileged over inodes whose uid and gid both map into its namespace.
  const IdMap* uid_map = nullptr;
  const IdMap* gid_map = nullptr;
  bool all = false;      // report every entry, not only denied ones
  bool cross_filesystems = false;  // check mount points and btrfs subvolumes below the root too
  unsigned threads = 0;            // --threads (0: as the filesystem wants)
};

struct CheckedEntry {
  std::string path;  // relative to the volume root
  uint32_t uid = 0, gid = 0, mode = 0;
  bool has_acl = false;
  uint16_t granted = 0;   // r/w/x this user gets (for the group class: their union)
  uint16_t missing = 0;   // needed bits it does not get
  std::string klass;      // owner, named user, group, other, root override
  std::string blocked_by; // non-empty: unreachable, this directory above cannot be searched
};

struct CheckResult {
  uint64_t checked = 0, denied = 0, symlinks = 0, vanished = 0;
  uint64_t reachable = 0;  // not below a directory the user cannot enter
  // Mount points and btrfs subvolumes the walk did not enter: nothing in them was checked
  // (a container's bind mount shows what is mounted below its source), each in `not_checked`.
  uint64_t mounts_not_checked = 0;
  std::vector<CheckedEntry> entries;  // denied ones (all with `all`), sorted by path
  std::vector<Note> not_checked;      // sorted by path
  std::vector<Note> errors;
};

CheckResult check_volume(const VolumeRoot& volume, const CheckConfig& config);

// "mode 0640 owner 0:0; container 1000 -> host 501000 is \"other\" (---)"
std::string describe_denial(const CheckedEntry& e, const CheckConfig& config);

}  // namespace volprep
