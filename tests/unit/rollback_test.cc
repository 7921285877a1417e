// Rollback's classification of a recorded entry, as a pure function: no root, no tree.
#include "volprep/rollback.h"

#include "volprep/acl.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace volprep;

namespace {

// A record: 1000:1000 -> 501000:501000, mode `before` -> `after` (permission bits).
JournalRecord record(uint32_t type, uint32_t before, uint32_t after) {
  JournalRecord r;
  r.mode_before = type | before;
  r.uid_before = r.gid_before = 1000;
  r.mode_after = after;
  r.uid_after = r.gid_after = 501000;
  return r;
}
EntryStat now(uint32_t type, uint32_t uid, uint32_t perms) {
  EntryStat st;
  st.mode = type | perms;
  st.uid = st.gid = uid;
  return st;
}
using Xattrs = std::vector<std::optional<std::string>>;

TEST(ClassifyRestore, OwnerAndMode) {
  const auto rec = record(S_IFREG, 0640, 0640);
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 1000, 0640), {}), Restore::kAlready);
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 501000, 0640), {}), Restore::kRestore);
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 501000, 0600), {}), Restore::kChanged);  // chmodded since
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 33, 0640), {}), Restore::kChanged);      // chowned since
  // A symlink has no mode of its own to compare.
  const auto link = record(S_IFLNK, 0777, 0777);
  EXPECT_EQ(classify_restore(link, now(S_IFLNK, 501000, 0777), {}), Restore::kRestore);
}

TEST(ClassifyRestore, SetIdBitsAKillMayHaveLeftOff) {
  const auto rec = record(S_IFREG, 04755, 04755);
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 501000, 04755), {}), Restore::kRestore);
  // The run killed between its chown (which drops the bit) and putting it back.
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 501000, 0755), {}), Restore::kRestore);
  // A rollback killed the same way: its owner back, the bit not yet.
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 1000, 0755), {}), Restore::kRestore);
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 1000, 04755), {}), Restore::kAlready);
  // Not a kill: a mode no step of either could leave.
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 501000, 0700), {}), Restore::kChanged);
}

TEST(ClassifyRestore, EachXattrOnItsOwn) {
  // --acl: an ACL set by the run (before absent), and capabilities the run kept.
  auto rec = record(S_IFREG, 0755, 0775);
  rec.uid_after = rec.uid_before, rec.gid_after = rec.gid_before;  // --acl changes no owner
  rec.xattrs.push_back({"system.posix_acl_access", std::nullopt, "acl-after"});
  rec.xattrs.push_back({"security.capability", "caps", "caps"});
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 1000, 0775), Xattrs{"acl-after", "caps"}), Restore::kRestore);
  // The ACL rewritten since the run: someone else's change.
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 1000, 0775), Xattrs{"acl-other", "caps"}), Restore::kChanged);
  // Capabilities missing after a kill (the chown dropped them): still the run's state.
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 1000, 0775), Xattrs{"acl-after", std::nullopt}), Restore::kRestore);
  // Back as before, capabilities included.
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 1000, 0755), Xattrs{std::nullopt, "caps"}), Restore::kAlready);
  // As before but for the capabilities: not yet whole.
  EXPECT_NE(classify_restore(rec, now(S_IFREG, 1000, 0755), Xattrs{std::nullopt, std::nullopt}), Restore::kAlready);
}

// A shift killed between a capability file's chown (which drops its capability) and writing
// the translated one: owner as the run left it, set-id bits and capability gone. Its rollback
// restores it (the ctime decides later whether bits and capability go back on), where it took
// the missing capability for someone else's change and left the owner as the run left it.
TEST(ClassifyRestore, AShiftKilledBetweenTheChownAndTheTranslatedCapability) {
  auto rec = record(S_IFREG, 06755, 06755);
  rec.xattrs.push_back({"security.capability", "caps-v2", "caps-v3-rootid-500000"});
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 501000, 0755), Xattrs{std::nullopt}), Restore::kRestore);
  // A rollback killed the same way: its owner back, bits and capability not yet.
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 1000, 0755), Xattrs{std::nullopt}), Restore::kRestore);
  // Another capability than either: someone else's.
  EXPECT_EQ(classify_restore(rec, now(S_IFREG, 501000, 06755), Xattrs{"caps-other"}), Restore::kChanged);
}

}  // namespace

