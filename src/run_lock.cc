#include "volprep/run_lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "volprep/journal.h"

namespace volprep {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The byte of the lock file that stands for the tree: below 2^62, inside what an offset can say.
struct flock byte_of(const EntryStat& st, short type) {
  struct flock fl{};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = off_t(mix(mix((uint64_t(st.dev_major) << 32) | st.dev_minor) ^ st.ino) >> 2);
  fl.l_len = 1;
  return fl;
}

// The lock file of each journal directory, opened once per process: the locks are the open
// file description's, so every lock the process takes is on this one and none conflicts with
// another of its own (a Compose project's sources may share a tree). A forked child opens its
// own: the description it inherited is its parent's, and so are the locks on it.
std::mutex files_mu;
std::map<std::string, std::pair<pid_t, int>> files;

// The description this process opened for `journal_dir`, or -1 (files_mu held).
int opened_here(const std::string& journal_dir) {
  auto it = files.find(journal_dir);
  return it != files.end() && it->second.first == ::getpid() ? it->second.second : -1;
}

// -1: no journal directory, and `create` false.
Result<int> lock_file(const std::string& journal_dir, bool create) {
  std::lock_guard lock(files_mu);
  if (int fd = opened_here(journal_dir); fd >= 0) return fd;
  auto unusable = [&](const std::string& why) {
    return config_error("cannot hold the lock of the run in " + journal_dir + "/" + kRunLockFile + ": " + why);
  };
  auto dir = open_journal_dir(journal_dir, create);
  if (!dir) return unusable(dir.error().message);
  if (!dir->valid()) return -1;
  const int fd = ::openat(dir->get(), kRunLockFile, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) return unusable(std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) ||
      st.st_nlink != 1) {
    ::close(fd);
    return unusable("not a regular file of this user's alone, with one link; refused");
  }
  files[journal_dir] = {::getpid(), fd};  // kept open until the process exits, and its locks with it
  return fd;
}

}  // namespace

std::string tree_locked_message(const std::string& shown) {
  return shown + " is being changed by another volprep now (a prepare, compose, shift or rollback of it that is "
                 "still running): let it finish, then run this again";
}

Result<bool> lock_tree(const std::string& journal_dir, const EntryStat& st, const std::string& shown,
                       bool create) {
  auto fd = lock_file(journal_dir, create);
  if (!fd) return fd.error();
  if (*fd < 0) return false;
  struct flock fl = byte_of(st, F_WRLCK);
  if (::fcntl(*fd, F_OFD_SETLK, &fl) == 0) return true;
  if (errno == EAGAIN || errno == EACCES) return Error{kExitRefused, tree_locked_message(shown) + "; nothing changed"};
  return config_error("cannot lock " + journal_dir + "/" + kRunLockFile + ": " + std::strerror(errno));
}

bool tree_locked_elsewhere(const std::string& journal_dir, const EntryStat& st) {
  struct flock fl = byte_of(st, F_WRLCK);
  {
    // Asked through the description this process locks with, where it has one: its own
    // locks do not conflict with it.
    std::lock_guard lock(files_mu);
    if (int fd = opened_here(journal_dir); fd >= 0) return ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  }
  // Asked, never made: a dry run changes nothing.
  UniqueFd fd(::open((journal_dir + "/" + kRunLockFile).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  return fd.valid() && ::fcntl(fd.get(), F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

}  // namespace volprep
