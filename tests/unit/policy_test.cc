// The policies decide from what the engine hands them, with no I/O: tested on made-up stats
// and xattr values, without root.
#include "volprep/policy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace volprep;

namespace {

EntryStat st(uint32_t mode, uint32_t uid = 1000, uint32_t gid = 1000) {
  EntryStat s;
  s.mode = mode;
  s.uid = uid;
  s.gid = gid;
  s.ino = 42;
  s.nlink = 1;
  return s;
}

Target target(uint32_t uid, uint32_t gid) {
  Target t;
  t.uid = uid;
  t.gid = gid;
  return t;
}

using Values = std::vector<std::optional<std::string>>;

}  // namespace

TEST(OwnPolicy, TriageDecidesMostEntriesOnTheWalksStat) {
  auto p = make_own_policy(target(501000, 501000));
  EXPECT_EQ(p->triage(st(S_IFREG | 0644)).kind, Triage::kMayChange);
  EXPECT_EQ(p->triage(st(S_IFREG | 0644, 501000, 501000)).kind, Triage::kUnchanged);
  EXPECT_EQ(p->triage(st(S_IFLNK | 0777)).kind, Triage::kMayChange);  // a symlink's owner changes
  // A container must not own a device.
  for (uint32_t type : {S_IFCHR, S_IFBLK}) {
    Triage t = p->triage(st(type | 0666));
    EXPECT_EQ(t.kind, Triage::kSkip);
    EXPECT_EQ(t.skip, Skip::kDevice);
    EXPECT_STREQ(t.note, "device node: owner left alone");
  }
}

TEST(OwnPolicy, ReadsCapabilitiesOnlyOfExecutablesWhoseOwnerChanges) {
  auto p = make_own_policy(target(501000, 501000));
  ASSERT_EQ(p->reads(st(S_IFREG | 0755)).size(), 1u);
  EXPECT_STREQ(p->reads(st(S_IFREG | 0755))[0].name, "security.capability");
  EXPECT_TRUE(p->reads(st(S_IFREG | 0755))[0].unsupported_is_absent);
  EXPECT_TRUE(p->reads(st(S_IFREG | 0644)).empty());                  // never executed
  EXPECT_TRUE(p->reads(st(S_IFREG | 0755, 501000, 501000)).empty());  // no chown
  EXPECT_TRUE(p->reads(st(S_IFDIR | 0755)).empty());
}

TEST(OwnPolicy, PlansTheOwnerAndKeepsCapabilities) {
  auto p = make_own_policy(target(501000, 502000));
  auto c = p->plan(st(S_IFREG | 04755), Values{std::string("\x01\x02", 2)});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 501000u);
  EXPECT_EQ(c->gid, 502000u);
  EXPECT_EQ(c->mode, 04755u);
  EXPECT_TRUE(c->restores_set_id());
  ASSERT_EQ(c->xattrs.size(), 1u);
  EXPECT_EQ(c->xattrs[0].before, c->xattrs[0].after);  // kept across the chown
  EXPECT_FALSE(c->changes_xattrs());
  EXPECT_TRUE(c->arms());
  // Without capabilities: none kept.
  c = p->plan(st(S_IFREG | 0755), Values{std::nullopt});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->xattrs.empty());
  EXPECT_FALSE(p->plan(st(S_IFREG | 0644, 501000, 502000), {}));
}

TEST(OwnPolicy, ChmodNeverAppliesToSymlinks) {
  Target t = target(501000, 501000);
  t.chmod = *ChmodSpec::parse("u+rwX,g-w");
  auto p = make_own_policy(t);
  // Owned already, but the mode changes: may change.
  EXPECT_EQ(p->triage(st(S_IFREG | 0464, 501000, 501000)).kind, Triage::kMayChange);
  auto c = p->plan(st(S_IFREG | 0464, 501000, 501000), {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->mode, 0644u);
  EXPECT_FALSE(c->changes_owner());
  EXPECT_EQ(p->triage(st(S_IFLNK | 0777, 501000, 501000)).kind, Triage::kUnchanged);
}

TEST(AclGrantPolicy, SkipsDevicesAndSymlinksAndReadsEveryOtherEntrysAcls) {
  auto p = make_acl_grant_policy(*AclGrant::parse_perms("rwX", 501000, std::nullopt));
  EXPECT_EQ(p->triage(st(S_IFLNK | 0777)).skip, Skip::kSymlink);
  EXPECT_EQ(p->triage(st(S_IFLNK | 0777)).note, nullptr);  // counted, not reported
  EXPECT_EQ(p->triage(st(S_IFCHR | 0666)).skip, Skip::kDevice);
  EXPECT_EQ(p->triage(st(S_IFREG | 0644, 0, 0)).kind, Triage::kMayChange);
  ASSERT_EQ(p->reads(st(S_IFREG | 0644)).size(), 1u);
  EXPECT_STREQ(p->reads(st(S_IFREG | 0644))[0].name, "system.posix_acl_access");
  ASSERT_EQ(p->reads(st(S_IFDIR | 0755)).size(), 2u);
  EXPECT_STREQ(p->reads(st(S_IFDIR | 0755))[1].name, "system.posix_acl_default");
  EXPECT_FALSE(p->reads(st(S_IFDIR | 0755))[0].unsupported_is_absent);  // no ACLs: a failure
}

TEST(AclGrantPolicy, GrantsByAclAndLeavesOwnerAlone) {
  auto p = make_acl_grant_policy(*AclGrant::parse_perms("rwX", 501000, std::nullopt));
  auto c = p->plan(st(S_IFDIR | 0750, 0, 0), Values{std::nullopt, std::nullopt});
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->changes_owner());
  EXPECT_TRUE(c->mode_by_acl);
  EXPECT_EQ(c->mode, 0770u);  // the group bits show the new mask
  ASSERT_EQ(c->xattrs.size(), 2u);
  EXPECT_EQ(c->xattrs[0].name, "system.posix_acl_access");
  EXPECT_EQ(c->xattrs[1].name, "system.posix_acl_default");
  // Granted already: nothing to do.
  Values after{c->xattrs[0].after, c->xattrs[1].after};
  EXPECT_FALSE(p->plan(st(S_IFDIR | 0770, 0, 0), after));
}

TEST(PreparePolicy, IsTheAclGrantWithAclAndOwnWithout) {
  Target t = target(501000, 501000);
  EXPECT_EQ(make_prepare_policy(t)->triage(st(S_IFLNK | 0777)).kind, Triage::kMayChange);
  t.acl = *AclGrant::parse_perms("r", 501000, std::nullopt);
  EXPECT_EQ(make_prepare_policy(t)->triage(st(S_IFLNK | 0777)).kind, Triage::kSkip);
}
