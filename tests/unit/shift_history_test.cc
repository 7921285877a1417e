#include "volprep/shift_history.h"

#include "volprep/migrate.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace volprep;
namespace fs = std::filesystem;

namespace {

const JournalRoot kVol{"/srv/vol", 254, 1, 42};
const std::string kDir = "/var/lib/volprep/journals";
const std::string kMap = "0 500000 65536\n";

JournalHeader header(const std::string& command_line, int64_t start, const JournalRoot& root = kVol,
                     const std::string& map = kMap) {
  JournalHeader h;
  h.volprep_version = "test";
  h.volume = root.volume;
  h.dev_major = root.dev_major;
  h.dev_minor = root.dev_minor;
  h.ino = root.ino;
  h.uid_map = h.gid_map = map;
  h.command_line = command_line;
  h.start_ns = start;
  return h;
}

// A version 5 header of a finished `shift --reverse` (the direction recorded, not read from
// the command line).
JournalHeader reverse_shift(const std::string& command_line, int64_t start) {
  JournalHeader h = header(command_line, start);
  h.command = "shift";
  h.reverse = true;
  return h;
}

// A journal as a list read gives it: `ended` with an end record (`failed` entries).
Journal journal(const std::string& name, JournalHeader h, bool ended, uint64_t failed = 0) {
  Journal j;
  j.path = kDir + "/" + name;
  j.header = std::move(h);
  if (ended) j.end = JournalEnd{10, 10, failed, j.header.start_ns + 1, 10};
  return j;
}

Journal rollback_of(const std::string& name, const std::string& undone, int64_t start) {
  JournalHeader h = header("volprep rollback " + kDir + "/" + undone, start);
  h.rollback_of = undone;
  return journal(name, h, true);
}

Mapping remap_off() {
  Mapping m;
  m.uid_map = m.gid_map = IdMap::identity();
  m.remapping_off = true;
  m.source = "Docker: userns-remap is not set (/etc/docker/daemon.json); remapping is off";
  return m;
}

Mapping told(const std::string& map, const std::string& source) {
  Mapping m;
  m.uid_map = m.gid_map = *IdMap::parse_proc(map, "test");
  m.source = source;
  return m;
}

}  // namespace

TEST(ShiftHistory, ACommandLineRanShiftAndWhichWay) {
  EXPECT_TRUE(is_shift_run("volprep shift /srv/vol --map 0:500000:65536"));
  EXPECT_TRUE(is_shift_run("volprep -q shift /srv/vol"));
  EXPECT_FALSE(is_shift_run("volprep /srv/shift --as 1000"));
  EXPECT_FALSE(is_shift_run("volprep migrate-volumes --reverse"));
  EXPECT_TRUE(is_reverse_run("volprep shift --reverse /srv/vol"));
  EXPECT_FALSE(is_reverse_run("volprep shift /srv/vol --reversed"));
}

TEST(ShiftHistory, TheForwardShiftIsTheNewestFinishedOneThatStands) {
  std::vector<Journal> js = {
      journal("1.vpj", header("volprep shift /srv/vol", 100), true),
      journal("2.vpj", header("volprep shift /srv/vol --map 0:600000:65536", 200, kVol, "0 600000 65536\n"), true),
      rollback_of("3.vpj", "2.vpj", 300),                                                       // undoes 2
      journal("4.vpj", header("volprep shift /srv/vol --reverse", 400, kVol, "0 700000 65536\n"), true),  // the other way
      journal("5.vpj", header("volprep shift /srv/vol", 500), false),                           // unfinished
      journal("6.vpj", header("volprep shift /srv/vol", 600, {"/srv/vol", 254, 1, 43}), true),  // another inode
      journal("7.vpj", header("volprep /srv/vol --as 1000", 700), true),                        // not a shift
  };
  auto h = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(h.ok()) << h.error().message;
  ASSERT_TRUE(h->forward);
  EXPECT_EQ(h->forward->path, kDir + "/1.vpj");
  ASSERT_EQ(h->unfinished.size(), 1u);
  EXPECT_EQ(h->unfinished[0].path, kDir + "/5.vpj");

  // A forward shift that finished later settles the unfinished one, and is the forward one.
  js.push_back(journal("8.vpj", header("volprep shift /srv/vol", 800), true));
  h = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->unfinished.empty());
  EXPECT_EQ(h->forward->path, kDir + "/8.vpj");

  // A shift with failed entries did not finish, nor does it stand as the forward one.
  const std::vector<Journal> with_failures = {journal("9.vpj", header("volprep shift /srv/vol", 900), true, 2)};
  auto failed = shift_history(with_failures, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(failed.ok());
  EXPECT_FALSE(failed->forward);
  EXPECT_EQ(failed->unfinished.size(), 1u);
}

