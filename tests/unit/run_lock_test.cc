// One changing run per tree: the lock of a tree, taken in a journal directory's lock file.
// Another process is a child forked for the purpose (its own open file description, as a
// second volprep has); this process's own locks never refuse it.
#include "volprep/run_lock.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

using namespace volprep;
namespace fs = std::filesystem;

namespace {

class RunLock : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/volprep-lock.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // What lock_tree returns in a child process: 0 locked, 1 nothing to lock, else the exit code.
  int in_child(const std::string& journal_dir, const EntryStat& st) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      auto r = lock_tree(journal_dir, st, "tree");
      ::_exit(r ? (*r ? 0 : 1) : r.error().code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string dir_;
};

EntryStat tree(uint64_t ino) {
  EntryStat st;
  st.dev_major = 254;
  st.dev_minor = 1;
  st.ino = ino;
  return st;
}

TEST_F(RunLock, AnotherProcessIsRefusedTheTreeNotAnother) {
  const std::string jd = dir_ + "/journals";
  EXPECT_FALSE(tree_locked_elsewhere(jd, tree(7)));  // no lock file yet: nothing asked, nothing made
  EXPECT_FALSE(fs::exists(jd));
  auto mine = lock_tree(jd, tree(7), "tree");
  ASSERT_TRUE(mine) << mine.error().message;
  EXPECT_TRUE(*mine);
  EXPECT_TRUE(lock_tree(jd, tree(7), "tree"));  // this process again: its own lock
  EXPECT_FALSE(tree_locked_elsewhere(jd, tree(7)));
  EXPECT_EQ(in_child(jd, tree(7)), kExitRefused);
  EXPECT_EQ(in_child(jd, tree(8)), 0);  // another tree
  struct stat st{};
  ASSERT_EQ(::stat((jd + "/" + kRunLockFile).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(RunLock, ARunWithoutJournalMakesNoDirectory) {
  const std::string jd = dir_ + "/none";
  auto r = lock_tree(jd, tree(7), "tree", /*create=*/false);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(*r);
  EXPECT_FALSE(fs::exists(jd));
}

TEST_F(RunLock, ALockFileOthersMayWriteIsNotUsed) {
  const std::string jd = dir_ + "/shared";
  fs::create_directory(jd);
  fs::permissions(jd, fs::perms::owner_all);
  const std::string file = jd + "/" + kRunLockFile;
  ASSERT_EQ(::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0600)), 0);
  ASSERT_EQ(::chmod(file.c_str(), 0666), 0);
  EXPECT_EQ(in_child(jd, tree(7)), kExitConfig);
}

}  // namespace
