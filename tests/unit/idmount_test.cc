// What volprep mount names and records without mounting anything: systemd's escaping of a
// path (unit and record names), and the records --list and umount go by.
#include "volprep/idmount.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

using namespace volprep;
namespace fs = std::filesystem;

// Each expected name is what `systemd-escape --path` prints (systemd 252).
TEST(SystemdEscapePath, MatchesSystemdEscape) {
  const std::pair<const char*, const char*> cases[] = {
      {"/", "-"},
      {"/srv/jenkins_home", "srv-jenkins_home"},
      {"/a-b/c d", "a\\x2db-c\\x20d"},
      {"/.hidden/x", "\\x2ehidden-x"},
      {"/a//b/", "a-b"},
      {"/a/./b", "a-b"},
      {"/./", "-"},
      {"/tmp/h\xc3\xa9llo", "tmp-h\\xc3\\xa9llo"},
      {"/a\\b", "a\\x5cb"},
      {"/a.b/.c", "a.b-.c"},
      {"/~x%y", "\\x7ex\\x25y"},
      {"/a:b_c", "a:b_c"},
  };
  for (const auto& [path, name] : cases) EXPECT_EQ(systemd_escape_path(path), name) << path;
}

// A DST whose escaped name is past a file name's 255 bytes has a record all the same, and
// a record is only ever taken for the DST it names.
TEST(MountRecord, LongDstKeepsItsRecord) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("volprep-idmount-" + std::to_string(::getpid()));
  ::setenv("VOLPREP_MOUNT_DIR", dir.c_str(), 1);
  const std::string dst = "/srv/" + std::string(70, '-');  // each '-' escapes to \x2d
  ASSERT_GT(systemd_escape_path(dst).size(), 255u);
  MountRecord r{"/data", dst, 45, 0x80000001, "1000 501000 1", "1000 501000 1", "what", "source", ""};
  ASSERT_TRUE(write_mount_record(r));
  auto back = read_mount_record(dst);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->dst, dst);
  EXPECT_EQ(back->mnt_unique, 0x80000001u);
  EXPECT_EQ(back->unit_dir, "");
  // Where mount --persist wrote the unit, for umount to find it there.
  r.unit_dir = "/srv/units";
  ASSERT_TRUE(write_mount_record(r));
  back = read_mount_record(dst);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->unit_dir, "/srv/units");
  EXPECT_FALSE(read_mount_record(dst + "x"));
  remove_mount_record(dst);
  EXPECT_FALSE(read_mount_record(dst));
  ::unsetenv("VOLPREP_MOUNT_DIR");
  fs::remove_all(dir);
}

// mountinfo's id alone, which the kernel gives to a later mount, is not enough.
TEST(MountRecord, IsOfItsMountOnly) {
  MountRecord r;
  r.mnt_id = 45;
  r.mnt_unique = 0x80000001;
  EXPECT_TRUE(r.is_of({45, 0x80000001}));
  EXPECT_FALSE(r.is_of({45, 0x80000002}));  // a later mount with the same mountinfo id
  EXPECT_FALSE(r.is_of({46, 0x80000001}));
  r.mnt_unique = 0;  // a record of a volprep that kept no unique id
  EXPECT_TRUE(r.is_of({45, 0x80000002}));
}
