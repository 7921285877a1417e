#include "volprep/journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "volprep/apply.h"

using namespace volprep;
namespace fs = std::filesystem;

namespace {

class JournalFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/volprep-journal.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  JournalHeader header() {
    JournalHeader h;
    h.volprep_version = "test";
    h.volume = "/srv/vol";
    h.dev_major = 254;
    h.ino = 42;
    h.uid_map = h.gid_map = "0 500000 65536\n";
    h.command_line = "volprep /srv/vol --as 1000";
    h.start_ns = 1700000000123456789;
    return h;
  }
  // A header as version 5 wrote it: without version 6's birth time of the root (a varint,
  // one byte for 0 in header()).
  static std::string v5_header(JournalHeader h) {
    h.btime_ns = 0;
    std::string p = encode_header(h);
    p.pop_back();
    return p;
  }
  // A header as versions 1 to 4 wrote it: without version 5's project, directory flag,
  // command and flags either (all empty in header()).
  static std::string old_header(const JournalHeader& h) {
    std::string p = v5_header(h);
    p.resize(p.size() - 4);
    return p;
  }
  JournalRecord record(const std::string& path, uint64_t ino) {
    JournalRecord r;
    r.name = path;
    r.dev_major = 254;
    r.ino = ino;
    r.mode_before = S_IFREG | 04755;
    r.uid_before = r.gid_before = 1000;
    r.mode_after = 04755;
    r.uid_after = r.gid_after = 501000;
    return r;
  }
  // A journal with three records and an end record; returns its path.
  std::string write(std::vector<std::string> paths = {"a", "dir/b", "dir/c\nnewline"}) {
    auto w = JournalWriter::create("", dir_ + "/j.vpj", header());
    EXPECT_TRUE(w.ok());
    std::string batch;
    uint64_t ino = 100;
    for (auto& p : paths) batch += frame('C', encode_record(record(p, ino++)));
    auto at = (*w)->write(batch);
    EXPECT_TRUE(at.ok());
    EXPECT_TRUE((*w)->wait_durable(*at).ok());
    EXPECT_TRUE((*w)->finish({3, 3, 0, 0}).ok());
    return (*w)->path();
  }
  // Why read_journal refuses a journal of these records (after a header), or "" if it reads
  // it. A summary read (journal list) must refuse it for the same reason.
  std::string refusal(const std::string& records) { return refusal(records, header()); }
  std::string refusal(const std::string& records, const JournalHeader& h) {
    auto w = JournalWriter::create("", dir_ + "/refused.vpj", h);
    EXPECT_TRUE(w.ok());
    EXPECT_TRUE((*w)->write(records).ok());
    EXPECT_TRUE((*w)->finish({0, 0, 0, 0}).ok());
    auto j = read_journal((*w)->path());
    auto summary = read_journal((*w)->path(), JournalRead::kSummary);
    fs::remove((*w)->path());
    EXPECT_EQ(j.ok() ? "" : j.error().message, summary.ok() ? "" : summary.error().message);
    return j.ok() ? "" : j.error().message;
  }
  // A journal of `n` change records, with or without its end record (a run cut short).
  std::string many(size_t n, bool finished) {
    auto w = JournalWriter::create("", dir_ + "/many.vpj", header());
    EXPECT_TRUE(w.ok());
    std::string batch;
    for (size_t i = 0; i < n; ++i)
      batch += frame('C', encode_record(record("data/file-" + std::to_string(i), 1000 + i)));
    auto at = (*w)->write(batch);
    EXPECT_TRUE(at.ok());
    EXPECT_TRUE((*w)->wait_durable(*at).ok());
    if (finished) {
      EXPECT_TRUE((*w)->finish({n, n, 0, 0}).ok());
    }
    return (*w)->path();
  }
  // The offsets of the records after the magic and version.
  static std::vector<size_t> record_offsets(const std::string& data) {
    std::vector<size_t> at;
    for (size_t p = 12; p + 4 <= data.size();) {
      at.push_back(p);
      p += 8 + (uint8_t(data[p]) | uint8_t(data[p + 1]) << 8 | uint8_t(data[p + 2]) << 16 | uint32_t(uint8_t(data[p + 3])) << 24);
    }
    return at;
  }
  std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void put(const std::string& p, const std::string& data) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
  }
  std::string dir_;
};

}  // namespace

TEST(Crc32c, KnownValue) { EXPECT_EQ(crc32c("123456789", 9), 0xe3069283u); }

TEST_F(JournalFile, RoundTrip) {
  auto j = read_journal(write());
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->header.volume, "/srv/vol");
  EXPECT_EQ(j->header.ino, 42u);
  EXPECT_EQ(j->header.start_ns, 1700000000123456789);
  ASSERT_EQ(j->records.size(), 3u);
  EXPECT_EQ(path_of(*j, j->records[2]), "dir/c\nnewline");
  EXPECT_EQ(j->records[0].mode_before, uint32_t(S_IFREG | 04755));
  EXPECT_EQ(j->records[1].uid_after, 501000u);
  ASSERT_TRUE(j->end.has_value());
  EXPECT_FALSE(j->torn_at.has_value());
  EXPECT_EQ(j->changes, 3u);
}

TEST_F(JournalFile, ASummaryCountsWithoutKeepingRecords) {
  auto path = write({"a", "dir/b", "dir/sub/c", "d"});
  auto s = read_journal(path, JournalRead::kSummary);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->header.volume, "/srv/vol");
  EXPECT_EQ(s->changes, 4u);
  EXPECT_TRUE(s->records.empty());
  EXPECT_EQ(s->dirs.size(), 1u);  // the root only: these names carry their directories
  ASSERT_TRUE(s->end.has_value());
  EXPECT_EQ(s->end->changed, 3u);
}

TEST_F(JournalFile, RecordsAreCompact) {
  auto r = record("jenkins_home/secrets/key", 123456789);
  r.dev_minor = 1;
  EXPECT_LE(frame('C', encode_record(r)).size(), 100 + r.name.size());
}

TEST_F(JournalFile, TheWritersEncoderMatchesTheRecordEncoder) {
  Change c;
  c.name = "dir entry";
  c.before.dev_major = 254;
  c.before.dev_minor = 1;
  c.before.ino = 123456;
  c.before.mode = S_IFREG | 04755;
  c.before.uid = c.before.gid = 1000;
  c.uid = c.gid = 501000;
  c.mode = 04755;
  c.xattrs = {{kCapabilityXattr, "caps", "caps"}};
  JournalRecord r;
  r.name = c.name;
  r.dev_major = 254;
  r.dev_minor = 1;
  r.ino = 123456;
  r.mode_before = S_IFREG | 04755;
  r.uid_before = r.gid_before = 1000;
  r.uid_after = r.gid_after = 501000;
  r.mode_after = 04755;
  r.xattrs = c.xattrs;
  std::string out;
  append_change_record(out, c);
  EXPECT_EQ(out, frame('C', encode_record(r)));
  out.clear();
  append_directory_record(out, "a/b", "");
  EXPECT_EQ(out, frame('D', encode_directory("a/b")));
  out.clear();
  append_directory_record(out, "a/b/c", "a/x");
  EXPECT_EQ(out, frame('D', encode_directory("a/b/c", "a/x")));
  EXPECT_EQ(encode_directory("a/b/c", "a/x"), std::string("\x02\x03") + "b/c");
}

