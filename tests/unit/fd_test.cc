// Extended attributes by directory descriptor and name: with getxattrat(2) and friends, and
// through the /proc/self/fd fallback that kernels before 6.13 get. Neither follows a symlink.
#include "volprep/fd.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <atomic>

using namespace volprep;
namespace fs = std::filesystem;

namespace {

constexpr const char* kAttr = "trusted.volprep-test";  // root may set trusted.* on tmpfs too

class XattrAt : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "trusted.* xattrs need root";
    use_xattrat(GetParam());
    char tmpl[] = "/tmp/volprep-fd.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    top_ = tmpl;
    std::ofstream(top_ / "outside") << "x";
    fs::create_directory(top_ / "dir");
    std::ofstream(top_ / "dir" / "file") << "x";
    fs::create_symlink(top_ / "outside", top_ / "dir" / "link");
    dir_.reset(::open((top_ / "dir").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir_.valid());
  }
  void TearDown() override {
    use_xattrat(true);
    dir_.reset();
    if (!top_.empty()) fs::remove_all(top_);
  }
  fs::path top_;
  UniqueFd dir_;
};

TEST_P(XattrAt, SetGetRemoveByName) {
  std::string v;
  EXPECT_EQ(get_xattr_at(dir_.get(), "file", kAttr, v), -ENODATA);
  ASSERT_EQ(set_xattr_at(dir_.get(), "file", kAttr, "value"), 0);
  ASSERT_EQ(get_xattr_at(dir_.get(), "file", kAttr, v), 0);
  EXPECT_EQ(v, "value");
  std::string big(3000, 'b');  // larger than the first read's buffer
  ASSERT_EQ(set_xattr_at(dir_.get(), "file", kAttr, big), 0);
  ASSERT_EQ(get_xattr_at(dir_.get(), "file", kAttr, v), 0);
  EXPECT_EQ(v, big);
  EXPECT_EQ(remove_xattr_at(dir_.get(), "file", kAttr), 0);
  EXPECT_EQ(get_xattr_at(dir_.get(), "file", kAttr, v), -ENODATA);
  EXPECT_EQ(remove_xattr_at(dir_.get(), "file", kAttr), 0);  // absent already: fine
  EXPECT_EQ(get_xattr_at(dir_.get(), "missing", kAttr, v), -ENOENT);
}

TEST_P(XattrAt, ThroughAnOPathDescriptor) {  // how apply_change reaches a checked inode
  UniqueFd f(::openat(dir_.get(), "file", O_PATH | O_NOFOLLOW | O_CLOEXEC));
  ASSERT_TRUE(f.valid());
  ASSERT_EQ(set_xattr_at(f.get(), "", kAttr, "v"), 0);
  std::string got;
  ASSERT_EQ(get_xattr_at(dir_.get(), "file", kAttr, got), 0);
  EXPECT_EQ(got, "v");
  ASSERT_EQ(remove_xattr_at(f.get(), "", kAttr), 0);
  EXPECT_EQ(get_xattr_at(dir_.get(), "file", kAttr, got), -ENODATA);
}

TEST_P(XattrAt, TheDirectoryItself) {
  std::string v;
  ASSERT_EQ(set_xattr_at(dir_.get(), "", kAttr, "d"), 0);
  ASSERT_EQ(get_xattr_at(dir_.get(), "", kAttr, v), 0);
  EXPECT_EQ(v, "d");
}

TEST_P(XattrAt, NeverFollowsASymlink) {
  ASSERT_EQ(::setxattr((top_ / "outside").c_str(), kAttr, "out", 3, 0), 0);
  std::string v;
  EXPECT_EQ(get_xattr_at(dir_.get(), "link", kAttr, v), -ENODATA);  // the link's own: none
  ASSERT_EQ(set_xattr_at(dir_.get(), "link", kAttr, "mine"), 0);     // trusted.* may sit on a link
  char buf[16];
  ASSERT_EQ(::lgetxattr((top_ / "dir" / "link").c_str(), kAttr, buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), "mine");
  EXPECT_EQ(remove_xattr_at(dir_.get(), "link", kAttr), 0);
  EXPECT_EQ(::lgetxattr((top_ / "dir" / "link").c_str(), kAttr, buf, sizeof buf), -1);
  ASSERT_EQ(::getxattr((top_ / "outside").c_str(), kAttr, buf, sizeof buf), 3);  // untouched
  EXPECT_EQ(std::string(buf, 3), "out");
}

