// The ACL grant policy (--acl): owners and modes stay; the container user's host ids get ACL
// entries (and default entries on directories) that grant the access asked for. The ACL
// arithmetic is plan_acl's (acl.cc); this decides which entries it applies to.
#include <sys/stat.h>

#include "volprep/policy.h"

namespace volprep {
namespace {

constexpr XattrRead kFileAcls[] = {{kAclAccessXattr, "cannot read its ACL", false}};
constexpr XattrRead kDirAcls[] = {{kAclAccessXattr, "cannot read its ACL", false},
                                  {kAclDefaultXattr, "cannot read its ACL", false}};

class AclGrantPolicy final : public Policy {
 public:
  explicit AclGrantPolicy(const AclGrant& grant) : grant_(grant) {}

  // Every entry may need an entry added: decided on its ACLs, read once it is pinned.
  Triage triage(const EntryStat& st) const override {
    if (S_ISCHR(st.mode) || S_ISBLK(st.mode)) return Triage::skipped(Skip::kDevice, "device node: owner left alone");
    if (S_ISLNK(st.mode)) return Triage::skipped(Skip::kSymlink);
    return Triage::may_change();
  }

  std::span<const XattrRead> reads(const EntryStat& st) const override {
    if (S_ISDIR(st.mode)) return kDirAcls;
    return kFileAcls;
  }

  std::optional<Change> plan(const EntryStat& st, std::span<const std::optional<std::string>> xattrs) const override {
    static const std::optional<std::string> none;
    const auto& access = xattrs.empty() ? none : xattrs[0];
    const auto& dflt = xattrs.size() < 2 ? none : xattrs[1];
    auto plan = plan_acl(st.mode, access, dflt, grant_);
    if (!plan) return std::nullopt;
    Change c;
    c.before = st;
    c.uid = st.uid;
    c.gid = st.gid;
    c.mode = plan->mode_after;
    c.mode_by_acl = true;
    if (plan->access_after) c.xattrs.push_back({kAclAccessXattr, access, plan->access_after});
    if (plan->default_after) c.xattrs.push_back({kAclDefaultXattr, dflt, plan->default_after});
    return c;
  }

 private:
  AclGrant grant_;
};

}  // namespace

std::unique_ptr<Policy> make_acl_grant_policy(const AclGrant& grant) { return std::make_unique<AclGrantPolicy>(grant); }

}  // namespace volprep