TEST_F(JournalFile, CapabilitiesRoundTrip) {
  auto w = JournalWriter::create("", dir_ + "/caps.vpj", header());
  ASSERT_TRUE(w.ok());
  auto r = record("ping", 7);
  std::string caps("\x01\x00\x00\x02\x00\x20\x00\x00", 8);
  r.xattrs = {{kCapabilityXattr, caps, caps}, {"system.posix_acl_access", std::nullopt, "acl"}};
  auto at = (*w)->write(frame('C', encode_record(r)));
  ASSERT_TRUE(at.ok());
  ASSERT_TRUE((*w)->wait_durable(*at).ok());
  auto j = read_journal((*w)->path());
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->records[0].xattrs, r.xattrs);
  EXPECT_FALSE(j->end.has_value());  // interrupted: no end record
}

TEST_F(JournalFile, ConcurrentWritersEachGetTheirRecordsDurable) {
  auto w = JournalWriter::create("", dir_ + "/many.vpj", header());
  ASSERT_TRUE(w.ok());
  constexpr int kThreads = 4, kBatches = 50, kPerBatch = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        // Each batch: its thread's directory whole, then a subdirectory coded against it.
        std::string top = "t" + std::to_string(t), sub = top + "/s" + std::to_string(b), batch;
        append_directory_record(batch, top, "");
        for (int i = 0; i < kPerBatch; ++i) {
          if (i == kPerBatch / 2) append_directory_record(batch, sub, top);
          batch += frame('C', encode_record(record("f" + std::to_string(b * kPerBatch + i), 1)));
        }
        auto at = (*w)->write(batch);
        if (!at.ok() || !(*w)->wait_durable(*at).ok() || !(*w)->durable(*at)) ++failures;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  ASSERT_TRUE((*w)->finish({0, 0, 0, 0}).ok());
  auto j = read_journal((*w)->path());
  ASSERT_TRUE(j.ok()) << j.error().message;
  ASSERT_EQ(j->records.size(), size_t(kThreads * kBatches * kPerBatch));
  std::set<std::string> paths, want;
  for (const auto& r : j->records) paths.insert(path_of(*j, r));
  for (int t = 0; t < kThreads; ++t)
    for (int b = 0; b < kBatches; ++b)
      for (int i = 0; i < kPerBatch; ++i)
        want.insert("t" + std::to_string(t) + (i < kPerBatch / 2 ? "" : "/s" + std::to_string(b)) + "/f" +
                    std::to_string(b * kPerBatch + i));
  EXPECT_EQ(paths, want);  // every batch whole, each record under its own directory
  EXPECT_TRUE(j->end.has_value());
}

TEST_F(JournalFile, TornTailIsAcceptedAndReported) {
  auto path = write();
  auto data = slurp(path);
  put(path, data.substr(0, data.size() - 7));  // the end record cut short
  auto j = read_journal(path);
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->records.size(), 3u);
  EXPECT_TRUE(j->torn_at.has_value());
  EXPECT_FALSE(j->end.has_value());
  auto s = read_journal(path, JournalRead::kSummary);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->changes, 3u);
  EXPECT_EQ(s->torn_at, j->torn_at);
  EXPECT_FALSE(s->end.has_value());
  // Zeros after the last record (a crash after the file grew) are a torn tail too.
  put(path, data + std::string(4096, '\0'));
  auto z = read_journal(path);
  ASSERT_TRUE(z.ok()) << z.error().message;
  EXPECT_TRUE(z->torn_at.has_value());
}

// Power lost during a sync can leave a page of the tail unwritten (zeros) while a later page
// was written. Nothing from the hole on had been applied: it starts a torn tail.
TEST_F(JournalFile, AHoleFromACrashStartsATornTail) {
  auto path = many(400, /*finished=*/false);
  const auto data = slurp(path);
  const auto at = record_offsets(data);
  ASSERT_EQ(at.size(), 401u);  // the header and 400 changes
  for (size_t in_record : {0, 9, 30}) {  // at a record (its length zeroed), in its payload
    auto holed = data;
    std::fill_n(holed.begin() + at[200] + in_record, 4096, '\0');
    ASSERT_LT(at[200] + in_record + 4096, holed.size());  // records follow the hole
    put(path, holed);
    for (auto what : {JournalRead::kAll, JournalRead::kSummary}) {
      auto j = read_journal(path, what);
      ASSERT_TRUE(j.ok()) << in_record << ": " << j.error().message;
      EXPECT_EQ(j->changes, 199u) << in_record;
      EXPECT_EQ(j->torn_at, at[200]) << in_record;
      EXPECT_TRUE(j->torn_by_hole) << in_record;
    }
  }
  // A flipped byte is damage, not a hole, though the run was cut short.
  auto flipped = data;
  flipped[at[200] + 9] ^= 0x40;
  put(path, flipped);
  auto f = read_journal(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("damaged at offset " + std::to_string(at[200])), std::string::npos)
      << f.error().message;
}

TEST_F(JournalFile, AHoleBeforeTheEndRecordIsDamage) {
  // The end record is written once every record before it is on disk: no crash leaves a
  // hole before it.
  auto path = many(400, /*finished=*/true);
  auto data = slurp(path);
  auto at = record_offsets(data);
  std::fill_n(data.begin() + at[200], 4096, '\0');
  for (const auto& holed : {data, data + std::string(4096, '\0')})  // zeros after the end, too
    for (auto what : {JournalRead::kAll, JournalRead::kSummary}) {
      put(path, holed);
      auto j = read_journal(path, what);
      ASSERT_FALSE(j.ok());
      EXPECT_NE(j.error().message.find("damaged at offset " + std::to_string(at[200])), std::string::npos)
          << j.error().message;
    }
}

// A directory deeper than the journal takes (a path over 16 KiB) is not journaled and not
// changed: rollback must never find a record it refuses, nor hold paths without bound.
TEST_F(JournalFile, ADirectoryTooDeepToJournalIsLeftAloneAndReported) {
  auto w = JournalWriter::create("", dir_ + "/deep.vpj", header());
  ASSERT_TRUE(w.ok());
  struct Sink final : ChangeSink {
    std::vector<std::pair<std::string, int>> done_;
    void done(const std::string& dir, const Change& c) override { done_.push_back({dir, c.err}); }
  } sink;
  auto applier = make_journaling_applier(**w, kMaxJournalPath);
  // The changes hold no descriptor of an entry: were they applied, they would fail EBADF.
  auto here = std::make_shared<const UniqueFd>(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::vector<Change> changes(2);
  changes[0].name = "a";
  changes[1].name = "b";
  for (auto& c : changes) c.before.mode = S_IFREG | 0644, c.uid = c.gid = 501000, c.mode = 0644;
  const std::string deep(kMaxJournalPath + 1, 'd'), fits(kMaxJournalPath, 'd');
  ASSERT_TRUE(applier->apply(here, deep, changes, sink));
  ASSERT_EQ(sink.done_.size(), 2u);
  EXPECT_EQ(sink.done_[0].second, ENAMETOOLONG);
  EXPECT_EQ(changes[0].failed_step, std::string("journal it (its path is too long)"));
  std::vector<Change> one(1, changes[0]);
  one[0].err = 0, one[0].failed_step = nullptr;
  ASSERT_TRUE(applier->apply(here, fits, one, sink));  // the longest that fits is journaled
  ASSERT_TRUE(applier->flush(sink));
  ASSERT_EQ(sink.done_.size(), 3u);
  EXPECT_EQ(sink.done_[2].second, EBADF);  // journaled, then applied (to nothing)
  ASSERT_TRUE((*w)->finish({3, 1, 2, 0}).ok());
  auto j = read_journal((*w)->path());
  ASSERT_TRUE(j.ok()) << j.error().message;
  ASSERT_EQ(j->records.size(), 1u);
  EXPECT_EQ(path_of(*j, j->records[0]), fits + "/a");
}

TEST_F(JournalFile, DamageInTheMiddleIsRefusedNamingTheOffset) {
  auto path = write();
  auto data = slurp(path);
  size_t at = data.size() / 2;
  data[at] ^= 0x40;
  put(path, data);
  auto j = read_journal(path);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().code, kExitConfig);
  EXPECT_NE(j.error().message.find("damaged at offset"), std::string::npos) << j.error().message;
}