// CLI11 takes --reverse=VALUE too; a version 5 journal says which way it ran, and its command
// line is not read for it.
TEST(ShiftHistory, TheDirectionOfARun) {
  EXPECT_TRUE(is_reverse_run("volprep shift --reverse=true /srv/vol"));
  EXPECT_FALSE(is_reverse_run("volprep shift --reverse=false /srv/vol"));
  EXPECT_FALSE(is_reverse_run("volprep shift --reverse=0 /srv/vol"));
  EXPECT_TRUE(is_reverse_run("volprep shift --reverse=1 /srv/vol"));
  EXPECT_FALSE(is_reverse_run("volprep shift --reverse --reverse=off /srv/vol"));
  EXPECT_FALSE(is_reverse_run("volprep shift -- /srv/a --reverse"));

  JournalHeader h = header("volprep shift /srv/a --reverse b", 100);  // a path " --reverse "
  h.command = "shift";
  EXPECT_TRUE(is_shift_run(h));
  EXPECT_FALSE(is_reverse_run(h));
  h.command_line = "volprep shift --reverse=true /srv/vol";
  h.reverse = true;
  EXPECT_TRUE(is_reverse_run(h));
  h.command = "prepare";
  EXPECT_FALSE(is_shift_run(h));
  EXPECT_TRUE(is_shift_run(header("volprep shift --reverse=true /srv/vol", 1)));  // older: the text
  EXPECT_TRUE(is_reverse_run(header("volprep shift --reverse=true /srv/vol", 1)));

  // After a --reverse=true run, the map of a shift --reverse comes from no forward shift.
  const std::vector<Journal> js = {journal("1.vpj", header("volprep shift --reverse=true /srv/vol", 100), true)};
  auto history = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(history.ok());
  EXPECT_FALSE(history->forward);
  // A --reverse=false run is a forward shift: its map is the one to go back through.
  const std::vector<Journal> killed = {journal("2.vpj", header("volprep shift --reverse=false /srv/vol", 100), true)};
  history = shift_history(killed, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(history.ok());
  ASSERT_TRUE(history->forward);
}

// A finished reverse shift through the same map took the volume back: the forward shift
// before it is used up, and a second --reverse finds none.
TEST(ShiftHistory, AReverseShiftUsesUpTheForwardOne) {
  JournalHeader back = reverse_shift("volprep shift /srv/vol", 200);
  std::vector<Journal> js = {journal("1.vpj", header("volprep shift /srv/vol", 100), true),
                             journal("2.vpj", back, true)};
  auto h = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->forward);
  // Through another map, or not finished: the forward shift stands.
  js[1].header.uid_map = js[1].header.gid_map = "0 700000 65536\n";
  h = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(h.ok() && h->forward);
  EXPECT_EQ(h->forward->path, kDir + "/1.vpj");
  js[1] = journal("2.vpj", back, false);
  h = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(h.ok() && h->forward);
  // A forward shift after it stands again.
  js[1] = journal("2.vpj", back, true);
  js.push_back(journal("3.vpj", header("volprep shift /srv/vol", 300), true));
  h = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(h.ok() && h->forward);
  EXPECT_EQ(h->forward->path, kDir + "/3.vpj");
}

