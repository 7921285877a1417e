#include "volprep/migrate.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "volprep/policy.h"

using namespace volprep;

TEST(Migrate, VolumeNamesAreDockers) {
  for (const char* ok : {"data", "my_vol.1", "a-b", "0f3e9c", "ab"}) EXPECT_TRUE(is_volume_name(ok)) << ok;
  // One character, a leading separator, a slash, dot names, control bytes. (metadata.db is a
  // valid name: the listing passes it over as a file.)
  for (const char* bad : {"", "a", ".", "..", "_data", "-x", "a/b", "a b", "vol\n"})
    EXPECT_FALSE(is_volume_name(bad)) << bad;
}

TEST(Migrate, EntryPolicyChangesOnlyItsInode) {
  EntryStat dir;
  dir.ino = 7;
  dir.dev_major = 8;
  dir.mode = S_IFDIR | 0755;
  dir.uid = dir.gid = 500000;
  auto policy = make_entry_policy(dir, 0, 0, 0701);
  EXPECT_EQ(policy->triage(dir).kind, Triage::kMayChange);
  auto c = policy->plan(dir, {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 0u);
  EXPECT_EQ(c->gid, 0u);
  EXPECT_EQ(c->mode, 0701u);
  EntryStat other = dir;
  other.ino = 8;
  EXPECT_EQ(policy->triage(other).kind, Triage::kUnchanged);
  EXPECT_FALSE(policy->plan(other, {}));
  EntryStat as_docker = dir;
  as_docker.uid = as_docker.gid = 0;
  as_docker.mode = S_IFDIR | 0701;
  EXPECT_EQ(policy->triage(as_docker).kind, Triage::kUnchanged);
}

// A record of another driver in Docker's store: its directory (if any) not moved, and a
// plugin's volume without one named too.
TEST(Migrate, OtherDriversByTheStoreAreNamed) {
  std::vector<DockerVolume> here(2);
  here[0].name = "data";
  here[0].local = true;
  here[1].name = "odd";
  here[1].local = true;
  VolumeStore store;
  store.path = "/d/volumes/metadata.db";
  store.volumes["data"] = {"data", "local", {}, {}};
  store.volumes["odd"] = {"odd", "weird", {}, {}};
  store.volumes["nfs"] = {"nfs", "rexray\n", {}, {}};
  store.volumes["../x"] = {"../x", "rexray", {}, {}};  // no name Docker gives
  mark_other_drivers(here, store);
  ASSERT_EQ(here.size(), 3u);
  EXPECT_EQ(here[0].name, "data");
  EXPECT_TRUE(here[0].local);
  EXPECT_EQ(here[1].name, "nfs");
  EXPECT_FALSE(here[1].local);
  EXPECT_EQ(here[1].why_not, "driver rexray\\n in /d/volumes/metadata.db: its data is the plugin's, not a directory to move");
  EXPECT_EQ(here[2].name, "odd");
  EXPECT_FALSE(here[2].local);
}
