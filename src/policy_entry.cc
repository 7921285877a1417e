// The entry policy: one inode of the tree, and only it, to a given owner and mode (migrate-
// volumes gives a volume's directory the owner and mode Docker makes it with).
#include "volprep/policy.h"

namespace volprep {
namespace {

class EntryPolicy final : public Policy {
 public:
  EntryPolicy(const EntryStat& entry, uint32_t uid, uint32_t gid, uint32_t mode)
      : entry_(entry), uid_(uid), gid_(gid), mode_(mode) {}

  Triage triage(const EntryStat& st) const override {
    if (!st.same_inode(entry_)) return Triage::unchanged();
    return st.uid == uid_ && st.gid == gid_ && (st.mode & 07777) == mode_ ? Triage::unchanged() : Triage::may_change();
  }
  std::span<const XattrRead> reads(const EntryStat&) const override { return {}; }
  std::optional<Change> plan(const EntryStat& st, std::span<const std::optional<std::string>>) const override {
    if (triage(st).kind != Triage::kMayChange) return std::nullopt;
    Change c;
    c.before = st;
    c.uid = uid_;
    c.gid = gid_;
    c.mode = mode_;
    return c;
  }

 private:
  EntryStat entry_;
  uint32_t uid_, gid_, mode_;
};

}  // namespace

std::unique_ptr<Policy> make_entry_policy(const EntryStat& entry, uint32_t uid, uint32_t gid, uint32_t mode) {
  return std::make_unique<EntryPolicy>(entry, uid, gid, mode);
}

}  // namespace volprep
