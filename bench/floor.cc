// floor: the least work a prepare run can do on a tree, for bench_prepare.sh to time beside
// volprep and chown -R. Per directory: openat, getdents64, close; per entry: one statx, and an
// fchownat when its owner is not UID:UID yet. THREADS threads share one queue of open
// directories to list and of chunks of listings (CHUNK names, default 256) to stat, so one big
// directory is shared out too; on a slow filesystem THREADS is the number of requests in flight
// (and a small CHUNK lets them work in one directory). Nothing else: no plan, no journal, no hardlink or mount checks, no report.
//
//   floor DIR UID THREADS [CHUNK]     prints the wall time in seconds
//   floor DIR UID THREADS CHUNK pin   the same, each entry through a pin of its own
//   floor DIR +N THREADS CHUNK pin    every uid and gid plus N (mod 2^32): a shift's changes,
//                                     with a prepare's calls (N = 4294467296 takes 500000 off)
//   floor DIR +N THREADS CHUNK census the same after a census: the least a shift that refuses
//                                     before its first change can do (bench_shift.py)
//   floor DIR UID THREADS CHUNK journal FILE [BATCH]
//                                     the pinned floor, written ahead: the least a run that
//                                     journals each change before making it can do
//   floor DIR UID THREADS CHUNK held [BATCH]
//                                     the same with no file: each batch applied as soon as
//                                     it is made, nothing written or synced. What holding
//                                     BATCH changes between stat and chown costs by itself
//
// With `journal` each change is decided as in `pin` (pinned, stat'ed through the pin), its
// record (the inode's identity, birth time, owner, group and mode before, and its name) put in
// the thread's batch, and its pin held. A batch of BATCH changes (default 1024, as volprep's,
// fewer with many threads) is appended to FILE; one more thread fdatasyncs FILE for every
// batch written since its last sync; each thread chowns the held pins of its own batches once
// durable, and closes them, between two pieces of its walk (waiting only when it holds more
// than its share of 8192 pins). A record is durable before its change is made. This is the
// least write-ahead can cost with batches, as volprep makes them; `journal` / `pin` is the
// floor of volprep's journal / `--no-journal` (bench_prepare.sh prints both). No path, no
// format, no header.
//
// The census is what a shift must read of every entry before it changes any (an id the map
// cannot translate, or a tree shifted already, refuses the run with nothing changed): the
// listing, a statx and the names of the extended attributes (ACLs, capabilities: their ids
// are translated too) of each entry, by name. The run after it is the pinned pass; it reads
// no attribute, as if the census had found none (the bench tree has none).
//
// With `pin` an entry is changed as volprep's safety rules allow: through one descriptor of
// the inode (openat2 O_PATH|O_NOFOLLOW, RESOLVE_NO_XDEV), stat'ed and chowned through it,
// then closed: four calls an entry where the plain floor makes two and chown -R one. It is
// the least the safe path can do; the plain floor is what stat-before-change costs.
//
// volprep has to stat every entry before changing it (to count hardlinks, to leave alone an
// entry already in its target state, to restore setuid bits, to journal the state before);
// chown -R does not. This program shows what that costs on the machine at hand. It exits 1
// if any call failed, so a partial walk never passes for a fast one.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
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

// An open directory, shared by the chunks of its listing; closed with the last of them.
struct Dir {
  explicit Dir(int f) : fd(f) {}
  ~Dir() { ::close(fd); }
  int fd;
};

// A directory to list (no names), or a chunk of a listing to stat (and chown): a big
// directory is shared out in chunks, as a tool that parallelises one directory must.
struct Work {
  std::shared_ptr<Dir> dir;
  std::vector<std::string> names;
  std::vector<unsigned char> types;
};

class Queue {
 public:
  void push(std::vector<Work>& found) {
    std::lock_guard lock(mu_);
    for (auto& w : found) work_.push_back(std::move(w));
    --busy_;
    cv_.notify_all();
  }
  // The next piece of work, or false when every directory has been done.
  bool pop(Work& out) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !work_.empty() || busy_ == 0; });
    if (work_.empty()) return false;
    out = std::move(work_.back());
    work_.pop_back();
    ++busy_;
    return true;
  }
  void start(Work w) { work_.push_back(std::move(w)); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Work> work_;
  int busy_ = 0;
};