// The shift back that stands: the newest finished reverse shift that no rollback undid and
// no finished forward shift came after (the tree is shifted back already).
TEST(ShiftHistory, TheShiftBackIsTheNewestReverseWithNoForwardAfterIt) {
  std::vector<Journal> js = {journal("1.vpj", header("volprep shift /srv/vol", 100), true),
                             journal("2.vpj", reverse_shift("volprep shift /srv/vol", 200), true)};
  auto h = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(h.ok() && h->back);
  EXPECT_EQ(h->back->path, kDir + "/2.vpj");
  // Not finished, or rolled back: none stands.
  js[1].end.reset();
  h = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->back);
  js[1] = journal("2.vpj", reverse_shift("volprep shift /srv/vol", 200), true);
  js.push_back(rollback_of("3.vpj", "2.vpj", 300));
  h = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->back);
  // A forward shift after it: shifted again.
  js.pop_back();
  js.push_back(journal("3.vpj", header("volprep shift /srv/vol", 300), true));
  h = shift_history(js, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->back);
  EXPECT_TRUE(h->forward);
}

TEST(ShiftHistory, AJournalThatMightBeAnUnfinishedShiftOfTheVolumeRefuses) {
  // No header at all (empty, or cut short in it by a crash): it changed nothing, ignored.
  const std::vector<UnreadJournal> empty = {{kDir + "/e.vpj", "journal e.vpj has no header (0 bytes)", {}, true}};
  EXPECT_TRUE(shift_history({}, empty, kVol, "/srv/vol", kDir).ok());

  // No header: it might be anything.
  std::vector<UnreadJournal> unread = {{kDir + "/x.vpj", "journal x.vpj has no header", {}}};
  auto h = shift_history({}, unread, kVol, "/srv/vol", kDir);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, kExitRefused);
  for (const char* says : {"/x.vpj cannot be read (journal x.vpj has no header)", "nothing changed",
                           "volprep journal show /var/lib/volprep/journals/x.vpj", "move it out of " })
    EXPECT_NE(h.error().message.find(says), std::string::npos) << h.error().message;

  // Its header names a shift of this volume, and its records are damaged.
  unread = {{kDir + "/y.vpj", "damaged at offset 300", header("volprep shift /srv/vol", 100)}};
  h = shift_history({}, unread, kVol, "/srv/vol", kDir);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, kExitRefused);
  EXPECT_NE(h.error().message.find("an earlier shift of it (journal " + kDir + "/y.vpj of 1970-01-01 00:00:00Z) did "
                                   "not finish, and its journal cannot be read (damaged at offset 300)"),
            std::string::npos)
      << h.error().message;

  // Known not to be one: another volume's, another command's, one a finished rollback undid.
  unread = {{kDir + "/a.vpj", "damaged", header("volprep shift /srv/other", 100, {"/srv/other", 254, 1, 7})},
            {kDir + "/b.vpj", "damaged", header("volprep /srv/vol --as 1000", 100)},
            {kDir + "/c.vpj", "damaged", header("volprep shift /srv/vol", 100)}};
  const std::vector<Journal> rollback = {rollback_of("d.vpj", "c.vpj", 200)};
  h = shift_history(rollback, unread, kVol, "/srv/vol", kDir);
  EXPECT_TRUE(h.ok()) << h.error().message;
}

TEST(ShiftHistory, TheWayBackTakesTheOptionsMapWhenItShiftsIds) {
  Journal fwd = journal("f.vpj", header("volprep shift /srv/vol", 100), true);
  std::vector<ForwardShift> forwards = {{"/srv/vol", &fwd}};
  auto same = choose_reverse_map(told(kMap, "the command line (--map, --uid-map, --gid-map)"), true, forwards, kDir);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->uid_map.to_proc(), kMap);
  EXPECT_EQ(same->source, "the command line (--map, --uid-map, --gid-map)");
  EXPECT_TRUE(same->warnings.empty());

  // Another map than the journal's: the options win, and it is said.
  auto other = choose_reverse_map(told("0 700000 65536\n", "the command line (--map, --uid-map, --gid-map)"), true,
                                  forwards, kDir);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->uid_map.to_proc(), "0 700000 65536\n");
  ASSERT_EQ(other->warnings.size(), 1u);
  EXPECT_NE(other->warnings[0].find("/srv/vol: its forward shift (journal " + kDir + "/f.vpj of "), std::string::npos)
      << other->warnings[0];
  EXPECT_NE(other->warnings[0].find("ran through uid map 0 500000 65536"), std::string::npos) << other->warnings[0];
}

