#include "volprep/subid.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace volprep {
namespace {

constexpr uint32_t kDockremapUid = 999;

SubidLookup lookup_ok(const std::string& content, const std::string& user, uint32_t uid,
                      SubidRules rules) {
  SubidFile file(content, "/etc/subuid", "/h/etc/subuid");
  auto r = file.lookup(user, uid, rules);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : SubidLookup{};
}

Error lookup_error(const std::string& content, const std::string& user, uint32_t uid,
                   SubidRules rules) {
  SubidFile file(content, "/etc/subuid", "/h/etc/subuid");
  auto r = file.lookup(user, uid, rules);
  EXPECT_FALSE(r.ok());
  return r.ok() ? Error{} : r.error();
}

std::vector<std::pair<uint32_t, uint32_t>> starts_counts(const SubidLookup& l) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (const auto& r : l.ranges) out.emplace_back(r.start, r.count);
  return out;
}

using Pairs = std::vector<std::pair<uint32_t, uint32_t>>;

const Finding* finding_at(const SubidLookup& l, const std::string& where) {
  for (const auto& f : l.findings)
    if (f.where == where) return &f;
  return nullptr;
}

TEST(Subid, SingleLine) {
  auto l = lookup_ok("dockremap:500000:65536\n", "dockremap", kDockremapUid, SubidRules::kDocker28);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));
  ASSERT_EQ(l.ranges.size(), 1u);
  EXPECT_EQ(l.ranges[0].where, "/h/etc/subuid:1");
  EXPECT_EQ(l.ranges[0].line, "dockremap:500000:65536");
  EXPECT_TRUE(l.findings.empty());
  EXPECT_EQ(*ranges_to_map(l.ranges, 0), IdMap({{0, 500000, 65536}}));
}

TEST(Subid, OtherUsersLinesAreIgnored) {
  const std::string text =
      "alice:100000:65536\n"
      "dockremap:500000:65536\n"
      "1001:700000:10\n";
  for (auto rules : {SubidRules::kDocker28, SubidRules::kDocker2010}) {
    auto l = lookup_ok(text, "dockremap", kDockremapUid, rules);
    EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));
    EXPECT_TRUE(l.findings.empty());
  }
}

TEST(Subid, NoMatchGivesNoRanges) {
  auto l = lookup_ok("alice:100000:65536\n", "dockremap", kDockremapUid, SubidRules::kDocker28);
  EXPECT_TRUE(l.ranges.empty());
  l = lookup_ok("", "dockremap", kDockremapUid, SubidRules::kDocker2010);
  EXPECT_TRUE(l.ranges.empty());
}

TEST(Subid, SeveralLinesInFileOrder) {
  auto l = lookup_ok("yadutaf:1000:1\nyadutaf:100000:65535\n", "yadutaf", 1000,
                     SubidRules::kDocker28);
  EXPECT_EQ(starts_counts(l), (Pairs{{1000, 1}, {100000, 65535}}));
  IdMap m = *ranges_to_map(l.ranges, 0);
  EXPECT_EQ(m, IdMap({{0, 1000, 1}, {1, 100000, 65535}}));
}

TEST(Subid, TrimsWhiteSpaceAndCarriageReturns) {
  auto l = lookup_ok("  dockremap:500000:65536 \r\n", "dockremap", kDockremapUid,
                     SubidRules::kDocker2010);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));
  ASSERT_EQ(l.ranges.size(), 1u);
  EXPECT_EQ(l.ranges[0].line, "dockremap:500000:65536");
}

TEST(Subid, LastLineWithoutNewline) {
  auto l = lookup_ok("alice:1:2\ndockremap:500000:65536", "dockremap", kDockremapUid,
                     SubidRules::kDocker2010);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));
  EXPECT_EQ(l.ranges[0].where, "/h/etc/subuid:2");
}

const char kNoisy[] =
    "# comment\n"
    "\n"
    "garbage\n"
    "dockremap:500000:65536\n";

TEST(Subid, Docker28WarnsAboutGarbageLines) {
  auto l = lookup_ok(kNoisy, "dockremap", kDockremapUid, SubidRules::kDocker28);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));
  ASSERT_EQ(l.findings.size(), 1u);
  EXPECT_EQ(l.findings[0].level, Finding::kWarning);
  EXPECT_EQ(l.findings[0].where, "/h/etc/subuid:3");
  EXPECT_NE(l.findings[0].message.find("garbage"), std::string::npos);
  EXPECT_FALSE(has_error(l.findings));
  EXPECT_EQ(l.ranges[0].where, "/h/etc/subuid:4");
}