std::atomic<long> failures{0};

void failed(const char* what, const char* name) {
  if (failures++ == 0) std::fprintf(stderr, "floor: %s %s: %s\n", what, name, std::strerror(errno));
}

bool add = false;          // UID is "+N": every id plus N, not one id for all
bool census_pass = false;  // the census walk, before the changing one

// Returns the entry's type (S_IFMT bits), or 0 if it could not be stat'ed.
unsigned chown_if_needed(int dirfd, const char* name, uid_t id, int flags) {
  struct statx sx;
  if (::statx(dirfd, name, flags, STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_INO | STATX_NLINK, &sx) != 0) {
    failed("statx", name);
    return 0;
  }
  const uid_t uid = add ? sx.stx_uid + id : id, gid = add ? sx.stx_gid + id : id;
  if ((sx.stx_uid != uid || sx.stx_gid != gid) && ::fchownat(dirfd, name, uid, gid, flags) != 0)
    failed("fchownat", name);
  return sx.stx_mode & S_IFMT;
}

// The census of one entry: its ids and the names of its extended attributes, by name
// (listxattrat, Linux 6.13; before it, through /proc/self/fd as volprep does).
unsigned census_of(int dirfd, const char* name) {
  struct statx sx;
  if (::statx(dirfd, name, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH), STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_INO | STATX_NLINK,
              &sx) != 0) {
    failed("statx", name);
    return 0;
  }
  char names[4096];
  static std::atomic<bool> no_listxattrat{false};
  long n = -1;
  if (!no_listxattrat.load(std::memory_order_relaxed)) {
    n = ::syscall(465 /* listxattrat */, dirfd, name, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH), names,
                  sizeof names);
    if (n < 0 && errno == ENOSYS) no_listxattrat = true;
  }
  if (no_listxattrat.load(std::memory_order_relaxed)) {
    char path[4200];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dirfd, name);
    n = ::llistxattr(path, names, sizeof names);
  }
  if (n < 0 && errno != ENOTSUP) failed("listxattrat", name);
  return sx.stx_mode & S_IFMT;
}

// A pin: the inode opened O_PATH without following a symlink or leaving the mount.
int pin_at(int dirfd, const char* name) {
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS;
  const int fd = int(::syscall(SYS_openat2, dirfd, name, &how, sizeof how));
  if (fd < 0) failed("openat2", name);
  return fd;
}