namespace {

// A rollback killed between its own chown and putting an ACL back: the owner is as before,
// the ACL still as the run left it. Only the ACL needs restoring; judged as a whole record,
// the entry looked changed by someone else.
TEST(ClassifyRestore, ARollbackKilledBetweenItsChownAndTheAcl) {
  auto rec = record(S_IFREG, 0640, 0640);
  rec.xattrs.push_back({"system.posix_acl_access", std::nullopt, "acl-after"});
  const auto now_ = now(S_IFREG, 1000, 0640);
  const Xattrs acl{"acl-after"};
  EXPECT_EQ(classify_restore(rec, now_, acl), Restore::kRestore);
  const auto f = classify_fields(rec, now_, acl);
  EXPECT_EQ(f.owner, Restore::kAlready);
  EXPECT_EQ(f.mode, Restore::kAlready);
  EXPECT_EQ(f.xattrs, std::vector<Restore>{Restore::kRestore});
  const Change c = restore_change(rec, now_, acl, f, false);
  EXPECT_FALSE(c.changes_owner());
  ASSERT_EQ(c.xattrs.size(), 1u);
  EXPECT_EQ(c.xattrs[0], (XattrChange{"system.posix_acl_access", "acl-after", std::nullopt}));
}

// A later run rewrote the ACL the first one set: the ACL is someone else's now, and says so.
TEST(ClassifyRestore, EachFieldSaysWhetherItChanged) {
  auto rec = record(S_IFREG, 0640, 0660);
  rec.xattrs.push_back({"system.posix_acl_access", std::nullopt, "acl-after"});
  rec.xattrs.push_back({"security.capability", "caps", "caps"});
  const auto f = classify_fields(rec, now(S_IFREG, 501000, 0660), Xattrs{"acl-rewritten", "caps"});
  EXPECT_EQ(f.owner, Restore::kRestore);
  EXPECT_EQ(f.mode, Restore::kRestore);
  EXPECT_EQ(f.xattrs, (std::vector<Restore>{Restore::kChanged, Restore::kAlready}));
  EXPECT_EQ(f.overall(), Restore::kChanged);
  EXPECT_EQ(f.changed(rec), std::vector<std::string>{"system.posix_acl_access"});
  // --force restores every field but one already as before; the capabilities go back after
  // the chown, which drops them.
  const Change c = restore_change(rec, now(S_IFREG, 501000, 0660), Xattrs{"acl-rewritten", "caps"}, f, true);
  EXPECT_EQ(c.uid, 1000u);
  EXPECT_EQ(c.mode, 0640u);
  ASSERT_EQ(c.xattrs.size(), 2u);
  EXPECT_EQ(c.xattrs[0], (XattrChange{"system.posix_acl_access", "acl-rewritten", std::nullopt}));
  EXPECT_EQ(c.xattrs[1], (XattrChange{"security.capability", "caps", "caps"}));
}

// Only the fields that need it: an owner as before stays, a mode as before is not rewritten,
// an xattr as before is left out.
TEST(ClassifyRestore, TheChangeTouchesOnlyTheFieldsThatNeedIt) {
  auto rec = record(S_IFREG, 0640, 0660);
  rec.xattrs.push_back({"system.posix_acl_default", std::nullopt, "default-after"});
  const auto now_ = now(S_IFREG, 501000, 0640);  // mode back as before (by hand), owner as the run left it
  const Xattrs x{std::nullopt};
  const auto f = classify_fields(rec, now_, x);
  EXPECT_EQ(f.owner, Restore::kRestore);
  EXPECT_EQ(f.mode, Restore::kAlready);
  const Change c = restore_change(rec, now_, x, f, false);
  EXPECT_TRUE(c.changes_owner());
  EXPECT_FALSE(c.changes_mode());
  EXPECT_TRUE(c.xattrs.empty());
}

}  // namespace

// An ACL the run did not set, on an entry rollback takes back from the container: the named
// entries that give an id the run gave the container access, which would keep it afterwards.
TEST(ClassifyRestore, AnAclTheContainerGaveItselfIsNamed) {
  const auto rec = record(S_IFDIR, 0775, 0775);  // 1000:1000 -> 501000:501000
  const IdMap map({{0, 500000, 65536}});
  Acl acl = Acl::from_mode(0775);
  acl.grant(kAclUser, 1000, 7);   // the owner before the run: not the container's
  acl.grant(kAclUser, 500000, 6);  // container root
  acl.grant(kAclGroup, 501000, 5);
  acl.recompute_mask();
  const std::vector<std::string> both = {"u:500000:rw-", "g:501000:r-x"};
  EXPECT_EQ(acl_entries_kept_by_container(acl.serialize(), rec, map, map), both);
  // Without a map, the owner after the run stands for the container.
  EXPECT_EQ(acl_entries_kept_by_container(acl.serialize(), rec, IdMap(), IdMap()), std::vector<std::string>{"g:501000:r-x"});
  // Not taken back from the container (a rollback of a rollback gives the entry to it).
  auto back = rec;
  std::swap(back.uid_before, back.uid_after);
  std::swap(back.gid_before, back.gid_after);
  EXPECT_TRUE(acl_entries_kept_by_container(acl.serialize(), back, map, map).empty());
  // Named entries for others only, and a value that is no ACL.
  EXPECT_TRUE(acl_entries_kept_by_container(Acl::from_mode(0755).serialize(), rec, map, map).empty());
  EXPECT_EQ(acl_entries_kept_by_container("garbage", rec, map, map), std::vector<std::string>{"(unreadable)"});
}