TEST(Subid, Docker2010RefusesGarbageLines) {
  Error e = lookup_error(kNoisy, "dockremap", kDockremapUid, SubidRules::kDocker2010);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_NE(e.message.find("Format not correct"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("/etc/subuid"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("/h/etc/subuid:3"), std::string::npos) << e.message;
}

TEST(Subid, Docker2010SkipsCommentsAndBlankLines) {
  auto l = lookup_ok("# comment\n\n   \n  # indented comment\ndockremap:500000:65536\n",
                     "dockremap", kDockremapUid, SubidRules::kDocker2010);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));
}

TEST(Subid, Docker2010RefusesGarbageLinesOfOtherUsersToo) {
  Error e = lookup_error("dockremap:500000:65536\nalice:1\n", "dockremap", kDockremapUid,
                         SubidRules::kDocker2010);
  EXPECT_NE(e.message.find("Format not correct"), std::string::npos) << e.message;
  e = lookup_error("dockremap:500000:65536\nalice:1:2:3\n", "dockremap", kDockremapUid,
                   SubidRules::kDocker2010);
  EXPECT_NE(e.message.find("Format not correct"), std::string::npos) << e.message;
}

TEST(Subid, Docker28ReadsJunkNumbersAsZeroWithAnError) {
  auto l = lookup_ok("dockremap:abc:65536\n", "dockremap", kDockremapUid, SubidRules::kDocker28);
  EXPECT_EQ(starts_counts(l), (Pairs{{0, 65536}}));
  EXPECT_EQ(*ranges_to_map(l.ranges, 0), IdMap({{0, 0, 65536}}));
  ASSERT_TRUE(has_error(l.findings));
  const Finding* f = finding_at(l, "/h/etc/subuid:1");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->level, Finding::kError);
  EXPECT_NE(f->message.find("\"abc\""), std::string::npos) << f->message;
  EXPECT_NE(f->message.find("host root"), std::string::npos) << f->message;
}

TEST(Subid, Docker28JunkCount) {
  auto l = lookup_ok("dockremap:500000:lots\n", "dockremap", kDockremapUid, SubidRules::kDocker28);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 0}}));
  EXPECT_TRUE(has_error(l.findings));
}

TEST(Subid, Docker28SignedAndHugeNumbers) {
  // Go's ParseInt takes a sign; a number out of int64 range reads as the int64 limit.
  auto l = lookup_ok("dockremap:+500000:65536\n", "dockremap", kDockremapUid,
                     SubidRules::kDocker28);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));

  l = lookup_ok("dockremap:-5:65536\n", "dockremap", kDockremapUid, SubidRules::kDocker28);
  ASSERT_EQ(l.findings.size(), 1u);
  EXPECT_EQ(l.findings[0].level, Finding::kError);
  EXPECT_NE(l.findings[0].message.find("reads it as -5"), std::string::npos)
      << l.findings[0].message;

  l = lookup_ok("dockremap:99999999999999999999:65536\n", "dockremap", kDockremapUid,
                SubidRules::kDocker28);
  ASSERT_EQ(l.findings.size(), 1u);
  EXPECT_NE(l.findings[0].message.find("reads it as 9223372036854775807"), std::string::npos)
      << l.findings[0].message;

  l = lookup_ok("dockremap:4294967296:65536\n", "dockremap", kDockremapUid, SubidRules::kDocker28);
  ASSERT_EQ(l.findings.size(), 1u);
  EXPECT_NE(l.findings[0].message.find("reads it as 4294967296"), std::string::npos)
      << l.findings[0].message;
}

