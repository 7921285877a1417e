// How many requests a run keeps in flight, chosen for the filesystem it runs on, and the
// oneTBB arena that runs that many. On a local filesystem a syscall costs CPU, so one thread
// per core does it; on a network or FUSE filesystem each metadata call waits for a server's
// answer, so the run keeps many waiting side by side.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

namespace volprep {

// Network and FUSE filesystems (NFS, SMB/CIFS, CephFS, FUSE, 9p, AFS, GFS2, Lustre, ...):
// every metadata call is a round trip to a server.
bool is_latency_bound_fs(int64_t magic);

// Requests in flight on a latency-bound filesystem unless --threads says otherwise: enough
// to hide a network round trip behind the others, and few enough for the descriptor budgets
// (a quarter of 20,000 open files over 64 threads still leaves each a few dozen).
inline constexpr int kLatencyBoundInFlight = 64;

struct Concurrency {
  int64_t fs_magic = 0;
  bool latency_bound = false;
  int threads = 1;      // worker threads, each with at most one request in flight
  bool chosen = false;  // false: the user's --threads
  // "ext4: 2 requests in flight (one thread per core)", for -v.
  std::string describe() const;
};

// The concurrency for a run on a filesystem of type `fs_magic`: `threads_option` (--threads;
// honoured above the core count), else one thread per core, or kLatencyBoundInFlight where
// the filesystem is latency-bound.
Concurrency choose_concurrency(int64_t fs_magic, int threads_option, int cores);
// The same for the filesystem of the open descriptor `fd` and this machine's cores.
Concurrency choose_concurrency_for(int fd, int threads_option);

// The oneTBB arena a run executes in: `threads` slots (the caller's thread takes one), and
// the global_control that lets oneTBB have that many threads (its default is one per core,
// and it caps every arena). Its workers may all block in syscalls at once: each holds one
// request in flight, and none is needed for anything else meanwhile.
class RunArena {
 public:
  explicit RunArena(int threads);
  ~RunArena();
  RunArena(const RunArena&) = delete;
  RunArena& operator=(const RunArena&) = delete;
  int threads() const { return threads_; }
  template <typename F>
  decltype(auto) execute(F&& f) {
    return arena_.execute(std::forward<F>(f));
  }

 private:
  int threads_;
  int outer_;  // the threads of the run arena this one is made in (0: none), for requested_threads
  tbb::global_control control_;
  tbb::task_arena arena_;
};

// The threads a caller asked oneTBB for, if it did: those of the RunArena it runs in (which a
// driver sized by --threads or the filesystem), else an active global_control limit other
// than oneTBB's default (check's --threads), else nullopt. A limit equal to the default
// cannot be told from none: `--threads 2` on 2 cores reaches a walk through its RunArena.
std::optional<int> requested_threads();

}  // namespace volprep
