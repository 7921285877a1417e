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
}

TEST(ChmodSpec, BadSpecsAreUsageErrorsNamingTheText) {
  for (const char* bad : {"", "u+q", "u", "u+r,", "99999", "z+r"}) {
    auto s = ChmodSpec::parse(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().code, kExitUsage);
    EXPECT_NE(s.error().message.find(std::string("\"") + bad + "\""), std::string::npos);
  }
}
