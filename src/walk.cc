#include "volprep/walk.h"

#include <linux/btrfs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <algorithm>
#include <utility>
#include <atomic>
#include <cstdint>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/info.h>
#include <tbb/parallel_for_each.h>
#include <tbb/task_arena.h>
#include <vector>

#include "volprep/concurrency.h"

namespace volprep {

const char* skip_name(Skip s) {
  switch (s) {
    case Skip::kExcluded: return "excluded";
    case Skip::kMountPoint: return "mount point";
    case Skip::kPseudoFs: return "pseudo filesystem";
    case Skip::kReplaced: return "replaced during the walk";
    case Skip::kLinkedFromOutside: return "hardlinked from outside";
    case Skip::kDevice: return "device node";
    case Skip::kSymlink: return "symlink";
    case Skip::kSubvolume: return "btrfs subvolume";
    case Skip::kReadOnlySubvolume: return "read-only subvolume";
    case Skip::kSubvolumePlaceholder: return "subvolume placeholder";
    case Skip::kReadOnlyMount: return "read-only mount";
    case Skip::kCount: break;
  }
  return "?";
}

std::vector<std::string> path_parts(std::string_view path) {
  std::vector<std::string> parts;
  for (size_t start = 0; start < path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string join_path(std::string_view dir, std::string_view name) {
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out.append(dir);
  if (!dir.empty() && !name.empty()) out.push_back('/');
  out.append(name);
  return out;
}

namespace {

// An open directory whose subdirectories are still to be entered. Shared by the work items
// of its subdirectories and by appliers still holding changes in it (as a SharedFd), and
// closed when the last of them lets go.
struct DirNode {
  explicit DirNode(std::shared_ptr<std::atomic<int>> live) : live_(std::move(live)) { ++*live_; }
  ~DirNode() { --*live_; }
  DirNode(const DirNode&) = delete;
  DirNode& operator=(const DirNode&) = delete;
  // The walk's count of open directories. Shared: appliers may hold a node (a batch waiting
  // for the journal) after the walk has returned.
  std::shared_ptr<std::atomic<int>> live_;
  UniqueFd fd;
  std::string path;
  EntryStat st;  // the directory itself: its mount and device are its entries' reference
  uint32_t mark = 0;
  bool pin_entries = false;  // what the visitor set on its entry (Entry::pin_entries)
  bool local = true;  // on a filesystem where AT_STATX_DONT_SYNC changes nothing (is_local_fs)
  size_t chunk = WalkOptions::kChunkEntries;  // entries per batch on its filesystem
  // The listing, read a chunk at a time by whichever thread takes the next chunk: only the
  // holder of the directory's one pending chunk item (WorkItem::more) touches these.
  std::vector<char> unread;  // getdents64 bytes read but not handed out yet
  size_t unread_at = 0;
  bool listed = false;  // getdents64 has reached the end
};

// Stats the entry `name` of `dir` by name without sending a request to a filesystem mounted
// on it: a FUSE server there that never answers would otherwise hang the walk for good (a
// request it has read is waited for even through SIGKILL). On a local filesystem one statx
// with AT_STATX_DONT_SYNC does it: it changes nothing for the entry itself, and the root of a
// mount on it answers from its cache. Elsewhere (NFS, FUSE, ...), where that flag could give
// an entry's stale attributes, the entry is opened O_PATH beneath the same mount and stat'ed
// through that descriptor; a mount point (EXDEV) is then stat'ed from the cache.
// With `pin`, the entry is opened and stat'ed through its descriptor on any filesystem, and
// the descriptor is kept there.
int stat_entry(const DirNode& dir, const char* name, EntryStat& st, SharedFd* pin = nullptr) {
  if (dir.local && !pin) return stat_at_cached(dir.fd.get(), name, st);
  int fd = open_entry(dir.fd.get(), name);
  if (fd >= 0) {
    auto held = std::make_shared<const UniqueFd>(fd);
    int rc = stat_at(fd, "", st);
    if (rc == 0 && pin) *pin = std::move(held);
    return rc;
  }
  if (fd == -EXDEV) return stat_at_cached(dir.fd.get(), name, st);
  return fd;
}

// A subdirectory opened while its parent was listed, counted against the walk's budget of
// such descriptors (a directory may have a great many subdirectories).
class HeldDir {
 public:
  HeldDir() = default;
  HeldDir(int fd, std::atomic<int>& count) : fd_(fd), count_(&count) { ++*count_; }
  HeldDir(HeldDir&& o) noexcept : fd_(std::move(o.fd_)), count_(std::exchange(o.count_, nullptr)) {}
  HeldDir& operator=(HeldDir&& o) noexcept {
    uncount();
    fd_ = std::move(o.fd_);
    count_ = std::exchange(o.count_, nullptr);
    return *this;
  }
  ~HeldDir() { uncount(); }
  bool valid() const { return fd_.valid(); }
  int get() const { return fd_.get(); }
  UniqueFd take() {
    uncount();
    return std::move(fd_);
  }

 private:
  void uncount() {
    if (count_) --*count_;
    count_ = nullptr;
  }
  UniqueFd fd_;
  std::atomic<int>* count_ = nullptr;
};

// A directory to enter. Already open (`dir`), or opened when its turn comes: by name in its
// parent while the walk holds few directories open, else from the root by its path, so that
// a deep tree with a pending sibling at every level needs no descriptor per level.
struct WorkItem {
  // Set: not a directory to enter but the next chunk of this one's listing.
  std::shared_ptr<DirNode> more;
  std::shared_ptr<DirNode> parent;  // held only to open `name` in
  std::string path;  // relative to the root
  std::string name;
  EntryStat st;
  uint32_t mark = 0;
  bool pin_entries = false;
  bool local = true;  // its parent's DirNode::local
  size_t chunk = WalkOptions::kChunkEntries;  // its parent's DirNode::chunk
  HeldDir dir;  // already open, and `st` stat'ed through it; else opened when its turn comes
};

struct Listed {
  std::string name;
  unsigned char type;  // d_type: DT_DIR, DT_REG, ..., DT_UNKNOWN
};

struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// Where ext4 has read a directory to its end, the last entry's d_off is this: its readdir
// sets the position to EXT4_HTREE_EOF_64BIT, a value its hashes are kept from taking, and a
// linear directory's positions are byte offsets. (Other filesystems: no such promise.)
constexpr int64_t kExt4EndOfDir = INT64_MAX;

// Reads the next names of `dir`'s listing into `names`, at most dir.chunk of them, from where
// the last chunk stopped; sets dir.listed once getdents64 has reached the end. A read that
// goes past the chunk keeps the rest in dir.unread (at most one buffer), so memory is bounded
// by the chunks in progress. With `ext4`, a read that ends at kExt4EndOfDir is the last: one
// getdents64 for most directories, not two. Returns 0 or -errno.
int list_chunk(DirNode& dir, bool ext4, std::vector<Listed>& names) {
  alignas(linux_dirent64) static thread_local char buf[64 * 1024];
  // A read of the size of a chunk's names, so a slow filesystem is asked for what one task
  // takes, and a partly read directory holds little.
  const size_t want = std::clamp<size_t>(dir.chunk * 96, 4096, sizeof buf);
  // Takes names from data[at, n) until the chunk is full; returns where it stopped.
  auto take = [&](const char* data, size_t at, size_t n) {
    while (at < n && names.size() < dir.chunk) {
      auto* d = reinterpret_cast<const linux_dirent64*>(data + at);
      at += d->d_reclen;
      if (ext4 && d->d_off == kExt4EndOfDir) dir.listed = true;  // the directory's last entry
      const char* nm = d->d_name;
      if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
      names.push_back({nm, d->d_type});
    }
    return at;
  };
  if (dir.unread_at < dir.unread.size()) {
    dir.unread_at = take(dir.unread.data(), dir.unread_at, dir.unread.size());
    if (dir.unread_at < dir.unread.size()) return 0;
    dir.unread.clear();
    dir.unread.shrink_to_fit();
    dir.unread_at = 0;
  }
  while (names.size() < dir.chunk && !dir.listed) {
    long n = ::syscall(SYS_getdents64, dir.fd.get(), buf, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) {
      dir.listed = true;
      break;
    }
    size_t at = take(buf, 0, size_t(n));
    if (at < size_t(n)) dir.unread.assign(buf + at, buf + n);  // the chunk is full
  }
  return 0;
}

// The inode number of every btrfs subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID), and
// of the empty directory a snapshot shows where the original held a subvolume of its own
// (BTRFS_EMPTY_SUBVOL_DIR_OBJECTID): nothing can be made in it, and it has no owner of its
// own (it shows its parent's; a chown of it succeeds and changes nothing), so it is never
// planned, journaled or entered.
constexpr uint64_t kBtrfsSubvolumeRootIno = 256;
constexpr uint64_t kBtrfsSubvolumePlaceholderIno = 2;

// Whether the directory `e`, stat'ed on another device than its parent `parent` (stat'ed as
// `here`), is a btrfs subvolume (or a placeholder of one) rather than a mount: no mount root,
// the same mount id, its parent on btrfs, and such an inode number. A mount (a bind mount of
// a subvolume too) has a mount id of its own; without mount ids (Linux before 5.8) nothing is
// taken for a subvolume.
bool is_subvolume(const DirNode& parent, const EntryStat& here, const EntryStat& e) {
  return !e.mount_root && here.mnt_id && e.mnt_id == here.mnt_id &&
         (e.ino == kBtrfsSubvolumeRootIno || e.ino == kBtrfsSubvolumePlaceholderIno) &&
         fs_type(parent.fd.get()) == BTRFS_SUPER_MAGIC;
}

// Whether the subvolume `dir` (an open descriptor of it, not O_PATH) is read-only: a
// snapshot made with -r, or one set ro. Nothing in it can change (EROFS), so it is one entry
// left alone, not an error for each of its entries. Unknown (the ioctl refused): writable.
bool is_read_only_subvolume(int dir) {
  uint64_t flags = 0;
  return ::ioctl(dir, BTRFS_IOC_SUBVOL_GETFLAGS, &flags) == 0 && (flags & BTRFS_SUBVOL_RDONLY);
}

}  // namespace

bool Walker::walk(int root_fd, const EntryStat& root_st, const VisitorFactory& make_visitor) {
  const int64_t root_magic = fs_type(root_fd);
  int in_flight = options_.in_flight;
  if (in_flight <= 0)
    in_flight = choose_concurrency(root_magic, requested_threads().value_or(0), tbb::info::default_concurrency()).threads;
  if (in_flight == tbb::this_task_arena::max_concurrency()) return walk_here(root_fd, root_st, root_magic, make_visitor);
  RunArena arena(in_flight);
  return arena.execute([&] { return walk_here(root_fd, root_st, root_magic, make_visitor); });
}

size_t Walker::chunk_for(int64_t magic) const {
  if (options_.chunk_entries) return options_.chunk_entries;
  return is_latency_bound_fs(magic) ? WalkOptions::kLatencyBoundChunkEntries : WalkOptions::kChunkEntries;
}

bool Walker::walk_here(int root_fd, const EntryStat& root_st, int64_t root_magic, const VisitorFactory& make_visitor) {
  tbb::enumerable_thread_specific<std::unique_ptr<WalkVisitor>> visitors(make_visitor);
  std::atomic<bool> quit{false};

  // Subdirectories are opened as they are listed (openat2 with RESOLVE_NO_XDEV) and stat'ed
  // through their descriptor, which their work item then keeps: one statx per directory, not
  // two. At most a quarter of the descriptor limit is held so; past it, and on kernels
  // without openat2, a subdirectory is stat'ed by name and opened when its turn comes.
  std::atomic<bool> open_early{!options_.cross_filesystems};
  // Every directory is on the root's filesystem unless the walk crosses filesystems.
  const bool ext4 = !options_.cross_filesystems && root_magic == EXT4_SUPER_MAGIC;
  std::atomic<int> held{0};
  auto live = std::make_shared<std::atomic<int>>(0);  // directories open as DirNodes
  const int held_budget = [] {
    rlimit rl{};
    return ::getrlimit(RLIMIT_NOFILE, &rl) == 0 ? int(std::min<rlim_t>(rl.rlim_cur / 4, 1 << 20)) : 256;
  }();
  // Entries of one batch pinned (Entry::pin) by one thread: an eighth of the limit, shared.
  const size_t pin_budget = size_t(held_budget) / 2 / size_t(std::max(1, tbb::this_task_arena::max_concurrency()));

  // --cross-filesystems: the root of another mount, to be entered, is opened now, so that the
  // root of a proc, sysfs, devpts (...) mount never reaches its parent's batch, and no change
  // is ever planned for it (the root of sysfs or cgroup2 is shared with /sys itself): the
  // visitor hears of it as skipped, a pseudo filesystem. A read-only mount is one entry left
  // alone, its root not planned: nothing in it can change, and each change would fail with
  // EROFS. Otherwise the walk keeps the descriptor to enter it by.
  // Returns false for an entry left out of the batch.
  auto classify_mount = [&](const DirNode& parent, Entry& e, HeldDir& dir, WalkVisitor& visitor) {
    int fd = open_dir_at(parent.fd.get(), e.name.c_str());
    if (fd < 0) {  // reported when its turn comes and it is opened again
      e.descend = true;
      return true;
    }
    HeldDir opened(fd, held);
    EntryStat now;
    if (int64_t magic = fs_type(fd); is_pseudo_fs(magic)) {
      visitor.skipped(join_path(parent.path, e.name), Skip::kPseudoFs,
                      ("a " + fs_type_name(magic) + " mount; never entered").c_str());
      return false;
    } else if (stat_at(fd, "", now) < 0 || !now.same_inode(e.st)) {
      e.skip = Skip::kReplaced;  // swapped since it was stat'ed: neither planned nor entered
    } else if (!options_.enter_read_only && on_read_only_mount(fd)) {
      e.skip = Skip::kReadOnlyMount;
    } else {
      dir = std::move(opened);
      e.descend = true;
    }
    return true;
  };

  // A subvolume below `parent`: placeholders and read-only ones are left alone whether the
  // walk crosses filesystems or not, writable ones (kSubvolume) unless it does. Its
  // descriptor, where the walk has none yet, is opened beneath the same mount and checked to
  // be the directory stat'ed; one that cannot be is left for classify_mount or its turn. Not
  // by name where openat2 is missing or refused: a mount swapped in for the name would be
  // opened, and its server asked (a silent FUSE server hangs the walk); the subvolume then
  // reads as writable.
  auto classify_subvolume = [&](const DirNode& parent, Entry& e, HeldDir& dir) {
    if (e.st.ino == kBtrfsSubvolumePlaceholderIno) {
      e.skip = Skip::kSubvolumePlaceholder;
      dir = HeldDir();
      return;
    }
    if (!dir.valid()) {
      if (int fd = open_subdir_same_mount(parent.fd.get(), e.name.c_str()); fd >= 0) {
        HeldDir opened(fd, held);
        EntryStat now;
        if (stat_at(fd, "", now) == 0 && now.same_inode(e.st)) dir = std::move(opened);
      }
    }
    if (dir.valid() && !options_.enter_read_only && is_read_only_subvolume(dir.get())) {
      e.skip = Skip::kReadOnlySubvolume;
      dir = HeldDir();
    } else if (!options_.cross_filesystems) {
      e.skip = Skip::kSubvolume;
      dir = HeldDir();
    }
  };

  // Lists the next chunk of an open directory (feeding the rest of its listing as another
  // task first, so other threads list and stat on meanwhile), stats its entries, hands them
  // to the visitor as one batch, and feeds the subdirectories to enter.
  auto process = [&](const std::shared_ptr<DirNode>& node, WalkVisitor& visitor, auto&& feed) {
    std::vector<Listed> listed;
    listed.reserve(std::min<size_t>(node->chunk, 64));  // most directories: one allocation
    if (int rc = list_chunk(*node, ext4, listed); rc < 0) {
      visitor.error(node->path, -rc, "cannot list directory");
      return;
    }
    if (!node->listed) {
      WorkItem rest;
      rest.more = node;
      feed(std::move(rest));
    }
    if (listed.empty()) return;
    const EntryStat& here = node->st;
    std::vector<Entry> entries;
    std::vector<HeldDir> opened;  // by index in entries
    size_t pinned = 0;
    entries.reserve(listed.size());
    for (auto& [name, type] : listed) {
      Entry e;
      HeldDir dir;
      bool dir_not_excluded = false;  // known when checked here, so not checked twice
      if (type == DT_DIR && open_early.load(std::memory_order_relaxed) &&
          held.load(std::memory_order_relaxed) < held_budget &&
          (dir_not_excluded = !(options_.excluded && options_.excluded(join_path(node->path, name), true)))) {
        int fd = open_subdir_same_mount(node->fd.get(), name.c_str());
        if (fd >= 0) {
          dir = HeldDir(fd, held);
          if (stat_at(fd, "", e.st) < 0) dir = HeldDir();
        } else if (fd == -ENOSYS || fd == -EPERM) {
          open_early = false;  // no openat2 here, or a seccomp filter refuses it
        }
        // A mount point (EXDEV), a name replaced since it was listed and any other failure:
        // stat'ed by name below, which classifies or reports it.
      }
      if (!dir.valid()) {
        // Pinned within a budget: an entry holds its descriptor until the visitor is done.
        const bool pin = node->pin_entries && type != DT_DIR && pinned < pin_budget;
        pinned += pin;
        if (int rc = stat_entry(*node, name.c_str(), e.st, pin ? &e.pin : nullptr); rc < 0) {
          // ESTALE: its pin's inode has no name left on a path-based server (NFS, FUSE).
          if (rc == -ENOENT || rc == -ESTALE)
            visitor.vanished(join_path(node->path, name));
          else
            visitor.error(join_path(node->path, name), -rc, "cannot stat");
          continue;
        }
      }
      e.name = std::move(name);
      bool is_dir = S_ISDIR(e.st.mode);
      if (!(is_dir && dir_not_excluded) && options_.excluded &&
          options_.excluded(join_path(node->path, e.name), is_dir)) {
        e.skip = Skip::kExcluded;
      } else if (is_dir && (e.st.mount_root || (here.mnt_id && e.st.mnt_id != here.mnt_id) ||
                            e.st.dev_major != here.dev_major || e.st.dev_minor != here.dev_minor)) {
        if (is_subvolume(*node, here, e.st)) classify_subvolume(*node, e, dir);
        if (e.skip) {
          // A subvolume left alone, which the visitor hears as what it is.
        } else if (!options_.cross_filesystems) {
          e.skip = Skip::kMountPoint;
        } else if (!classify_mount(*node, e, dir, visitor)) {
          continue;
        }
      } else if (!is_dir && here.mnt_id && e.st.mnt_id != here.mnt_id) {
        e.skip = Skip::kMountPoint;  // a file bind-mounted over an entry
      } else {
        e.descend = is_dir;
      }
      entries.push_back(std::move(e));
      opened.push_back(std::move(dir));
    }
    const SharedFd held_node(node, &node->fd);  // keeps the node, and so its descriptor, alive
    if (visitor.visit({node->fd.get(), held_node, node->path, node->mark}, entries) == Visit::kQuit) {
      quit = true;
      return;
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      Entry& e = entries[i];
      if (!e.descend || e.skip) continue;
      const bool keep_parent = !opened[i].valid() && live->load(std::memory_order_relaxed) < held_budget;
      feed(WorkItem{nullptr, keep_parent ? node : nullptr, join_path(node->path, e.name), std::move(e.name), e.st,
                    e.mark, e.pin_entries, node->local, node->chunk, std::move(opened[i])});
    }
  };

  // The root's own batch, then its listing.
  auto root = std::make_shared<DirNode>(live);
  root->fd.reset(::fcntl(root_fd, F_DUPFD_CLOEXEC, 3));
  root->st = root_st;
  root->local = is_local_fs(root_magic);
  root->chunk = chunk_for(root_magic);
  if (!root->fd.valid()) {
    visitors.local()->error("", errno, "cannot duplicate the root descriptor");
    return true;
  }
  {
    std::vector<Entry> self(1);
    self[0].st = root_st;
    SharedFd held(root, &root->fd);
    if (visitors.local()->visit({root->fd.get(), held, root->path, 0}, self) == Visit::kQuit) return false;
    root->mark = self[0].mark;
    root->pin_entries = self[0].pin_entries;
  }
  std::vector<WorkItem> first(1);
  first[0].more = std::move(root);  // its listing, as the first task

  tbb::parallel_for_each(first.begin(), first.end(), [&](WorkItem& item,
                                                         tbb::feeder<WorkItem>& feeder) {
    if (quit.load(std::memory_order_relaxed)) return;
    WalkVisitor& visitor = *visitors.local();
    auto feed = [&](WorkItem&& w) { feeder.add(std::move(w)); };
    if (item.more) {  // the next chunk of a directory being listed
      process(std::exchange(item.more, nullptr), visitor, feed);
      return;
    }
    auto node = std::make_shared<DirNode>(live);
    node->path = std::move(item.path);
    node->mark = item.mark;
    node->pin_entries = item.pin_entries;
    node->local = item.local;
    node->chunk = item.chunk;
    if (item.dir.valid()) {
      node->fd = item.dir.take();
      node->st = item.st;  // stat'ed through this very descriptor
    } else {
      // Never into a mount made since it was listed, unless crossing filesystems.
      const bool same_mount = !options_.cross_filesystems;
      int fd = item.parent ? (same_mount ? open_subdir_same_mount(item.parent->fd.get(), item.name.c_str()) : -ENOSYS)
                           : open_beneath(root_fd, node->path, O_RDONLY | O_DIRECTORY, same_mount);
      if (item.parent && (fd == -ENOSYS || fd == -EPERM)) fd = open_dir_at(item.parent->fd.get(), item.name.c_str());
      if (fd == -EXDEV) {
        visitor.skipped(node->path, Skip::kMountPoint, "a mount point since it was listed; not entered");
        return;
      }
      if (fd == -ENOENT) {
        visitor.vanished(node->path);
        return;
      }
      if (fd == -ELOOP || fd == -ENOTDIR) {
        // Swapped for a symlink or a file since it was listed: never followed.
        visitor.skipped(node->path, Skip::kReplaced, "replaced during the walk; not entered");
        return;
      }
      if (fd < 0) {
        visitor.error(node->path, -fd, "cannot open directory");
        return;
      }
      node->fd.reset(fd);
      EntryStat now;
      if (int rc = stat_at(fd, "", now); rc < 0 || !now.same_inode(item.st)) {
        if (rc < 0 && rc != -ESTALE) {
          visitor.error(node->path, -rc, "cannot stat directory");
          return;
        }
        visitor.skipped(node->path, Skip::kReplaced, "replaced during the walk; not entered");
        return;
      }
      node->st = now;
    }
    item.parent.reset();
    const int fd = node->fd.get();
    if (options_.cross_filesystems) {
      int64_t magic = fs_type(fd);
      if (is_pseudo_fs(magic)) {  // mounted since its parent's batch
        visitor.skipped(node->path, Skip::kPseudoFs,
                        ("a " + fs_type_name(magic) + " mount; never entered").c_str());
        return;
      }
      // A read-only mount root that classify_mount has not left alone: mounted, or made
      // read-only, since its parent's batch (a directory bind-mounted on itself keeps its inode).
      if (!options_.enter_read_only && node->st.mount_root && on_read_only_mount(fd)) {
        visitor.skipped(node->path, Skip::kReadOnlyMount, "a read-only mount since it was listed; not entered");
        return;
      }
      node->local = is_local_fs(magic);
      node->chunk = chunk_for(magic);
    }
    process(node, visitor, feed);
  });
  return !quit.load();
}

}  // namespace volprep