TEST_F(JournalFile, ARecordAfterTheEndRecordIsRefused) {
  // A valid record of any kind appended after the end: nothing a run writes, so damage.
  for (std::string extra : {frame('D', encode_directory("x")), frame('A', encode_armed(EntryStat{})),
                            frame('C', encode_record(record("late", 7)))}) {
    fs::remove(dir_ + "/j.vpj");
    auto path = write();
    put(path, slurp(path) + extra);
    auto j = read_journal(path);
    ASSERT_FALSE(j.ok()) << "kind " << extra[4];
    EXPECT_NE(j.error().message.find("after the end record"), std::string::npos) << j.error().message;
  }
}

TEST_F(JournalFile, PathsOutsideTheVolumeAreRefused) {
  for (std::string bad : {"../etc/shadow", "/etc/shadow", "a/../../x", "a//b", "./a"}) {
    auto j = read_journal(write({"ok", bad}));
    ASSERT_FALSE(j.ok()) << bad;
    EXPECT_NE(j.error().message.find("outside the volume"), std::string::npos) << j.error().message;
    fs::remove(dir_ + "/j.vpj");
  }
}

TEST_F(JournalFile, UnknownVersionIsRefused) {
  auto path = write();
  auto data = slurp(path);
  data[8] = char(kJournalVersion + 1);
  put(path, data);
  auto j = read_journal(path);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message.find("version " + std::to_string(kJournalVersion + 1)), std::string::npos)
      << j.error().message;
  EXPECT_NE(j.error().message.find("a newer volprep wrote it"), std::string::npos) << j.error().message;
}

// Version 5: the header records the command and its direction, and the project directory
// and the 'V' record came with it: an older volprep says a newer one wrote such a journal.
TEST_F(JournalFile, TheHeaderKeepsTheCommandAndItsDirection) {
  JournalHeader h = header();
  h.command = "shift";
  h.reverse = true;
  h.project = "p";
  h.project_dir = JournalRoot{"/srv/p", 8, 1, 99};
  auto w = JournalWriter::create("", dir_ + "/v5.vpj", h);
  ASSERT_TRUE(w.ok()) << w.error().message;
  ASSERT_TRUE((*w)->finish({0, 0, 0, 1}).ok());
  auto j = read_journal(dir_ + "/v5.vpj");
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->version, kJournalVersion);
  EXPECT_EQ(j->header.command, "shift");
  EXPECT_TRUE(j->header.reverse);
  EXPECT_EQ(j->header.project, "p");
  EXPECT_EQ(j->header.project_dir, (JournalRoot{"/srv/p", 8, 1, 99}));
  // None of them: still every field, read back as none.
  auto plain = JournalWriter::create("", dir_ + "/v5-plain.vpj", header());
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE((*plain)->finish({0, 0, 0, 1}).ok());
  auto p = read_journal(dir_ + "/v5-plain.vpj");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->header.command, "");
  EXPECT_FALSE(p->header.reverse);
  EXPECT_FALSE(p->header.project_dir);
}

// Version 4, as volprep wrote it before version 5: the project and its directory optional,
// no command; a 'V' record in it is damage (version 5 brought it).
TEST_F(JournalFile, Version4IsStillRead) {
  std::string head(kJournalMagic, sizeof kJournalMagic);
  head += std::string(1, char(4)) + std::string(3, '\0');
  JournalHeader h = header();
  h.command_line = "volprep shift --reverse=true /srv/vol";
  std::string hp = old_header(h);
  hp += std::string(1, char(1)) + "p";  // the project
  std::string dirp;
  dirp += char(6);
  dirp += "/srv/p";
  dirp += char(8);
  dirp += char(1);
  dirp += char(99);
  std::string data = head + frame('H', hp + dirp) + frame('D', encode_directory("a")) +
                     frame('C', encode_record(record("f", 7))) + frame('E', encode_end({1, 1, 0, 0, 1}));
  put(dir_ + "/v4.vpj", data);
  auto j = read_journal(dir_ + "/v4.vpj");
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->version, 4u);
  EXPECT_EQ(j->header.project, "p");
  EXPECT_EQ(j->header.project_dir, (JournalRoot{"/srv/p", 8, 1, 99}));
  EXPECT_EQ(j->header.command, "");
  EXPECT_EQ(j->header.command_line, "volprep shift --reverse=true /srv/vol");
  ASSERT_EQ(j->records.size(), 1u);
  EXPECT_EQ(path_of(*j, j->records[0]), "a/f");

  VolumeRecord v;
  v.name = "db";
  v.driver = "local";
  put(dir_ + "/v4-labels.vpj", head + frame('H', hp) + frame('V', encode_docker_volume(v)));
  auto l = read_journal(dir_ + "/v4-labels.vpj");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("damaged at offset"), std::string::npos) << l.error().message;
}

// Version 6: every root's birth time, in the header and in each 'R' record, whether or not
// the run changed the root (a rerun finds the root as it should be and changes only what is
// below it): rollback tells by it the root's filesystem remounted on another device.
TEST_F(JournalFile, Version6KeepsEveryRootsBirthTime) {
  JournalHeader h = header();
  h.btime_ns = 1700000000000000111;
  auto w = JournalWriter::create("", dir_ + "/v6.vpj", h);
  ASSERT_TRUE(w.ok()) << w.error().message;
  std::string batch;
  append_directory_record(batch, "x", "");
  batch += frame('C', encode_record(record("f", 1)));  // below the root: no record of the root
  ASSERT_TRUE((*w)->write(batch).ok());
  ASSERT_TRUE((*w)->start_root({"/srv/other", 254, 0, 77}, 222).ok());
  JournalRecord other = record("", 77);  // the root itself, changed: the same birth time
  other.btime_ns = 222;
  ASSERT_TRUE((*w)->write(frame('C', encode_record(other)) + frame('C', encode_record(record("g", 2)))).ok());
  // A root whose filesystem gave no birth time to the root's statx: its own record's, if any.
  ASSERT_TRUE((*w)->start_root({"/srv/third", 254, 0, 88}, 0).ok());
  JournalRecord third = record("", 88);
  third.btime_ns = 333;
  ASSERT_TRUE((*w)->write(frame('C', encode_record(third))).ok());
  // A root the run left as it was: no record of it, its birth time in the 'R' record alone.
  ASSERT_TRUE((*w)->start_root({"/srv/fourth", 254, 0, 99}, 444).ok());
  ASSERT_TRUE((*w)->write(frame('C', encode_record(record("h", 3)))).ok());
  ASSERT_TRUE((*w)->start_root({"/srv/fifth", 254, 0, 100}, 0).ok());  // none known at all
  ASSERT_TRUE((*w)->write(frame('C', encode_record(record("i", 4)))).ok());
  ASSERT_TRUE((*w)->finish({6, 6, 0, 0}).ok());
  for (auto what : {JournalRead::kAll, JournalRead::kSummary}) {
    auto j = read_journal((*w)->path(), what);
    ASSERT_TRUE(j.ok()) << j.error().message;
    EXPECT_EQ(j->version, 6u);
    EXPECT_EQ(j->header.btime_ns, h.btime_ns);
    EXPECT_EQ(j->roots.size(), 5u);
    EXPECT_EQ(j->root_btime, (std::vector<int64_t>{h.btime_ns, 222, 333, 444, 0}));
  }
  auto l = read_journal((*w)->path(), JournalRead::kList);
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->header.btime_ns, h.btime_ns);
  // An 'R' record cut short of its birth time is damage in version 6.
  std::string cut = encode_root({"/srv/other", 254, 0, 77}, 222);
  cut.pop_back();
  EXPECT_NE(refusal(frame('R', cut)).find("a malformed record"), std::string::npos);
}

