// The ACL grant policy (--acl): owners and modes stay; the container user's host ids get ACL
// entries (and default entries on directories) that grant the access asked for. The ACL
// arithmetic is plan_acl's (acl.cc); this decides which entries it applies to. Several grants
// (services of a Compose project sharing a tree) are one change of each entry, so that a dry
// run shows what the run makes and each inode is journaled once.
#include <sys/stat.h>

#include <utility>
#include <vector>

#include "volprep/policy.h"

namespace volprep {
namespace {

constexpr XattrRead kFileAcls[] = {{kAclAccessXattr, "cannot read its ACL", false}};
constexpr XattrRead kDirAcls[] = {{kAclAccessXattr, "cannot read its ACL", false},
                                  {kAclDefaultXattr, "cannot read its ACL", false}};

class AclGrantPolicy final : public Policy {
 public:
  explicit AclGrantPolicy(std::vector<AclGrant> grants) : grants_(std::move(grants)) {}

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
    // Each grant on what the ones before it leave, as setfacl run once a grant would.
    std::optional<std::string> access_after = access, dflt_after = dflt;
    uint32_t mode = st.mode;
    bool planned = false;
    for (const AclGrant& g : grants_) {
      auto plan = plan_acl(mode, access_after, dflt_after, g);
      if (!plan) continue;
      planned = true;
      if (plan->access_after) access_after = plan->access_after;
      if (plan->default_after) dflt_after = plan->default_after;
      mode = (mode & ~07777u) | plan->mode_after;
    }
    if (!planned) return std::nullopt;
    Change c;
    c.before = st;
    c.uid = st.uid;
    c.gid = st.gid;
    c.mode = mode & 07777;
    c.mode_by_acl = true;
    if (access_after != access) c.xattrs.push_back({kAclAccessXattr, access, access_after});
    if (dflt_after != dflt) c.xattrs.push_back({kAclDefaultXattr, dflt, dflt_after});
    return c;
  }

 private:
  std::vector<AclGrant> grants_;
};

}  // namespace

std::unique_ptr<Policy> make_acl_grant_policy(const AclGrant& grant) { return std::make_unique<AclGrantPolicy>(std::vector{grant}); }
std::unique_ptr<Policy> make_acl_grant_policy(std::vector<AclGrant> grants) {
  return std::make_unique<AclGrantPolicy>(std::move(grants));
}

}  // namespace volprep