TEST(ShiftHistory, WithRemapOffTheWayBackTakesTheForwardShiftsMap) {
  Journal fwd = journal("f.vpj", header("volprep shift /srv/vol", 1764700000000000000), true);
  std::vector<ForwardShift> forwards = {{"/srv/vol", &fwd}};
  auto got = choose_reverse_map(remap_off(), false, forwards, kDir);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->uid_map.to_proc(), kMap);
  EXPECT_EQ(got->gid_map.to_proc(), kMap);
  EXPECT_EQ(got->source, "the forward shift's journal " + kDir + "/f.vpj of 2025-12-02 18:26:40Z");

  // Options that name a map, off itself, are an error: they are not overruled.
  auto named = choose_reverse_map(remap_off(), true, forwards, kDir);
  ASSERT_FALSE(named.ok());
  EXPECT_NE(named.error().message.find("nothing to shift back: name the map"), std::string::npos);

  // No forward shift of a PATH: name the map.
  Journal other = journal("g.vpj", header("volprep shift /srv/b", 200, {"/srv/b", 254, 1, 9}), true);
  std::vector<ForwardShift> one_missing = {{"/srv/vol", &fwd}, {"/srv/b", nullptr}};
  auto missing = choose_reverse_map(remap_off(), false, one_missing, kDir);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, kExitConfig);
  EXPECT_NE(missing.error().message.find("no finished shift of /srv/b stands in " + kDir), std::string::npos)
      << missing.error().message;
  EXPECT_NE(missing.error().message.find("--map 0:500000:65536"), std::string::npos);

  // Two PATHs shifted through one map go back together; through two, one at a time.
  std::vector<ForwardShift> both = {{"/srv/vol", &fwd}, {"/srv/b", &other}};
  auto together = choose_reverse_map(remap_off(), false, both, kDir);
  ASSERT_TRUE(together.ok());
  EXPECT_NE(together->source.find("the forward shifts' journal " + kDir + "/f.vpj"), std::string::npos) << together->source;
  other.header.uid_map = "0 600000 65536\n";
  auto apart = choose_reverse_map(remap_off(), false, both, kDir);
  ASSERT_FALSE(apart.ok());
  EXPECT_NE(apart.error().message.find("/srv/vol and /srv/b were shifted through different maps"), std::string::npos)
      << apart.error().message;

  // A journal's map that does not parse is an error naming it.
  other.header.uid_map = "0 x 1\n";
  auto bad = choose_reverse_map(remap_off(), false, both, kDir);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(kDir + "/g.vpj"), std::string::npos) << bad.error().message;
}

// migrate-volumes runs on a data root: its journals name the remapped root as their project.
JournalHeader migration(int64_t start, const std::string& data_root = "/var/lib/docker", bool reverse = false,
                        const std::string& map = kMap) {
  JournalHeader h = header("volprep migrate-volumes --map 0:500000:65536", start,
                           {data_root + "/500000.500000/volumes/a", 254, 1, uint64_t(start)}, map);
  h.project = "migrate-volumes:" + data_root + "/500000.500000";
  h.command = "migrate-volumes";
  h.reverse = reverse;
  return h;
}

TEST(MigrationHistory, TheDataRootOfAMigrationsJournal) {
  EXPECT_EQ(migrated_data_root(migration(1)), "/var/lib/docker");
  EXPECT_EQ(migrated_data_root(migration(1, "/srv/docker")), "/srv/docker");
  JournalHeader slash = migration(1);
  slash.project = "migrate-volumes://500000.500000";  // --data-root /
  EXPECT_EQ(migrated_data_root(slash), "/");
  EXPECT_FALSE(migrated_data_root(header("volprep shift /srv/vol", 1)));
  JournalHeader compose = header("volprep compose up", 1);
  compose.project = "web";
  EXPECT_FALSE(migrated_data_root(compose));
}