// Pinned first, then stat'ed and chowned through that descriptor.
unsigned chown_pinned(int dirfd, const char* name, uid_t id) {
  const int fd = pin_at(dirfd, name);
  if (fd < 0) return 0;
  const unsigned type = chown_if_needed(fd, "", id, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  ::close(fd);
  return type;
}

size_t chunk_names = 256;  // names per chunk of a listing (CHUNK)
bool pin = false;          // chown_pinned, not chown_if_needed by name

// The write-ahead floor (`journal`): the file the records go to, and the changes a thread holds
// until their records are durable.
int journal_fd = -1;
bool journaling = false;  // `journal` or `held`: changes held in batches
bool held_only = false;   // `held`: no file, a batch durable once made
size_t batch_changes = 1024;
std::mutex journal_mu;

struct Held {
  std::vector<int> pins;
  std::vector<std::pair<uid_t, gid_t>> ids;
  std::string records;
};

// The sync thread: one fdatasync for every batch written since the last (group commit); the
// batches up to there are then durable, and each worker applies its own (the chowns through
// their held pins, then the closes) between two pieces of its walk, as volprep's threads do.
// A worker waits for the disk only when it holds more than its share of 8192 pins.
std::condition_variable sync_cv, durable_cv;
uint64_t written_seq = 0;  // batches written (journal_mu)
std::atomic<uint64_t> durable_seq{0};
bool walk_done = false;
size_t pins_per_thread = 4096;  // this machine allows 20000 descriptors, even for root

void syncer_loop() {
  std::unique_lock lock(journal_mu);
  for (;;) {
    sync_cv.wait(lock, [] { return written_seq > durable_seq.load() || walk_done; });
    const uint64_t upto = written_seq;
    if (upto == durable_seq.load()) return;  // the walk is done and every batch durable
    lock.unlock();
    if (::fdatasync(journal_fd) != 0) failed("fdatasync", "journal");
    lock.lock();
    durable_seq = upto;
    durable_cv.notify_all();
  }
}

struct Batch {
  uint64_t seq;
  Held held;
};
thread_local std::deque<Batch> pending;  // this thread's batches written, not applied yet
thread_local size_t pending_pins = 0;

void apply(Held& h) {
  for (size_t i = 0; i < h.pins.size(); ++i) {
    if (::fchownat(h.pins[i], "", h.ids[i].first, h.ids[i].second, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
      failed("fchownat", "(held)");
    ::close(h.pins[i]);
  }
}

// Applies this thread's durable batches; while it holds more than `limit` pins, waits for the
// oldest to be durable (limit 0: every one).
void apply_durable(size_t limit) {
  while (!pending.empty()) {
    if (pending.front().seq > durable_seq.load()) {
      if (pending_pins <= limit) return;
      std::unique_lock lock(journal_mu);
      durable_cv.wait(lock, [] { return pending.front().seq <= durable_seq.load(); });
    }
    apply(pending.front().held);
    pending_pins -= pending.front().held.pins.size();
    pending.pop_front();
  }
}

// Appends the thread's batch to the journal and asks for it to be made durable.
void flush(Held& h) {
  if (h.pins.empty()) return;
  uint64_t seq;
  {
    std::lock_guard lock(journal_mu);
    for (size_t at = 0; !held_only && at < h.records.size();) {
      const ssize_t n = ::write(journal_fd, h.records.data() + at, h.records.size() - at);
      if (n <= 0) {
        failed("write", "journal");
        break;
      }
      at += size_t(n);
    }
    seq = ++written_seq;
    if (held_only) durable_seq = seq;
  }
  sync_cv.notify_one();
  pending_pins += h.pins.size();
  pending.push_back({seq, std::exchange(h, Held{})});
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// Pinned and stat'ed as chown_pinned, but a change is journaled in the batch and held.
unsigned hold_pinned(Held& h, int dirfd, const char* name, uid_t id) {
  const int fd = pin_at(dirfd, name);
  if (fd < 0) return 0;
  struct statx sx;
  if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
              STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_INO | STATX_NLINK | STATX_BTIME, &sx) != 0) {
    failed("statx", name);
    ::close(fd);
    return 0;
  }
  const uid_t uid = add ? sx.stx_uid + id : id, gid = add ? sx.stx_gid + id : id;
  if (sx.stx_uid == uid && sx.stx_gid == gid) {
    ::close(fd);
    return sx.stx_mode & S_IFMT;
  }
  put(h.records, uint32_t(sx.stx_dev_major));
  put(h.records, uint32_t(sx.stx_dev_minor));
  put(h.records, uint64_t(sx.stx_ino));
  put(h.records, int64_t(sx.stx_btime.tv_sec) * 1000000000 + sx.stx_btime.tv_nsec);
  put(h.records, uint32_t(sx.stx_uid));
  put(h.records, uint32_t(sx.stx_gid));
  put(h.records, uint16_t(sx.stx_mode));
  const size_t len = std::strlen(name);
  put(h.records, uint16_t(len));
  h.records.append(name, len);
  h.pins.push_back(fd);
  h.ids.emplace_back(uid, gid);
  if (h.pins.size() >= batch_changes) flush(h);
  return sx.stx_mode & S_IFMT;
}

void work(Queue& queue, uid_t id) {
  alignas(8) static thread_local char buf[32768];
  std::vector<Work> found;
  Held held;
  for (Work w; queue.pop(w);) {
    found.clear();
    const int fd = w.dir->fd;
    if (w.names.empty()) {  // list it, in chunks
      Work chunk{w.dir, {}, {}};
      long n;
      while ((n = ::syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
        for (long at = 0; at < n;) {
          auto* e = reinterpret_cast<Dirent64*>(buf + at);
          at += e->reclen;
          if (dot_or_dotdot(e->name)) continue;
          chunk.names.emplace_back(e->name);
          chunk.types.push_back(e->type);
          if (chunk.names.size() == chunk_names) found.push_back(std::exchange(chunk, Work{w.dir, {}, {}}));
        }
      if (n < 0) failed("getdents64 of a directory", "");
      if (!chunk.names.empty()) found.push_back(std::move(chunk));
    } else {
      for (size_t i = 0; i < w.names.size(); ++i) {
        const char* name = w.names[i].c_str();
        unsigned type = census_pass        ? census_of(fd, name)
                        : journaling       ? hold_pinned(held, fd, name, id)
                        : pin              ? chown_pinned(fd, name, id)
                                    : chown_if_needed(fd, name, id, AT_SYMLINK_NOFOLLOW);
        if (w.types[i] == DT_DIR || (w.types[i] == DT_UNKNOWN && type == S_IFDIR)) {
          int sub = ::openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub >= 0)
            found.push_back({std::make_shared<Dir>(sub), {}, {}});
          else
            failed("openat", name);
        }
      }
    }
    w = Work{};
    queue.push(found);
    if (journaling) apply_durable(pins_per_thread);
  }
  if (journaling) {
    flush(held);
    apply_durable(0);
  }
}

}  // namespace

// One walk of the tree from DIR: the census, or the changes.
bool walk(const char* dir, uid_t id, int threads) {
  int root = ::open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) {
    std::fprintf(stderr, "floor: %s: %s\n", dir, std::strerror(errno));
    return false;
  }
  if (census_pass)
    census_of(root, "");
  else
    chown_if_needed(root, "", id, AT_EMPTY_PATH);
  Queue queue;
  queue.start({std::make_shared<Dir>(root), {}, {}});
  std::thread syncer;
  if (journal_fd >= 0) syncer = std::thread(syncer_loop);  // not for `held`
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&] { work(queue, id); });
  for (auto& t : pool) t.join();
  if (syncer.joinable()) {
    {
      std::lock_guard lock(journal_mu);
      walk_done = true;
    }
    sync_cv.notify_one();
    syncer.join();
  }
  return true;
}