TEST(Subid, Docker2010RefusesJunkNumbers) {
  Error e = lookup_error("dockremap:abc:65536\n", "dockremap", kDockremapUid,
                         SubidRules::kDocker2010);
  EXPECT_EQ(e.code, kExitConfig);
  EXPECT_NE(e.message.find("String to int conversion failed"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("\"abc\""), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("/h/etc/subuid:1"), std::string::npos) << e.message;
}

// Docker 20.10 to 27 read numbers with Go's strconv.Atoi (moby v20.10.24
// pkg/idtools/idtools.go:223 and :227): a sign and leading zeros are fine, and dockerd starts.
TEST(Subid, Docker2010ReadsNumbersAsGoAtoiDoes) {
  auto l = lookup_ok("dockremap:+500000:065536\n", "dockremap", kDockremapUid,
                     SubidRules::kDocker2010);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));
  EXPECT_TRUE(l.findings.empty());
  l = lookup_ok("dockremap:0000500000:+0065536\n", "dockremap", kDockremapUid,
                SubidRules::kDocker2010);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));
  // What Atoi refuses, in its words.
  for (auto [field, why] : {std::pair{"+", "invalid syntax"}, std::pair{"5_000", "invalid syntax"},
                            std::pair{"0x10", "invalid syntax"}, std::pair{" 5", "invalid syntax"},
                            std::pair{"99999999999999999999", "value out of range"}}) {
    Error e = lookup_error(std::string("dockremap:") + field + ":65536\n", "dockremap",
                           kDockremapUid, SubidRules::kDocker2010);
    EXPECT_NE(e.message.find(std::string("strconv.Atoi: parsing \"") + field + "\": " + why),
              std::string::npos)
        << e.message;
  }
  // What Atoi takes but no id is: refused, naming the line.
  for (const char* field : {"-5", "4294967296"}) {
    Error e = lookup_error(std::string("dockremap:") + field + ":65536\n", "dockremap",
                           kDockremapUid, SubidRules::kDocker2010);
    EXPECT_NE(e.message.find(std::string("/h/etc/subuid:1: \"dockremap:") + field +
                             ":65536\": Docker reads the start " + field),
              std::string::npos)
        << e.message;
  }
}

TEST(Subid, Docker2010JunkNumbersOfOtherUsersAreNotRead) {
  auto l = lookup_ok("alice:abc:1\ndockremap:500000:65536\n", "dockremap", kDockremapUid,
                     SubidRules::kDocker2010);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));
}

const char kMixedKeys[] =
    "dockremap:100000:65536\n"
    "999:200000:65536\n"
    "dockremap:300000:65536\n"
    "999:400000:65536\n";

// containers/storage pkg/idtools/idtools.go parseSubidFile (Podman): as strict as Docker
// 20.10, but every line of the name or the uid counts, in file order.
TEST(Subid, GoIdtoolsUsesEveryMatchingLineStrictly) {
  auto l = lookup_ok(kMixedKeys, "dockremap", kDockremapUid, SubidRules::kGoIdtools);
  EXPECT_EQ(starts_counts(l),
            (Pairs{{100000, 65536}, {200000, 65536}, {300000, 65536}, {400000, 65536}}));
  Error e = lookup_error("dockremap:500000:65536\nalice:1\n", "dockremap", kDockremapUid,
                         SubidRules::kGoIdtools);
  EXPECT_NE(e.message.find("Format not correct"), std::string::npos) << e.message;
  e = lookup_error("999:x:65536\n", "dockremap", kDockremapUid, SubidRules::kGoIdtools);
  EXPECT_NE(e.message.find("strconv.Atoi: parsing \"x\": invalid syntax"), std::string::npos)
      << e.message;
}

// moby v20.10.0 pkg/idtools/idtools_unix.go:244-262: the file read by name, then by uid, and
// both lists used, name-keyed first; 20.10.4 changed it (idtools_unix.go:263).
TEST(Subid, Docker2010EarlyUsesNameKeyedLinesThenUidKeyed) {
  auto l = lookup_ok(kMixedKeys, "dockremap", kDockremapUid, SubidRules::kDocker2010Early);
  EXPECT_EQ(starts_counts(l),
            (Pairs{{100000, 65536}, {300000, 65536}, {200000, 65536}, {400000, 65536}}));
  // The name pass runs first, so its bad number is the one reported.
  Error e = lookup_error("999:x:1\ndockremap:y:1\n", "dockremap", kDockremapUid,
                         SubidRules::kDocker2010Early);
  EXPECT_NE(e.message.find("parsing \"y\""), std::string::npos) << e.message;
  e = lookup_error("999:x:1\ndockremap:y:1\n", "dockremap", kDockremapUid, SubidRules::kDocker2010);
  EXPECT_NE(e.message.find("parsing \"x\""), std::string::npos) << e.message;
}

