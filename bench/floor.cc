// floor: the least work a prepare run can do on a tree, for bench_prepare.sh to time beside
// volprep and chown -R. Per directory: openat, getdents64, close; per entry: one statx, and an
// fchownat when its owner is not UID:UID yet. THREADS threads share one queue of open
// directories. Nothing else: no plan, no journal, no hardlink or mount checks, no report.
//
//   floor DIR UID THREADS     prints the wall time in seconds
//
// volprep has to stat every entry before changing it (to count hardlinks, to leave alone an
// entry already in its target state, to restore setuid bits, to journal the state before);
// chown -R does not. This program shows what that costs on the machine at hand. It exits 1
// if any call failed, so a partial walk never passes for a fast one.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace {

struct Dirent64 {
  uint64_t ino;
  int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[];
};

bool dot_or_dotdot(const char* n) { return n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])); }

class Queue {
 public:
  void push(std::vector<int>& fds) {
    std::lock_guard lock(mu_);
    open_.insert(open_.end(), fds.begin(), fds.end());
    --busy_;
    cv_.notify_all();
  }
  // The next directory to list, or -1 when every directory has been listed.
  int pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !open_.empty() || busy_ == 0; });
    if (open_.empty()) return -1;
    int fd = open_.back();
    open_.pop_back();
    ++busy_;
    return fd;
  }
  void start(int fd) { open_.push_back(fd); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> open_;
  int busy_ = 0;
};

std::atomic<long> failures{0};

void failed(const char* what, const char* name) {
  if (failures++ == 0) std::fprintf(stderr, "floor: %s %s: %s\n", what, name, std::strerror(errno));
}

// Returns the entry's type (S_IFMT bits), or 0 if it could not be stat'ed.
unsigned chown_if_needed(int dirfd, const char* name, uid_t id, int flags) {
  struct statx sx;
  if (::statx(dirfd, name, flags, STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_INO | STATX_NLINK, &sx) != 0) {
    failed("statx", name);
    return 0;
  }
  if ((sx.stx_uid != id || sx.stx_gid != id) && ::fchownat(dirfd, name, id, id, flags) != 0) failed("fchownat", name);
  return sx.stx_mode & S_IFMT;
}

void work(Queue& queue, uid_t id) {
  alignas(8) char buf[32768];
  std::vector<int> found;
  for (int fd; (fd = queue.pop()) >= 0;) {
    found.clear();
    long n;
    while ((n = ::syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
      for (long at = 0; at < n;) {
        auto* e = reinterpret_cast<Dirent64*>(buf + at);
        at += e->reclen;
        if (dot_or_dotdot(e->name)) continue;
        unsigned type = chown_if_needed(fd, e->name, id, AT_SYMLINK_NOFOLLOW);
        if (e->type == DT_DIR || (e->type == DT_UNKNOWN && type == S_IFDIR)) {
          int sub = ::openat(fd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub >= 0)
            found.push_back(sub);
          else
            failed("openat", e->name);
        }
      }
    if (n < 0) failed("getdents64 of a directory", "");
    ::close(fd);
    queue.push(found);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: floor DIR UID THREADS\n");
    return 2;
  }
  const uid_t id = uid_t(std::strtoul(argv[2], nullptr, 10));
  const int threads = std::atoi(argv[3]);
  rlimit rl{};  // a descriptor per directory waiting in the queue, as volprep raises it too
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  const auto t0 = std::chrono::steady_clock::now();
  int root = ::open(argv[1], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) {
    std::fprintf(stderr, "floor: %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }
  chown_if_needed(root, "", id, AT_EMPTY_PATH);
  Queue queue;
  queue.start(root);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&] { work(queue, id); });
  for (auto& t : pool) t.join();
  std::printf("%.3f\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (failures > 0) {
    std::fprintf(stderr, "floor: %ld calls failed\n", failures.load());
    return 1;
  }
}
