// Rollback of journals with several roots and renames, on a real tree, as root: the journals
// are written with JournalWriter as a driver would (no command writes renames yet).
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "volprep/rollback.h"

using namespace volprep;
namespace fs = std::filesystem;

namespace {

class RollbackTree : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "changes owners: needs root";
    char tmpl[] = "/tmp/volprep-rollback.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    for (auto d : {"/old", "/new", "/old/vol", "/old/vol/sub", "/other", "/journals"})
      ASSERT_EQ(::mkdir((base_ + d).c_str(), 0755), 0) << d;
    for (auto f : {"/old/vol/f", "/old/vol/sub/g", "/other/h"}) {
      ASSERT_EQ(::close(::open((base_ + f).c_str(), O_CREAT | O_WRONLY, 0644)), 0) << f;
      ASSERT_EQ(::lchown((base_ + f).c_str(), 1000, 1000), 0);
    }
  }
  void TearDown() override {
    if (!base_.empty()) fs::remove_all(base_);
  }

  EntryStat stat_of(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    EntryStat st;
    EXPECT_EQ(stat_at(fd.get(), "", st), 0) << path;
    return st;
  }
  JournalRoot root(const std::string& path) {
    auto st = stat_of(path);
    return {path, st.dev_major, st.dev_minor, st.ino};
  }
  uid_t owner(const std::string& path) { return stat_of(path).uid; }

  std::unique_ptr<JournalWriter> writer(const std::string& volume) {
    JournalHeader h;
    h.volprep_version = "test";
    auto r = root(volume);
    h.volume = r.volume, h.dev_major = r.dev_major, h.dev_minor = r.dev_minor, h.ino = r.ino;
    h.btime_ns = stat_of(volume).btime_ns;
    h.start_ns = 1;
    auto w = JournalWriter::create("", base_ + "/journals/run.vpj", h);
    EXPECT_TRUE(w.ok());
    return std::move(*w);
  }
  // Gives `dir`/`name` below the root `volume` to 501000, journaled first, as prepare does.
  void chown_journaled(JournalWriter& w, const std::string& volume, const std::string& dir, const std::string& name) {
    Change c;
    c.name = name;
    c.before = stat_of(volume + (dir.empty() ? "" : "/" + dir) + "/" + name);
    c.uid = c.gid = 501000;
    c.mode = c.before.mode & 07777;
    std::string batch;
    append_directory_record(batch, dir, "");
    append_change_record(batch, c);
    auto at = w.write(batch);
    ASSERT_TRUE(at.ok());
    ASSERT_TRUE(w.wait_durable(*at).ok());
    ASSERT_EQ(::lchown((volume + (dir.empty() ? "" : "/" + dir) + "/" + name).c_str(), 501000, 501000), 0);
  }
  // Renames base/old/vol to base/new/vol, journaled first, as migrate-volumes will.
  void move_journaled(JournalWriter& w) {
    auto st = stat_of(base_ + "/old/vol");
    JournalMove m{base_ + "/old", "vol", base_ + "/new", "vol", stat_of(base_ + "/old").ino,
                  stat_of(base_ + "/new").ino, st.dev_major, st.dev_minor, st.ino, st.mode, st.btime_ns};
    ASSERT_TRUE(w.record_move(m).ok());
    ASSERT_EQ(::rename((base_ + "/old/vol").c_str(), (base_ + "/new/vol").c_str()), 0);
  }
  // Gives f to the container, renames the volume to base/new/vol, gives it sub/g there (a
  // root of its own).
  void migrate(JournalWriter& w) {
    chown_journaled(w, base_ + "/old/vol", "", "f");
    move_journaled(w);
    ASSERT_TRUE(w.start_root(root(base_ + "/new/vol"), stat_of(base_ + "/new/vol").btime_ns).ok());
    chown_journaled(w, base_ + "/new/vol", "sub", "g");
  }
  Journal finished(JournalWriter& w) {
    EXPECT_TRUE(w.finish({}).ok());
    auto j = read_journal(w.path(), JournalRead::kSummary);
    EXPECT_TRUE(j.ok()) << j.error().message;
    return *j;
  }
  RollbackResult rolled_back(const Journal& j, RollbackConfig config = {}) {
    auto r = rollback(j, config);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return {};
    EXPECT_EQ(r->stopped, "");
    return *r;
  }
  // Journals and makes the rename of base/old/vol to base/new/vol alone, lets `meanwhile`
  // happen, and rolls back.
  template <typename F>
  RollbackResult rename_then_roll_back(F meanwhile) {
    auto w = writer(base_ + "/old/vol");
    move_journaled(*w);
    const Journal j = finished(*w);
    meanwhile();
    return rolled_back(j);
  }
  std::string base_;
};

