// The own policy: every entry of the tree to one owner (the container user's host ids), and
// --chmod's modes. Device nodes keep their owner: a container must not own a device.
#include <sys/stat.h>

#include "volprep/policy.h"

namespace volprep {
namespace {

constexpr XattrRead kCapabilities[] = {
    {kCapabilityXattr, "cannot read its file capabilities; left alone", true}};

class OwnPolicy final : public Policy {
 public:
  explicit OwnPolicy(const Target& target) : target_(target) {}

  Triage triage(const EntryStat& st) const override {
    if (S_ISCHR(st.mode) || S_ISBLK(st.mode)) return Triage::skipped(Skip::kDevice, "device node: owner left alone");
    return wanted(st) ? Triage::may_change() : Triage::unchanged();
  }

  // File capabilities do not survive a chown. The kernel applies them only when a file is
  // executed, so only files with an execute bit are looked at: one lookup each.
  std::span<const XattrRead> reads(const EntryStat& st) const override {
    if (S_ISREG(st.mode) && (st.mode & 0111) && (st.uid != target_.uid || st.gid != target_.gid))
      return kCapabilities;
    return {};
  }

  std::optional<Change> plan(const EntryStat& st, std::span<const std::optional<std::string>> xattrs) const override {
    auto mode = wanted(st);
    if (!mode) return std::nullopt;
    Change c;
    c.before = st;
    c.uid = target_.uid;
    c.gid = target_.gid;
    c.mode = *mode;
    // Kept: read before the chown clears them, put back after it.
    if (!xattrs.empty() && xattrs[0]) c.xattrs.push_back({kCapabilityXattr, xattrs[0], xattrs[0]});
    return c;
  }

 private:
  // The permission bits the entry gets, or nullopt when it is as planned already.
  std::optional<uint32_t> wanted(const EntryStat& st) const {
    uint32_t mode = st.mode & 07777;
    if (target_.chmod && !S_ISLNK(st.mode)) mode = target_.chmod->apply(st.mode);
    if (st.uid == target_.uid && st.gid == target_.gid && mode == (st.mode & 07777)) return std::nullopt;
    return mode;
  }
  Target target_;
};

}  // namespace

std::unique_ptr<Policy> make_own_policy(const Target& target) { return std::make_unique<OwnPolicy>(target); }

std::unique_ptr<Policy> make_prepare_policy(const Target& target) {
  return target.acl ? make_acl_grant_policy(*target.acl) : make_own_policy(target);
}

}  // namespace volprep
