// One changing run per tree: the locks of trees, and of the directories above them, in a lock
// file. Another process is a child forked for the purpose (its own open file description, as
// a second volprep has); this process's own locks never refuse it.
#include "volprep/run_lock.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

using namespace volprep;
namespace fs = std::filesystem;

namespace {

class RunLock : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/volprep-lock.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    locks_ = dir_ + "/locks";
    fs::create_directories(dir_ + "/a/b");
    fs::create_directories(dir_ + "/c");
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    fs::remove_all(dir_);
  }

  LockedTree tree(const std::string& rel) {
    const int fd = ::open((dir_ + "/" + rel).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << rel;
    fds_.push_back(fd);
    LockedTree t{fd, false, {}, rel};
    EXPECT_EQ(stat_at(fd, "", t.st), 0);
    return t;
  }

  // In a child process: 0 when it could lock `t` (then dropped with it), else lock_trees'
  // exit code; with `ask`, 0 or 1: whether tree_locked_elsewhere says another holds it.
  int in_child(const LockedTree& t, bool ask = false) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (ask) ::_exit(tree_locked_elsewhere(locks_, std::span(&t, 1)) == 0 ? 1 : 0);
      auto r = lock_trees(locks_, std::span(&t, 1));
      ::_exit(r ? 0 : r.error().code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string dir_, locks_;
  std::vector<int> fds_;
};

TEST_F(RunLock, ATreeItsInsideItsOutsideAreRefusedNotOneBeside) {
  const LockedTree a = tree("a");
  EXPECT_EQ(tree_locked_elsewhere(locks_, std::span(&a, 1)), -1);  // no lock file yet: nothing made
  EXPECT_FALSE(fs::exists(locks_));
  auto mine = lock_trees(locks_, std::span(&a, 1));
  ASSERT_TRUE(mine) << mine.error().message;
  EXPECT_TRUE(lock_trees(locks_, std::span(&a, 1)));  // this process again: its own locks
  EXPECT_EQ(tree_locked_elsewhere(locks_, std::span(&a, 1)), -1);
  EXPECT_EQ(in_child(a), kExitRefused);            // the same tree
  EXPECT_EQ(in_child(tree("a/b")), kExitRefused);  // a tree inside it
  EXPECT_EQ(in_child(tree(".")), kExitRefused);    // a tree it is in
  EXPECT_EQ(in_child(tree("c")), 0);               // one beside it
  EXPECT_EQ(in_child(a, /*ask=*/true), 1);
  EXPECT_EQ(in_child(tree("c"), /*ask=*/true), 0);
  struct stat st{};
  ASSERT_EQ(::stat((locks_ + "/" + kRunLockFile).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(RunLock, ATreeLockedLaterInsideAnotherOfTheRunDoesNotWeakenIt) {
  const LockedTree a = tree("a"), b = tree("a/b");
  ASSERT_TRUE(lock_trees(locks_, std::span(&a, 1)));
  ASSERT_TRUE(lock_trees(locks_, std::span(&b, 1)));  // a is above b: shared would downgrade it
  EXPECT_EQ(in_child(tree("a/b/..")), kExitRefused);
  const std::vector<LockedTree> both{tree("c"), tree(".")};  // "." holds c: one run, one call
  ASSERT_TRUE(lock_trees(locks_, both));
  EXPECT_EQ(in_child(tree(".")), kExitRefused);
}

TEST_F(RunLock, ARefusedCallTakesNoneOfItsLocks) {
  const LockedTree b = tree("a/b");
  ASSERT_TRUE(lock_trees(locks_, std::span(&b, 1)));
  // A child locks c and ".", which holds b: refused, and c left free for the next.
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::vector<LockedTree> trees{tree("c"), tree(".")};
    auto r = lock_trees(locks_, trees);
    if (r || r.error().code != kExitRefused) ::_exit(1);
    ::_exit(tree_locked_elsewhere(locks_, std::span(&trees[0], 1)) == -1 ? 0 : 2);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(in_child(tree("c")), 0);
}

TEST_F(RunLock, ARunThatWaitsSaysSoOnceAndLocksOnceTheOtherEnds) {
  const LockedTree a = tree("a");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t holder = ::fork();
  if (holder == 0) {  // holds a for 0.5 s, then ends (and its locks with it)
    auto r = lock_trees(locks_, std::span(&a, 1));
    (void)!::write(ready[1], r ? "1" : "0", 1);
    ::usleep(500000);
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, '1');
  const pid_t waiter = ::fork();
  if (waiter == 0) {
    int said = 0;
    const LockedTree inside = tree("a/b");
    auto r = lock_trees(locks_, std::span(&inside, 1), [&](const std::string& shown) { said += shown == "a/b"; });
    ::_exit(r && said == 1 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(waiter, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ::waitpid(holder, &status, 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_F(RunLock, ADirectoryToMakeInIsFoundWithoutFollowingASymlink) {
  fs::create_symlink(dir_ + "/c", dir_ + "/a/link");
  auto made_in = dir_to_lock_shared(dir_ + "/a/missing/x");  // the deepest one there
  ASSERT_TRUE(made_in);
  EXPECT_TRUE(made_in->tree.shared);
  EXPECT_TRUE(made_in->tree.st.same_inode(tree("a").st));
  auto via_link = dir_to_lock_shared(dir_ + "/a/link/x");  // the directory holding the link
  ASSERT_TRUE(via_link);
  EXPECT_TRUE(via_link->tree.st.same_inode(tree("a").st));
  EXPECT_FALSE(dir_to_lock_shared("relative/x"));
}

TEST_F(RunLock, ALockFileOthersMayWriteIsNotUsed) {
  fs::create_directory(locks_);
  fs::permissions(locks_, fs::perms::owner_all);
  const std::string file = locks_ + "/" + kRunLockFile;
  ASSERT_EQ(::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0600)), 0);
  ASSERT_EQ(::chmod(file.c_str(), 0666), 0);
  EXPECT_EQ(in_child(tree("a")), kExitConfig);
}

}  // namespace
