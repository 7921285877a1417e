#include "volprep/acl.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace volprep;

namespace {
Acl acl(std::vector<AclEntry> e) { return Acl{std::move(e)}; }
AclGrant grant(uint32_t uid, std::optional<uint32_t> gid = std::nullopt) {
  auto g = AclGrant::parse_perms("rwX", uid, gid);
  EXPECT_TRUE(g.ok());
  return *g;
}
}  // namespace

TEST(Acl, RawFormatRoundTrip) {
  Acl a = acl({{kAclUserObj, 6, UINT32_MAX}, {kAclUser, 6, 501000}, {kAclGroupObj, 4, UINT32_MAX},
               {kAclMask, 6, UINT32_MAX}, {kAclOther, 0, UINT32_MAX}});
  auto raw = a.serialize();
  EXPECT_EQ(raw.size(), 4u + 5 * 8);
  auto back = Acl::parse(raw);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, a);
  EXPECT_FALSE(Acl::parse("junk"));
}

TEST(Acl, GrantOnAPlainFileAddsTheEntryAndAMask) {
  auto plan = plan_acl(S_IFREG | 0640, std::nullopt, std::nullopt, grant(501000));
  ASSERT_TRUE(plan);
  ASSERT_TRUE(plan->access_after);
  EXPECT_FALSE(plan->default_after);
  auto a = Acl::parse(*plan->access_after);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->find(kAclUser, 501000)->perm, 6);  // rw, no x: the file has no x bit
  EXPECT_EQ(a->find(kAclMask)->perm, 6);          // r-- | rw-
  EXPECT_EQ(plan->mode_after, 0660u);             // group bits show the mask
  EXPECT_EQ(plan->diff, (std::vector<std::string>{"+u:501000:rw-", "+mask::rw-"}));
  // Granted already: nothing to do.
  EXPECT_FALSE(plan_acl(S_IFREG | 0660, plan->access_after, std::nullopt, grant(501000)));
}

TEST(Acl, ExecutablesAndDirectoriesGetXAndDirectoriesADefaultAcl) {
  auto exe = plan_acl(S_IFREG | 0750, std::nullopt, std::nullopt, grant(501000));
  EXPECT_EQ(Acl::parse(*exe->access_after)->find(kAclUser, 501000)->perm, 7);
  auto dir = plan_acl(S_IFDIR | 0750, std::nullopt, std::nullopt, grant(501000, 501000));
  ASSERT_TRUE(dir && dir->default_after);
  auto d = Acl::parse(*dir->default_after);
  EXPECT_EQ(d->find(kAclUserObj)->perm, 7);  // from the access ACL, as setfacl starts it
  EXPECT_EQ(d->find(kAclUser, 501000)->perm, 7);
  EXPECT_EQ(d->find(kAclGroup, 501000)->perm, 7);
  EXPECT_EQ(d->find(kAclMask)->perm, 7);
}

TEST(Acl, ARestrictiveMaskIsRecomputedAndOtherEntriesKept) {
  Acl before = acl({{kAclUserObj, 6, UINT32_MAX}, {kAclUser, 6, 501000}, {kAclUser, 5, 777},
                    {kAclGroupObj, 4, UINT32_MAX}, {kAclMask, 4, UINT32_MAX}, {kAclOther, 0, UINT32_MAX}});
  auto plan = plan_acl(S_IFREG | 0640, before.serialize(), std::nullopt, grant(501000));
  ASSERT_TRUE(plan);  // the entry is there, but the mask makes it r-- only
  auto a = Acl::parse(*plan->access_after);
  EXPECT_EQ(a->find(kAclMask)->perm, 7);  // r-- | rw- | r-x
  EXPECT_EQ(a->find(kAclUser, 777)->perm, 5);
  EXPECT_EQ(plan->diff, (std::vector<std::string>{"mask::r-- -> rwx"}));
}

