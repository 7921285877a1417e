// The policies decide from what the engine hands them, with no I/O: tested on made-up stats
// and xattr values, without root.
#include "volprep/policy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "volprep/capability.h"
#include "volprep/shift.h"

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

// Several grants (Compose services sharing a tree) are one change of each entry: what
// granting them one after another leaves, from what the entry has now.
TEST(AclGrantPolicy, SeveralGrantsAreOneChange) {
  auto p = make_acl_grant_policy(std::vector{*AclGrant::parse_perms("rX", 501000, 501000),
                                             *AclGrant::parse_perms("rwX", 502000, 502000)});
  auto c = p->plan(st(S_IFDIR | 0755, 0, 0), Values{std::nullopt, std::nullopt});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->mode, 0775u);
  ASSERT_EQ(c->xattrs.size(), 2u);
  EXPECT_FALSE(c->xattrs[0].before);
  auto access = Acl::parse(*c->xattrs[0].after);
  ASSERT_TRUE(access);
  ASSERT_TRUE(access->find(kAclUser, 501000));
  EXPECT_EQ(access->find(kAclUser, 501000)->perm, 5);
  EXPECT_EQ(access->find(kAclUser, 502000)->perm, 7);
  EXPECT_EQ(access->find(kAclGroup, 502000)->perm, 7);
  EXPECT_EQ(access->find(kAclMask)->perm, 7);
  auto dflt = Acl::parse(*c->xattrs[1].after);
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->find(kAclUser, 501000)->perm, 5);
  EXPECT_EQ(dflt->find(kAclUser, 502000)->perm, 7);
  // The same as each grant's own policy run one after the other.
  auto first = make_acl_grant_policy(*AclGrant::parse_perms("rX", 501000, 501000));
  auto second = make_acl_grant_policy(*AclGrant::parse_perms("rwX", 502000, 502000));
  auto c1 = first->plan(st(S_IFDIR | 0755, 0, 0), Values{std::nullopt, std::nullopt});
  ASSERT_TRUE(c1);
  auto c2 = second->plan(st(S_IFDIR | c1->mode, 0, 0), Values{c1->xattrs[0].after, c1->xattrs[1].after});
  ASSERT_TRUE(c2);
  EXPECT_EQ(c2->mode, c->mode);
  EXPECT_EQ(c2->xattrs[0].after, c->xattrs[0].after);
  EXPECT_EQ(c2->xattrs[1].after, c->xattrs[1].after);
  // Granted already, every one: nothing to do; one missing: only its entries added.
  EXPECT_FALSE(p->plan(st(S_IFDIR | 0775, 0, 0), Values{c->xattrs[0].after, c->xattrs[1].after}));
  auto more = p->plan(st(S_IFDIR | c1->mode, 0, 0), Values{c1->xattrs[0].after, c1->xattrs[1].after});
  ASSERT_TRUE(more);
  EXPECT_EQ(more->xattrs[0].after, c->xattrs[0].after);
}

TEST(PreparePolicy, IsTheAclGrantWithAclAndOwnWithout) {
  Target t = target(501000, 501000);
  EXPECT_EQ(make_prepare_policy(t)->triage(st(S_IFLNK | 0777)).kind, Triage::kMayChange);
  t.acl = *AclGrant::parse_perms("r", 501000, std::nullopt);
  EXPECT_EQ(make_prepare_policy(t)->triage(st(S_IFLNK | 0777)).kind, Triage::kSkip);
}