namespace {

EntryStat at(uint32_t major, uint32_t minor, uint64_t ino, int64_t btime) {
  EntryStat st;
  st.mode = S_IFDIR | 0755;
  st.dev_major = major;
  st.dev_minor = minor;
  st.ino = ino;
  st.btime_ns = btime;
  return st;
}
DeviceAnchor anchor(std::string path, uint32_t minor, uint64_t ino, int64_t btime, std::optional<EntryStat> now) {
  return {std::move(path), 0, minor, ino, btime, std::move(now)};
}

}  // namespace

TEST(MovedDevices, SameRootOnAnotherDevice) {
  // Nothing moved: nothing to translate.
  std::vector<DeviceAnchor> same{anchor("/v", 41, 256, 7, at(0, 41, 256, 7))};
  ASSERT_TRUE(match_moved_devices(same, {device_key(0, 41)}));
  EXPECT_TRUE(match_moved_devices(same, {device_key(0, 41)})->empty());
  // btrfs remounted: 0:41 is 0:42 now, said by the root's inode and birth time.
  std::vector<DeviceAnchor> moved{anchor("/v", 41, 256, 7, at(0, 42, 256, 7))};
  auto m = match_moved_devices(moved, {device_key(0, 41)});
  ASSERT_TRUE(m);
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].path, "/v");
  EXPECT_EQ((*m)[0].to_minor, 42u);
  EXPECT_EQ(device_moves(*m), (DeviceMoves{{device_key(0, 41), device_key(0, 42)}}));
  // Two roots of one filesystem: one translation.
  moved.push_back(anchor("/w", 41, 300, 9, at(0, 42, 300, 9)));
  EXPECT_EQ(match_moved_devices(moved, {device_key(0, 41)})->size(), 1u);
}

TEST(MovedDevices, RefusedWithoutTheSameBirth) {
  const std::set<uint64_t> journaled{device_key(0, 41)};
  // Another ext4 at that path: root inode 2 too, born at another time.
  auto other = match_moved_devices(std::vector{anchor("/v", 41, 2, 7, at(0, 42, 2, 8))}, journaled);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, kExitRefused);
  EXPECT_NE(other.error().message.find("born at another time"), std::string::npos) << other.error().message;
  // No birth time in the journal (an old one, a root the run left alone), or on the filesystem.
  for (auto [journaled_btime, now_btime] : {std::pair{0, 7}, std::pair{7, 0}}) {
    auto unknown = match_moved_devices(std::vector{anchor("/v", 41, 2, journaled_btime, at(0, 42, 2, now_btime))},
                                       journaled);
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message.find("cannot be told"), std::string::npos) << unknown.error().message;
  }
  // Another inode there: not decided here (locate_root refuses it), nothing translated.
  auto another = match_moved_devices(std::vector{anchor("/v", 41, 2, 7, at(0, 42, 3, 7))}, journaled);
  ASSERT_TRUE(another);
  EXPECT_TRUE(another->empty());
  // Nothing at the path: nothing decided either.
  EXPECT_TRUE(match_moved_devices(std::vector{anchor("/v", 41, 2, 7, std::nullopt)}, journaled)->empty());
}

TEST(MovedDevices, OneToOne) {
  // One journaled device found on two devices now.
  std::vector<DeviceAnchor> split{anchor("/v", 41, 256, 7, at(0, 42, 256, 7)), anchor("/w", 41, 300, 9, at(0, 43, 300, 9))};
  auto s = match_moved_devices(split, {device_key(0, 41)});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("two devices now"), std::string::npos) << s.error().message;
  // ... or on itself and on another.
  split[0].now = at(0, 41, 256, 7);
  EXPECT_FALSE(match_moved_devices(split, {device_key(0, 41)}));
  // Two journaled devices on one: 0:41 moved to 0:42, which the journal names too (a mount
  // the run crossed into, say), unmoved.
  std::vector<DeviceAnchor> onto{anchor("/v", 41, 256, 7, at(0, 42, 256, 7))};
  auto o = match_moved_devices(onto, {device_key(0, 41), device_key(0, 42)});
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().message.find("would both be device 0:42"), std::string::npos) << o.error().message;
  // Two roots swapped their numbers: each translated, both allowed.
  std::vector<DeviceAnchor> swapped{anchor("/v", 41, 256, 7, at(0, 42, 256, 7)), anchor("/w", 42, 256, 9, at(0, 41, 256, 9))};
  auto w = match_moved_devices(swapped, {device_key(0, 41), device_key(0, 42)});
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ(w->size(), 2u);
}