// The forward migration of a data root is found as a shift's is, among journals of other
// data roots and other commands; a reverse migration through its map uses it up, a rollback
// undoes it; a journal older than version 5 is told by its command line.
TEST(MigrationHistory, TheForwardMigrationOfADataRoot) {
  const RunsOf docker = migrations_of("/var/lib/docker");
  JournalHeader old = migration(100);
  old.command.clear();
  std::vector<Journal> js = {journal("1.vpj", old, true),
                             journal("2.vpj", migration(200, "/srv/docker"), true),
                             journal("3.vpj", header("volprep shift /var/lib/docker/500000.500000/volumes/a", 300,
                                                     {"/var/lib/docker/500000.500000/volumes/a", 254, 1, 100}),
                                     true)};
  auto h = run_history(js, {}, docker, kDir);
  ASSERT_TRUE(h.ok() && h->forward) << (h.ok() ? "no forward migration" : h.error().message);
  EXPECT_EQ(h->forward->path, kDir + "/1.vpj");
  auto other = run_history(js, {}, migrations_of("/srv/docker"), kDir);
  ASSERT_TRUE(other.ok() && other->forward);
  EXPECT_EQ(other->forward->path, kDir + "/2.vpj");

  // Reversed through the same map: used up; through another: it stands.
  js.push_back(journal("4.vpj", migration(400, "/var/lib/docker", true), true));
  h = run_history(js, {}, docker, kDir);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->forward);
  js[3].header.uid_map = "0 700000 65536\n";
  h = run_history(js, {}, docker, kDir);
  ASSERT_TRUE(h.ok() && h->forward);

  // Rolled back: none stands.
  js.pop_back();
  js.push_back(rollback_of("5.vpj", "1.vpj", 500));
  h = run_history(js, {}, docker, kDir);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->forward);
  // Its map is the way back's, said as a migration's.
  Journal fwd = journal("f.vpj", migration(1764700000000000000), true);
  std::vector<ForwardShift> forwards = {{"/var/lib/docker", &fwd}};
  auto got = choose_reverse_map(remap_off(), false, forwards, kDir, "migration");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->source, "the forward migration's journal " + kDir + "/f.vpj of 2025-12-02 18:26:40Z");
  forwards[0].journal = nullptr;
  auto none = choose_reverse_map(remap_off(), false, forwards, kDir, "migration");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no finished migration of /var/lib/docker stands in " + kDir), std::string::npos)
      << none.error().message;
}

// A reverse migration of some volumes (--volume) leaves the others in the remapped root: the
// forward migration stands until a reverse of every volume; a shift has no --volume.
TEST(MigrationHistory, AReverseOfSomeVolumesDoesNotUseUpTheForwardMigration) {
  EXPECT_TRUE(gives_option("volprep migrate-volumes --reverse --volume alpha", "--volume"));
  EXPECT_TRUE(gives_option("volprep migrate-volumes --volume=alpha --reverse", "--volume"));
  EXPECT_FALSE(gives_option("volprep migrate-volumes --reverse --volumes", "--volume"));
  EXPECT_FALSE(gives_option("volprep migrate-volumes --reverse -- --volume", "--volume"));
  const RunsOf docker = migrations_of("/var/lib/docker");
  JournalHeader some = migration(200, "/var/lib/docker", true);
  some.command_line = "volprep migrate-volumes --reverse --volume a";
  std::vector<Journal> js = {journal("1.vpj", migration(100), true), journal("2.vpj", some, true)};
  auto h = run_history(js, {}, docker, kDir);
  ASSERT_TRUE(h.ok() && h->forward) << (h.ok() ? "the partial reverse used up the forward migration" : h.error().message);
  EXPECT_EQ(h->forward->path, kDir + "/1.vpj");
  JournalHeader all = migration(300, "/var/lib/docker", true);
  all.command_line = "volprep migrate-volumes --reverse";
  js.push_back(journal("3.vpj", all, true));
  h = run_history(js, {}, docker, kDir);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->forward);
  // A shift: every reverse uses it up, whatever its command line.
  JournalHeader back = reverse_shift("volprep shift --reverse --volume /srv/vol", 200);
  std::vector<Journal> shifts = {journal("1.vpj", header("volprep shift /srv/vol", 100), true),
                                 journal("2.vpj", back, true)};
  auto s = shift_history(shifts, {}, kVol, "/srv/vol", kDir);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->forward);
}