// Shift: ids through one- and multi-extent maps, ACL named entries, capabilities byte for
// byte, --unmapped, --reverse.
namespace {

ShiftSpec spec(std::vector<Extent> extents, bool reverse = false, Unmapped unmapped = Unmapped::kRefuse) {
  ShiftSpec s;
  s.uid_map = s.gid_map = IdMap(std::move(extents));
  s.reverse = reverse;
  s.unmapped = unmapped;
  if (unmapped == Unmapped::kNobody && !reverse) {
    s.nobody_uid = *s.uid_map.to_host(65534);
    s.nobody_gid = *s.gid_map.to_host(65534);
  }
  return s;
}
const std::vector<Extent> kDocker = {{0, 500000, 65536}};

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(char(x));
  return s;
}
// cap_net_raw+ep (bit 13) as setcap writes it on the host (revision 2), and as container
// root 500000 writes it (revision 3 with root id 500000 = 0x07a120).
const std::string kCapV2 = bytes({0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
const std::string kCapV3 = bytes({0x01, 0, 0, 0x03, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                  0x20, 0xa1, 0x07, 0x00});

std::string acl(std::vector<AclEntry> entries) { return Acl{std::move(entries)}.serialize(); }

}  // namespace

TEST(ShiftPolicy, TranslatesOwnersThroughTheMap) {
  auto p = make_shift_policy(spec(kDocker));
  for (auto [from, to] : {std::pair<uint32_t, uint32_t>{0, 500000}, {1000, 501000}, {33, 500033}, {65535, 565535}}) {
    auto c = p->plan(st(S_IFREG | 0644, from, from), Values{std::nullopt, std::nullopt});
    ASSERT_TRUE(c) << from;
    EXPECT_EQ(c->uid, to);
    EXPECT_EQ(c->gid, to);
    EXPECT_EQ(c->mode, 0644u);
  }
  // Symlinks change owner and read nothing; devices keep theirs.
  EXPECT_TRUE(p->reads(st(S_IFLNK | 0777, 0, 0)).empty());
  EXPECT_EQ(p->plan(st(S_IFLNK | 0777, 0, 0), {})->uid, 500000u);
  EXPECT_EQ(p->triage(st(S_IFCHR | 0600, 0, 0)).skip, Skip::kDevice);
}

TEST(ShiftPolicy, HonoursEveryExtentOfAMultiRangeMap) {
  // As Docker builds it from two subuid lines.
  auto p = make_shift_policy(spec({{0, 100000, 1000}, {1000, 300000, 64536}}));
  EXPECT_EQ(p->plan(st(S_IFDIR | 0755, 999, 0), {})->uid, 100999u);
  EXPECT_EQ(p->plan(st(S_IFDIR | 0755, 1000, 0), {})->uid, 300000u);
  EXPECT_EQ(p->plan(st(S_IFDIR | 0755, 65535, 0), {})->uid, 364535u);
  auto r = make_shift_policy(spec({{0, 100000, 1000}, {1000, 300000, 64536}}, /*reverse=*/true));
  EXPECT_EQ(r->plan(st(S_IFDIR | 0755, 300000, 100999), {})->uid, 1000u);
  EXPECT_EQ(r->plan(st(S_IFDIR | 0755, 300000, 100999), {})->gid, 999u);
}

TEST(ShiftPolicy, ReverseIsTheInverse) {
  auto p = make_shift_policy(spec(kDocker, /*reverse=*/true));
  auto c = p->plan(st(S_IFREG | 0640, 501000, 500033), Values{std::nullopt, std::nullopt});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 1000u);
  EXPECT_EQ(c->gid, 33u);
}

TEST(ShiftPolicy, UnmappedIdsRefusedSkippedOrNobody) {
  // Default: the census refused the tree; an owner seen only during the run leaves the entry alone.
  auto refuse = make_shift_policy(spec(kDocker));
  Triage t = refuse->triage(st(S_IFREG | 0644, 70000, 0));
  EXPECT_EQ(t.kind, Triage::kSkip);
  EXPECT_EQ(t.skip, Skip::kReplaced);
  ASSERT_NE(t.note, nullptr);
  EXPECT_EQ(refuse->triage(st(S_IFREG | 0644, 1000, 70000)).kind, Triage::kSkip);
  EXPECT_EQ(refuse->triage(st(S_IFREG | 0644, 1000, 1000)).kind, Triage::kMayChange);

  auto skip = make_shift_policy(spec(kDocker, false, Unmapped::kSkip));
  EXPECT_EQ(skip->triage(st(S_IFREG | 0644, 70000, 0)).kind, Triage::kMayChange);
  auto c = skip->plan(st(S_IFREG | 0644, 70000, 0), Values{std::nullopt, std::nullopt});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 70000u);  // left alone
  EXPECT_EQ(c->gid, 500000u);
  EXPECT_FALSE(skip->plan(st(S_IFREG | 0644, 70000, 70000), Values{std::nullopt, std::nullopt}));

  auto nobody = make_shift_policy(spec(kDocker, false, Unmapped::kNobody));
  c = nobody->plan(st(S_IFREG | 0644, 70000, 1000), Values{std::nullopt, std::nullopt});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 565534u);  // what the container sees as 65534
  EXPECT_EQ(c->gid, 501000u);
  // Reversed, the host ids below the range have no container id; nobody is 65534 itself.
  auto rnobody = make_shift_policy(spec(kDocker, true, Unmapped::kNobody));
  EXPECT_EQ(rnobody->plan(st(S_IFREG | 0644, 1000, 501000), Values{std::nullopt, std::nullopt})->uid, 65534u);
}