int main(int argc, char** argv) {
  const bool census = argc == 6 && std::strcmp(argv[5], "census") == 0;
  const bool journal = (argc == 7 || argc == 8) && std::strcmp(argv[5], "journal") == 0;
  held_only = (argc == 6 || argc == 7) && std::strcmp(argv[5], "held") == 0;
  if (argc < 4 || argc > 8 || (argc == 6 && std::strcmp(argv[5], "pin") != 0 && !census && !held_only) ||
      (argc > 6 && !journal && !held_only) || (census && argv[2][0] != '+')) {
    std::fprintf(stderr,
                 "usage: floor DIR UID THREADS [CHUNK [pin]] | floor DIR +N THREADS CHUNK (pin|census)\n"
                 "       floor DIR UID THREADS CHUNK journal FILE [BATCH] | floor DIR UID THREADS CHUNK held [BATCH]\n");
    return 2;
  }
  pin = argc == 6 && !held_only;
  journaling = journal || held_only;
  add = argv[2][0] == '+';
  const uid_t id = uid_t(std::strtoul(argv[2] + add, nullptr, 10));
  const int threads = std::atoi(argv[3]);
  if (journal) {
    journal_fd = ::open(argv[6], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (journal_fd < 0) {
      std::fprintf(stderr, "floor: %s: %s\n", argv[6], std::strerror(errno));
      return 1;
    }
  }
  if (journaling) {
    // The threads hold 8192 pins at most between them (a batch each more): under the descriptor limit.
    pins_per_thread = 8192 / size_t(std::max(1, threads));
    const int batch_arg = journal ? 7 : 6;
    batch_changes = argc > batch_arg ? size_t(std::max(1, std::atoi(argv[batch_arg])))
                                     : std::clamp<size_t>(pins_per_thread / 4, 16, 1024);
  }
  if (argc >= 5) chunk_names = std::max(1, std::atoi(argv[4]));
  rlimit rl{};  // a descriptor per directory waiting in the queue, as volprep raises it too
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (census) {
    census_pass = true;
    if (!walk(argv[1], id, threads)) return 1;
    census_pass = false;
  }
  if (!walk(argv[1], id, threads)) return 1;
  std::printf("%.3f\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (failures > 0) {
    std::fprintf(stderr, "floor: %ld calls failed\n", failures.load());
    return 1;
  }
}