// Reverses of some volumes each use up the forward migration once together they took back
// every volume it moved, and not before; a volume it never moved does not count.
TEST(MigrationHistory, ReversesOfSomeVolumesThatTogetherTookAllUseUpTheForwardMigration) {
  auto moved = [](Journal j, std::initializer_list<const char*> names) {
    for (const char* n : names) {
      JournalMove m;
      m.to_name = n;
      j.moves.push_back(m);
    }
    return j;
  };
  auto some = [&](const std::string& file, int64_t start, std::initializer_list<const char*> names) {
    JournalHeader h = migration(start, "/var/lib/docker", true);
    h.command_line = "volprep migrate-volumes --reverse";
    for (const char* n : names) h.command_line += std::string(" --volume ") + n;
    return moved(journal(file, h, true), names);
  };
  const RunsOf docker = migrations_of("/var/lib/docker");
  std::vector<Journal> js = {moved(journal("1.vpj", migration(100), true), {"a", "b", "c"}),
                             some("2.vpj", 200, {"a"}), some("3.vpj", 300, {"b", "x"})};
  auto h = run_history(js, {}, docker, kDir);
  ASSERT_TRUE(h.ok() && h->forward) << (h.ok() ? "used up with c still moved" : h.error().message);
  js.push_back(some("4.vpj", 400, {"c"}));
  h = run_history(js, {}, docker, kDir);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->forward) << "a, b and c all taken back, yet " << h->forward->path << " stands";
  // One of them through another map takes nothing back of this one's.
  js[3].header.uid_map = "0 700000 65536\n";
  h = run_history(js, {}, docker, kDir);
  ASSERT_TRUE(h.ok() && h->forward);
  // One rolled back took nothing back either.
  js[3].header.uid_map = js[0].header.uid_map;
  js.push_back(rollback_of("5.vpj", "4.vpj", 500));
  h = run_history(js, {}, docker, kDir);
  ASSERT_TRUE(h.ok() && h->forward);
  // Reverses before the forward run took back an earlier one.
  std::vector<Journal> before = {some("1.vpj", 100, {"a"}), moved(journal("2.vpj", migration(200), true), {"a"})};
  h = run_history(before, {}, docker, kDir);
  ASSERT_TRUE(h.ok() && h->forward);
}

// Data roots are compared lexically normal: "//", "/./" and a trailing "/" do not count; a
// ".." or a relative path is no data root.
TEST(MigrationHistory, DataRootsAreComparedNormal) {
  EXPECT_EQ(normal_data_root("/x//data/./"), "/x/data");
  EXPECT_EQ(normal_data_root("//"), "/");
  EXPECT_FALSE(normal_data_root("data"));
  EXPECT_FALSE(normal_data_root("/x/../data"));
  JournalHeader h = migration(100, "/x//data/.");
  EXPECT_EQ(migrated_data_root(h), "/x/data");
  std::vector<Journal> js = {journal("1.vpj", h, true)};
  auto got = run_history(js, {}, migrations_of("/x/data"), kDir);
  ASSERT_TRUE(got.ok() && got->forward);
  h.project = "migrate-volumes:data/500000.500000";
  EXPECT_FALSE(migrated_data_root(h));
}