TEST_P(XattrAt, ThroughAPinKnownAsOPath) {  // open_entry's descriptors skip the f*xattr call
  UniqueFd pin(open_entry(dir_.get(), "file"));
  ASSERT_TRUE(pin.valid());
  ASSERT_EQ(set_xattr_at(pin.get(), "", kAttr, "p"), 0);
  std::string got;
  ASSERT_EQ(get_xattr_at(pin.get(), "", kAttr, got), 0);
  EXPECT_EQ(got, "p");
  std::string big(3000, 'b');
  ASSERT_EQ(set_xattr_at(pin.get(), "", kAttr, big), 0);
  ASSERT_EQ(get_xattr_at(pin.get(), "", kAttr, got), 0);
  EXPECT_EQ(got, big);
  ASSERT_EQ(remove_xattr_at(pin.get(), "", kAttr), 0);
  EXPECT_EQ(get_xattr_at(pin.get(), "", kAttr, got), -ENODATA);
}

TEST_P(XattrAt, AStaleHintStillReadsTheRightInode) {
  // A pin closed behind UniqueFd's back: its number, taken by a real descriptor, is still
  // marked O_PATH. The read goes the long way and finds that descriptor's inode.
  const int pin = open_entry(dir_.get(), "file");
  ASSERT_GE(pin, 0);
  ::close(pin);
  ASSERT_EQ(::setxattr((top_ / "outside").c_str(), kAttr, "out", 3, 0), 0);
  UniqueFd real(::open((top_ / "outside").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_EQ(real.get(), pin);
  std::string got;
  ASSERT_EQ(get_xattr_at(real.get(), "", kAttr, got), 0);
  EXPECT_EQ(got, "out");
}

TEST_P(XattrAt, SeveralAtOnceListedOrNot) {
  constexpr const char* kOther = "trusted.volprep-other";
  ASSERT_EQ(set_xattr_at(dir_.get(), "file", kOther, "o"), 0);
  UniqueFd pin(open_entry(dir_.get(), "file"));
  const char* names[] = {kAttr, kOther};
  for (bool listed : {false, true})
    for (int fd : {dir_.get(), pin.get()}) {
      std::optional<std::string> values[2];
      int rcs[2];
      get_xattrs_at(fd, fd == pin.get() ? "" : "file", names, listed, values, rcs);
      EXPECT_EQ(rcs[0], -ENODATA);
      EXPECT_FALSE(values[0]);
      ASSERT_EQ(rcs[1], 0);
      EXPECT_EQ(values[1], "o");
    }
  std::optional<std::string> values[2];
  int rcs[2];
  get_xattrs_at(dir_.get(), "missing", names, true, values, rcs);
  EXPECT_EQ(rcs[0], -ENOENT);
  EXPECT_EQ(rcs[1], -ENOENT);
}

TEST(XattrAtProbe, EmptyPathOnOPathAsTheKernelAnswers) {
  // Linux 6.18 refuses AT_EMPTY_PATH on an O_PATH descriptor (EBADF); the probe says what this
  // kernel does, and the reads above pass either way.
  UniqueFd root(::open("/", O_PATH | O_CLOEXEC));
  char buf[1];
  struct { uint64_t value; uint32_t size, flags; } args{reinterpret_cast<uintptr_t>(buf), 1, 0};
  long r = ::syscall(464, root.get(), "", AT_EMPTY_PATH, "user.volprep-probe", &args, sizeof args);
  if (r < 0 && errno == ENOSYS) GTEST_SKIP() << "no getxattrat";
  EXPECT_EQ(xattrat_takes_o_path(), !(r < 0 && errno == EBADF));
}

INSTANTIATE_TEST_SUITE_P(Kernel, XattrAt, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "xattrat" : "proc_fallback"; });

}  // namespace