TEST(Subid, Docker2010UsesOnlyUidKeyedLinesWhenThereAreAny) {
  auto l = lookup_ok(kMixedKeys, "dockremap", kDockremapUid, SubidRules::kDocker2010);
  EXPECT_EQ(starts_counts(l), (Pairs{{200000, 65536}, {400000, 65536}}));
  EXPECT_EQ(*ranges_to_map(l.ranges, 0), IdMap({{0, 200000, 65536}, {65536, 400000, 65536}}));
}

TEST(Subid, Docker2010FallsBackToNameKeyedLines) {
  auto l = lookup_ok("dockremap:100000:65536\n1000:1:1\ndockremap:300000:65536\n", "dockremap",
                     kDockremapUid, SubidRules::kDocker2010);
  EXPECT_EQ(starts_counts(l), (Pairs{{100000, 65536}, {300000, 65536}}));
}

TEST(Subid, Docker2010NameKeyedJunkDoesNotMatterWhenUidKeyedLinesExist) {
  // Docker 20.10 reads the uid-keyed lines first and never parses the name-keyed ones.
  auto l = lookup_ok("dockremap:abc:65536\n999:200000:65536\n", "dockremap", kDockremapUid,
                     SubidRules::kDocker2010);
  EXPECT_EQ(starts_counts(l), (Pairs{{200000, 65536}}));

  Error e = lookup_error("dockremap:abc:65536\n", "dockremap", kDockremapUid,
                         SubidRules::kDocker2010);
  EXPECT_NE(e.message.find("\"abc\""), std::string::npos) << e.message;

  e = lookup_error("dockremap:1:1\n999:x:65536\n", "dockremap", kDockremapUid,
                   SubidRules::kDocker2010);
  EXPECT_NE(e.message.find("\"x\""), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("/h/etc/subuid:2"), std::string::npos) << e.message;
}

TEST(Subid, Docker2010FormatErrorAfterUidKeyedJunk) {
  // The uid-keyed pass stops at the bad number on line 1 before it reaches line 2.
  Error e = lookup_error("999:x:65536\ngarbage\n", "dockremap", kDockremapUid,
                         SubidRules::kDocker2010);
  EXPECT_NE(e.message.find("String to int"), std::string::npos) << e.message;
  // A name-keyed bad number is not read before the format error.
  e = lookup_error("dockremap:x:65536\ngarbage\n", "dockremap", kDockremapUid,
                   SubidRules::kDocker2010);
  EXPECT_NE(e.message.find("Format not correct"), std::string::npos) << e.message;
}

TEST(Subid, Docker28UsesUidAndNameKeyedLinesInFileOrder) {
  auto l = lookup_ok(kMixedKeys, "dockremap", kDockremapUid, SubidRules::kDocker28);
  EXPECT_EQ(starts_counts(l),
            (Pairs{{100000, 65536}, {200000, 65536}, {300000, 65536}, {400000, 65536}}));
  IdMap m = *ranges_to_map(l.ranges, 0);
  ASSERT_EQ(m.extents().size(), 4u);
  EXPECT_EQ(m.extents()[3], (Extent{196608, 400000, 65536}));
  EXPECT_TRUE(l.findings.empty());
}

TEST(Subid, Docker28MissingCountReadsAsZero) {
  auto l = lookup_ok("dockremap:100000\ndockremap:500000:65536\n", "dockremap", kDockremapUid,
                     SubidRules::kDocker28);
  EXPECT_EQ(starts_counts(l), (Pairs{{100000, 0}, {500000, 65536}}));
  EXPECT_EQ(*ranges_to_map(l.ranges, 0), IdMap({{0, 100000, 0}, {0, 500000, 65536}}));
  bool count_zero = false;
  for (const auto& f : l.findings)
    if (f.where == "/h/etc/subuid:1" && f.message.find("count of 0") != std::string::npos)
      count_zero = true;
  EXPECT_TRUE(count_zero);
}

TEST(Subid, Docker28NameOnlyLine) {
  auto l = lookup_ok("dockremap\n", "dockremap", kDockremapUid, SubidRules::kDocker28);
  EXPECT_EQ(starts_counts(l), (Pairs{{0, 0}}));
  EXPECT_TRUE(has_error(l.findings));
}