// Version 5, as volprep wrote it before version 6: no birth time in the header or the 'R'
// records; a root's is known from its own 'C' record, and only then.
TEST_F(JournalFile, Version5IsStillReadWithARootsBirthTimeFromItsOwnRecord) {
  std::string head(kJournalMagic, sizeof kJournalMagic);
  head += std::string(1, char(5)) + std::string(3, '\0');
  JournalHeader h = header();
  h.command = "prepare";
  JournalRecord root = record("", 42);  // the header's root (254:0, inode 42), changed
  root.btime_ns = 555;
  std::string other = encode_root({"/srv/other", 254, 0, 77}, 0);
  other.pop_back();  // no birth time before version 6
  const std::string data = head + frame('H', v5_header(h)) + frame('C', encode_record(root)) +
                           frame('D', encode_directory("a")) + frame('C', encode_record(record("f", 7))) +
                           frame('R', other) + frame('C', encode_record(record("g", 8))) +
                           frame('E', encode_end({3, 3, 0, 0, 3}));
  put(dir_ + "/v5.vpj", data);
  for (auto what : {JournalRead::kAll, JournalRead::kSummary}) {
    auto j = read_journal(dir_ + "/v5.vpj", what);
    ASSERT_TRUE(j.ok()) << j.error().message;
    EXPECT_EQ(j->version, 5u);
    EXPECT_EQ(j->header.command, "prepare");
    EXPECT_EQ(j->header.btime_ns, 0);
    EXPECT_EQ(j->roots, (std::vector<JournalRoot>{root_of(h), {"/srv/other", 254, 0, 77}}));
    EXPECT_EQ(j->root_btime, (std::vector<int64_t>{555, 0}));  // the second root left as it was
    EXPECT_EQ(j->changes, 3u);
  }
}

// The header's (or an 'R' record's) birth time of a root and the root's own 'C' record's both
// come from statx of the one inode volprep holds open: two that differ are not what volprep
// wrote, and rollback would take a remounted device on the word of one of them. Refused.
TEST_F(JournalFile, ARootsBirthTimeItsOwnRecordContradictsIsRefused) {
  JournalHeader h = header();
  h.btime_ns = 111;
  JournalRecord root = record("", 42);
  root.btime_ns = 999;
  auto why = refusal(frame('C', encode_record(root)), h);
  EXPECT_NE(why.find("refused.vpj is damaged at offset"), std::string::npos) << why;
  EXPECT_NE(why.find("the record of the volume root /srv/vol gives it another birth time (999 ns) than its header "
                     "does (111 ns)"),
            std::string::npos)
      << why;
  JournalRecord second = record("", 77);
  second.btime_ns = 998;
  why = refusal(frame('R', encode_root({"/srv/other", 254, 0, 77}, 222)) + frame('C', encode_record(second)), h);
  EXPECT_NE(why.find("the record of the volume root /srv/other gives it another birth time (998 ns) than its root "
                     "record does (222 ns)"),
            std::string::npos)
      << why;
  // The same one, or none in the record (unknown): read.
  for (int64_t btime : {int64_t(111), int64_t(0)}) {
    root.btime_ns = btime;
    EXPECT_EQ(refusal(frame('C', encode_record(root)), h), "") << btime;
  }
}

// A crash between creating a journal and writing its header leaves one with no header, or
// part of one: it records no change, and is told apart from one whose header cannot be read.
TEST_F(JournalFile, AJournalWithNoHeaderIsToldApart) {
  put(dir_ + "/empty.vpj", "");
  auto w = JournalWriter::create("", dir_ + "/whole.vpj", header());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->finish({0, 0, 0, 1}).ok());
  std::string whole = slurp(dir_ + "/whole.vpj");
  put(dir_ + "/torn.vpj", whole.substr(0, 20));             // magic, version, part of the header
  put(dir_ + "/cut.vpj", whole.substr(0, 5));               // part of the magic
  put(dir_ + "/junk.vpj", "junk");                          // not even that
  std::string bad = whole;
  bad[20] ^= 1;                                             // a header whose checksum fails
  put(dir_ + "/bad.vpj", bad);
  fs::remove(dir_ + "/whole.vpj");
  std::vector<UnreadJournal> unread;
  EXPECT_TRUE(read_journal_dir(dir_, unread).empty());
  ASSERT_EQ(unread.size(), 5u);
  std::sort(unread.begin(), unread.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  const std::vector<std::pair<std::string, bool>> want = {
      {"bad", false}, {"cut", true}, {"empty", true}, {"junk", false}, {"torn", true}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(unread[i].path, dir_ + "/" + want[i].first + ".vpj");
    EXPECT_EQ(unread[i].headerless, want[i].second) << unread[i].path << ": " << unread[i].reason;
  }
}

// migrate-volumes' scan for its unfinished runs: one whose header names its data root and
// whose records cannot be read refuses; one with no header is ignored (and reported).
TEST_F(JournalFile, UnfinishedRunsRefuseAJournalThatMightBeOneAndCannotBeRead) {
  auto match = [](const JournalHeader& h) { return h.project == "migrate-volumes:/d/5.5"; };
  put(dir_ + "/empty.vpj", "");
  std::vector<UnreadJournal> ignored;
  auto none = unfinished_runs(dir_, match, ignored);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
  ASSERT_EQ(ignored.size(), 1u);
  EXPECT_EQ(ignored[0].path, dir_ + "/empty.vpj");

  JournalHeader h = header();
  h.project = "migrate-volumes:/d/5.5";
  auto w = JournalWriter::create("", dir_ + "/mig.vpj", h);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->write(frame('D', encode_directory("a")) + frame('C', encode_record(record("f", 7)))).ok());
  w->reset();
  std::string data = slurp(dir_ + "/mig.vpj");
  data[data.size() - 10] ^= 1;  // damage in a record (not a torn tail: another one follows)
  data += frame('C', encode_record(record("g", 8)));
  put(dir_ + "/mig.vpj", data);
  ignored.clear();
  auto refused = unfinished_runs(dir_, match, ignored);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, kExitRefused);
  EXPECT_NE(refused.error().message.find(dir_ + "/mig.vpj"), std::string::npos) << refused.error().message;

  // Another data root's is none of its business.
  auto other = unfinished_runs(dir_, [](const JournalHeader& h) { return h.project == "migrate-volumes:/d/6.6"; },
                               ignored);
  EXPECT_TRUE(other.ok()) << other.error().message;
}

TEST_F(JournalFile, SymlinkToAJournalIsRefused) {
  auto path = write();
  fs::create_symlink(path, dir_ + "/link.vpj");
  auto j = read_journal(dir_ + "/link.vpj");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().code, kExitRefused);
}

TEST_F(JournalFile, AJournalSomeoneElseCouldHaveWrittenIsRefused) {
  auto path = write();
  ASSERT_EQ(::chmod(path.c_str(), 0620), 0);
  auto g = read_journal(path);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, kExitRefused);
  EXPECT_NE(g.error().message.find("writable by its group"), std::string::npos) << g.error().message;
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);  // readable by others is fine
  EXPECT_TRUE(read_journal(path).ok());
  if (::geteuid() != 0) GTEST_SKIP() << "giving the journal to another owner needs root";
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  auto o = read_journal(path, JournalRead::kSummary);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().code, kExitRefused);
  EXPECT_NE(o.error().message.find("belongs to uid 65534"), std::string::npos) << o.error().message;
}

