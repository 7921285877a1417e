#include "volprep/copy_tree.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "volprep/fd.h"

using namespace volprep;
namespace fs = std::filesystem;

namespace {

// A raw system.posix_acl_* value: version 2, then (tag, perm, id) entries.
std::string acl(std::initializer_list<std::tuple<uint16_t, uint16_t, uint32_t>> entries) {
  std::string v(4, '\0');
  uint32_t version = 2;
  std::memcpy(v.data(), &version, 4);
  for (auto [tag, perm, id] : entries) {
    char e[8];
    std::memcpy(e, &tag, 2);
    std::memcpy(e + 2, &perm, 2);
    std::memcpy(e + 4, &id, 4);
    v.append(e, 8);
  }
  return v;
}
// A VFS_CAP_REVISION_2 security.capability granting cap_net_bind_service (bit 10), permitted.
std::string capability() {
  uint32_t c[5] = {0x02000000, 1u << 10, 0, 0, 0};
  return std::string(reinterpret_cast<const char*>(c), sizeof c);
}

void write_file(const std::string& path, const std::string& content) { std::ofstream(path) << content; }
std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
void set_xattr(const std::string& path, const char* name, const std::string& value) {
  ASSERT_EQ(::lsetxattr(path.c_str(), name, value.data(), value.size(), 0), 0) << path << " " << name << ": " << std::strerror(errno);
}

// One line per entry below `root`: type, owner, mode, times, size, rdev, content or link
// target, xattrs (raw, hex), and for an inode of several names in the tree, those names (the
// hardlink structure).
std::string manifest(const std::string& root) {
  std::vector<std::string> paths{""};
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
    paths.push_back(it->path().lexically_relative(root).string());
  std::sort(paths.begin(), paths.end());
  std::map<ino_t, std::string> names;
  for (const auto& rel : paths) {
    struct stat st;
    if (!rel.empty() && ::lstat((root + "/" + rel).c_str(), &st) == 0 && S_ISREG(st.st_mode)) names[st.st_ino] += " " + rel;
  }
  std::string out;
  for (const auto& rel : paths) {
    const std::string p = rel.empty() ? root : root + "/" + rel;
    struct stat st;
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    std::ostringstream row;
    row << (rel.empty() ? "." : rel) << " " << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid;
    if (!rel.empty()) row << " mtime=" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
    if (S_ISREG(st.st_mode)) {
      row << " size=" << st.st_size << " content=" << std::hash<std::string>()(read_file(p));
      if (names[st.st_ino].find(' ', 1) != std::string::npos) row << " names=" << names[st.st_ino];
    }
    if (S_ISLNK(st.st_mode)) row << " -> " << fs::read_symlink(p).string();
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) row << " rdev=" << major(st.st_rdev) << "," << minor(st.st_rdev);
    char list[4096];
    ssize_t n = ::llistxattr(p.c_str(), list, sizeof list);
    std::vector<std::string> xs;
    for (ssize_t at = 0; n > 0 && at < n; at += ssize_t(std::strlen(list + at)) + 1) xs.push_back(list + at);
    std::sort(xs.begin(), xs.end());
    for (const auto& x : xs) {
      char v[4096];
      ssize_t m = ::lgetxattr(p.c_str(), x.c_str(), v, sizeof v);
      row << " " << x << "=";
      for (ssize_t i = 0; i < m; ++i) row << std::hex << int(uint8_t(v[i])) << std::dec << ".";
    }
    out += row.str() + "\n";
  }
  return out;
}

class CopyTree : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (owners, device nodes, trusted.* xattrs)";
    char tmpl[] = "/tmp/volprep-copy-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    src_ = base_ + "/src";
    fs::create_directories(src_ + "/sub/deeper");
  }
  void TearDown() override {
    if (!base_.empty()) fs::remove_all(base_);
  }
  UniqueFd open_dir(const std::string& path) { return UniqueFd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }
  std::string base_, src_;
};

}  // namespace

