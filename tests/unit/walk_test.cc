// The walk's chunks and its concurrency: a directory listed and visited in chunks, by many
// threads, is walked exactly as it is whole and serially; how many requests in flight a
// filesystem gets.
#include "volprep/walk.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "volprep/concurrency.h"

using namespace volprep;
namespace fs = std::filesystem;

namespace {

// What a walk saw: every (directory, name) once per sighting, and each batch's size.
struct Seen {
  std::mutex mu;
  std::multiset<std::string> entries;
  std::map<std::string, int> batches;  // per directory
  std::map<std::string, uint32_t> marks;  // the mark each directory's batches came with
  size_t largest = 0;
  std::set<int> threads_of_big;
};

class Recorder final : public WalkVisitor {
 public:
  explicit Recorder(Seen& s) : s_(s) {}
  Visit visit(const DirView& dir, std::span<Entry> entries) override {
    std::lock_guard lock(s_.mu);
    ++s_.batches[dir.path];
    s_.marks[dir.path] = dir.mark;
    s_.largest = std::max(s_.largest, entries.size());
    for (Entry& e : entries) {
      s_.entries.insert(join_path(dir.path, e.name));
      if (S_ISDIR(e.st.mode) && !e.name.empty()) e.mark = uint32_t(e.name.size());
    }
    return Visit::kContinue;
  }
  void vanished(const std::string& path) override { ADD_FAILURE() << "vanished " << path; }
  void skipped(const std::string& path, Skip, const char* what) override { ADD_FAILURE() << path << ": " << what; }
  void error(const std::string& path, int err, const char* what) override {
    ADD_FAILURE() << path << ": " << what << ": " << err;
  }

 private:
  Seen& s_;
};

class WalkTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/volprep-walk.XXXXXX";  // ext4 here, where the walk's end-of-listing shortcut applies
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    // One wide directory (more than a getdents64 buffer of names), a few small ones, and a
    // wide one below a small one.
    fs::create_directories(root_ / "wide");
    for (int i = 0; i < 3000; ++i) std::ofstream(root_ / "wide" / ("a-longer-file-name-" + std::to_string(i)));
    for (int d = 0; d < 5; ++d)
      for (int i = 0; i < 3; ++i) {
        fs::create_directories(root_ / ("d" + std::to_string(d)));
        std::ofstream(root_ / ("d" + std::to_string(d)) / ("f" + std::to_string(i)));
      }
    fs::create_directories(root_ / "d0/inner");
    for (int i = 0; i < 100; ++i) std::ofstream(root_ / "d0/inner" / std::to_string(i));
    fs::create_symlink("/etc", root_ / "d1/link");
  }
  void TearDown() override { fs::remove_all(root_); }
  void walk(WalkOptions options, Seen& seen) {
    UniqueFd fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EntryStat st;
    ASSERT_EQ(stat_at(fd.get(), "", st), 0);
    Walker w(std::move(options));
    EXPECT_TRUE(w.walk(fd.get(), st, [&] { return std::make_unique<Recorder>(seen); }));
  }
  fs::path root_;
};

}  // namespace

TEST_F(WalkTree, ChunksOnManyThreadsSeeWhatOneWholeSerialWalkSees) {
  Seen whole, chunked;
  WalkOptions serial;
  serial.in_flight = 1;
  serial.chunk_entries = 100000;
  walk(serial, whole);
  WalkOptions parallel;
  parallel.in_flight = 16;  // above this machine's cores: an arena of its own
  parallel.chunk_entries = 7;
  walk(parallel, chunked);
  EXPECT_EQ(whole.entries.size(), 1u + 1 + 3000 + 5 + 15 + 1 + 100 + 1);  // root, wide, d*, inner, link
  EXPECT_EQ(whole.entries, chunked.entries);  // each entry once, in both
  EXPECT_EQ(whole.batches["wide"], 1);
  EXPECT_EQ(chunked.batches["wide"], (3000 + 6) / 7);
  EXPECT_EQ(chunked.batches["d0/inner"], (100 + 6) / 7);
  EXPECT_LE(chunked.largest, 7u);
  // A mark the visitor set in one chunk reaches the directory's own batches.
  EXPECT_EQ(chunked.marks["d0/inner"], 5u);
  EXPECT_EQ(chunked.marks["wide"], 4u);
}

TEST_F(WalkTree, TheDefaultChunksAListingBiggerThanOne) {
  Seen seen;
  walk(WalkOptions{}, seen);
  EXPECT_EQ(seen.batches["wide"], (3000 + int(WalkOptions::kChunkEntries) - 1) / int(WalkOptions::kChunkEntries));
  EXPECT_EQ(seen.entries.count("wide/a-longer-file-name-2999"), 1u);
}

TEST(Concurrency, OneThreadPerCoreLocallyManyWhereEachCallWaitsOnAServer) {
  auto ext4 = choose_concurrency(EXT4_SUPER_MAGIC, 0, 2);
  EXPECT_FALSE(ext4.latency_bound);
  EXPECT_EQ(ext4.threads, 2);
  auto fuse = choose_concurrency(FUSE_SUPER_MAGIC, 0, 2);
  EXPECT_TRUE(fuse.latency_bound);
  EXPECT_EQ(fuse.threads, kLatencyBoundInFlight);
  for (int64_t m : {int64_t(NFS_SUPER_MAGIC), int64_t(CEPH_SUPER_MAGIC), int64_t(SMB2_SUPER_MAGIC),
                    int64_t(CIFS_SUPER_MAGIC), int64_t(V9FS_MAGIC)})
    EXPECT_TRUE(is_latency_bound_fs(m)) << std::hex << m;
  for (int64_t m : {int64_t(XFS_SUPER_MAGIC), int64_t(BTRFS_SUPER_MAGIC), int64_t(TMPFS_MAGIC)})
    EXPECT_FALSE(is_latency_bound_fs(m)) << std::hex << m;
  EXPECT_EQ(fuse.describe(), "fuse: 64 requests in flight (a network or FUSE filesystem: each call waits for a server)");
}

TEST(Concurrency, ThreadsAskedForAreHonouredAboveTheCoreCount) {
  auto c = choose_concurrency(EXT4_SUPER_MAGIC, 16, 2);
  EXPECT_EQ(c.threads, 16);
  EXPECT_FALSE(c.chosen);
  EXPECT_EQ(choose_concurrency(FUSE_SUPER_MAGIC, 1, 2).threads, 1);
  EXPECT_EQ(RunArena(16).execute([] { return tbb::this_task_arena::max_concurrency(); }), 16);
  EXPECT_FALSE(requested_threads().has_value());
  {
    tbb::global_control asked(tbb::global_control::max_allowed_parallelism, 24);
    EXPECT_EQ(requested_threads(), 24);
  }
  // A run's arena says what the run asked for, even one thread per core (no global_control
  // limit other than the default shows it); the arena it was made in again after it.
  const int cores = tbb::info::default_concurrency();
  {
    RunArena run(cores);
    EXPECT_EQ(requested_threads(), cores);
    {
      RunArena inner(3);
      EXPECT_EQ(requested_threads(), 3);
    }
    EXPECT_EQ(requested_threads(), cores);
  }
  EXPECT_FALSE(requested_threads().has_value());
}

TEST(PathParts, NamesBetweenSlashes) {
  EXPECT_EQ(path_parts("/a//b/"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(path_parts("rel/./x"), (std::vector<std::string>{"rel", ".", "x"}));
  EXPECT_TRUE(path_parts("/").empty());
  EXPECT_TRUE(path_parts("").empty());
}