TEST_F(JournalFile, AFifoOrADeviceIsRefusedWithoutWaiting) {
  ASSERT_EQ(::mkfifo((dir_ + "/fifo.vpj").c_str(), 0600), 0);  // no writer: a plain read blocks
  for (std::string p : {dir_ + "/fifo.vpj", std::string("/dev/zero")}) {
    auto j = read_journal(p, JournalRead::kSummary);
    ASSERT_FALSE(j.ok()) << p;
    EXPECT_NE(j.error().message.find("not a regular file"), std::string::npos) << j.error().message;
  }
}

TEST_F(JournalFile, CreateRefusesAnExistingFileAndMakesPrivateDirectories) {
  write();
  EXPECT_FALSE(JournalWriter::create("", dir_ + "/j.vpj", header()).ok());
  fs::create_directory(dir_ + "/deep");  // a given directory's last component is made, not its parents
  auto w = JournalWriter::create(dir_ + "/deep/journals", "", header());
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(fs::status(dir_ + "/deep/journals").permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(fs::status((*w)->path()).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // A planted symlink in place of the directory is not followed.
  fs::create_directories(dir_ + "/elsewhere");
  fs::create_symlink(dir_ + "/elsewhere", dir_ + "/planted");
  EXPECT_FALSE(JournalWriter::create(dir_ + "/planted", "", header()).ok());
}

TEST_F(JournalFile, DirectoryRecordsShareTheirPrefixWithThePreviousOne) {
  auto w = JournalWriter::create("", dir_ + "/dirs.vpj", header());
  ASSERT_TRUE(w.ok());
  std::string batch, previous;
  uint64_t ino = 1;
  for (std::string dir : {"a/b", "a/b/c", "a/x", "", "a/b/c/d"}) {
    append_directory_record(batch, dir, previous);
    previous = dir;
    batch += frame('C', encode_record(record("f", ino++)));
    // A name with a '/' adds a directory of its own, but the next 'D' still follows this one.
    if (dir == "a/b/c") batch += frame('C', encode_record(record("x/y", ino++)));
  }
  auto at = (*w)->write(batch);
  ASSERT_TRUE(at.ok());
  // A second batch starts with a whole path: it may follow another thread's batch.
  ASSERT_TRUE((*w)->write(frame('D', encode_directory("a/x/y")) + frame('C', encode_record(record("g", ino)))).ok());
  ASSERT_TRUE((*w)->finish({7, 7, 0, 0}).ok());
  auto j = read_journal((*w)->path());
  ASSERT_TRUE(j.ok()) << j.error().message;
  std::vector<std::string> paths;
  for (const auto& r : j->records) paths.push_back(path_of(*j, r));
  EXPECT_EQ(paths, (std::vector<std::string>{"a/b/f", "a/b/c/f", "a/b/c/x/y", "a/x/f", "f", "a/b/c/d/f",
                                              "a/x/y/g"}));
  // A summary decodes the same chain, keeping only the last directory.
  auto s = read_journal((*w)->path(), JournalRead::kSummary);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->changes, 7u);
  EXPECT_EQ(s->dirs, (std::vector<std::string>{"", "a/x/y"}));
}

TEST_F(JournalFile, DirectoryRecordSharingMoreThanThePreviousHasIsRefused) {
  std::string dir;
  append_directory_record(dir, "ab/c", "ab");  // shares 2 bytes with "ab", but follows "a"
  auto why = refusal(frame('D', encode_directory("a")) + dir);
  EXPECT_NE(why.find("shares more of the previous one"), std::string::npos) << why;
}

TEST_F(JournalFile, DirectoryRecordLeadingOutOfTheVolumeIsRefused) {
  std::string escape;
  append_directory_record(escape, "a/../etc", "a");  // "a" shared, "/../etc" added
  auto why = refusal(frame('D', encode_directory("a")) + escape + frame('C', encode_record(record("shadow", 1))));
  EXPECT_NE(why.find("outside the volume"), std::string::npos) << why;
}

TEST_F(JournalFile, DirectoryPathsAddingUpToFarMoreThanARunWritesAreRefused) {
  // A 32 KB path, then records of a few bytes each adding "/b" to the one before: a 70 KB
  // file that would hold gigabytes of paths. Long names, so that checking each path's
  // components stays quick under the sanitizers.
  std::string path(255, 'a');  // "aaa...a/aaa...a/.../aaa...a"
  while (path.size() < (32 << 10)) path += "/" + std::string(255, 'a');
  std::string batch = frame('D', encode_directory(path));
  for (int i = 0; i < 4000; ++i) {
    append_directory_record(batch, path + "/b", path);
    path += "/b";
  }
  ASSERT_LT(batch.size(), 100u << 10);
  auto why = refusal(batch);
  EXPECT_NE(why.find("directory paths add up to more than 64 MiB"), std::string::npos) << why;
}

TEST_F(JournalFile, Version1WithWholeDirectoryPathsIsStillRead) {
  auto data = slurp(write({}));
  data.resize(12);  // magic and version: then version 1's records, written by hand
  data[8] = 1;
  data += frame('H', old_header(header()));
  std::string change = encode_record(record("f", 7));
  ASSERT_EQ(change.back(), '\0');
  change.pop_back();  // version 1 and 2 records end with their xattrs: no birth time
  for (std::string dir : {"a/b", "a/c"}) {
    std::string payload(1, char(dir.size()));  // version 1: the whole path, nothing shared
    data += frame('D', payload + dir) + frame('C', change);
  }
  put(dir_ + "/v1.vpj", data);
  auto j = read_journal(dir_ + "/v1.vpj");
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->version, 1u);
  ASSERT_EQ(j->records.size(), 2u);
  EXPECT_EQ(path_of(*j, j->records[0]), "a/b/f");
  EXPECT_EQ(path_of(*j, j->records[1]), "a/c/f");
}

// Version 2 (directory paths shared with the previous one, no birth times) and version 3
// (birth times, 'A' records, an end record without a record count), written by hand.
TEST_F(JournalFile, Versions2And3AreStillRead) {
  for (uint32_t version : {2u, 3u}) {
    std::string data(kJournalMagic, sizeof kJournalMagic);
    data += std::string(1, char(version)) + std::string(3, '\0');
    data += frame('H', old_header(header()));  // no project: a version 2 and 3 header
    std::string change = encode_record(record("f", 7));
    if (version == 2) change.pop_back();  // no birth time
    data += frame('D', encode_directory("a/b")) + frame('C', change);
    data += frame('D', encode_directory("a/c", "a/b")) + frame('C', change);
    EntryStat armed;
    armed.dev_major = 254, armed.ino = 7, armed.ctime_ns = 1234;
    if (version == 3) data += frame('A', encode_armed(armed));
    std::string end = encode_end({2, 2, 0, 0});
    end.pop_back();  // no record count before version 4
    data += frame('E', end);
    const std::string path = dir_ + "/v" + std::to_string(version) + ".vpj";
    put(path, data);
    auto j = read_journal(path);
    ASSERT_TRUE(j.ok()) << version << ": " << j.error().message;
    EXPECT_EQ(j->version, version);
    ASSERT_EQ(j->records.size(), 2u);
    EXPECT_EQ(path_of(*j, j->records[0]), "a/b/f");
    EXPECT_EQ(path_of(*j, j->records[1]), "a/c/f");
    EXPECT_TRUE(j->end.has_value());
    EXPECT_EQ(j->armed_ctime.size(), version == 3 ? 1u : 0u);
    EXPECT_EQ(j->roots, std::vector<JournalRoot>{root_of(header())});
    // journal list reads them whole: their end record does not count the records.
    auto l = read_journal(path, JournalRead::kList);
    ASSERT_TRUE(l.ok()) << l.error().message;
    EXPECT_EQ(l->changes, 2u);
  }
}

