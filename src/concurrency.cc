#include "volprep/concurrency.h"

#include <linux/magic.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include <tbb/info.h>

#include "volprep/fd.h"

namespace volprep {

bool is_latency_bound_fs(int64_t magic) {
  switch (magic) {
    case NFS_SUPER_MAGIC:
    case SMB_SUPER_MAGIC:
    case CIFS_SUPER_MAGIC:
    case SMB2_SUPER_MAGIC:
    case CEPH_SUPER_MAGIC:
    case FUSE_SUPER_MAGIC:  // sshfs, GlusterFS, s3fs, bindfs, virtiofs, ...
    case V9FS_MAGIC:
    case AFS_SUPER_MAGIC:
    case AFS_FS_MAGIC:
    case CODA_SUPER_MAGIC:
    case OCFS2_SUPER_MAGIC:
    case 0x01161970:  // GFS2
    case 0x0bd00bd0:  // Lustre
    case 0x47504653:  // GPFS
    case 0x013111a8:  // IBRIX
    case 0x61756673:  // AUFS over anything
      return true;
  }
  return false;
}

std::string Concurrency::describe() const {
  std::string s = fs_type_name(fs_magic) + ": " + std::to_string(threads) +
                  (threads == 1 ? " request" : " requests") + " in flight (";
  if (!chosen) s += "--threads";
  else if (latency_bound) s += "a network or FUSE filesystem: each call waits for a server";
  else s += "one thread per core";
  return s + ")";
}

Concurrency choose_concurrency(int64_t fs_magic, int threads_option, int cores) {
  Concurrency c;
  c.fs_magic = fs_magic;
  c.latency_bound = is_latency_bound_fs(fs_magic);
  if (threads_option > 0) {
    c.threads = threads_option;
  } else {
    c.chosen = true;
    c.threads = c.latency_bound ? std::max(kLatencyBoundInFlight, cores) : std::max(1, cores);
  }
  return c;
}

Concurrency choose_concurrency_for(int fd, int threads_option) {
  return choose_concurrency(fs_type(fd), threads_option, tbb::info::default_concurrency());
}

namespace {
std::atomic<int> run_arena_threads{0};  // the innermost RunArena's; runs make them one at a time
}  // namespace

RunArena::RunArena(int threads)
    : threads_(std::max(1, threads)),
      outer_(run_arena_threads.exchange(threads_)),
      control_(tbb::global_control::max_allowed_parallelism, size_t(threads_)),
      arena_(threads_) {}

RunArena::~RunArena() { run_arena_threads.store(outer_); }

std::optional<int> requested_threads() {
  if (const int threads = run_arena_threads.load(); threads > 0) return threads;
  const size_t active = tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
  const size_t dflt = size_t(tbb::info::default_concurrency());
  if (active == dflt) return std::nullopt;
  return int(active);
}

}  // namespace volprep