// openat2 takes at most PATH_MAX bytes; a tree may be deeper. open_beneath resolves a longer
// path in parts, each beneath the last, still never through a symlink.
TEST(OpenBeneath, PathsLongerThanPathMax) {
  char tmpl[] = "/tmp/volprep-deep.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  struct RemoveAll {  // rm walks by descriptor; a path this long fails std::filesystem
    const char* dir;
    ~RemoveAll() { EXPECT_EQ(std::system(("rm -rf " + std::string(dir)).c_str()), 0); }
  } remove_all{tmpl};
  UniqueFd root(::open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(root.valid());
  const std::string name(200, 'd');
  std::string rel;
  UniqueFd cur(::dup(root.get()));
  size_t at_loop = 0;  // where level 30 has a symlink "loop" to itself
  for (int level = 0; level < 45; ++level) {  // 45 * 201 bytes: over twice PATH_MAX
    ASSERT_EQ(::mkdirat(cur.get(), name.c_str(), 0755), 0);
    cur.reset(::openat(cur.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(cur.valid());
    rel += (rel.empty() ? "" : "/") + name;
    if (level == 29) {
      ASSERT_EQ(::symlinkat(".", cur.get(), "loop"), 0);
      at_loop = rel.size();
    }
  }
  ASSERT_GT(rel.size(), size_t(2 * PATH_MAX));
  ASSERT_EQ(::symlinkat("/", cur.get(), "up"), 0);
  struct stat want{}, got{};
  ASSERT_EQ(::fstat(cur.get(), &want), 0);

  int fd = open_beneath(root.get(), rel, O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0) << std::strerror(-fd);
  UniqueFd deep(fd);
  ASSERT_EQ(::fstat(deep.get(), &got), 0);
  EXPECT_EQ(got.st_ino, want.st_ino);
  EXPECT_LT(open_beneath(root.get(), rel + "/up", O_RDONLY | O_DIRECTORY), 0);  // the symlink
  // A symlink in the middle, past the first PATH_MAX bytes: the path resolves if followed.
  const std::string via = rel.substr(0, at_loop) + "/loop" + rel.substr(at_loop);
  ASSERT_GT(at_loop, size_t(PATH_MAX));
  EXPECT_EQ(open_beneath(root.get(), via, O_RDONLY | O_DIRECTORY), -ELOOP);
  EXPECT_LT(open_beneath(root.get(), rel + "/../../x", O_RDONLY), 0);

}

// With RESOLVE_BENEATH (and RESOLVE_IN_ROOT) the kernel fails a lookup through ".." with
// EAGAIN when a rename anywhere on the system may have raced it, and asks for another try:
// about one lookup in a hundred here while another thread renames a directory elsewhere. A
// check run beside a test that renames failed so (ctest -j2, "Resource temporarily unavailable").
TEST(OpenBeneath, ARenameElsewhereDoesNotFailALookupThroughDotDot) {
  char tmpl[] = "/tmp/volprep-eagain.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  fs::create_directories(dir + "/root/srv/data");
  fs::create_directories(dir + "/x");
  UniqueFd root(::open((dir + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(root.valid());
  std::atomic<bool> stop{false};
  std::thread renamer([&] {
    const std::string x = dir + "/x", y = dir + "/y";
    while (!stop) {
      ::rename(x.c_str(), y.c_str());
      ::rename(y.c_str(), x.c_str());
    }
  });
  int failed = 0, first_error = 0;
  for (int i = 0; i < 50000; ++i) {
    const int fd = open_beneath(root.get(), "srv/../srv/data", O_PATH | O_DIRECTORY);
    if (fd >= 0) {
      ::close(fd);
    } else if (failed++ == 0) {
      first_error = -fd;
    }
  }
  stop = true;
  renamer.join();
  fs::remove_all(dir);
  EXPECT_EQ(failed, 0) << std::strerror(first_error);
}

// The walk's stat by name: stat_at_cached gives what stat_at gives on a local filesystem, and
// open_entry opens a symlink itself (O_PATH), never what it points to.
TEST(StatEntry, CachedAndSameMountOpenSeeTheEntryItself) {
  char tmpl[] = "/tmp/volprep-stat.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  fs::path top = tmpl;
  std::ofstream(top / "file") << "x";
  fs::create_directory(top / "dir");
  fs::create_symlink("/etc", top / "link");
  UniqueFd dir(::open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (const char* name : {"file", "dir", "link"}) {
    EntryStat plain, cached, opened;
    ASSERT_EQ(stat_at(dir.get(), name, plain), 0) << name;
    ASSERT_EQ(stat_at_cached(dir.get(), name, cached), 0) << name;
    EXPECT_TRUE(cached.same_inode(plain) && cached.mode == plain.mode && cached.uid == plain.uid &&
                cached.mnt_id == plain.mnt_id && cached.nlink == plain.nlink) << name;
    int fd = open_entry(dir.get(), name);
    ASSERT_GE(fd, 0) << name << ": " << std::strerror(-fd);
    UniqueFd held(fd);
    ASSERT_EQ(stat_at(fd, "", opened), 0) << name;
    EXPECT_TRUE(opened.same_inode(plain) && opened.mode == plain.mode) << name;
  }
  EXPECT_EQ(open_entry(dir.get(), "missing"), -ENOENT);
  EXPECT_EQ(open_entry(dir.get(), ".."), -EXDEV);  // beneath the directory only
  fs::remove_all(top);
}