TEST(Subid, Docker28ExtraFieldsAreIgnored) {
  auto l = lookup_ok("dockremap:500000:65536:extra\n", "dockremap", kDockremapUid,
                     SubidRules::kDocker28);
  EXPECT_EQ(starts_counts(l), (Pairs{{500000, 65536}}));
  ASSERT_EQ(l.findings.size(), 1u);
  EXPECT_EQ(l.findings[0].level, Finding::kWarning);
}

TEST(Subid, OverlappingRangesAreReported) {
  auto l = lookup_ok("dockremap:100000:65536\ndockremap:150000:10\n", "dockremap", kDockremapUid,
                     SubidRules::kDocker28);
  ASSERT_EQ(l.ranges.size(), 2u);
  ASSERT_EQ(l.findings.size(), 1u);
  EXPECT_EQ(l.findings[0].where, "/h/etc/subuid:2");
  EXPECT_NE(l.findings[0].message.find("overlaps"), std::string::npos);
  EXPECT_NE(l.findings[0].message.find("/h/etc/subuid:1"), std::string::npos);
}

TEST(Subid, OverlappingRangesHelper) {
  std::vector<SubidRange> ranges{{100, 10, "f:1", "a:100:10"},
                                 {110, 10, "f:2", "a:110:10"},
                                 {105, 1, "f:3", "a:105:1"},
                                 {105, 0, "f:4", "a:105:0"}};
  auto found = overlapping_ranges(ranges);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].where, "f:3");
}

TEST(Subid, OverlapsAreFoundWhereverTheyAreInTheFile) {
  std::vector<SubidRange> ranges{{500, 10, "f:1", "a:500:10"},
                                 {100, 1000, "f:2", "a:100:1000"},
                                 {2000, 5, "f:3", "a:2000:5"},
                                 {2004, 1, "f:4", "a:2004:1"},
                                 {2000, 5, "f:5", "a:2000:5"}};
  auto found = overlapping_ranges(ranges);
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].where, "f:2");
  EXPECT_NE(found[0].message.find("(f:1)"), std::string::npos) << found[0].message;
  EXPECT_EQ(found[1].where, "f:4");
  EXPECT_EQ(found[2].where, "f:5");
}

// A file of 400k ranges for one user is read in well under a second, not minutes: the
// overlap check is a sort and a sweep, not every pair.
TEST(Subid, FourHundredThousandRangesAreQuick) {
  const size_t n = 400000;
  std::string text;
  text.reserve(n * 32);
  // Out of order, so the sort matters; one overlap at the very end.
  for (size_t i = 0; i < n; ++i)
    text += "dockremap:" + std::to_string(1000000 + ((i * 7919) % n) * 10) + ":10\n";
  text += "dockremap:1000005:10\n";
  auto begin = std::chrono::steady_clock::now();
  auto l = lookup_ok(text, "dockremap", kDockremapUid, SubidRules::kDocker28);
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  std::printf("400001 ranges read and checked in %.3f s\n", seconds);
  EXPECT_EQ(l.ranges.size(), n + 1);
  ASSERT_EQ(l.findings.size(), 1u);
  EXPECT_EQ(l.findings[0].where, "/h/etc/subuid:400001");
  // Not a benchmark: a quadratic lookup would take hours here. The bound leaves room for an
  // ASan build on a CI machine shared with the other tests (13.8 s seen there, 0.6 s in Release).
  EXPECT_LT(seconds, 120.0);
}

TEST(Subid, RangesToMapRunningTotal) {
  std::vector<SubidRange> ranges{{100000, 1000, "", ""}, {200000, 1000, "", ""}};
  EXPECT_EQ(*ranges_to_map(ranges, 0), IdMap({{0, 100000, 1000}, {1000, 200000, 1000}}));
  EXPECT_EQ(*ranges_to_map(ranges, 1), IdMap({{1, 100000, 1000}, {1001, 200000, 1000}}));
  EXPECT_TRUE(ranges_to_map({}, 0)->empty());
}

TEST(Subid, DisplayPath) {
  SubidFile f("", "/etc/subgid", "/x/etc/subgid");
  EXPECT_EQ(f.display_path(), "/etc/subgid");
}

}  // namespace
}  // namespace volprep
