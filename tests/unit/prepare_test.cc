// The walk and the prepare stage on real trees in a temporary directory (as root, since the
// point is changing owners).
#include "volprep/prepare.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <tbb/global_control.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "volprep/apply.h"
#include "volprep/fd.h"

using namespace volprep;
namespace fs = std::filesystem;

namespace {

class TempTree : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "these tests change owners: run them as root";
    char tmpl[] = "/tmp/volprep-unit.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    top_ = tmpl;
    root_ = top_ / "vol";
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (!top_.empty()) fs::remove_all(top_);
  }
  void file(const fs::path& rel, uint32_t uid = 1000, mode_t mode = 0640) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << "x";
    ASSERT_EQ(::chown((root_ / rel).c_str(), uid, uid), 0);
    ASSERT_EQ(::chmod((root_ / rel).c_str(), mode), 0);
  }
  VolumeRoot open() {
    auto v = open_volume(root_.string(), VolumeSafety{});
    EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.error().message);
    return std::move(*v);
  }
  PrepareResult run(bool dry_run, std::vector<std::string> excludes = {}) {
    PrepareConfig config;
    config.target.uid = config.target.gid = 501000;
    config.dry_run = dry_run;
    config.excludes = std::move(excludes);
    auto v = open();
    return prepare_volume(v, config);
  }
  // path -> "uid:gid mode ctime" of everything under `dir`
  static std::map<std::string, std::string> manifest(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
      struct stat st;
      ::lstat(it->path().c_str(), &st);
      out[it->path().string()] = std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) + " " +
                                 std::to_string(st.st_mode) + " " + std::to_string(st.st_ctim.tv_sec) +
                                 "." + std::to_string(st.st_ctim.tv_nsec);
    }
    return out;
  }
  fs::path top_, root_;
};

std::vector<std::string> paths_of(const PrepareResult& r) {
  std::vector<std::string> out;
  for (const auto& c : r.planned) out.push_back(c.path);
  return out;
}

}  // namespace

TEST_F(TempTree, DryRunPlansEveryEntrySortedAndChangesNothing) {
  file("b/2");
  file("a/1", 0);
  file("a/sub/3");
  ::symlink("/etc/passwd", (root_ / "a/link").c_str());
  auto before = manifest(top_);
  auto r = run(true);
  EXPECT_EQ(before, manifest(top_));
  EXPECT_EQ(paths_of(r), (std::vector<std::string>{"", "a", "a/1", "a/link", "a/sub", "a/sub/3", "b", "b/2"}));
  EXPECT_EQ(r.summary.scanned, 8u);
  EXPECT_EQ(r.summary.changed, 8u);
}

TEST_F(TempTree, SerialAndParallelWalksPlanTheSame) {
  for (int d = 0; d < 40; ++d)
    for (int f = 0; f < 25; ++f) file("d" + std::to_string(d % 7) + "/e" + std::to_string(d) + "/f" + std::to_string(f));
  std::vector<std::string> serial, parallel;
  {
    tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
    serial = paths_of(run(true));
  }
  parallel = paths_of(run(true));
  EXPECT_EQ(serial.size(), 1u + 7 + 40 + 1000);
  EXPECT_EQ(serial, parallel);
}

TEST_F(TempTree, ALargeDirectoryIsListedWhole) {
  // More entries than one getdents64 buffer holds: on ext4 the walk stops reading at the
  // end-of-directory position, so this checks it neither stops early nor reads twice.
  fs::create_directories(root_ / "big");
  for (int f = 0; f < 6000; ++f) std::ofstream(root_ / "big" / ("a-longer-file-name-" + std::to_string(f)));
  auto r = run(true);
  EXPECT_EQ(r.summary.scanned, 2u + 6000);
  EXPECT_EQ(r.planned.size(), 2u + 6000);
}

