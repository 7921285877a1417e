// Policies: what a run does to one entry. The engine (engine.h) walks, pins, reads and
// applies; a policy only decides, from what the engine hands it, and does no I/O. A policy is
// const and shared by every thread of a run.
//
// The engine asks a policy three things about an entry:
//   triage(st)   on the walk's stat, before any syscall more: most entries are decided here
//                (unchanged, or skipped for a reason); the rest may change and are pinned;
//   reads(st)    on the pinned entry's stat: the extended attributes plan() needs, which the
//                engine reads through the entry's descriptor;
//   plan(st, x)  on that stat and those values: the change, or none.
// Adding a command that changes entries is a new policy: a file of its own, and a factory here.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "volprep/acl.h"
#include "volprep/id_map.h"
#include "volprep/plan.h"

namespace volprep {

struct Triage {
  enum Kind : uint8_t { kUnchanged, kMayChange, kSkip } kind = kUnchanged;
  Skip skip = Skip::kCount;    // kSkip: why
  const char* note = nullptr;  // kSkip: what the user is told of the entry, if anything

  static Triage unchanged() { return {}; }
  static Triage may_change() { return {kMayChange}; }
  static Triage skipped(Skip why, const char* note = nullptr) { return {kSkip, why, note}; }
};

// An extended attribute a policy needs read before it plans an entry.
struct XattrRead {
  const char* name;
  const char* unreadable;      // the entry is left alone, failed, with this said of it
  bool unsupported_is_absent;  // EOPNOTSUPP reads as absent, not as a failure
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual Triage triage(const EntryStat& st) const = 0;
  virtual std::span<const XattrRead> reads(const EntryStat& st) const = 0;
  // `xattrs[i]` is reads(st)[i]'s value, nullopt where absent. The change's name and
  // descriptor are the engine's to fill in.
  virtual std::optional<Change> plan(const EntryStat& st,
                                     std::span<const std::optional<std::string>> xattrs) const = 0;
};

// Flatten the tree to one owner (and --chmod): device nodes keep theirs, file capabilities
// are read before a chown that would clear them and put back after it.
std::unique_ptr<Policy> make_own_policy(const Target& target);
// Leave owners and modes alone; grant the container user access by POSIX ACL entries.
std::unique_ptr<Policy> make_acl_grant_policy(const AclGrant& grant);
// Several grants, each entry changed once for all of them (the later on what the earlier leave).
std::unique_ptr<Policy> make_acl_grant_policy(std::vector<AclGrant> grants);
// The policy prepare runs for `target`: the ACL grant with --acl, else own.
std::unique_ptr<Policy> make_prepare_policy(const Target& target);

// Shift (volprep shift): every id an entry holds translated through a map, so that a
// container sees the owners the tree had before remapping was turned on (or, reversed, the
// host sees what the container saw): owner and group, the named entries of POSIX ACLs
// (access and default; base entries and mask stay), and a file capability's root id (a
// revision 2 capability, which grants on the host too, becomes revision 3 for the container's
// root; reversed, a root id that becomes 0 is written as revision 2, as the kernel shows it).
// Device nodes keep their owner, as with prepare. Not idempotent: an entry shifted twice is
// wrong, which the command guards against (a census before the first change, the engine's
// RunConfig::change_once during the run).
enum class Unmapped : uint8_t {
  kRefuse,  // the command refuses before any change; an id that appears during the run anyway:
            // an owner leaves its entry alone (reported), an ACL entry or capability stays
  kSkip,    // the id stays as it is
  kNobody,  // the id becomes the one the container sees as 65534
};
struct ShiftSpec {
  IdMap uid_map, gid_map;  // container -> host, as the runtime maps them
  bool reverse = false;    // host -> container: remapping turned off
  // Reversed, a file container root made setuid (or gave capabilities) would become a
  // setuid-root (or capability) binary of the host: its set-id bits and capabilities are
  // dropped where the owner (group) becomes 0, unless kept.
  bool keep_setid = false;
  Unmapped unmapped = Unmapped::kRefuse;
  uint32_t nobody_uid = 65534, nobody_gid = 65534;  // kNobody: what an untranslatable id becomes

  // An id of the tree as it is now, translated; nullopt when the map cannot.
  std::optional<uint32_t> translate_uid(uint32_t id) const;
  std::optional<uint32_t> translate_gid(uint32_t id) const;
  // Whether the id lies in the map's host range: a tree whose ids all do (forward) or none
  // does (reverse) reads as shifted already.
  bool uid_in_host_range(uint32_t id) const { return uid_map.to_container(id).has_value(); }
  bool gid_in_host_range(uint32_t id) const { return gid_map.to_container(id).has_value(); }
};

// An id an entry holds, where the shift reads it.
enum class IdRole : uint8_t { kOwner, kGroup, kAclUser, kAclGroup, kCapabilityRoot };
struct HeldId {
  IdRole role;
  uint32_t id;
  bool is_gid() const { return role == IdRole::kGroup || role == IdRole::kAclGroup; }
};
// The extended attributes the shift reads of an entry of this type (its policy's reads()).
std::span<const XattrRead> shift_reads(const EntryStat& st);
// Whether the shift leaves the entry alone whatever its ids (a device node).
bool shift_skips(const EntryStat& st);
// Every id the shift translates on an entry, `xattrs` read as shift_reads(st) says: owner,
// group, named ACL entries, a capability's root id (forward, a revision 2 capability stands
// for container root, 0). Appended to `out`.
void shift_held_ids(const ShiftSpec& spec, const EntryStat& st,
                    std::span<const std::optional<std::string>> xattrs, std::vector<HeldId>& out);
std::unique_ptr<Policy> make_shift_policy(const ShiftSpec& spec);

// One inode (`entry`, by device and inode) to uid:gid and `mode` (permission bits); every
// other entry of the tree unchanged. A directory's own owner, when the run excludes the rest.
std::unique_ptr<Policy> make_entry_policy(const EntryStat& entry, uint32_t uid, uint32_t gid, uint32_t mode);

}  // namespace volprep
