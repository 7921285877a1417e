// A change: what a policy (policy.h) decides for one entry, and appliers (apply.h) make.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "volprep/acl.h"
#include "volprep/chmod_spec.h"
#include "volprep/walk.h"

namespace volprep {

struct Target {
  uint32_t uid = 0, gid = 0;          // host ids
  std::optional<ChmodSpec> chmod;     // --chmod, never applied to symlinks
  std::optional<AclGrant> acl;        // --acl: owners and modes stay, an ACL grants access
};

struct XattrChange {
  std::string name;
  std::optional<std::string> before, after;  // raw values; nullopt: absent
  bool operator==(const XattrChange&) const = default;
};

struct Change {
  std::string name;       // relative to the batch's directory; "" for the directory itself
  // The entry's inode, pinned by open_entry() when it was planned: `before` and the xattrs'
  // before-values were read through it, and the change is made through it. Empty only for
  // the directory itself (name ""), which is the batch's directory descriptor.
  SharedFd entry;
  EntryStat before;
  uint32_t uid = 0, gid = 0;
  uint32_t mode = 0;      // permission bits (07777) after the change
  // Extended attributes the change sets or keeps: file capabilities (which the kernel removes
  // on chown: read when the change is planned, journaled, put back after the chown) and ACLs.
  std::vector<XattrChange> xattrs;
  bool mode_by_acl = false;  // the new access ACL sets the mode's group bits; no chmod
  uint32_t other_links = 0;  // a hardlinked file: its other names in the tree, one change
  int err = 0;            // set by the applier: 0, or the errno of the failed step
  const char* failed_step = nullptr;
  // Set by rollback when it puts set-id bits or capabilities back because the file's ctime
  // is still the one the run left: that ctime, checked again once nobody can write the file.
  int64_t rearm_if_ctime_ns = 0;
  // Set by the applier after a change that arms() or disarms() a regular file: the inode's
  // ctime then, taken while no one could write the file (apply_change), for the journal's 'A'
  // record.
  int64_t armed_ctime_ns = 0;

  bool changes_owner() const { return before.uid != uid || before.gid != gid; }
  bool changes_mode() const { return (before.mode & 07777) != mode; }
  bool changes_xattrs() const {
    for (const auto& x : xattrs)
      if (x.before != x.after) return true;
    return false;
  }
  // The kernel clears setuid and setgid when a non-directory changes owner; volprep puts
  // them back, so the permission bits end as planned.
  // The change leaves set-id bits or file capabilities on a non-directory: the journal keeps
  // the inode's ctime after it, so that rollback can tell they are still on what volprep left.
  bool arms() const {
    if (S_ISDIR(before.mode) || S_ISLNK(before.mode)) return false;
    if (mode & (S_ISUID | S_ISGID)) return true;
    for (const auto& x : xattrs)
      if (x.name == "security.capability" && x.after) return true;
    return false;
  }
  // The change takes set-id bits or file capabilities off a non-directory (a reverse shift
  // does, of what would become root's; --chmod u-s): the journal keeps the inode's ctime after
  // it too, so that rollback can tell the content is still the one they were on.
  bool disarms() const {
    if (S_ISDIR(before.mode) || S_ISLNK(before.mode)) return false;
    if (before.mode & ~mode & (S_ISUID | S_ISGID)) return true;
    for (const auto& x : xattrs)
      if (x.name == "security.capability" && x.before && !x.after) return true;
    return false;
  }
  // Set-id bits the file had and keeps (the diff's "setuid/setgid kept"), not ones added.
  bool keeps_set_id() const { return restores_set_id() && (before.mode & mode & (S_ISUID | S_ISGID)); }
  bool restores_set_id() const {
    return changes_owner() && !S_ISDIR(before.mode) && !S_ISLNK(before.mode) &&
           (mode & (S_ISUID | S_ISGID));
  }
};

}  // namespace volprep