TEST_F(JournalFile, TheReaderYieldsOneRecordAtATime) {
  auto r = JournalReader::open(write({"a", "dir/b", "dir/c"}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->header().volume, "/srv/vol");
  std::vector<std::string> seen;
  std::set<uint64_t> dirs;
  JournalItem item;
  for (;;) {
    auto more = r->next(item);
    ASSERT_TRUE(more.ok()) << more.error().message;
    if (!*more) break;
    if (item.kind == 'C') {
      seen.push_back(join_path(item.dir, item.change.name));
      dirs.insert(item.dir_seq);
    } else {
      seen.push_back(std::string(1, item.kind));
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "dir/b", "dir/c", "E"}));
  EXPECT_EQ(dirs.size(), 3u);  // "" and "dir" twice: each name with a '/' is a directory of its own
  EXPECT_FALSE(r->torn_at().has_value());
}

// A journal of two roots: the records after the 'R' record are relative to the second; a
// root whose run wrote nothing leaves no record.
TEST_F(JournalFile, RecordsBelongToTheRootStartedBeforeThem) {
  auto w = JournalWriter::create("", dir_ + "/roots.vpj", header());
  ASSERT_TRUE(w.ok());
  const JournalRoot second{"/srv/other", 254, 0, 77}, empty{"/srv/empty", 254, 0, 78};
  std::string batch;
  append_directory_record(batch, "x", "");
  batch += frame('C', encode_record(record("f", 1)));
  ASSERT_TRUE((*w)->write(batch).ok());
  ASSERT_TRUE((*w)->start_root(empty, 0).ok());
  ASSERT_TRUE((*w)->start_root(second, 0).ok());
  batch.clear();
  batch += frame('C', encode_record(record("g", 2)));  // no 'D': the root itself
  append_directory_record(batch, "y", "");
  batch += frame('C', encode_record(record("h", 3)));
  ASSERT_TRUE((*w)->write(batch).ok());
  ASSERT_TRUE((*w)->start_root(empty, 0).ok());  // nothing after it: never written
  ASSERT_TRUE((*w)->finish({3, 3, 0, 0}).ok());
  auto j = read_journal((*w)->path());
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->roots, (std::vector<JournalRoot>{root_of(header()), second}));
  ASSERT_EQ(j->records.size(), 3u);
  EXPECT_EQ(j->records[0].root, 0u);
  EXPECT_EQ(path_of(*j, j->records[0]), "x/f");
  EXPECT_EQ(j->records[1].root, 1u);
  EXPECT_EQ(path_of(*j, j->records[1]), "g");
  EXPECT_EQ(j->records[2].root, 1u);
  EXPECT_EQ(path_of(*j, j->records[2]), "y/h");
  ASSERT_EQ(j->segments.size(), 2u);
  EXPECT_EQ(j->segments[0].root, 0u);
  EXPECT_EQ(j->segments[1].root, 1u);
  EXPECT_EQ(j->segments[1].changes, 2u);
  EXPECT_EQ(j->end->records, 3u);
  // The reader goes back to a segment and reads it alone, relative to its root.
  auto r = JournalReader::open((*w)->path());
  ASSERT_TRUE(r.ok());
  r->restart(j->segments[1].begin, j->segments[1].end, 1);
  JournalItem item;
  std::vector<std::string> names;
  while (*r->next(item))
    if (item.kind == 'C') names.push_back(std::to_string(item.root) + ":" + join_path(item.dir, item.change.name));
  EXPECT_EQ(names, (std::vector<std::string>{"1:g", "1:y/h"}));
  EXPECT_EQ(r->offset(), j->segments[1].end);
}

// A lazy journal that nothing was written to: none, unless its end is asked for even so
// (a rollback that restored nothing but is the first of its journal): header and end alone.
TEST_F(JournalFile, ALazyJournalWithNoRecordIsWrittenOnlyWhenAskedFor) {
  auto none = JournalWriter::create("", dir_ + "/none.vpj", header(), /*lazy=*/true);
  ASSERT_TRUE(none.ok());
  ASSERT_TRUE((*none)->finish({3, 0, 0, 0}).ok());
  EXPECT_FALSE((*none)->created());
  EXPECT_FALSE(fs::exists(dir_ + "/none.vpj"));
  auto empty = JournalWriter::create("", dir_ + "/empty.vpj", header(), /*lazy=*/true);
  ASSERT_TRUE(empty.ok());
  ASSERT_TRUE((*empty)->start_root({"/srv/other", 254, 0, 43}, 0).ok());
  ASSERT_TRUE((*empty)->finish({3, 0, 0, 0}, /*even_empty=*/true).ok());
  EXPECT_TRUE((*empty)->created());
  auto j = read_journal(dir_ + "/empty.vpj");
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->changes, 0u);
  EXPECT_EQ(j->roots.size(), 1u);  // a pending root with no records is not written
  ASSERT_TRUE(j->end.has_value());
  EXPECT_EQ(j->end->scanned, 3u);
  EXPECT_EQ(j->end->records, 0u);
}

TEST_F(JournalFile, AMoveIsDurableAndSplitsTheSegments) {
  auto w = JournalWriter::create("", dir_ + "/move.vpj", header(), /*lazy=*/true);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->start_root({"/srv/new/vol", 254, 0, 42}, 0).ok());
  EXPECT_FALSE((*w)->created());  // a root alone writes nothing
  JournalMove m{"/srv/old", "vol", "/srv/new", "vol", 10, 11, 254, 0, 42, S_IFDIR | 0755, 123};
  ASSERT_TRUE((*w)->record_move(m).ok());
  ASSERT_TRUE((*w)->created());
  ASSERT_TRUE((*w)->write(frame('C', encode_record(record("f", 1)))).ok());
  ASSERT_TRUE((*w)->finish({1, 1, 0, 0}).ok());
  auto j = read_journal((*w)->path());
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ(j->moves, std::vector<JournalMove>{m});
  ASSERT_EQ(j->roots.size(), 2u);  // the root went out with the records after the move
  ASSERT_EQ(j->segments.size(), 2u);
  EXPECT_EQ(j->segments[0].move, std::optional<size_t>(0));
  EXPECT_EQ(j->segments[1].root, 1u);
  EXPECT_EQ(path_of(*j, j->records[0]), "f");
  EXPECT_EQ(j->records[0].root, 1u);
}