TEST(ShiftPolicy, TranslatesNamedAclEntriesAndKeepsBaseEntriesAndMask) {
  auto p = make_shift_policy(spec(kDocker));
  const std::string access = acl({{kAclUserObj, 7}, {kAclUser, 6, 33}, {kAclUser, 4, 1000}, {kAclGroupObj, 5},
                                  {kAclGroup, 5, 999}, {kAclMask, 7}, {kAclOther, 0}});
  const std::string dflt = acl({{kAclUserObj, 7}, {kAclUser, 7, 1000}, {kAclGroupObj, 5}, {kAclMask, 7}, {kAclOther, 5}});
  ASSERT_EQ(p->reads(st(S_IFDIR | 0775, 0, 0)).size(), 2u);
  auto c = p->plan(st(S_IFDIR | 0775, 0, 0), Values{access, dflt});
  ASSERT_TRUE(c);
  ASSERT_EQ(c->xattrs.size(), 2u);
  EXPECT_EQ(c->xattrs[0].name, kAclAccessXattr);
  EXPECT_EQ(*c->xattrs[0].after, acl({{kAclUserObj, 7}, {kAclUser, 6, 500033}, {kAclUser, 4, 501000},
                                       {kAclGroupObj, 5}, {kAclGroup, 5, 500999}, {kAclMask, 7}, {kAclOther, 0}}));
  EXPECT_EQ(*c->xattrs[1].after,
            acl({{kAclUserObj, 7}, {kAclUser, 7, 501000}, {kAclGroupObj, 5}, {kAclMask, 7}, {kAclOther, 5}}));
  EXPECT_FALSE(c->mode_by_acl);  // the mask stays, so the mode does
  EXPECT_EQ(c->mode, 0775u);
  // And back, byte for byte.
  auto r = make_shift_policy(spec(kDocker, true));
  auto back = r->plan(st(S_IFDIR | 0775, 500000, 500000), Values{c->xattrs[0].after, c->xattrs[1].after});
  ASSERT_TRUE(back);
  EXPECT_EQ(*back->xattrs[0].after, access);
  EXPECT_EQ(*back->xattrs[1].after, dflt);
}

TEST(ShiftPolicy, AclEntriesStayInKernelOrderAcrossExtents) {
  // 10 -> 300010 and 2000 -> 100000 swap places.
  auto p = make_shift_policy(spec({{0, 300000, 1000}, {1000, 99000, 2000}}));
  auto c = p->plan(st(S_IFREG | 0640, 0, 0),
                   Values{acl({{kAclUserObj, 6}, {kAclUser, 4, 10}, {kAclUser, 4, 2000}, {kAclGroupObj, 4},
                               {kAclMask, 4}, {kAclOther, 0}}),
                          std::nullopt});
  ASSERT_TRUE(c);
  EXPECT_EQ(*c->xattrs[0].after, acl({{kAclUserObj, 6}, {kAclUser, 4, 100000}, {kAclUser, 4, 300010},
                                       {kAclGroupObj, 4}, {kAclMask, 4}, {kAclOther, 0}}));
}

