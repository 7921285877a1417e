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

#include "volprep/acl.h"
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
// The policy prepare runs for `target`: the ACL grant with --acl, else own.
std::unique_ptr<Policy> make_prepare_policy(const Target& target);

}  // namespace volprep