// A Docker volume's labels and options, journaled before its move: read back as written, and
// the move's segments as without them.
TEST_F(JournalFile, ADockerVolumesRecordRoundTrips) {
  auto w = JournalWriter::create("", dir_ + "/labels.vpj", header(), /*lazy=*/true);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->start_root({"/srv/new/db", 254, 0, 42}, 0).ok());
  VolumeRecord v{"db", "local", {{"com.example", "x"}, {"owner", "ops\n=;'"}}, {{"device", "tmpfs"}, {"type", "tmpfs"}}};
  ASSERT_TRUE((*w)->record_docker_volume(v).ok());
  ASSERT_TRUE((*w)->record_docker_volume({"bare", "local", {}, {}}).ok());
  JournalMove m{"/srv/old", "db", "/srv/new", "db", 10, 11, 254, 0, 42, S_IFDIR | 0701, 0};
  ASSERT_TRUE((*w)->record_move(m).ok());
  ASSERT_TRUE((*w)->write(frame('C', encode_record(record("f", 1)))).ok());
  ASSERT_TRUE((*w)->finish({1, 1, 0, 0}).ok());
  for (auto what : {JournalRead::kAll, JournalRead::kSummary}) {
    auto j = read_journal((*w)->path(), what);
    ASSERT_TRUE(j.ok()) << j.error().message;
    EXPECT_EQ(j->docker_volumes, (std::vector<VolumeRecord>{v, {"bare", "local", {}, {}}}));
    EXPECT_EQ(j->moves, std::vector<JournalMove>{m});
    ASSERT_EQ(j->segments.size(), 2u);
    EXPECT_EQ(j->segments[0].move, std::optional<size_t>(0));
    EXPECT_EQ(j->changes, 1u);
  }
  // A count of labels past the payload, a string cut short, bytes left over: damage.
  const std::string head = std::string("\x02") + "db" + "\x05" + "local";
  for (std::string bad : {head + "\x09", head + "\x01" + "\x01" + "a" + "\x05" + "b" + std::string(1, '\0'),
                          encode_docker_volume(v) + "x"}) {
    auto why = refusal(frame('V', bad));
    EXPECT_NE(why.find("a malformed record"), std::string::npos) << why;
  }
  EXPECT_EQ(refusal(frame('V', encode_docker_volume(v))), "");
}

TEST_F(JournalFile, RootsAndMovesLeadingAnywhereRelativeAreRefused) {
  auto why = refusal(frame('R', encode_root({"srv/relative", 254, 0, 1})));
  EXPECT_NE(why.find("not absolute"), std::string::npos) << why;
  why = refusal(frame('R', encode_root({"/srv/../etc", 254, 0, 1})));
  EXPECT_NE(why.find("not absolute"), std::string::npos) << why;
  JournalMove m{"/srv/old", "vol", "/srv/new", "vol", 10, 11, 254, 0, 42, S_IFDIR, 0};
  EXPECT_EQ(refusal(frame('M', encode_move(m))), "");
  for (auto bad : {&JournalMove::from_name, &JournalMove::to_name}) {
    JournalMove b = m;
    b.*bad = "../../etc";
    why = refusal(frame('M', encode_move(b)));
    EXPECT_NE(why.find("a move record names"), std::string::npos) << why;
  }
  m.to_dir = "srv/new";
  why = refusal(frame('M', encode_move(m)));
  EXPECT_NE(why.find("a move record names"), std::string::npos) << why;
}

// journal list reads the header and the end record only: damage between them is seen by a
// rollback (which reads everything first), not by the list.
TEST_F(JournalFile, AListReadsTheHeaderAndTheEndRecordOnly) {
  auto path = many(400, /*finished=*/true);
  auto data = slurp(path);
  auto at = record_offsets(data);
  auto l = read_journal(path, JournalRead::kList);
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->changes, 400u);
  ASSERT_TRUE(l->end.has_value());
  data[at[200] + 9] ^= 0x40;
  put(path, data);
  l = read_journal(path, JournalRead::kList);
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->changes, 400u);
  EXPECT_FALSE(read_journal(path, JournalRead::kSummary).ok());
  // No end record at the end (a torn tail, an interrupted run): read in full.
  put(path, slurp(path).substr(0, at.back() + 5));
  l = read_journal(path, JournalRead::kList);
  ASSERT_FALSE(l.ok());  // the damage is found now
  fs::remove(path);
  auto unfinished = many(10, /*finished=*/false);
  l = read_journal(unfinished, JournalRead::kList);
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->changes, 10u);
  EXPECT_FALSE(l->end.has_value());
}

TEST_F(JournalFile, TheLastJournalOfAVolumeOrAProject) {
  auto h = header();
  auto make = [&](const std::string& name, int64_t start, auto edit) {
    JournalHeader x = h;
    x.start_ns = start;
    edit(x);
    auto w = JournalWriter::create("", dir_ + "/" + name, x);
    EXPECT_TRUE(w.ok());
    EXPECT_TRUE((*w)->finish({}).ok());
  };
  make("1.vpj", 1, [](JournalHeader&) {});
  make("2.vpj", 2, [](JournalHeader& x) { x.project = "web"; });
  make("3.vpj", 3, [](JournalHeader& x) { x.ino = 43; });  // another directory at that path since
  make("4.vpj", 4, [](JournalHeader& x) { x.rollback_of = "1.vpj"; });
  make("5.vpj", 5, [](JournalHeader& x) { x.project = "db"; x.volume = "/srv/db"; });
  put(dir_ + "/junk.vpj", "not a journal");
  auto v = find_last_journal(dir_, {root_of(h), "", std::nullopt});
  EXPECT_EQ(v.path, dir_ + "/2.vpj");  // a rollback's journal never, another inode not
  EXPECT_FALSE(v.other_inode.has_value());
  ASSERT_EQ(v.unreadable.size(), 1u);
  EXPECT_NE(v.unreadable[0].find("junk.vpj"), std::string::npos);
  auto p = find_last_journal(dir_, {std::nullopt, "web", std::nullopt});
  EXPECT_EQ(p.path, dir_ + "/2.vpj");
  EXPECT_EQ(find_last_journal(dir_, {std::nullopt, "db", std::nullopt}).path, dir_ + "/5.vpj");
  EXPECT_EQ(find_last_journal(dir_, {std::nullopt, "none", std::nullopt}).path, "");
  JournalRoot moved = root_of(h);
  moved.ino = 44;
  auto o = find_last_journal(dir_, {moved, "", std::nullopt});
  EXPECT_EQ(o.path, "");
  ASSERT_TRUE(o.other_inode.has_value());
  EXPECT_EQ(o.other_inode->ino, 43u);  // the newest run on that path
  EXPECT_EQ(v.undecided, "");  // 3.vpj is of another inode: a directory replaced, not a remount
  auto list = read_journal_dir(dir_, v.unreadable);
  ASSERT_EQ(list.size(), 5u);
  EXPECT_EQ(list[1].header.project, "web");
}

// The newest run of a path, on another device than the path is now, with its inode: a remount
// (the match's `remounted` decides), or another filesystem mounted there. When it cannot be
// told, an older run that matches exactly is found, but the newer one is named: rollback --last
// must not undo the older run in its place in silence.
TEST_F(JournalFile, ANewerRunUntoldFromARemountIsNamedBesideAnOlderMatch) {
  auto h = header();
  auto make = [&](const std::string& name, int64_t start, uint32_t minor) {
    JournalHeader x = h;
    x.start_ns = start;
    x.dev_minor = minor;
    auto w = JournalWriter::create("", dir_ + "/" + name, x);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->finish({}).ok());
  };
  make("1.vpj", 1, h.dev_minor);       // the device the path is on now
  make("2.vpj", 2, h.dev_minor + 1);   // newer, on another device, the same inode
  int asked = 0;
  using R = JournalMatch::Remount;
  auto untold = find_last_journal(dir_, {root_of(h), "", std::nullopt, [&](const Journal&) { return ++asked, R::kUntold; }});
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(untold.path, dir_ + "/1.vpj");
  EXPECT_EQ(untold.undecided, dir_ + "/2.vpj");
  auto told = find_last_journal(dir_, {root_of(h), "", std::nullopt, [](const Journal&) { return R::kSame; }});
  EXPECT_EQ(told.path, dir_ + "/2.vpj");  // the same filesystem remounted: the newest
  EXPECT_EQ(told.undecided, "");
  // Told to be another filesystem mounted there for a while (an ext4 root is always inode 2):
  // passed over, the older run of this one taken.
  auto other = find_last_journal(dir_, {root_of(h), "", std::nullopt, [](const Journal&) { return R::kOther; }});
  EXPECT_EQ(other.path, dir_ + "/1.vpj");
  EXPECT_EQ(other.undecided, "");
  make("3.vpj", 3, h.dev_minor);  // newest again where the path is now: nothing newer is untold
  auto now = find_last_journal(dir_, {root_of(h), "", std::nullopt, [](const Journal&) { return R::kUntold; }});
  EXPECT_EQ(now.path, dir_ + "/3.vpj");
  EXPECT_EQ(now.undecided, "");
}