TEST(ShiftPolicy, UnmappedAclEntriesFollowUnmapped) {
  const std::string access = acl({{kAclUserObj, 6}, {kAclUser, 4, 70000}, {kAclUser, 2, 80000}, {kAclGroupObj, 4},
                                  {kAclMask, 6}, {kAclOther, 0}});
  auto skip = make_shift_policy(spec(kDocker, false, Unmapped::kSkip));
  auto c = skip->plan(st(S_IFREG | 0660, 1000, 1000), Values{access, std::nullopt});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->xattrs.empty());  // the ACL stays; only the owner changes
  auto nobody = make_shift_policy(spec(kDocker, false, Unmapped::kNobody));
  c = nobody->plan(st(S_IFREG | 0660, 1000, 1000), Values{access, std::nullopt});
  ASSERT_TRUE(c);
  // Both become nobody's: one entry, with both entries' permissions.
  EXPECT_EQ(*c->xattrs[0].after,
            acl({{kAclUserObj, 6}, {kAclUser, 6, 565534}, {kAclGroupObj, 4}, {kAclMask, 6}, {kAclOther, 0}}));
}

TEST(ShiftPolicy, CapabilitiesV2BecomeV3ForContainerRootAndBack) {
  auto p = make_shift_policy(spec(kDocker));
  auto c = p->plan(st(S_IFREG | 04755, 0, 0), Values{std::nullopt, kCapV2});
  ASSERT_TRUE(c);
  ASSERT_EQ(c->xattrs.size(), 1u);
  EXPECT_EQ(c->xattrs[0].name, kCapabilityXattr);
  EXPECT_EQ(*c->xattrs[0].before, kCapV2);
  EXPECT_EQ(*c->xattrs[0].after, kCapV3);
  EXPECT_TRUE(c->restores_set_id());  // setuid survives the chown
  EXPECT_EQ(c->mode, 04755u);
  EXPECT_TRUE(c->arms());
  // Reversed: root id 500000 is container root, 0. By default what would grant as root on
  // the host goes: the capability is removed and the setuid bit of what becomes root's.
  auto r = make_shift_policy(spec(kDocker, true));
  c = r->plan(st(S_IFREG | 04755, 500000, 500000), Values{std::nullopt, kCapV3});
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->xattrs[0].after);
  EXPECT_EQ(c->mode, 0755u);
  EXPECT_FALSE(c->arms());
  // --keep-setid: revision 2 again, byte for byte, and the setuid bit.
  ShiftSpec keep = spec(kDocker, true);
  keep.keep_setid = true;
  c = make_shift_policy(keep)->plan(st(S_IFREG | 04755, 500000, 500000), Values{std::nullopt, kCapV3});
  ASSERT_TRUE(c);
  EXPECT_EQ(*c->xattrs[0].after, kCapV2);
  EXPECT_EQ(c->mode, 04755u);
  // A v2 capability on the host stays the host's when remapping is turned off: kept across the chown.
  c = r->plan(st(S_IFREG | 0755, 501000, 501000), Values{std::nullopt, kCapV2});
  ASSERT_TRUE(c);
  EXPECT_EQ(*c->xattrs[0].after, kCapV2);
  EXPECT_FALSE(c->changes_xattrs());
}

TEST(ShiftPolicy, CapabilityV3RootIdTranslated) {
  // Written by root of a container whose root was host 1000 (rootless): root id 1000.
  FileCaps caps = *FileCaps::parse(kCapV3);
  caps.root_id = 1000;
  auto p = make_shift_policy(spec(kDocker));
  auto c = p->plan(st(S_IFREG | 0755, 1000, 1000), Values{std::nullopt, caps.serialize()});
  ASSERT_TRUE(c);
  caps.root_id = 501000;
  EXPECT_EQ(*c->xattrs[0].after, caps.serialize());
  // A root id the map cannot translate: kept (skip), or nobody's.
  caps.root_id = 70000;
  EXPECT_EQ(*make_shift_policy(spec(kDocker, false, Unmapped::kSkip))
                 ->plan(st(S_IFREG | 0755, 0, 0), Values{std::nullopt, caps.serialize()})
                 ->xattrs[0].after,
            caps.serialize());
  auto nobody = make_shift_policy(spec(kDocker, false, Unmapped::kNobody))
                    ->plan(st(S_IFREG | 0755, 0, 0), Values{std::nullopt, caps.serialize()});
  EXPECT_EQ(FileCaps::parse(*nobody->xattrs[0].after)->root_id, 565534u);
  // Bytes that are no capability the kernel takes stay as they are.
  const std::string odd = "\x01\x02\x03";
  EXPECT_EQ(*make_shift_policy(spec(kDocker))->plan(st(S_IFREG | 0755, 0, 0), Values{std::nullopt, odd})->xattrs[0].after,
            odd);
}

