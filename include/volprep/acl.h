// POSIX ACLs in the kernel's own xattr format (system.posix_acl_access / _default):
// a u32 version 2 header, then (u16 tag, u16 perm, u32 id) entries sorted by tag and id.
// Working on that format directly costs no text round trips and keeps bytes exact.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "volprep/error.h"

namespace volprep {

inline constexpr const char* kAclAccessXattr = "system.posix_acl_access";
inline constexpr const char* kAclDefaultXattr = "system.posix_acl_default";

enum AclTag : uint16_t {
  kAclUserObj = 0x01,
  kAclUser = 0x02,
  kAclGroupObj = 0x04,
  kAclGroup = 0x08,
  kAclMask = 0x10,
  kAclOther = 0x20,
};

struct AclEntry {
  uint16_t tag = 0;
  uint16_t perm = 0;  // 4 r, 2 w, 1 x
  uint32_t id = UINT32_MAX;
  bool operator==(const AclEntry&) const = default;
};

struct Acl {
  std::vector<AclEntry> entries;  // kept in the kernel's order

  static std::optional<Acl> parse(const std::string& raw);
  // The minimal ACL a mode stands for (owner, group, other).
  static Acl from_mode(uint32_t mode);
  std::string serialize() const;

  const AclEntry* find(uint16_t tag, uint32_t id = UINT32_MAX) const;
  // Sets (or adds) a named entry to at least `perm`; returns true if it changed.
  bool grant(uint16_t tag, uint32_t id, uint16_t perm);
  // The mask as setfacl recomputes it: the union of the group class. Adds one if named
  // entries need it.
  void recompute_mask();
  // The mode's permission bits as the kernel keeps them with this ACL (group bits = mask).
  uint32_t mode_bits(uint32_t mode) const;
  bool extended() const;  // more than the three base entries
  bool operator==(const Acl&) const = default;
};

// "u:501000:rwx", "mask::r-x", "g::r--"
std::string acl_entry_text(const AclEntry& e);
std::string perm_text(uint16_t perm);

// The grant of --acl: `perm` for the named user (and group), with X meaning execute for
// directories and for files that already have an execute bit.
struct AclGrant {
  uint32_t uid = 0;
  std::optional<uint32_t> gid;
  uint16_t perm = 6;     // r w x bits
  bool cond_x = true;    // X
  // Parses r, rw, rwX, rX, rwx and the like.
  static Result<AclGrant> parse_perms(const std::string& text, uint32_t uid, std::optional<uint32_t> gid);
  uint16_t perm_for(uint32_t mode) const;
};

// The ACLs an entry should have after the grant. nullopt: nothing to change.
struct AclPlan {
  std::optional<std::string> access_after;   // new system.posix_acl_access
  std::optional<std::string> default_after;  // new system.posix_acl_default (directories)
  uint32_t mode_after = 0;                   // permission bits with the new mask
  std::vector<std::string> diff;             // "+u:501000:rwx", "mask::r-- -> rw-", "+d:u:..."
};
std::optional<AclPlan> plan_acl(uint32_t mode, const std::optional<std::string>& access,
                                const std::optional<std::string>& default_acl, const AclGrant& grant);

// Differences between two ACLs, for the diff format ("+u:501000:rwx", "mask::r-x -> rwx").
std::vector<std::string> acl_diff(const Acl& before, const Acl& after, const char* prefix);

// The kernel's access decision for a process with host ids (uid, gids) on an inode.
struct AccessRequest {
  uint32_t uid = 0;
  std::vector<uint32_t> gids;  // primary first
  bool dac_override = false;   // container root on an inode whose uid and gid map into its namespace
};
struct AccessVerdict {
  std::string klass;      // "owner", "named user", "group", "other", "root override"
  // The bits of each entry that applies (masked). In the group class the kernel grants a
  // request only if one matching entry holds all its bits, so they are kept apart.
  std::vector<uint16_t> perms;
  bool allows(uint16_t want) const {
    for (uint16_t p : perms)
      if ((p & want) == want) return true;
    return false;
  }
};
AccessVerdict access_of(uint32_t file_uid, uint32_t file_gid, uint32_t mode,
                        const std::optional<Acl>& access, const AccessRequest& who);

}  // namespace volprep