TEST_F(CopyTree, EveryKindOfEntry) {
  // Files: content, an empty one, a sparse one, a setuid one with a capability.
  write_file(src_ + "/file", "hello\n");
  write_file(src_ + "/empty", "");
  {
    int fd = ::open((src_ + "/sparse").c_str(), O_WRONLY | O_CREAT, 0640);
    ASSERT_EQ(::pwrite(fd, "end", 3, 1 << 20), 3);
    ::close(fd);
  }
  write_file(src_ + "/sub/setuid", "#!/bin/true\n");
  ASSERT_EQ(::chown((src_ + "/sub/setuid").c_str(), 1000, 1000), 0);
  set_xattr(src_ + "/sub/setuid", "security.capability", capability());
  ASSERT_EQ(::chmod((src_ + "/sub/setuid").c_str(), 04755), 0);
  // Hardlinks within the tree (one to a file outside it is refused: LinkedFromOutsideIsRefused).
  write_file(src_ + "/linked", "twice\n");
  ASSERT_EQ(::link((src_ + "/linked").c_str(), (src_ + "/sub/deeper/linked-too").c_str()), 0);
  // Symlinks: relative, dangling, to a directory in the tree, to /etc (copied, not followed).
  fs::create_symlink("file", src_ + "/rel-link");
  fs::create_symlink("/nonexistent/x", src_ + "/dangling");
  fs::create_symlink("sub", src_ + "/dir-link");
  fs::create_symlink("/etc", src_ + "/sub/etc");
  ASSERT_EQ(::lchown((src_ + "/sub/etc").c_str(), 33, 33), 0);
  // A fifo, a character device, a socket (skipped).
  ASSERT_EQ(::mkfifo((src_ + "/fifo").c_str(), 0620), 0);
  ASSERT_EQ(::mknod((src_ + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::chown((src_ + "/fifo").c_str(), 1001, 1002), 0);
  set_xattr(src_ + "/fifo", "trusted.kind", "fifo");
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, (src_ + "/sock").c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(sock);
  // Owners, modes, xattrs and ACLs on directories and files.
  ASSERT_EQ(::chown((src_ + "/sub").c_str(), 1000, 33), 0);
  ASSERT_EQ(::chmod((src_ + "/sub").c_str(), 02770), 0);
  set_xattr(src_ + "/sub", "system.posix_acl_default", acl({{1, 7, ~0u}, {2, 5, 1000}, {4, 5, ~0u}, {0x10, 5, ~0u}, {0x20, 0, ~0u}}));
  set_xattr(src_ + "/file", "system.posix_acl_access", acl({{1, 6, ~0u}, {2, 6, 1000}, {4, 4, ~0u}, {0x10, 6, ~0u}, {0x20, 4, ~0u}}));
  set_xattr(src_ + "/file", "user.note", std::string("bin\0ary", 7));
  set_xattr(src_ + "/sub/deeper", "trusted.t", "x");
  ASSERT_EQ(::chmod((src_ + "/sub/deeper").c_str(), 01733), 0);
  // Times: a file's and a directory's, the directory's set after its content.
  const struct timespec old[2] = {{1000000000, 5}, {1100000000, 7}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (src_ + "/file").c_str(), old, AT_SYMLINK_NOFOLLOW), 0);
  ASSERT_EQ(::utimensat(AT_FDCWD, (src_ + "/sub/deeper").c_str(), old, AT_SYMLINK_NOFOLLOW), 0);
  ASSERT_EQ(::utimensat(AT_FDCWD, (src_ + "/sub").c_str(), old, AT_SYMLINK_NOFOLLOW), 0);

  auto src = open_dir(src_), dst = open_dir(base_);
  auto stats = copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy");
  ASSERT_TRUE(stats) << stats.error().message;
  // The socket is the only difference, and it is reported.
  ASSERT_EQ(stats->skipped.size(), 1u);
  EXPECT_NE(stats->skipped[0].find("/sock: a socket, not copied"), std::string::npos) << stats->skipped[0];
  fs::remove(src_ + "/sock");
  EXPECT_EQ(manifest(base_ + "/copy"), manifest(src_));
  EXPECT_EQ(stats->hardlinks, 1u);
  EXPECT_EQ(stats->specials, 2u);
  EXPECT_EQ(stats->symlinks, 4u);
  EXPECT_EQ(stats->bytes, 6u + (1 << 20) + 3 + 12 + 6);
  // In the copy, the two names of `linked` are one inode, and /etc was never entered.
  struct stat a, b;
  ASSERT_EQ(::lstat((base_ + "/copy/linked").c_str(), &a), 0);
  ASSERT_EQ(::lstat((base_ + "/copy/sub/deeper/linked-too").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_TRUE(fs::is_symlink(base_ + "/copy/sub/etc"));

  auto size = measure_tree(src.get(), src_);
  ASSERT_TRUE(size);
  EXPECT_EQ(size->bytes, stats->bytes);
  EXPECT_EQ(size->entries, 15u);  // the root, 2 directories, 6 names of files, 4 symlinks, a fifo, a device

  // remove_tree removes the copy and nothing a symlink in it points to.
  auto removed = remove_tree(dst.get(), "copy", base_ + "/copy");
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_FALSE(fs::exists(base_ + "/copy"));
  EXPECT_TRUE(fs::exists("/etc/passwd"));
}

// A file whose links are not all in the tree is not the volume's alone: its owner may link in
// a file it cannot read (fs.protected_hardlinks=0), whose copy would be the volume's. Refused,
// naming it and its links; so is one whose two names in the tree are one link, counted once.
TEST_F(CopyTree, LinkedFromOutsideIsRefused) {
  write_file(base_ + "/outside", "secret\n");
  ASSERT_EQ(::chmod((base_ + "/outside").c_str(), 0600), 0);
  write_file(src_ + "/linked", "twice\n");
  ASSERT_EQ(::link((src_ + "/linked").c_str(), (src_ + "/sub/deeper/linked-too").c_str()), 0);
  ASSERT_EQ(::link((base_ + "/outside").c_str(), (src_ + "/sub/loot").c_str()), 0);
  ASSERT_EQ(::link((base_ + "/outside").c_str(), (src_ + "/sub/deeper/loot-too").c_str()), 0);
  auto src = open_dir(src_), dst = open_dir(base_);
  auto stats = copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy");
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code, kExitRefused);
  EXPECT_NE(stats.error().message.find(src_ + "/sub/deeper/loot-too: has 3 links, 2 of them in the volume"),
            std::string::npos) << stats.error().message;
  // Every link in the tree: copied, linked in the copy.
  ASSERT_EQ(::unlink((base_ + "/outside").c_str()), 0);
  fs::remove_all(base_ + "/copy");
  auto again = copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->hardlinks, 2u);
}

// The tree's owner is the attacker: a symlink where a directory is expected (sub/deeper,
// pointing at a tree outside) is copied as that symlink, never entered; a copy onto an
// existing name is refused.
TEST_F(CopyTree, SymlinksAreNeverFollowed) {
  fs::create_directories(base_ + "/target/inside");
  write_file(base_ + "/target/inside/data", "not the volume's\n");
  fs::remove_all(src_ + "/sub/deeper");
  fs::create_symlink(base_ + "/target", src_ + "/sub/deeper");
  auto src = open_dir(src_), dst = open_dir(base_);
  auto stats = copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy");
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_TRUE(fs::is_symlink(base_ + "/copy/sub/deeper"));
  EXPECT_EQ(fs::read_symlink(base_ + "/copy/sub/deeper"), base_ + "/target");
  EXPECT_EQ(stats->files, 0u);
  EXPECT_EQ(stats->bytes, 0u);
  EXPECT_FALSE(copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy"));  // exists: refused
}

TEST_F(CopyTree, MountPointInsideIsRefused) {
  fs::create_directories(src_ + "/sub/mnt");
  if (::mount("tmpfs", (src_ + "/sub/mnt").c_str(), "tmpfs", 0, "size=1m") != 0) GTEST_SKIP() << "cannot mount tmpfs";
  write_file(src_ + "/sub/mnt/f", "other fs\n");
  auto src = open_dir(src_), dst = open_dir(base_);
  auto stats = copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy");
  ::umount2((src_ + "/sub/mnt").c_str(), MNT_DETACH);
  ASSERT_FALSE(stats);
  EXPECT_NE(stats.error().message.find(src_ + "/sub/mnt: a mount point"), std::string::npos) << stats.error().message;
}

// A live writer (a container live-restore keeps running) would leave a torn copy: a file
// appended to or chmodded, or a name made in a directory, while it is copied is refused,
// naming it.
TEST_F(CopyTree, ChangedWhileCopiedIsRefused) {
  write_file(src_ + "/sub/a", "hello\n");
  const std::vector<std::pair<std::function<void()>, std::string>> cases = {
      {[&] { std::ofstream(src_ + "/sub/a", std::ios::app) << "more\n"; }, src_ + "/sub/a"},
      {[&] { ::chmod((src_ + "/sub/a").c_str(), 0640); }, src_ + "/sub/a"},
      {[&] { write_file(src_ + "/new", "x"); }, src_},
  };
  for (const auto& c : cases) {
    const auto& change = c.first;  // a lambda may not capture a structured binding (clang 14)
    const auto& named = c.second;
    auto src = open_dir(src_), dst = open_dir(base_);
    fs::remove_all(base_ + "/copy");
    auto stats = copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy", [&](const std::string& rel) {
      if (rel != "sub/a") return;
      ::usleep(20000);  // past the kernel's coarse clock tick: the times the change sets differ
      change();
    });
    ASSERT_FALSE(stats) << named;
    EXPECT_EQ(stats.error().message.rfind(named + ": changed while copied", 0), 0u) << stats.error().message;
  }
  auto src = open_dir(src_), dst = open_dir(base_);
  fs::remove_all(base_ + "/copy");
  EXPECT_TRUE(copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy"));  // left alone: copied
}

// A tree deeper than kMaxCopyDepth is refused by measure_tree (before anything is copied)
// and by copy_tree, never a crash; one at the limit is copied.
TEST_F(CopyTree, TooDeepIsRefused) {
  auto make_chain = [](int at, unsigned levels) {
    UniqueFd cur(::dup(at));
    for (unsigned i = 0; i < levels; ++i) {
      EXPECT_EQ(::mkdirat(cur.get(), "d", 0755), 0);
      cur = UniqueFd(::openat(cur.get(), "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
  };
  fs::create_directories(base_ + "/ok");
  auto ok = open_dir(base_ + "/ok");
  make_chain(ok.get(), kMaxCopyDepth);
  auto src = open_dir(src_), dst = open_dir(base_);
  make_chain(src.get(), kMaxCopyDepth + 2);
  auto size = measure_tree(src.get(), src_);
  ASSERT_FALSE(size);
  EXPECT_EQ(size.error().code, kExitRefused);
  EXPECT_NE(size.error().message.find("deeper than"), std::string::npos) << size.error().message;
  EXPECT_FALSE(copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy"));
  EXPECT_TRUE(measure_tree(ok.get(), base_ + "/ok"));
  auto copied = copy_tree(ok.get(), base_ + "/ok", dst.get(), "okcopy", base_ + "/okcopy");
  ASSERT_TRUE(copied) << copied.error().message;
  EXPECT_EQ(copied->dirs, kMaxCopyDepth + 1);
}

// The recursion has a stack of its own: under `ulimit -s 512` the test above still copies
// 1024 levels and refuses 1026 (on the caller's stack it crashed below 2 MiB in Release).
TEST(CopyTreeStack, TheDeepestTreeAllowedUnderASmallStackLimit) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rlimit small{512 << 10, 512 << 10};
    int null = ::open("/dev/null", O_WRONLY);
    if (::setrlimit(RLIMIT_STACK, &small) != 0 || null < 0 || ::dup2(null, 1) < 0) ::_exit(126);
    ::execl("/proc/self/exe", "volprep_tests", "--gtest_filter=CopyTree.TooDeepIsRefused", nullptr);
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                              : "exit " + std::to_string(WEXITSTATUS(status)));
}

// A file that grows while it is copied is copied no further than its size when it was opened
// (a writer that extends it sparse, for free, would keep the copy going until the target is
// full), and the copy is refused as changed.
TEST_F(CopyTree, GrowingFileIsCopiedNoFurther) {
  constexpr off_t kSize = 32 << 20;
  {
    std::ofstream f(src_ + "/sub/log", std::ios::binary);
    f << std::string(size_t(kSize), 'x');
  }
  // Extended by 64 MiB (a hole) once its copy is made, while its content is being copied; a
  // run the extension missed (it came after the copy) is tried again.
  auto src = open_dir(src_), dst = open_dir(base_);
  for (int attempt = 0; attempt < 20; ++attempt) {
    ASSERT_EQ(::truncate((src_ + "/sub/log").c_str(), kSize), 0);
    fs::remove_all(base_ + "/copy");
    std::thread writer([&] {
      struct stat st;
      for (int i = 0; i < 20000000 && ::stat((base_ + "/copy/sub/log").c_str(), &st) != 0; ++i) {
      }
      ::truncate((src_ + "/sub/log").c_str(), kSize + (64 << 20));
    });
    auto stats = copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy");
    writer.join();
    if (stats) continue;
    EXPECT_NE(stats.error().message.find(src_ + "/sub/log: changed while copied"), std::string::npos)
        << stats.error().message;
    struct stat copied;
    ASSERT_EQ(::stat((base_ + "/copy/sub/log").c_str(), &copied), 0);  // the partial copy stays
    EXPECT_EQ(copied.st_size, kSize);
    return;
  }
  FAIL() << "the file was never extended while it was copied";
}

// A file made or grown between measure_tree and the copy (a sparse one costs its writer
// nothing) would take the copy past what the target's free space was checked for: refused
// before its content is copied; the tree as measured is copied.
TEST_F(CopyTree, MoreThanMeasuredIsRefused) {
  write_file(src_ + "/sub/a", "hello\n");
  auto src = open_dir(src_), dst = open_dir(base_);
  auto size = measure_tree(src.get(), src_);
  ASSERT_TRUE(size);
  write_file(src_ + "/sub/b-sparse", "");  // made after the measure: 256 MiB of hole
  ASSERT_EQ(::truncate((src_ + "/sub/b-sparse").c_str(), 256 << 20), 0);
  auto stats = copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy", {}, size->bytes);
  ASSERT_FALSE(stats);
  EXPECT_NE(stats.error().message.find(src_ + "/sub/b-sparse: changed since it was measured"), std::string::npos)
      << stats.error().message;
  struct stat copied;
  ASSERT_EQ(::stat((base_ + "/copy/sub/a").c_str(), &copied), 0);
  EXPECT_FALSE(fs::exists(base_ + "/copy/sub/b-sparse"));
  fs::remove(src_ + "/sub/b-sparse");
  fs::remove_all(base_ + "/copy");
  EXPECT_TRUE(copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy", {}, size->bytes));
}

// A file bind-mounted into the tree is another mount's: refused like a directory mount point,
// checked on the O_PATH descriptor before the file is opened for reading.
TEST_F(CopyTree, BindMountedFileIsRefused) {
  write_file(base_ + "/outside", "not the volume's\n");
  write_file(src_ + "/sub/a", "");
  if (::mount((base_ + "/outside").c_str(), (src_ + "/sub/a").c_str(), nullptr, MS_BIND, nullptr) != 0)
    GTEST_SKIP() << "cannot bind-mount a file";
  auto src = open_dir(src_), dst = open_dir(base_);
  auto stats = copy_tree(src.get(), src_, dst.get(), "copy", base_ + "/copy");
  ::umount2((src_ + "/sub/a").c_str(), MNT_DETACH);
  ASSERT_FALSE(stats);
  EXPECT_NE(stats.error().message.find(src_ + "/sub/a: a mount point"), std::string::npos) << stats.error().message;
}

TEST(CopyTreeXattrs, XfsOwnStoresOfAttributesAreNotCopied) {
  // The ACLs are copied by their system names (and shifted after); XFS's raw copies of them
  // would keep the ids from before.
  EXPECT_TRUE(copies_xattr("system.posix_acl_access"));
  EXPECT_TRUE(copies_xattr("security.capability"));
  EXPECT_TRUE(copies_xattr("user.mime_type"));
  EXPECT_TRUE(copies_xattr("trusted.overlay.opaque"));
  EXPECT_FALSE(copies_xattr("trusted.SGI_ACL_FILE"));
  EXPECT_FALSE(copies_xattr("trusted.SGI_ACL_DEFAULT"));
  EXPECT_FALSE(copies_xattr("trusted.SGI_DMI_x"));
  EXPECT_FALSE(copies_xattr("xfsroot.anything"));
}