TEST(FileCaps, ParsesAndSerializesByteForByte) {
  auto v2 = FileCaps::parse(kCapV2);
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->revision, 2u);
  EXPECT_TRUE(v2->effective);
  EXPECT_EQ(v2->permitted[0], 1u << 13);
  EXPECT_EQ(v2->serialize(), kCapV2);
  EXPECT_EQ(v2->describe(), "v2");
  auto v3 = FileCaps::parse(kCapV3);
  ASSERT_TRUE(v3);
  EXPECT_EQ(v3->root_id, 500000u);
  EXPECT_EQ(v3->serialize(), kCapV3);
  EXPECT_EQ(v3->describe(), "v3 rootid 500000");
  EXPECT_FALSE(FileCaps::parse(kCapV2.substr(0, 19)));
  EXPECT_FALSE(FileCaps::parse(kCapV3 + "x"));
  std::string bad_flags = kCapV2;
  bad_flags[1] = 1;
  EXPECT_FALSE(FileCaps::parse(bad_flags));
}

TEST(ShiftPolicy, NothingToDoWhenEveryIdMapsToItself) {
  auto p = make_shift_policy(spec({{0, 0, 1}, {1, 100000, 65535}}));
  EXPECT_FALSE(p->plan(st(S_IFDIR | 0755, 0, 0), Values{std::nullopt, std::nullopt}));
}

TEST(ShiftHeldIds, EveryIdTheShiftReads) {
  ShiftSpec s = spec(kDocker);
  std::vector<HeldId> ids;
  shift_held_ids(s, st(S_IFREG | 0755, 1000, 33),
                 Values{acl({{kAclUserObj, 6}, {kAclUser, 4, 70000}, {kAclGroupObj, 4}, {kAclGroup, 4, 999},
                             {kAclMask, 6}, {kAclOther, 0}}),
                        kCapV2},
                 ids);
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(ids[0].id, 1000u);
  EXPECT_EQ(ids[1].role, IdRole::kGroup);
  EXPECT_EQ(ids[2].role, IdRole::kAclUser);
  EXPECT_EQ(ids[2].id, 70000u);
  EXPECT_TRUE(ids[3].is_gid());
  EXPECT_EQ(ids[4].role, IdRole::kCapabilityRoot);
  EXPECT_EQ(ids[4].id, 0u);  // revision 2: container root
  EXPECT_TRUE(s.uid_in_host_range(565535));
  EXPECT_FALSE(s.uid_in_host_range(499999));
}

TEST(ShiftPolicy, ReadsNothingOfAnInodeTheCensusFoundBareWhileItsCtimeStays) {
  EntryStat file = st(S_IFREG | 0644, 0, 0), dir = st(S_IFDIR | 0755, 0, 0);
  file.ctime_ns = 100;
  dir.ino = 43;
  auto bare = std::make_shared<BareInodes>();
  bare->add({BareInodes::key(file)});
  auto p = make_shift_policy(spec(kDocker), bare);
  EXPECT_TRUE(p->reads(file).empty());
  EXPECT_EQ(p->plan(file, {})->uid, 500000u);
  EXPECT_EQ(p->reads(dir).size(), 2u);  // not seen by the census
  // An ACL or capability set since moved the ctime: read again. So does another inode that
  // took the number (its birth time).
  EntryStat touched = file, reborn = file;
  touched.ctime_ns = 101;
  reborn.btime_ns = 7;
  EXPECT_EQ(p->reads(touched).size(), 2u);
  EXPECT_EQ(p->reads(reborn).size(), 2u);
  EXPECT_EQ(make_shift_policy(spec(kDocker))->reads(file).size(), 2u);
}

