#include "volprep/chmod_spec.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace volprep;

namespace {
uint32_t apply(const char* spec, uint32_t mode) {
  auto s = ChmodSpec::parse(spec);
  EXPECT_TRUE(s.ok()) << spec;
  return s->apply(mode);
}
}  // namespace

TEST(ChmodSpec, SymbolicClauses) {
  EXPECT_EQ(apply("u+rwX,g+rX", S_IFREG | 0600), 0640u);
  EXPECT_EQ(apply("u+rwX,g+rX", S_IFREG | 0700), 0750u);  // X: an execute bit was set
  EXPECT_EQ(apply("u+rwX,g+rX", S_IFDIR | 0700), 0750u);  // X: a directory
  EXPECT_EQ(apply("o-rwx", S_IFREG | 0777), 0770u);
  EXPECT_EQ(apply("a=r", S_IFREG | 0777), 0444u);
  EXPECT_EQ(apply("+x", S_IFREG | 0600), 0711u);          // no who: all, umask not consulted
  EXPECT_EQ(apply("g=u", S_IFREG | 0750), 0770u);
  EXPECT_EQ(apply("u+s", S_IFREG | 0755), 04755u);
  EXPECT_EQ(apply("ug=rw,o=", S_IFREG | 0777), 0660u);
  EXPECT_EQ(apply("u=rwx", S_IFDIR | 02755), 02755u);     // '=' keeps a directory's setgid
  EXPECT_EQ(apply("0750", S_IFREG | 0644), 0750u);
  EXPECT_EQ(apply("o+t", S_IFDIR | 0777), 01777u);        // the sticky bit belongs to "o"
}

// What coreutils 9.1 chmod (umask 0, so a clause without who means "a") made of a file of
// mode 0644 and 7777 and a directory of mode 0755, 6755 and 7777, for specs with s and t in
// every position chmod takes them, and the setuid/setgid bits a directory keeps.
TEST(ChmodSpec, SetIdAndStickyAsCoreutilsChmod) {
  struct Row {
    const char* spec;
    uint32_t want[5];
  };
  const Row rows[] = {
    {"u+s", {04644, 07777, 04755, 06755, 07777}},
    {"g+s", {02644, 07777, 02755, 06755, 07777}},
    {"o+s", {00644, 07777, 00755, 06755, 07777}},
    {"a+s", {06644, 07777, 06755, 06755, 07777}},
    {"+s", {06644, 07777, 06755, 06755, 07777}},
    {"ug+s", {06644, 07777, 06755, 06755, 07777}},
    {"u-s", {00644, 03777, 00755, 02755, 03777}},
    {"g-s", {00644, 05777, 00755, 04755, 05777}},
    {"-s", {00644, 01777, 00755, 00755, 01777}},
    {"a-s", {00644, 01777, 00755, 00755, 01777}},
    {"u=s", {04044, 07077, 04055, 06055, 07077}},
    {"g=s", {02604, 07707, 02705, 06705, 07707}},
    {"o=s", {00640, 06770, 00750, 06750, 06770}},
    {"=s", {06000, 06000, 06000, 06000, 06000}},
    {"u+t", {00644, 07777, 00755, 06755, 07777}},
    {"g+t", {00644, 07777, 00755, 06755, 07777}},
    {"o+t", {01644, 07777, 01755, 07755, 07777}},
    {"a+t", {01644, 07777, 01755, 07755, 07777}},
    {"+t", {01644, 07777, 01755, 07755, 07777}},
    {"ugo+t", {01644, 07777, 01755, 07755, 07777}},
    {"o-t", {00644, 06777, 00755, 06755, 06777}},
    {"-t", {00644, 06777, 00755, 06755, 06777}},
    {"a-t", {00644, 06777, 00755, 06755, 06777}},
    {"u-t", {00644, 07777, 00755, 06755, 07777}},
    {"o=t", {01640, 07770, 01750, 07750, 07770}},
    {"=t", {01000, 01000, 01000, 07000, 07000}},
    {"a=t", {01000, 01000, 01000, 07000, 07000}},
    {"u=rwxs", {04744, 07777, 04755, 06755, 07777}},
    {"g=rxs", {02654, 07757, 02755, 06755, 07757}},
    {"o=rwxt", {01647, 07777, 01757, 07757, 07777}},
    {"ug=rwxs", {06774, 07777, 06775, 06775, 07777}},
    {"a=rwxst", {07777, 07777, 07777, 07777, 07777}},
    {"u+st", {04644, 07777, 04755, 06755, 07777}},
    {"+st", {07644, 07777, 07755, 07755, 07777}},
    {"o+st", {01644, 07777, 01755, 07755, 07777}},
    {"u=g", {00444, 03777, 00555, 06555, 07777}},
    {"o=u", {00646, 06777, 00757, 06757, 06777}},
    {"g=o", {00644, 05777, 00755, 06755, 07777}},
    {"1755", {01755, 01755, 01755, 07755, 07755}},
    {"2755", {02755, 02755, 02755, 06755, 06755}},
    {"4755", {04755, 04755, 04755, 06755, 06755}},
    {"6755", {06755, 06755, 06755, 06755, 06755}},
    {"7777", {07777, 07777, 07777, 07777, 07777}},
    {"0755", {00755, 00755, 00755, 06755, 06755}},
    {"755", {00755, 00755, 00755, 06755, 06755}},
    {"0", {00000, 00000, 00000, 06000, 06000}},
    {"1", {00001, 00001, 00001, 06001, 06001}},
    {"u+x,o+t", {01744, 07777, 01755, 07755, 07777}},
    {"g-s,o-t", {00644, 04777, 00755, 04755, 04777}},
    {"a-st", {00644, 00777, 00755, 00755, 00777}},
    {"u=rwx", {00744, 03777, 00755, 06755, 07777}},
    {"=rwx", {00777, 00777, 00777, 06777, 06777}},
    {"o=", {00640, 06770, 00750, 06750, 06770}},
    {"g=", {00604, 05707, 00705, 06705, 07707}},
    {"u=", {00044, 03077, 00055, 06055, 07077}},
    {"ug=rx", {00554, 01557, 00555, 06555, 07557}},
    {"u+s-x", {04644, 07677, 04655, 06655, 07677}},
    {"o+t+x", {01645, 07777, 01755, 07755, 07777}},
    {"=,o+t", {01000, 01000, 01000, 07000, 07000}},
  };
  const uint32_t starts[5] = {S_IFREG | 0644, S_IFREG | 07777, S_IFDIR | 0755, S_IFDIR | 06755,
                              S_IFDIR | 07777};
  for (const Row& r : rows)
    for (int i = 0; i < 5; ++i)
      EXPECT_EQ(apply(r.spec, starts[i]), r.want[i])
          << r.spec << " on " << std::oct << starts[i] << ": got " << apply(r.spec, starts[i]);
}

TEST(ChmodSpec, BadSpecsAreUsageErrorsNamingTheText) {
  for (const char* bad : {"", "u+q", "u", "u+r,", "99999", "z+r"}) {
    auto s = ChmodSpec::parse(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().code, kExitUsage);
    EXPECT_NE(s.error().message.find(std::string("\"") + bad + "\""), std::string::npos);
  }
  // A numeric mode in a list says so, not "expected +, - or =".
  for (const char* mixed : {"755,u+w", "u+w,644"}) {
    auto s = ChmodSpec::parse(mixed);
    ASSERT_FALSE(s.ok()) << mixed;
    EXPECT_NE(s.error().message.find("a numeric mode stands alone"), std::string::npos) << s.error().message;
  }
}