TEST(AclPerms, ParseAndUsage) {
  auto rx = AclGrant::parse_perms("rX", 1, std::nullopt);
  ASSERT_TRUE(rx.ok());
  EXPECT_EQ(rx->perm_for(S_IFDIR | 0700), 5);
  EXPECT_EQ(rx->perm_for(S_IFREG | 0600), 4);
  EXPECT_FALSE(AclGrant::parse_perms("rq", 1, std::nullopt).ok());
}

TEST(Access, OwnerNamedUserGroupClassOther) {
  AccessRequest who{501000, {501000}, false};
  // Owner class wins even when it grants less.
  EXPECT_EQ(access_of(501000, 0, S_IFREG | 0070, std::nullopt, who).klass, "owner");
  EXPECT_FALSE(access_of(501000, 0, S_IFREG | 0070, std::nullopt, who).allows(4));
  // Other.
  auto other = access_of(0, 0, S_IFREG | 0644, std::nullopt, who);
  EXPECT_EQ(other.klass, "other");
  EXPECT_TRUE(other.allows(4));
  EXPECT_FALSE(other.allows(2));
  // A named user entry, limited by the mask.
  Acl masked = acl({{kAclUserObj, 7, UINT32_MAX}, {kAclUser, 7, 501000}, {kAclGroupObj, 0, UINT32_MAX},
                    {kAclMask, 4, UINT32_MAX}, {kAclOther, 7, UINT32_MAX}});
  auto named = access_of(0, 0, S_IFREG | 0747, masked, who);
  EXPECT_EQ(named.klass, "named user");
  EXPECT_TRUE(named.allows(4));
  EXPECT_FALSE(named.allows(2));  // other has rwx, but a named entry matched first
}

TEST(Access, TheGroupClassGrantsOnlyWhatOneEntryHoldsWhole) {
  AccessRequest who{501000, {501000, 600}, false};
  Acl split = acl({{kAclUserObj, 7, UINT32_MAX}, {kAclGroupObj, 4, UINT32_MAX}, {kAclGroup, 2, 600},
                   {kAclMask, 7, UINT32_MAX}, {kAclOther, 7, UINT32_MAX}});
  auto v = access_of(0, 501000, S_IFREG | 0777, split, who);
  EXPECT_EQ(v.klass, "group");
  EXPECT_TRUE(v.allows(4));
  EXPECT_TRUE(v.allows(2));
  EXPECT_FALSE(v.allows(6));  // r from one entry and w from another is not rw
  // A matching group that grants nothing still keeps "other" away.
  auto none = access_of(0, 501000, S_IFREG | 0707, std::nullopt, who);
  EXPECT_FALSE(none.allows(4));
}

TEST(Access, AnAclWithAnEmptyMaskIsIgnoredAsLinuxDoes) {
  AccessRequest who{501000, {501000}, false};
  Acl masked = acl({{kAclUserObj, 6, UINT32_MAX}, {kAclUser, 6, 501000}, {kAclGroupObj, 0, UINT32_MAX},
                    {kAclMask, 0, UINT32_MAX}, {kAclOther, 4, UINT32_MAX}});
  auto v = access_of(0, 0, S_IFREG | 0604, masked, who);
  EXPECT_EQ(v.klass, "other");
  EXPECT_TRUE(v.allows(4));
}

TEST(Access, ContainerRootOverrideExecutesOnlyWithAnXBit) {
  AccessRequest root{500000, {500000}, true};
  EXPECT_TRUE(access_of(501000, 501000, S_IFREG | 0000, std::nullopt, root).allows(6));
  EXPECT_FALSE(access_of(501000, 501000, S_IFREG | 0600, std::nullopt, root).allows(1));
  EXPECT_TRUE(access_of(501000, 501000, S_IFREG | 0100, std::nullopt, root).allows(1));
  EXPECT_TRUE(access_of(501000, 501000, S_IFDIR | 0000, std::nullopt, root).allows(7));
}
