#include "volprep/run_lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

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

// The byte of the lock file that stands for a directory: below 2^62, inside what an offset says.
off_t byte_of(const EntryStat& st) {
  return off_t(mix(mix((uint64_t(st.dev_major) << 32) | st.dev_minor) ^ st.ino) >> 2);
}

// The bytes of a tree: its root's, then those of the directories above it, up to "/".
struct Bytes {
  off_t root = 0;
  std::vector<off_t> above;
};

// A directory above that cannot be opened or stat'ed (a run without CAP_DAC_READ_SEARCH under
// a directory its owner made 0700) ends the list there: the root and those found are locked
// all the same, rather than none.
Bytes bytes_of(const LockedTree& t) {
  Bytes b{byte_of(t.st), {}};
  // A single file's directory is the first above it; a directory's is its "..".
  UniqueFd cur(::openat(t.dir_fd, t.single_file ? "." : "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
  EntryStat prev = t.st;
  for (int depth = 0; cur.valid() && depth < 4096; ++depth) {
    EntryStat st;
    if (stat_at(cur.get(), "", st) < 0 || (depth > 0 && st.same_inode(prev))) break;  // "/": its ".." is itself
    b.above.push_back(byte_of(st));
    prev = st;
    cur.reset(::openat(cur.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
  }
  return b;
}

// The lock file of each lock directory, opened once per process: the locks are the open file
// description's, so every lock the process takes is on this one and none conflicts with
// another of its own. A forked child opens its own: the description it inherited is its
// parent's, and so are the locks on it. `held`: the lock this process holds on each byte.
struct LockFile {
  pid_t pid = 0;
  int fd = -1;
  std::map<off_t, short> held;  // F_RDLCK or F_WRLCK
};
std::mutex files_mu;
std::map<std::string, LockFile> files;

// The lock file this process opened in `lock_dir`, or null (files_mu held).
LockFile* opened_here(const std::string& lock_dir) {
  auto it = files.find(lock_dir);
  return it != files.end() && it->second.pid == ::getpid() ? &it->second : nullptr;
}

Result<LockFile*> lock_file(const std::string& lock_dir) {
  if (LockFile* f = opened_here(lock_dir)) return f;
  auto unusable = [&](const std::string& why) {
    return config_error("cannot hold the locks of runs in " + lock_dir + "/" + kRunLockFile + ": " + why);
  };
  auto dir = open_private_dir(lock_dir, "lock directory");
  if (!dir) return unusable(dir.error().message);
  const int fd = ::openat(dir->get(), kRunLockFile, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) return unusable(std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) ||
      st.st_nlink != 1) {
    ::close(fd);
    return unusable("not a regular file of this user's alone, with one link; refused");
  }
  LockFile& f = files[lock_dir];
  f = LockFile{::getpid(), fd, {}};  // kept open until the process exits, and its locks with it
  return &f;
}

struct flock one_byte(off_t at, short type) {
  struct flock fl{};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = at;
  fl.l_len = 1;
  return fl;
}

bool set_lock(int fd, off_t at, short type) {
  struct flock fl = one_byte(at, type);
  return ::fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

// Whether a lock of `type` on byte `at` would conflict with another description's.
bool conflicts(int fd, off_t at, short type) {
  struct flock fl = one_byte(at, type);
  return ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

}  // namespace

std::string run_lock_dir() {
  if (::geteuid() == 0) return kRunLockDir;
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  return runtime && *runtime == '/' ? std::string(runtime) + "/volprep" : "";
}

std::string tree_busy(const std::string& shown) {
  return shown + " is being changed by another volprep now (a prepare, compose, shift, migrate-volumes or rollback "
                 "of it, of a tree it is in, or of a tree in it, still running)";
}

std::string tree_locked_message(const std::string& shown) {
  return tree_busy(shown) + ": let it finish, then run this again";
}

namespace {

// One try of lock_trees: `busy` is the tree whose lock another process holds.
Result<bool> try_lock_trees(const std::string& lock_dir, std::span<const LockedTree> trees, size_t& busy) {
  std::vector<Bytes> bytes;
  for (const LockedTree& t : trees) bytes.push_back(bytes_of(t));
  // What to take: each root exclusively (a shared tree's shared); shared, each directory above
  // one that is no root.
  std::map<off_t, std::pair<short, size_t>> want;  // byte -> lock, the tree it is for
  for (size_t i = 0; i < bytes.size(); ++i)
    if (!trees[i].shared) want[bytes[i].root] = {F_WRLCK, i};
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (trees[i].shared) want.emplace(bytes[i].root, std::pair<short, size_t>{F_RDLCK, i});
    for (off_t at : bytes[i].above) want.emplace(at, std::pair<short, size_t>{F_RDLCK, i});
  }

  std::lock_guard lock(files_mu);
  auto file = lock_file(lock_dir);
  if (!file) return file.error();
  LockFile& f = **file;
  std::vector<std::pair<off_t, short>> before;  // what this call changed, to put back on refusal
  for (short type : {short(F_RDLCK), short(F_WRLCK)})  // shared first, then each root's own
    for (const auto& [at, w] : want) {
      if (w.first != type) continue;
      auto it = f.held.find(at);
      const short had = it == f.held.end() ? short(F_UNLCK) : it->second;
      if (had == F_WRLCK || had == type) continue;  // never made weaker: another tree's root
      if (!set_lock(f.fd, at, type)) {
        const int err = errno;
        for (auto r = before.rbegin(); r != before.rend(); ++r) {
          set_lock(f.fd, r->first, r->second);
          if (r->second == F_UNLCK) f.held.erase(r->first);
          else f.held[r->first] = r->second;
        }
        if (err == EAGAIN || err == EACCES) {
          busy = w.second;
          return Error{kExitRefused, tree_locked_message(trees[w.second].shown) + "; nothing changed"};
        }
        return config_error("cannot lock " + lock_dir + "/" + kRunLockFile + ": " + std::strerror(err));
      }
      before.emplace_back(at, had);
      f.held[at] = type;
    }
  return true;
}

}  // namespace

Result<bool> lock_trees(const std::string& lock_dir, std::span<const LockedTree> trees,
                        const std::function<void(const std::string& shown)>& waiting) {
  for (unsigned tries = 0;; ++tries) {
    size_t busy = 0;
    auto locked = try_lock_trees(lock_dir, trees, busy);
    if (locked || locked.error().code != kExitRefused || !waiting) return locked;
    if (tries == 0) waiting(trees[busy].shown);
    // 100 to 300 ms, different for each process: two runs that wait for the same trees do not
    // keep trying in step.
    ::usleep(useconds_t(100000 + (uint64_t(::getpid()) * 7919 + tries * 104729) % 200000));
  }
}

int tree_locked_elsewhere(const std::string& lock_dir, std::span<const LockedTree> trees) {
  // Asked through the description this process locks with, where it has one (its own locks
  // do not conflict with it); else through one of its own, never made.
  int fd = -1;
  UniqueFd own;
  {
    std::lock_guard lock(files_mu);
    if (LockFile* f = opened_here(lock_dir)) fd = f->fd;
  }
  if (fd < 0) {
    own.reset(::open((lock_dir + "/" + kRunLockFile).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!own.valid()) return -1;
    fd = own.get();
  }
  for (size_t i = 0; i < trees.size(); ++i) {
    const Bytes b = bytes_of(trees[i]);
    if (conflicts(fd, b.root, trees[i].shared ? F_RDLCK : F_WRLCK)) return int(i);
    for (off_t at : b.above)
      if (conflicts(fd, at, F_RDLCK)) return int(i);
  }
  return -1;
}

std::optional<HeldDir> dir_to_lock_shared(const std::string& path) {
  std::string at = path;
  for (;;) {
    // From "/", never through a symlink: a name its owner points elsewhere locks the directory
    // that holds it, where the run makes or moves what it does.
    const int opened = open_absolute(at.empty() ? "/" : at, O_PATH | O_DIRECTORY);
    UniqueFd fd(opened < 0 ? -1 : opened);
    if (fd.valid()) {
      HeldDir d{std::move(fd), {}};
      d.tree = LockedTree{d.fd.get(), false, {}, at.empty() ? "/" : at, /*shared=*/true};
      if (stat_at(d.fd.get(), "", d.tree.st) < 0) return std::nullopt;
      return d;
    }
    if (at.empty() || at == "/" || !at.starts_with('/')) return std::nullopt;
    at = at.substr(0, at.find_last_of('/'));
  }
}

}  // namespace volprep
