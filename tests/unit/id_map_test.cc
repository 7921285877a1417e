#include "volprep/id_map.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace volprep {
namespace {

IdMap parse_ok(std::string_view text) {
  auto r = IdMap::parse_proc(text, "uid_map");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : IdMap();
}

TEST(ParseU32, AcceptsPlainDecimal) {
  EXPECT_EQ(parse_u32("0"), 0u);
  EXPECT_EQ(parse_u32("500000"), 500000u);
  EXPECT_EQ(parse_u32("4294967295"), UINT32_MAX);
}

TEST(ParseU32, RejectsSignsSpacesEmptyAndOverflow) {
  for (const char* bad : {"", "+1", "-1", " 1", "1 ", "1a", "abc", "4294967296", "99999999999",
                          "0x10"})
    EXPECT_FALSE(parse_u32(bad).has_value()) << bad;
}

TEST(IdMap, ParsesKernelFormatWithAnyWhiteSpace) {
  // The kernel prints "%10u %10u %10u\n"; writers may use single spaces or tabs.
  IdMap m = parse_ok("         0     500000      65536\n65536\t1000\t1\n\n");
  ASSERT_EQ(m.extents().size(), 2u);
  EXPECT_EQ(m.extents()[0], (Extent{0, 500000, 65536}));
  EXPECT_EQ(m.extents()[1], (Extent{65536, 1000, 1}));
}

TEST(IdMap, ParsesLastLineWithoutNewline) {
  IdMap m = parse_ok("0 1000 1\n1 100000 65536");
  ASSERT_EQ(m.extents().size(), 2u);
  EXPECT_EQ(m.extents()[1], (Extent{1, 100000, 65536}));
}

TEST(IdMap, ParseEmptyTextGivesEmptyMap) {
  IdMap m = parse_ok("");
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.validate(), "the map is empty");
}

TEST(IdMap, ParseErrorsNameOriginAndLine) {
  auto r = IdMap::parse_proc("0 0 1\n0 1\n", "/proc/42/uid_map");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kExitConfig);
  EXPECT_NE(r.error().message.find("/proc/42/uid_map:2"), std::string::npos) << r.error().message;

  r = IdMap::parse_proc("0 0 1\n0 0 1 4\n", "m");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("m:2"), std::string::npos) << r.error().message;

  r = IdMap::parse_proc("0 x 1\n", "m");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("m:1"), std::string::npos);
  EXPECT_NE(r.error().message.find("\"x\""), std::string::npos) << r.error().message;

  r = IdMap::parse_proc("0 4294967296 1\n", "m");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("4294967296"), std::string::npos) << r.error().message;
}

TEST(IdMap, ToProcPrintsPlainTriples) {
  IdMap m({{0, 1000, 1}, {1, 100000, 65535}});
  EXPECT_EQ(m.to_proc(), "0 1000 1\n1 100000 65535\n");
  EXPECT_EQ(IdMap().to_proc(), "");
  EXPECT_EQ(IdMap::identity().to_proc(), "0 0 4294967295\n");
}

TEST(IdMap, ToProcRoundTrips) {
  IdMap m({{0, 1000, 1}, {1, 100000, 65535}, {65536, 4294000000u, 10}});
  EXPECT_EQ(parse_ok(m.to_proc()), m);
}

TEST(IdMap, Describe) {
  EXPECT_EQ(IdMap().describe(), "(empty)");
  EXPECT_EQ(IdMap({{0, 1000, 1}, {1, 100000, 65535}}).describe(), "0 1000 1, 1 100000 65535");
}

TEST(IdMap, ToHostAndToContainer) {
  IdMap m({{0, 1000, 1}, {1, 100000, 65535}});
  EXPECT_EQ(m.to_host(0), 1000u);
  EXPECT_EQ(m.to_host(1), 100000u);
  EXPECT_EQ(m.to_host(2), 100001u);
  EXPECT_EQ(m.to_host(65535), 165534u);
  EXPECT_FALSE(m.to_host(65536).has_value());
  EXPECT_FALSE(m.to_host(UINT32_MAX).has_value());

  EXPECT_EQ(m.to_container(1000), 0u);
  EXPECT_EQ(m.to_container(100000), 1u);
  EXPECT_EQ(m.to_container(165534), 65535u);
  EXPECT_FALSE(m.to_container(165535).has_value());
  EXPECT_FALSE(m.to_container(999).has_value());
  EXPECT_FALSE(m.to_container(0).has_value());
}

TEST(IdMap, ToHostNearTheTopOfTheRange) {
  IdMap m({{4294967290u, 10, 5}});
  EXPECT_EQ(m.to_host(4294967294u), 14u);
  EXPECT_FALSE(m.to_host(UINT32_MAX).has_value());
  EXPECT_EQ(m.to_container(14), 4294967294u);
}