// A project's name is its compose file's to choose: the header records its directory too, and
// runs of one name from two directories are not told apart by the name.
TEST_F(JournalFile, AProjectIsItsDirectoryNotJustItsName) {
  auto h = header();
  const JournalRoot mine{"/home/alice/web", 254, 1, 100}, theirs{"/home/mallory/web", 254, 1, 200};
  auto make = [&](const std::string& name, int64_t start, std::optional<JournalRoot> dir, const char* project = "web") {
    JournalHeader x = h;
    x.start_ns = start;
    x.project = project;
    x.project_dir = dir;
    auto w = JournalWriter::create("", dir_ + "/" + name, x);
    EXPECT_TRUE(w.ok());
    EXPECT_TRUE((*w)->finish({}).ok());
  };
  make("1.vpj", 1, mine);
  make("2.vpj", 2, theirs);  // newer, same name, another user's directory
  make("3.vpj", 3, mine, "db");
  auto read = read_journal(dir_ + "/2.vpj");
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->header.project, "web");
  ASSERT_TRUE(read->header.project_dir.has_value());
  EXPECT_EQ(*read->header.project_dir, theirs);
  // The name alone: refused, the newest run of each directory named, newest first.
  auto both = find_last_journal(dir_, {std::nullopt, "web", std::nullopt});
  EXPECT_EQ(both.path, "");
  ASSERT_EQ(both.ambiguous.size(), 2u);
  EXPECT_EQ(both.ambiguous[0].dir, theirs);
  EXPECT_EQ(both.ambiguous[0].path, dir_ + "/2.vpj");
  EXPECT_EQ(both.ambiguous[1].dir, mine);
  EXPECT_EQ(both.ambiguous[1].start_ns, 1);
  // The directory chooses; with or without the name; its inode must be the same too.
  EXPECT_EQ(find_last_journal(dir_, {std::nullopt, "web", mine}).path, dir_ + "/1.vpj");
  EXPECT_EQ(find_last_journal(dir_, {std::nullopt, "", mine}).path, dir_ + "/3.vpj");
  JournalRoot replaced = mine;
  replaced.ino = 101;
  EXPECT_EQ(find_last_journal(dir_, {std::nullopt, "web", replaced}).path, "");
  // A journal that does not record the directory (an older volprep's) counts as another one.
  make("4.vpj", 4, std::nullopt, "db");
  EXPECT_EQ(find_last_journal(dir_, {std::nullopt, "db", std::nullopt}).ambiguous.size(), 2u);
  auto old = read_journal(dir_ + "/4.vpj");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->header.project_dir.has_value());
  EXPECT_EQ(old->header.project, "db");
}

// The reader reads the file in pieces: records across their boundaries, and one longer than a
// piece, come back whole.
TEST_F(JournalFile, RecordsAcrossTheReadersPiecesComeBackWhole) {
  auto w = JournalWriter::create("", dir_ + "/big.vpj", header());
  ASSERT_TRUE(w.ok());
  const std::string deep(300 << 10, 'd');  // one record longer than a piece
  std::string batch;
  for (int i = 0; i < 20000; ++i) {
    if (i % 5000 == 0) append_directory_record(batch, i == 10000 ? deep : "dir" + std::to_string(i), "");
    batch += frame('C', encode_record(record("file-" + std::to_string(i), 1000 + i)));
  }
  ASSERT_GT(batch.size(), 1u << 20);
  ASSERT_TRUE((*w)->write(batch).ok());
  ASSERT_TRUE((*w)->finish({20000, 20000, 0, 0}).ok());
  auto j = read_journal((*w)->path());
  ASSERT_TRUE(j.ok()) << j.error().message;
  ASSERT_EQ(j->records.size(), 20000u);
  for (int i : {0, 4999, 5000, 9999, 10000, 14999, 19999}) {
    EXPECT_EQ(j->records[i].ino, uint64_t(1000 + i));
    EXPECT_EQ(path_of(*j, j->records[i]),
              (i / 5000 == 2 ? deep : "dir" + std::to_string(i / 5000 * 5000)) + "/file-" + std::to_string(i));
  }
  EXPECT_EQ(read_journal((*w)->path(), JournalRead::kList)->changes, 20000u);
}

// --journal-dir makes its last component only: a typo above it (/var/lib/volprep/jouranls/x)
// is an error naming what is missing, not a new chain a later rollback --last never reads.
TEST_F(JournalFile, AGivenJournalDirectoryIsMadeWithoutItsParents) {
  const std::string deep = dir_ + "/missing/deeper/journals";
  auto refused = open_journal_dir(deep);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, kExitUsage);
  EXPECT_NE(refused.error().message.find(dir_ + "/missing does not exist"), std::string::npos)
      << refused.error().message;
  EXPECT_FALSE(fs::exists(dir_ + "/missing"));
  auto made = open_journal_dir(dir_ + "/journals");
  ASSERT_TRUE(made.ok()) << made.error().message;
  struct stat st{};
  ASSERT_EQ(::stat((dir_ + "/journals").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  // A symlink on the way is still refused, made or not.
  fs::create_symlink(dir_ + "/journals", dir_ + "/link");
  EXPECT_FALSE(open_journal_dir(dir_ + "/link/x").ok());
  EXPECT_FALSE(fs::exists(dir_ + "/journals/x"));
}

// The default directory, and $VOLPREP_JOURNAL_DIR (which every run reads alike), are made
// with their parents, as other private directories are (the lock directory); so is the default
// below a host's root mounted elsewhere (a helper container's /host/var/lib/volprep/journals).
TEST_F(JournalFile, TheDefaultJournalDirectoryIsMadeWithItsParents) {
  EXPECT_TRUE(journal_dir_made_with_parents(kDefaultJournalDir));
  EXPECT_FALSE(journal_dir_made_with_parents("/var/lib/volprep/jouranls"));
  EXPECT_FALSE(journal_dir_made_with_parents("/srv/x-var/lib/volprep/journals/more"));
  auto host = open_journal_dir(dir_ + "/host/var/lib/volprep/journals");
  ASSERT_TRUE(host.ok()) << host.error().message;
  const std::string deep = dir_ + "/env/deep/journals";
  const char* was = std::getenv("VOLPREP_JOURNAL_DIR");
  const std::string before = was ? was : "";
  ::setenv("VOLPREP_JOURNAL_DIR", deep.c_str(), 1);
  auto made = open_journal_dir(deep);
  if (was) ::setenv("VOLPREP_JOURNAL_DIR", before.c_str(), 1); else ::unsetenv("VOLPREP_JOURNAL_DIR");
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_TRUE(fs::is_directory(deep));
  EXPECT_TRUE(open_private_dir(dir_ + "/run/volprep", "lock directory").ok());
  auto last_only = open_private_dir(dir_ + "/a/b", "lock directory", MakeDirs::kLastOnly);
  ASSERT_FALSE(last_only.ok());
  EXPECT_EQ(last_only.error().code, kExitUsage);
}