// The run gave f to the container, moved the volume, then gave sub/g (below the new place,
// another root) and a file of a second volume. Rollback undoes them newest first: the second
// volume and sub/g, then the rename, then f below the old place again.
TEST_F(RollbackTree, ARenameIsUndoneBetweenTheRecordsAroundIt) {
  auto w = writer(base_ + "/old/vol");
  migrate(*w);
  ASSERT_TRUE(w->start_root(root(base_ + "/other"), stat_of(base_ + "/other").btime_ns).ok());
  chown_journaled(*w, base_ + "/other", "", "h");
  const Journal j = finished(*w);
  ASSERT_EQ(j.roots.size(), 3u);
  ASSERT_EQ(j.moves.size(), 1u);

  RollbackConfig dry;
  dry.dry_run = true;
  auto plan = rolled_back(j, dry);
  EXPECT_EQ(plan.restored, 4u);
  ASSERT_EQ(plan.moves.size(), 1u);
  EXPECT_EQ(plan.moves[0].from, base_ + "/new/vol");
  EXPECT_EQ(plan.moves[0].to, base_ + "/old/vol");
  std::vector<std::string> paths;
  for (const auto& e : plan.entries) paths.push_back(e.path);
  // f is shown where it is now: the rename back was not made.
  EXPECT_EQ(paths, (std::vector<std::string>{base_ + "/new/vol/f", base_ + "/new/vol/sub/g", base_ + "/other/h"}));
  EXPECT_TRUE(fs::exists(base_ + "/new/vol"));
  EXPECT_EQ(owner(base_ + "/new/vol/f"), 501000u);  // a dry run changes nothing

  auto r = rolled_back(j);
  EXPECT_EQ(r.restored, 4u);
  EXPECT_TRUE(r.notes.empty()) << r.notes[0].path << ": " << r.notes[0].text;
  EXPECT_FALSE(fs::exists(base_ + "/new/vol"));
  EXPECT_EQ(owner(base_ + "/old/vol/f"), 1000u);
  EXPECT_EQ(owner(base_ + "/old/vol/sub/g"), 1000u);
  EXPECT_EQ(owner(base_ + "/other/h"), 1000u);
  // Again: nothing left to do, though the second root is back under its old name.
  auto again = rolled_back(j);
  EXPECT_EQ(again.restored, 0u);
  EXPECT_EQ(again.already, 4u);
}

TEST_F(RollbackTree, ARenameBackOntoATakenNameIsLeftAlone) {
  auto r = rename_then_roll_back([&] {
    ASSERT_EQ(::mkdir((base_ + "/old/vol").c_str(), 0755), 0);  // the old name taken since
  });
  EXPECT_EQ(r.restored, 0u);
  EXPECT_EQ(r.conflicts, 1u);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].text.find("is taken now"), std::string::npos) << r.notes[0].text;
  EXPECT_TRUE(fs::exists(base_ + "/new/vol/f"));
  EXPECT_TRUE(fs::is_empty(base_ + "/old/vol"));
}

TEST_F(RollbackTree, AnotherEntryUnderTheNewNameIsNotMovedBack) {
  auto r = rename_then_roll_back([&] {
    ASSERT_EQ(::rename((base_ + "/new/vol").c_str(), (base_ + "/new/elsewhere").c_str()), 0);
    ASSERT_EQ(::symlink((base_ + "/new/elsewhere").c_str(), (base_ + "/new/vol").c_str()), 0);
  });
  EXPECT_EQ(r.restored, 0u);
  EXPECT_EQ(r.missing, 1u);  // a symlink to the moved directory is not it
  EXPECT_FALSE(fs::exists(base_ + "/old/vol"));
  EXPECT_TRUE(fs::is_symlink(base_ + "/new/vol"));
}