// A journal whose remapped root is not its map's root ids, or not absolute, gives no way back.
TEST(MigrationHistory, AJournalWhoseProjectIsNotItsMapsRemappedRootIsFaulty) {
  EXPECT_EQ(migration_journal_fault(migration(1)), "");
  EXPECT_EQ(migration_journal_fault(migration(1, "/x//data/")), "");
  EXPECT_NE(migration_journal_fault(migration(1, "/var/lib/docker", false, "0 600000 65536\n")).find(
                "is not the remapped root of its map (600000.600000)"),
            std::string::npos);
  JournalHeader relative = migration(1);
  relative.project = "migrate-volumes:data/500000.500000";
  EXPECT_NE(migration_journal_fault(relative).find("names no absolute remapped root"), std::string::npos);
}

TEST(MigrationHistory, AJournalThatMightBeAnUnfinishedMigrationOfTheDataRootRefuses) {
  std::vector<UnreadJournal> unread = {{kDir + "/y.vpj", "damaged at offset 300", migration(100)}};
  auto h = run_history({}, unread, migrations_of("/var/lib/docker"), kDir);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, kExitRefused);
  EXPECT_NE(h.error().message.find("/var/lib/docker: an earlier migration of it (journal " + kDir + "/y.vpj of "),
            std::string::npos)
      << h.error().message;
  // Another data root's, or a shift's of a volume below it, is not one.
  unread = {{kDir + "/a.vpj", "damaged", migration(100, "/srv/docker")},
            {kDir + "/b.vpj", "damaged", header("volprep shift /var/lib/docker/volumes/a", 100)}};
  EXPECT_TRUE(run_history({}, unread, migrations_of("/var/lib/docker"), kDir).ok());
}

// The directory as shift reads it: a damaged journal of an unfinished shift comes back with
// its header, so shift_history can tell it is one; a file that is no journal comes back
// without.
TEST(ShiftHistory, ADamagedJournalIsReadBackWithItsHeader) {
  char tmpl[] = "/tmp/volprep-shift-history.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto w = JournalWriter::create("", dir + "/s.vpj", header("volprep shift /srv/vol", 100));
  ASSERT_TRUE(w.ok()) << w.error().message;
  std::string batch;
  for (uint64_t ino = 100; ino < 120; ++ino) {
    JournalRecord r;
    r.name = "f" + std::to_string(ino);
    r.dev_major = 254;
    r.ino = ino;
    r.mode_before = S_IFREG | 0644;
    r.mode_after = 0644;
    r.uid_after = r.gid_after = 500000;
    batch += frame('C', encode_record(r));
  }
  auto at = (*w)->write(batch);
  ASSERT_TRUE(at.ok());
  ASSERT_TRUE((*w)->wait_durable(*at).ok());
  w->reset();  // killed: no end record
  // A byte amid the records flipped: damage, not a torn tail.
  std::stringstream ss;
  ss << std::ifstream(dir + "/s.vpj", std::ios::binary).rdbuf();
  std::string data = ss.str();
  data[data.size() / 2] ^= 0x40;
  std::ofstream(dir + "/s.vpj", std::ios::binary | std::ios::trunc) << data;
  std::ofstream(dir + "/junk.vpj") << "not a journal";
  ::chmod((dir + "/junk.vpj").c_str(), 0600);

  std::vector<UnreadJournal> unread;
  auto journals = read_journal_dir(dir, unread, JournalRead::kList);
  EXPECT_TRUE(journals.empty());
  ASSERT_EQ(unread.size(), 2u);
  std::sort(unread.begin(), unread.end(), [](auto& a, auto& b) { return a.path < b.path; });
  EXPECT_EQ(unread[0].path, dir + "/junk.vpj");
  EXPECT_FALSE(unread[0].header);
  EXPECT_EQ(unread[1].path, dir + "/s.vpj");
  ASSERT_TRUE(unread[1].header);
  EXPECT_EQ(unread[1].header->command_line, "volprep shift /srv/vol");
  EXPECT_NE(unread[1].reason.find("damaged"), std::string::npos) << unread[1].reason;
  unread.erase(unread.begin());
  auto h = shift_history(journals, unread, kVol, "/srv/vol", dir);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("an earlier shift of it"), std::string::npos) << h.error().message;
  fs::remove_all(dir);
}