TEST_F(TempTree, AWideDirectoryUnderALowDescriptorLimitIsWalkedWhole) {
  // 300 subdirectories in one directory, with 64 descriptors: the walk may open only 16
  // of them early and must stat and open the rest when their turn comes.
  for (int d = 0; d < 300; ++d) file("wide/d" + std::to_string(d) + "/f");
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  PrepareResult r[2];
  r[0] = run(false);
  {
    // Again with a journal, whose batches hold directories open too.
    JournalHeader h;
    h.volume = root_.string();
    auto journal = JournalWriter::create("", (top_ / "j.vpj").string(), h);
    ASSERT_TRUE(journal.ok()) << journal.error().message;
    PrepareConfig config;
    config.target.uid = config.target.gid = 501001;
    config.journal = journal->get();
    auto v = open();
    r[1] = prepare_volume(v, config);
  }
  ::setrlimit(RLIMIT_NOFILE, &saved);
  for (const auto& one : r) {
    EXPECT_EQ(one.summary.scanned, 2u + 300 * 2);
    EXPECT_EQ(one.summary.changed, one.summary.scanned);
    EXPECT_EQ(one.summary.failed, 0u);
    EXPECT_TRUE(one.errors.empty()) << one.errors[0].path << ": " << one.errors[0].text;
    EXPECT_TRUE(one.stopped.empty()) << one.stopped;
  }
  struct stat st;
  ASSERT_EQ(::lstat((root_ / "wide/d299/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 501001u);
}

TEST_F(TempTree, ADeepChainWithASiblingAtEveryLevelUnderALowDescriptorLimitIsWalkedWhole) {
  // 300 levels, each holding the next level and a sibling directory: the walk goes down the
  // chain first, and a pending sibling at each level must not hold a descriptor per level.
  const int levels = 300;
  {
    UniqueFd dir(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    for (int i = 0; i < levels; ++i) {
      ASSERT_EQ(::mkdirat(dir.get(), "a", 0755), 0);
      ASSERT_EQ(::mkdirat(dir.get(), "sib", 0755), 0);
      dir = UniqueFd(::openat(dir.get(), "a", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
  }
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = 64;
  PrepareResult r[2];
  for (int threads : {1, 2}) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    r[threads - 1] = run(false);
    ::setrlimit(RLIMIT_NOFILE, &saved);
    for (auto& e : fs::recursive_directory_iterator(root_)) ::lchown(e.path().c_str(), 1000, 1000);
    ::lchown(root_.c_str(), 1000, 1000);
  }
  for (const auto& one : r) {
    EXPECT_EQ(one.summary.scanned, 1u + 2 * levels);
    EXPECT_EQ(one.summary.changed, one.summary.scanned);
    EXPECT_TRUE(one.errors.empty()) << one.errors[0].path << ": " << one.errors[0].text;
  }
}

TEST_F(TempTree, RealRunChangesOwnersKeepsSetIdBitsAndNeverFollowsSymlinks) {
  file("bin/tool", 1000, 04755);
  file("bin/group-tool", 1000, 02755);
  file("data", 0, 0600);
  auto outside = top_ / "outside";
  std::ofstream(outside) << "host file";
  ::chown(outside.c_str(), 0, 0);
  ::symlink(outside.c_str(), (root_ / "link").c_str());
  auto r = run(false);
  EXPECT_EQ(r.summary.failed, 0u);
  EXPECT_EQ(r.summary.set_id_kept, 2u);
  struct stat st;
  ASSERT_EQ(::lstat((root_ / "bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 501000u);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ASSERT_EQ(::lstat((root_ / "bin/group-tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02755u);
  ASSERT_EQ(::lstat((root_ / "link").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 501000u);  // the symlink itself
  ASSERT_EQ(::stat(outside.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);       // not its target
  // A rerun finds nothing to do.
  auto again = run(true);
  EXPECT_EQ(again.summary.changed, 0u);
  EXPECT_EQ(again.summary.unchanged, again.summary.scanned);
}

// A name swapped between plan and change (a running container can rename): the new file gets
// neither the chown nor the set-id bits nor the xattrs planned for the old one.
// A change is made through the descriptor it was planned on: a name swapped since the plan
// (for a link to a file outside, another binary) gets nothing, the planned inode gets it all.
TEST_F(TempTree, AChangeGoesToThePinnedInodeNeverToWhatTheNameHoldsNow) {
  file("tool", 1000, 04755);
  file("evil", 1000, 0644);
  UniqueFd dir(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir.valid());
  auto planned = [&] {
    Change c;
    c.name = "tool";
    int fd = open_entry(dir.get(), "tool");
    EXPECT_GE(fd, 0);
    c.entry = std::make_shared<const UniqueFd>(fd);
    EXPECT_EQ(stat_at(fd, "", c.before), 0);
    c.uid = c.gid = 501000;
    c.mode = 04755;  // chown drops it: restored
    c.xattrs.push_back({"trusted.volprep-test", "kept", "kept"});  // as capabilities are
    return c;
  };
  Change c = planned();
  ASSERT_EQ(::renameat(dir.get(), "tool", dir.get(), "tool.moved"), 0);
  ASSERT_EQ(::renameat(dir.get(), "evil", dir.get(), "tool"), 0);
  EXPECT_EQ(apply_change(dir.get(), c), 0) << (c.failed_step ? c.failed_step : "");
  struct stat st{};
  std::string value;
  ASSERT_EQ(::lstat((root_ / "tool").c_str(), &st), 0);  // the swapped-in file: untouched
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(get_xattr_at(dir.get(), "tool", "trusted.volprep-test", value), -ENODATA);
  ASSERT_EQ(::lstat((root_ / "tool.moved").c_str(), &st), 0);  // the planned one: all of it
  EXPECT_EQ(st.st_uid, 501000u);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ASSERT_EQ(get_xattr_at(dir.get(), "tool.moved", "trusted.volprep-test", value), 0);
  EXPECT_EQ(value, "kept");
  // Its mode changed since the plan (the container's own chmod): left as it is now.
  ASSERT_EQ(::renameat(dir.get(), "tool", dir.get(), "evil"), 0);
  file("tool", 1000, 04755);
  ASSERT_EQ(::setxattr((root_ / "tool").c_str(), "trusted.volprep-test", "kept", 4, 0), 0);
  Change m = planned();
  ASSERT_EQ(::chmod((root_ / "tool").c_str(), 0600), 0);
  EXPECT_EQ(apply_change(dir.get(), m), ESTALE);
  EXPECT_STREQ(m.failed_step, kChangedSincePlanned);
  EXPECT_EQ(failure_text(m), "changed since it was planned: left alone");
  ASSERT_EQ(::lstat((root_ / "tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 1000u);
  // A change with no descriptor is never applied by name.
  Change n;
  n.name = "evil";
  ASSERT_EQ(stat_at(dir.get(), "evil", n.before), 0);
  n.uid = n.gid = 501000;
  n.mode = 0644;
  EXPECT_EQ(apply_change(dir.get(), n), EBADF);
  ASSERT_EQ(::lstat((root_ / "evil").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
}

// Capabilities (kept across the chown, which drops them): put back on the pinned inode only,
// read from it and written to it, whatever binary the name holds meanwhile.
TEST_F(TempTree, CapabilitiesGoOnlyToThePlannedFile) {
  file("cap", 1000, 0755);
  file("other", 1000, 0755);
  // VFS_CAP_REVISION_2, effective; permitted: CAP_NET_BIND_SERVICE.
  const std::string caps = std::string("\x01\x00\x00\x02\x00\x04\x00\x00", 8) + std::string(12, '\0');
  ASSERT_EQ(::setxattr((root_ / "cap").c_str(), kCapabilityXattr, caps.data(), caps.size(), 0), 0);
  UniqueFd dir(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir.valid());
  Change c;
  c.name = "cap";
  c.entry = std::make_shared<const UniqueFd>(open_entry(dir.get(), "cap"));
  ASSERT_TRUE(c.entry->valid());
  ASSERT_EQ(stat_at(c.entry->get(), "", c.before), 0);
  std::string read;
  ASSERT_EQ(get_xattr_at(c.entry->get(), "", kCapabilityXattr, read), 0);  // through the pin
  EXPECT_EQ(read, caps);
  c.uid = c.gid = 501000;
  c.mode = 0755;
  c.xattrs.push_back({kCapabilityXattr, caps, caps});
  ASSERT_EQ(::renameat2(dir.get(), "other", dir.get(), "cap", RENAME_EXCHANGE), 0);
  EXPECT_EQ(apply_change(dir.get(), c), 0) << (c.failed_step ? c.failed_step : "");
  std::string value;
  EXPECT_EQ(get_xattr_at(dir.get(), "cap", kCapabilityXattr, value), -ENODATA);  // "other" now
  struct stat st{};
  ASSERT_EQ(::lstat((root_ / "cap").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  ASSERT_EQ(::lstat((root_ / "other").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 501000u);
  ASSERT_EQ(get_xattr_at(dir.get(), "other", kCapabilityXattr, value), 0);  // put back after the chown
  EXPECT_EQ(value, caps);
}

// Below a directory path longer than a journal takes, the journaled run fails each entry and
// leaves it alone: the dry run of a journaled run says so too, and plans exactly what changes.
TEST_F(TempTree, TheDryRunPlansWhatAJournaledRunChangesBelowAPathTooLongToJournal) {
  // Longer than PATH_MAX: made one level at a time, relative to the last.
  const std::string level(250, 'd');
  ASSERT_EQ(::chown(root_.c_str(), 1000, 1000), 0);
  UniqueFd dir(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (size_t depth = 0; depth * 251 <= kMaxJournalPath + 1000; ++depth) {
    ASSERT_EQ(::mkdirat(dir.get(), level.c_str(), 0755), 0);
    ASSERT_EQ(::fchownat(dir.get(), level.c_str(), 1000, 1000, AT_SYMLINK_NOFOLLOW), 0);
    dir = UniqueFd(::openat(dir.get(), level.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    UniqueFd f(::openat(dir.get(), "f", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_EQ(::fchown(f.get(), 1000, 1000), 0);
  }
  auto journaled = [&](bool dry_run) {
    PrepareConfig config;
    config.target.uid = config.target.gid = 501000;
    config.dry_run = dry_run;
    config.journaled = true;
    JournalHeader h;
    h.volume = root_.string();
    auto w = JournalWriter::create("", (top_ / (dry_run ? "dry.vpj" : "run.vpj")).string(), h);
    EXPECT_TRUE(w.ok());
    if (!dry_run) config.journal = w->get();
    auto v = open();
    return prepare_volume(v, config);
  };
  PrepareResult dry = journaled(true);
  PrepareResult real = journaled(false);
  EXPECT_GT(real.summary.failed, 0u);
  EXPECT_EQ(dry.summary.failed, real.summary.failed);
  EXPECT_EQ(dry.planned.size(), real.summary.changed);
  // One line for all of them, not one path as long as the tree is deep for each.
  ASSERT_EQ(dry.errors.size(), 1u);
  ASSERT_EQ(real.errors.size(), 1u);
  EXPECT_EQ(dry.errors[0].text, real.errors[0].text);
  EXPECT_EQ(dry.errors[0].text, std::to_string(real.summary.failed) +
                                    " entries here and below left alone: a path over 16 KiB is not journaled");
  EXPECT_GT(dry.errors[0].path.size(), kMaxJournalPath);
  EXPECT_LT(dry.errors[0].path.size(), kMaxJournalPath + 256);
  // Deeper than std::filesystem can remove: rm walks it by descriptor.
  EXPECT_EQ(std::system(("rm -rf '" + root_.string() + "'").c_str()), 0);
}

TEST_F(TempTree, HardlinksChangeOnlyWhenEveryLinkIsInside) {
  file("in/a");
  ASSERT_EQ(::link((root_ / "in/a").c_str(), (root_ / "in/b").c_str()), 0);
  auto outside = top_ / "shadow";
  std::ofstream(outside) << "secret";
  ::chown(outside.c_str(), 0, 0);
  ASSERT_EQ(::link(outside.c_str(), (root_ / "planted").c_str()), 0);
  auto r = run(false);
  struct stat st;
  ::lstat((root_ / "in/a").c_str(), &st);
  EXPECT_EQ(st.st_uid, 501000u);
  ::lstat(outside.c_str(), &st);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(r.summary.skipped[size_t(Skip::kLinkedFromOutside)], 1u);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_EQ(r.notes[0].path, "planted");
}

TEST_F(TempTree, ExcludeSkipsSubtreesAndNames) {
  file("keep/x");
  file("cache/y");
  file("deep/cache/z");
  file("keep/skip.tmp");
  auto r = run(true, {"cache", "*.tmp"});
  EXPECT_EQ(paths_of(r), (std::vector<std::string>{"", "deep", "keep", "keep/x"}));
  EXPECT_EQ(r.summary.skipped[size_t(Skip::kExcluded)], 3u);
  auto anchored = run(true, {"deep/cache/"});
  EXPECT_EQ(anchored.summary.skipped[size_t(Skip::kExcluded)], 1u);
}

TEST_F(TempTree, EachExcludeThatMatchedNothingIsNamed) {
  file("cache/y");
  file("keep/a.log");
  // "*.log" and "a.log" both match keep/a.log: the second is noted although the first
  // already excluded it. "cache/y" lies below a directory excluded: never looked at.
  auto r = run(true, {"cache", "*.log", "a.log", "cahce", "cache/y"});
  EXPECT_EQ(r.unmatched_excludes, (std::vector<std::string>{"cahce", "cache/y"}));
  EXPECT_TRUE(run(true, {"cache"}).unmatched_excludes.empty());
}

TEST(ExcludeSet, PatternsAsDocumented) {
  const ExcludeSet set({"./tmp/", "deep/*.o", "*.swp", "[-]n", "./-x"});
  EXPECT_TRUE(set.matches("tmp", true));
  EXPECT_FALSE(set.matches("tmp", false));   // a trailing '/': directories only
  EXPECT_FALSE(set.matches("a/tmp", true));  // a leading "./" anchors at PATH: its own tmp only
  EXPECT_TRUE(set.matches("a/-n", false));   // a name that starts with '-', at any depth
  EXPECT_TRUE(set.matches("-x", false));
  EXPECT_FALSE(set.matches("a/-x", false));
  EXPECT_TRUE(set.matches("deep/x.o", false));
  EXPECT_FALSE(set.matches("deep/sub/x.o", false));  // '*' does not cross a '/'
  EXPECT_TRUE(set.matches("a/b/.x.swp", false));  // without one: any name
  EXPECT_FALSE(set.matches("", true));  // the root is never excluded
  EXPECT_TRUE(set.unmatched().empty());
}

TEST_F(TempTree, SingleFileIsOneEntry) {
  file("only", 0);
  PrepareConfig config;
  config.target.uid = config.target.gid = 501000;
  auto v = open_volume((root_ / "only").string(), VolumeSafety{});
  ASSERT_TRUE(v.ok());
  auto r = prepare_volume(*v, config);
  EXPECT_EQ(r.summary.scanned, 1u);
  EXPECT_EQ(r.summary.changed, 1u);
  struct stat st;
  ::lstat((root_ / "only").c_str(), &st);
  EXPECT_EQ(st.st_uid, 501000u);
  ::lstat(root_.c_str(), &st);
  EXPECT_EQ(st.st_uid, 0u);  // the parent is not part of the volume
}

TEST(Volume, RefusesSystemTrees) {
  for (const char* p : {"/", "/etc", "/etc/ssh", "/usr/local", "/proc/self", "/var", "/home"}) {
    auto v = open_volume(p, VolumeSafety{});
    ASSERT_FALSE(v.ok()) << p;
    EXPECT_EQ(v.error().code, kExitRefused) << p;
  }
  auto missing = open_volume("/nonexistent/volprep", VolumeSafety{});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, kExitUsage);
  EXPECT_NE(missing.error().message.find("/nonexistent/volprep"), std::string::npos);
  VolumeSafety docker;
  docker.refused_exactly = {"/srv/docker/500000.500000"};
  EXPECT_NE(refusal_reason("/srv/docker/500000.500000", docker), "");
  EXPECT_EQ(refusal_reason("/srv/docker/500000.500000/volumes/x/_data", docker), "");
}

// The system's state below /var and /run: whole trees where no volume ever lives (the package
// managers', systemd's, volprep's own journals and locks), the directories that hold volumes
// only as themselves. What admins bind-mount below them stays allowed.
TEST(Volume, RefusesSystemStateBelowVarAndRun) {
  for (const char* p : {"/var/log", "/var/cache", "/var/spool", "/var/mail", "/run", "/var/lib/docker",
                        "/var/lib/docker/volumes", "/var/lib/dpkg", "/var/lib/dpkg/info", "/var/lib/apt/lists",
                        "/var/cache/apt", "/var/lib/volprep", "/var/lib/volprep/journals", "/run/volprep",
                        "/run/systemd", "/run/systemd/journal", "/var/lib/polkit-1/localauthority",
                        "/var/lib/private/app", "/var/spool/cron/crontabs", "/root/.ssh", "/run/dbus",
                        "/run/docker", "/run/containerd/s", "/var/lib/docker/overlay2/x/diff",
                        "/var/lib/docker/containers/id", "/var/lib/docker/500000.500000",
                        "/var/lib/docker/500000.500000/volumes", "/var/lib/docker/500000.500000/overlay2/l",
                        "/var/lib/docker/500000.500000/image/overlay2"})
    EXPECT_NE(refusal_reason(p, {}), "") << p;
  for (const char* p : {"/var/log/nginx", "/var/lib/jenkins", "/srv/x", "/var/lib/docker/volumes/name/_data",
                        "/var/cache/app", "/var/spool/postfix", "/run/app", "/var/lib/volprep-other",
                        "/root/app", "/var/lib/docker/500000.500000/volumes/name/_data",
                        "/var/lib/docker/volumes/containers/_data"})
    EXPECT_EQ(refusal_reason(p, {}), "") << p;
  VolumeSafety allowed;
  allowed.allow_system_path = true;
  EXPECT_EQ(refusal_reason("/var/lib/dpkg", allowed), "");
  EXPECT_EQ(refusal_reason("/var/log", allowed), "");
}

TEST(RefusalWatch, StopsOnlyWhenTheFirstChangesAreAllRefused) {
  EXPECT_FALSE(RefusalWatch::refuses_everything(RefusalWatch::kRefusedToStop - 1, false));
  EXPECT_TRUE(RefusalWatch::refuses_everything(RefusalWatch::kRefusedToStop, false));
  EXPECT_FALSE(RefusalWatch::refuses_everything(RefusalWatch::kRefusedToStop * 10, true));

  RefusalWatch all_refused;
  for (uint64_t i = 1; i < RefusalWatch::kRefusedToStop; ++i) EXPECT_FALSE(all_refused.refused(EPERM, "chown"));
  EXPECT_FALSE(all_refused.stopping());
  EXPECT_TRUE(all_refused.refused(EACCES, "chown"));  // the one that decides, once
  EXPECT_TRUE(all_refused.stopping());
  EXPECT_FALSE(all_refused.refused(EPERM, "chown"));
  EXPECT_EQ(all_refused.first(), std::string("chown: ") + std::strerror(EPERM));

  // Immutable files among changes made: never a stop, however many.
  RefusalWatch some_made;
  some_made.made();
  for (uint64_t i = 0; i < 3 * RefusalWatch::kRefusedToStop; ++i) EXPECT_FALSE(some_made.refused(EPERM, "chown"));
  EXPECT_FALSE(some_made.stopping());

  // Other failures are no refusal: an entry gone, a change since the plan, an I/O error.
  RefusalWatch others;
  for (uint64_t i = 0; i < 3 * RefusalWatch::kRefusedToStop; ++i)
    for (int err : {ENOENT, ESTALE, EIO}) EXPECT_FALSE(others.refused(err, "chown"));
  EXPECT_EQ(others.refused_count(), 0u);

  // A run that ends before the stop: every change it tried refused is said too, at its end.
  EXPECT_TRUE(RefusalWatch::refused_all(1, false, false));
  EXPECT_FALSE(RefusalWatch::refused_all(0, false, false));  // nothing tried: nothing to say
  EXPECT_FALSE(RefusalWatch::refused_all(10, true, false));
  EXPECT_FALSE(RefusalWatch::refused_all(10, false, true));
  RefusalWatch small;
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(small.refused(EPERM, "chown"));
  EXPECT_FALSE(small.refused(ENOENT, "chown"));  // an entry gone is no change tried
  EXPECT_TRUE(small.refused_all());
  EXPECT_FALSE(small.stopping());
  small.refused(EIO, "chown");  // one failed otherwise: not every change was refused
  EXPECT_FALSE(small.refused_all());
  EXPECT_FALSE(others.refused_all());
  EXPECT_FALSE(some_made.refused_all());
}