TEST(IdMap, EmptyMapMapsNothing) {
  IdMap m;
  EXPECT_FALSE(m.to_host(0).has_value());
  EXPECT_FALSE(m.to_container(0).has_value());
}

TEST(IdMap, Identity) {
  IdMap id = IdMap::identity();
  EXPECT_TRUE(id.is_identity());
  EXPECT_EQ(id.validate(), "");
  EXPECT_EQ(id.to_host(0), 0u);
  EXPECT_EQ(id.to_host(4294967294u), 4294967294u);
  // (u32)-1 is never mapped.
  EXPECT_FALSE(id.to_host(UINT32_MAX).has_value());
  EXPECT_EQ(parse_ok("0 0 4294967295\n"), id);
  EXPECT_FALSE(IdMap({{0, 0, 65536}}).is_identity());
  EXPECT_FALSE(IdMap({{0, 0, 4294967295u}, {4294967295u, 1, 0}}).is_identity());
}

TEST(IdMapValidate, AcceptsOrdinaryMaps) {
  EXPECT_EQ(IdMap({{0, 500000, 65536}}).validate(), "");
  EXPECT_EQ(IdMap({{0, 1000, 1}, {1, 100000, 65535}}).validate(), "");
  // Touching ranges do not overlap.
  EXPECT_EQ(IdMap({{0, 100, 10}, {10, 110, 10}}).validate(), "");
  // Extents need not be sorted.
  EXPECT_EQ(IdMap({{10, 110, 10}, {0, 100, 10}}).validate(), "");
}

TEST(IdMapValidate, RefusesEmptyMap) { EXPECT_EQ(IdMap().validate(), "the map is empty"); }

TEST(IdMapValidate, RefusesCountZero) {
  auto why = IdMap({{0, 100000, 0}, {0, 500000, 65536}}).validate();
  EXPECT_NE(why.find("count of 0"), std::string::npos) << why;
  EXPECT_NE(why.find("\"0 100000 0\""), std::string::npos) << why;
}

TEST(IdMapValidate, RefusesOverlapInContainerIds) {
  auto why = IdMap({{0, 100000, 100}, {50, 200000, 100}}).validate();
  EXPECT_NE(why.find("overlaps"), std::string::npos) << why;
  EXPECT_NE(why.find("container ids"), std::string::npos) << why;
}

TEST(IdMapValidate, RefusesOverlapInHostIds) {
  auto why = IdMap({{0, 100000, 100}, {1000, 100099, 1}}).validate();
  EXPECT_NE(why.find("overlaps"), std::string::npos) << why;
  EXPECT_NE(why.find("host ids"), std::string::npos) << why;
  // Containment in the other order.
  why = IdMap({{0, 100050, 1}, {1000, 100000, 100}}).validate();
  EXPECT_NE(why.find("host ids"), std::string::npos) << why;
}

TEST(IdMapValidate, RefusesWrapPastTheTop) {
  // container + count reaching 2^32 wraps in the kernel's u32 arithmetic.
  EXPECT_NE(IdMap({{4294967295u - 10, 0, 11}}).validate(), "");
  EXPECT_EQ(IdMap({{4294967295u - 10, 0, 10}}).validate(), "");
  EXPECT_NE(IdMap({{0, 4294967295u - 10, 11}}).validate(), "");
  EXPECT_EQ(IdMap({{0, 4294967295u - 10, 10}}).validate(), "");
  EXPECT_NE(IdMap({{1, 0, 4294967295u}}).validate(), "");
  EXPECT_NE(IdMap({{0, 1, 4294967295u}}).validate(), "");
}

TEST(IdMapValidate, RefusesIdMinusOne) {
  auto why = IdMap({{4294967295u, 1000, 1}}).validate();
  EXPECT_NE(why.find("runs past 4294967294"), std::string::npos) << why;
  EXPECT_NE(IdMap({{0, 4294967295u, 1}}).validate(), "");
}

TEST(IdMapValidate, ExtentLimit) {
  std::vector<Extent> extents;
  for (uint32_t i = 0; i < IdMap::kMaxExtents; ++i) extents.push_back({i * 10, 100000 + i * 10, 10});
  EXPECT_EQ(IdMap(extents).validate(), "");
  extents.push_back({uint32_t(IdMap::kMaxExtents) * 10, 200000, 10});
  auto why = IdMap(extents).validate();
  EXPECT_NE(why.find("341 extents"), std::string::npos) << why;
  EXPECT_NE(why.find("340"), std::string::npos) << why;
}

}  // namespace
}  // namespace volprep