TEST_F(RollbackTree, ADirectoryOthersMayWriteToIsNotRenamedIn) {
  auto r = rename_then_roll_back([&] { ASSERT_EQ(::chmod((base_ + "/old").c_str(), 0777), 0); });
  EXPECT_EQ(r.restored, 0u);
  EXPECT_EQ(r.conflicts, 1u);
  EXPECT_TRUE(fs::exists(base_ + "/new/vol"));
}

// The rollback's own journal records the rename back and its roots: rolling it back redoes
// the run.
TEST_F(RollbackTree, TheRollbacksOwnJournalUndoesIt) {
  const int64_t born = stat_of(base_ + "/old/vol").btime_ns;
  auto w = writer(base_ + "/old/vol");
  migrate(*w);
  const Journal j = finished(*w);
  auto own = JournalWriter::create("", base_ + "/journals/rollback.vpj", rollback_header(j, "test"));
  ASSERT_TRUE(own.ok());
  RollbackConfig config;
  config.journal = own->get();
  EXPECT_EQ(rolled_back(j, config).restored, 3u);
  const Journal undo = finished(**own);
  EXPECT_EQ(undo.moves.size(), 1u);
  EXPECT_EQ(undo.changes, 2u);
  // Its roots with the birth time the run journaled for them (one directory, moved; the run
  // left it as it was, so only the header and the 'R' record hold it).
  EXPECT_EQ(j.root_btime, std::vector<int64_t>(2, born));
  EXPECT_EQ(undo.roots.size(), 3u);  // the header's, the new place's, the old place's again
  EXPECT_EQ(undo.root_btime, std::vector<int64_t>(undo.roots.size(), born));
  EXPECT_EQ(rolled_back(undo).restored, 3u);
  EXPECT_EQ(owner(base_ + "/new/vol/f"), 501000u);
  EXPECT_EQ(owner(base_ + "/new/vol/sub/g"), 501000u);
  EXPECT_FALSE(fs::exists(base_ + "/old/vol"));
}

// A run that left the root as it was (owned as it should be already) journals no record of
// it, but its birth time in the header: a root found at its path with its inode on another
// device (a remount, here a journal that says another minor) is still told to be the same.
TEST_F(RollbackTree, ARootTheRunLeftAloneStillTellsItsRemount) {
  const auto st = stat_of(base_ + "/other");
  if (!st.btime_ns) GTEST_SKIP() << "the filesystem of /tmp keeps no birth time";
  for (bool with_btime : {true, false}) {
    JournalHeader h;
    h.volprep_version = "test";
    h.volume = base_ + "/other", h.dev_major = st.dev_major, h.dev_minor = st.dev_minor + 1, h.ino = st.ino;
    h.btime_ns = with_btime ? st.btime_ns : 0;  // 0: as a journal older than format 6 holds it
    h.start_ns = 1;
    const std::string path = base_ + "/journals/" + (with_btime ? "v6" : "none") + ".vpj";
    auto w = JournalWriter::create("", path, h);
    ASSERT_TRUE(w.ok()) << w.error().message;
    ASSERT_TRUE((*w)->finish({1, 0, 0, 0}).ok());
    auto j = read_journal(path, JournalRead::kSummary);
    ASSERT_TRUE(j.ok()) << j.error().message;
    auto moved = find_moved_devices(*j);
    if (!with_btime) {
      ASSERT_FALSE(moved);
      EXPECT_NE(moved.error().message.find("holds no birth time"), std::string::npos) << moved.error().message;
      continue;
    }
    ASSERT_TRUE(moved) << moved.error().message;
    ASSERT_EQ(moved->size(), 1u);
    EXPECT_EQ((*moved)[0].from_minor, st.dev_minor + 1);
    EXPECT_EQ((*moved)[0].to_minor, st.dev_minor);
  }
}

}  // namespace