// A hash set: what was added from any thread's census, in any order and any number of adds
// and merges (the index grows many times), is found; a key that differs in any part is not;
// one added twice is kept once.
TEST(BareInodes, FindsEveryKeyAddedAndNoOther) {
  auto entry = [](uint64_t ino, int64_t ctime, int64_t btime = 5, uint32_t minor = 1) {
    EntryStat e = st(S_IFREG | 0644, 0, 0);
    e.ino = ino;
    e.ctime_ns = ctime;
    e.btime_ns = btime;
    e.dev_major = 254;
    e.dev_minor = minor;
    return e;
  };
  BareInodes bare;
  EXPECT_FALSE(bare.contains(entry(1, 1)));
  BareInodes other;
  std::vector<BareInodes::Key> a, b;
  for (uint64_t ino = 1; ino <= 20000; ++ino) (ino % 3 ? a : b).push_back(BareInodes::key(entry(ino, int64_t(ino) * 7)));
  bare.add(a);
  other.add(b);
  other.add({BareInodes::key(entry(2, 14))});  // in `a` too
  bare.merge(std::move(other));
  EXPECT_EQ(bare.size(), 20000u);
  for (uint64_t ino = 1; ino <= 20000; ++ino) {
    const int64_t ctime = int64_t(ino) * 7;
    ASSERT_TRUE(bare.contains(entry(ino, ctime))) << ino;
    ASSERT_FALSE(bare.contains(entry(ino, ctime + 1))) << ino;     // its ctime moved
    ASSERT_FALSE(bare.contains(entry(ino, ctime, 6))) << ino;      // another inode, same number
    ASSERT_FALSE(bare.contains(entry(ino, ctime, 5, 2))) << ino;   // another filesystem
  }
  EXPECT_FALSE(bare.contains(entry(20001, 20001 * 7)));
  BareInodes empty;
  empty.merge(std::move(bare));
  EXPECT_TRUE(empty.contains(entry(3, 21)));
}

TEST(ShiftPolicy, ResumingFinishesWhatTheJournalRecordedAndLeavesConflictsAlone) {
  // The record of a setuid file with a capability, shifted 1000:33 -> 501000:500033.
  JournalRecord r;
  r.ino = 42;
  r.mode_before = S_IFREG | 06755;
  r.mode_after = 06755;
  r.uid_before = 1000, r.gid_before = 33, r.uid_after = 501000, r.gid_after = 500033;
  r.xattrs.push_back({kCapabilityXattr, kCapV2, kCapV3});
  auto resumed = std::make_shared<ResumedShift>();
  resumed->add(r);
  auto p = make_shift_policy(spec(kDocker), nullptr, resumed);
  using State = ResumedShift::State;
  const Values before{std::nullopt, kCapV2}, after{std::nullopt, kCapV3}, none{std::nullopt, std::nullopt};
  EXPECT_EQ(ResumedShift::state(r, st(S_IFREG | 06755, 1000, 33), before), State::kBefore);
  EXPECT_EQ(ResumedShift::state(r, st(S_IFREG | 06755, 501000, 500033), after), State::kAfter);
  EXPECT_FALSE(p->plan(st(S_IFREG | 06755, 501000, 500033), after));  // shifted already
  // Killed after the chown: set-id bits and the capability gone; the rest is finished.
  const EntryStat between = st(S_IFREG | 0755, 501000, 500033);
  EXPECT_EQ(p->triage(between).kind, Triage::kMayChange);  // not refused as unmapped
  auto c = p->plan(between, none);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 501000u);
  EXPECT_EQ(c->mode, 06755u);
  ASSERT_EQ(c->xattrs.size(), 1u);
  EXPECT_EQ(c->xattrs[0].after, kCapV3);
  // Changed since by someone else: left alone.
  EXPECT_EQ(p->triage(st(S_IFREG | 06755, 4242, 4242)).kind, Triage::kSkip);
  EXPECT_EQ(ResumedShift::state(r, st(S_IFREG | 06755, 1000, 33), Values{std::nullopt, kCapV3 + "x"}), State::kConflict);
  EXPECT_FALSE(p->plan(st(S_IFREG | 06755, 1000, 33), Values{std::nullopt, kCapV3 + "x"}));
  // Another inode that took the number (its birth time): not the recorded one.
  EntryStat reborn = st(S_IFREG | 0644, 501000, 500033);
  reborn.btime_ns = 9;
  EXPECT_EQ(resumed->find(reborn), nullptr);
  EXPECT_EQ(p->triage(reborn).kind, Triage::kSkip);  // 501000 has no host id in the map: refused as any
}
