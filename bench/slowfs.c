// slowfs: a FUSE passthrough of a directory that waits a fixed time before answering each
// request, standing for a network filesystem's round trip; it counts what it is asked.
//
//   slowfs [--delay-us N] [--threads N] [--cache-s S] [--attr-cache-s S] [--posix-acl 0|1]
//          [--squash-root 0|1] BACKING_DIR MOUNTPOINT
//                                                         (as root; stays in front)
//
// --squash-root 1 answers requests from uid 0 as an NFS server exporting with root_squash (its
// default) does: as nobody (65534). An owner change is refused (EPERM), and so are a mode,
// time or ACL change (system.* and security.* xattrs) of an entry nobody does not own; what
// root creates through it is nobody's.
//
// The requests and their count so far: `getfattr -n user.slowfs.stats MOUNTPOINT` (that
// request is counted too). Unmount with `umount MOUNTPOINT`: slowfs then exits.
//
// libfuse's high-level API: entries are passed to the backing directory by path, so the
// server holds no descriptor per inode (this machine caps open files at 20,000, and a
// passthrough that holds one per inode fails on a bigger tree). Real inode numbers go
// through (use_ino): volprep checks that an entry is the inode it stat'ed. What another user
// creates through the mount is theirs (the e2e scenarios run on it with VOLPREP_E2E_FUSE=1).
//
// Debian 12's libfuse 3.14 leaves FUSE_PARALLEL_DIROPS and FUSE_HANDLE_KILLPRIV out of its
// INIT reply whatever init() asks. Without the first the kernel sends one LOOKUP at a time
// per directory; without the second it sends a GETATTR before every chown. A network
// filesystem has neither limit, so slowfs mounts /dev/fuse itself, talks to it through
// libfuse's custom I/O, and sets both bits in the INIT reply where the kernel offered them.
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <fuse3/fuse_lowlevel.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static int backing = -1;          // the backing directory, opened O_PATH
static char backing_path[4096];   // its absolute path, for the l*xattr calls
static long delay_ns = 1000000;
static double cache_s = 1.0;      // how long the kernel may keep names
static double attr_cache_s = 1.0; // and attributes
static int posix_acl = 0;         // the kernel enforces the POSIX ACLs it passes through
static int squash_root = 0;       // uid 0 is nobody here (NFS root_squash)
#define NOBODY 65534

enum { kLookup, kGetattr, kSetattr, kGetxattr, kSetxattr, kListxattr, kRemovexattr, kReaddir,
       kOpendir, kReleasedir, kReadlink, kStatfs, kAccess, kOpen, kRead, kWrite, kRelease,
       kCreate, kMkdir, kMknod, kUnlink, kRmdir, kSymlink, kLink, kRename, kOther, kOps };
static const char* const op_names[kOps] = {
    "lookup", "getattr", "setattr", "getxattr", "setxattr", "listxattr", "removexattr",
    "readdir", "opendir", "releasedir", "readlink", "statfs", "access", "open", "read", "write",
    "release", "create", "mkdir", "mknod", "unlink", "rmdir", "symlink", "link", "rename", "other"};
static atomic_ulong counts[kOps];

// Every request: counted, then answered after the delay (a round trip, not CPU).
static void request(int op) {
  atomic_fetch_add_explicit(&counts[op], 1, memory_order_relaxed);
  if (delay_ns > 0) {
    struct timespec ts = {delay_ns / 1000000000, delay_ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
}

// "/a/b" -> "a/b", "/" -> "." (relative to the backing directory's descriptor).
static const char* rel(const char* path) {
  while (*path == '/') ++path;
  return *path ? path : ".";
}
static void full(char* out, size_t size, const char* path) { snprintf(out, size, "%s/%s", backing_path, rel(path)); }
static int ret(int rc) { return rc < 0 ? -errno : rc; }

// The kernel's LOOKUP and GETATTR both arrive here (io_read tells them apart for the count).
static int sf_getattr(const char* path, struct stat* st, struct fuse_file_info* fi) {
  (void)fi;
  request(kGetattr);
  return ret(fstatat(backing, rel(path), st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH));
}

static int sf_readlink(const char* path, char* buf, size_t size) {
  request(kReadlink);
  ssize_t n = readlinkat(backing, rel(path), buf, size - 1);
  if (n < 0) return -errno;
  buf[n] = 0;
  return 0;
}

// --squash-root: the request comes from root, which is nobody here.
static int squashed(void) { return squash_root && fuse_get_context()->uid == 0; }
// And nobody does not own `path`: a change only its owner may make is refused.
static int squashed_not_owner(const char* path) {
  struct stat st;
  return squashed() && (fstatat(backing, rel(path), &st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 ||
                        st.st_uid != NOBODY);
}

static int sf_chown(const char* path, uid_t uid, gid_t gid, struct fuse_file_info* fi) {
  (void)fi;
  request(kSetattr);
  if (squashed()) return -EPERM;
  return ret(fchownat(backing, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH));
}

static int sf_chmod(const char* path, mode_t mode, struct fuse_file_info* fi) {
  (void)fi;
  request(kSetattr);
  if (squashed_not_owner(path)) return -EPERM;
  return ret(fchmodat(backing, rel(path), mode, 0));
}

static int sf_truncate(const char* path, off_t size, struct fuse_file_info* fi) {
  request(kSetattr);
  if (fi) return ret(ftruncate((int)fi->fh, size));
  char p[8192];
  full(p, sizeof p, path);
  return ret(truncate(p, size));
}

static int sf_utimens(const char* path, const struct timespec tv[2], struct fuse_file_info* fi) {
  (void)fi;
  request(kSetattr);
  if (squashed_not_owner(path)) return -EPERM;
  return ret(utimensat(backing, rel(path), tv, AT_SYMLINK_NOFOLLOW));
}

static int sf_stats(char* value, size_t size) {
  char buf[2048];
  size_t len = 0;
  unsigned long n[kOps], total = 0;
  for (int i = 0; i < kOps; ++i) n[i] = atomic_load(&counts[i]);
  // A LOOKUP reaches getattr too (counted at both): shown once, as a lookup.
  n[kGetattr] = n[kGetattr] > n[kLookup] ? n[kGetattr] - n[kLookup] : 0;
  for (int i = 0; i < kOps; ++i) total += n[i];
  len += (size_t)snprintf(buf + len, sizeof buf - len, "total %lu", total);
  for (int i = 0; i < kOps; ++i)
    if (n[i]) len += (size_t)snprintf(buf + len, sizeof buf - len, " %s %lu", op_names[i], n[i]);
  if (size == 0) return (int)len;
  if (size < len) return -ERANGE;
  memcpy(value, buf, len);
  return (int)len;
}

static int sf_getxattr(const char* path, const char* name, char* value, size_t size) {
  request(kGetxattr);
  if (!strcmp(name, "user.slowfs.stats") && !strcmp(rel(path), ".")) return sf_stats(value, size);
  char p[8192];
  full(p, sizeof p, path);
  ssize_t n = lgetxattr(p, name, value, size);
  return n < 0 ? -errno : (int)n;
}

// An ACL or a capability: its owner's (or root's) to set.
static int owner_xattr(const char* name) { return !strncmp(name, "system.", 7) || !strncmp(name, "security.", 9); }

static int sf_setxattr(const char* path, const char* name, const char* value, size_t size, int flags) {
  request(kSetxattr);
  if (owner_xattr(name) && squashed_not_owner(path)) return -EPERM;
  char p[8192];
  full(p, sizeof p, path);
  return ret(lsetxattr(p, name, value, size, flags));
}

static int sf_listxattr(const char* path, char* list, size_t size) {
  request(kListxattr);
  char p[8192];
  full(p, sizeof p, path);
  ssize_t n = llistxattr(p, list, size);
  return n < 0 ? -errno : (int)n;
}

static int sf_removexattr(const char* path, const char* name) {
  request(kRemovexattr);
  if (owner_xattr(name) && squashed_not_owner(path)) return -EPERM;
  char p[8192];
  full(p, sizeof p, path);
  return ret(lremovexattr(p, name));
}

static int sf_opendir(const char* path, struct fuse_file_info* fi) {
  (void)path, (void)fi;
  request(kOpendir);
  return 0;
}

static int sf_releasedir(const char* path, struct fuse_file_info* fi) {
  (void)path, (void)fi;
  request(kReleasedir);
  return 0;
}

// The whole listing in one reply chain (offset 0: libfuse buffers it): no descriptor is held
// between requests.
static int sf_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info* fi,
                      enum fuse_readdir_flags flags) {
  (void)off, (void)fi, (void)flags;
  request(kReaddir);
  int fd = openat(backing, rel(path), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -ENOMEM;
  }
  for (struct dirent* e; (e = readdir(d));) {
    struct stat st = {0};
    st.st_ino = e->d_ino;
    st.st_mode = (mode_t)(DTTOIF(e->d_type));
    if (fill(buf, e->d_name, &st, 0, 0)) break;
  }
  closedir(d);
  return 0;
}

static int sf_statfs(const char* path, struct statvfs* sv) {
  (void)path;
  request(kStatfs);
  char p[8192];
  full(p, sizeof p, "/");
  return ret(statvfs(p, sv));
}

static int sf_access(const char* path, int mask) {
  request(kAccess);
  return ret(faccessat(backing, rel(path), mask, AT_SYMLINK_NOFOLLOW));
}

static int sf_open(const char* path, struct fuse_file_info* fi) {
  request(kOpen);
  int fd = openat(backing, rel(path), (fi->flags & ~O_NOFOLLOW) | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  fi->fh = (uint64_t)fd;
  return 0;
}

// A new entry belongs to whoever asked for it, as on a network filesystem (the server runs as
// root and creates as root): the tests act as a container's user through the mount.
static int owned(int rc, const char* path) {
  if (rc < 0) return -errno;
  const struct fuse_context* c = fuse_get_context();
  const uid_t uid = squashed() ? NOBODY : c->uid;
  const gid_t gid = squashed() ? NOBODY : c->gid;
  if ((uid != 0 || gid != 0) && fchownat(backing, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    if (unlinkat(backing, rel(path), 0) != 0) unlinkat(backing, rel(path), AT_REMOVEDIR);
    return -err;
  }
  return rc;
}

static int sf_create(const char* path, mode_t mode, struct fuse_file_info* fi) {
  request(kCreate);
  int fd = openat(backing, rel(path), fi->flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return -errno;
  int rc = owned(0, path);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  fi->fh = (uint64_t)fd;
  return 0;
}

static int sf_read(const char* path, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  (void)path;
  request(kRead);
  ssize_t n = pread((int)fi->fh, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

static int sf_write(const char* path, const char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  (void)path;
  request(kWrite);
  ssize_t n = pwrite((int)fi->fh, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

static int sf_release(const char* path, struct fuse_file_info* fi) {
  (void)path;
  request(kRelease);
  close((int)fi->fh);
  return 0;
}

static int sf_mkdir(const char* path, mode_t mode) {
  request(kMkdir);
  return owned(mkdirat(backing, rel(path), mode), path);
}
static int sf_mknod(const char* path, mode_t mode, dev_t rdev) {
  request(kMknod);
  return owned(mknodat(backing, rel(path), mode, rdev), path);
}
static int sf_unlink(const char* path) {
  request(kUnlink);
  return ret(unlinkat(backing, rel(path), 0));
}
static int sf_rmdir(const char* path) {
  request(kRmdir);
  return ret(unlinkat(backing, rel(path), AT_REMOVEDIR));
}
static int sf_symlink(const char* target, const char* path) {
  request(kSymlink);
  return owned(symlinkat(target, backing, rel(path)), path);
}
static int sf_link(const char* from, const char* to) {
  request(kLink);
  return ret(linkat(backing, rel(from), backing, rel(to), 0));
}
static int sf_rename(const char* from, const char* to, unsigned int flags) {
  request(kRename);
  return ret(renameat2(backing, rel(from), backing, rel(to), flags));
}

static void* sf_init(struct fuse_conn_info* conn, struct fuse_config* cfg) {
  cfg->use_ino = 1;          // the backing inode numbers, stable for as long as the entry lives
  // The kernel's caches, 1 s as sshfs and bindfs keep them by default. The high-level API
  // gives each name its own node, so two links of one inode are two inodes to the kernel,
  // each with its own cached attributes: a change through one shows through the other only
  // once they expire.
  cfg->entry_timeout = cache_s;
  cfg->attr_timeout = attr_cache_s;
  cfg->negative_timeout = 0;
  cfg->nullpath_ok = 0;
  // Asked for, though 3.14 drops both from its reply: see mend_init below.
  conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
  if (posix_acl) conn->want |= FUSE_CAP_POSIX_ACL;
  return NULL;
}

static const struct fuse_operations ops = {
    .getattr = sf_getattr, .readlink = sf_readlink, .mknod = sf_mknod, .mkdir = sf_mkdir,
    .unlink = sf_unlink, .rmdir = sf_rmdir, .symlink = sf_symlink, .rename = sf_rename,
    .link = sf_link, .chmod = sf_chmod, .chown = sf_chown, .truncate = sf_truncate,
    .open = sf_open, .read = sf_read, .write = sf_write, .statfs = sf_statfs,
    .release = sf_release, .setxattr = sf_setxattr, .getxattr = sf_getxattr,
    .listxattr = sf_listxattr, .removexattr = sf_removexattr, .opendir = sf_opendir,
    .readdir = sf_readdir, .releasedir = sf_releasedir, .init = sf_init, .access = sf_access,
    .create = sf_create, .utimens = sf_utimens,
};

// The custom I/O: requests read as libfuse would; the INIT reply mended on its way out.
static _Atomic uint64_t init_unique = UINT64_MAX;
static _Atomic uint32_t init_offered;  // the kernel's INIT flags

static ssize_t io_read(int fd, void* buf, size_t len, void* userdata) {
  (void)userdata;
  ssize_t n = read(fd, buf, len);
  if (n >= (ssize_t)sizeof(struct fuse_in_header)) {
    const struct fuse_in_header* h = buf;
    if (h->opcode == FUSE_INIT && n >= (ssize_t)(sizeof *h + sizeof(struct fuse_init_in))) {
      const struct fuse_init_in* in = (const void*)(h + 1);
      atomic_store(&init_offered, in->flags);
      atomic_store(&init_unique, h->unique);
    } else if (h->opcode == FUSE_LOOKUP) {
      // The high-level API answers a LOOKUP with its getattr: counted here as what it is.
      atomic_fetch_add_explicit(&counts[kLookup], 1, memory_order_relaxed);
    }
  }
  return n < 0 ? -errno : n;
}

static ssize_t io_writev(int fd, struct iovec* iov, int count, void* userdata) {
  (void)userdata;
  if (count >= 2 && iov[0].iov_len >= sizeof(struct fuse_out_header) && iov[1].iov_len >= 16) {
    const struct fuse_out_header* h = iov[0].iov_base;
    if (h->error == 0 && h->unique == atomic_load(&init_unique)) {
      struct fuse_init_out* out = iov[1].iov_base;
      out->flags |= atomic_load(&init_offered) & (FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV);
      atomic_store(&init_unique, UINT64_MAX);
    }
  }
  ssize_t n = writev(fd, iov, count);
  return n < 0 ? -errno : n;
}

int main(int argc, char** argv) {
  unsigned threads = 128;
  int i = 1;
  for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
    if (!strcmp(argv[i], "--delay-us"))
      delay_ns = atol(argv[i + 1]) * 1000L;
    else if (!strcmp(argv[i], "--threads"))
      threads = (unsigned)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--cache-s"))
      cache_s = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--attr-cache-s"))
      attr_cache_s = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--posix-acl"))
      posix_acl = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--squash-root"))
      squash_root = atoi(argv[i + 1]);
    else
      break;
  }
  if (argc - i != 2) {
    fprintf(stderr, "usage: slowfs [--delay-us N] [--threads N] [--cache-s S] [--attr-cache-s S] [--posix-acl 0|1]\n"
                    "              [--squash-root 0|1] BACKING_DIR MOUNTPOINT\n");
    return 2;
  }
  if (!realpath(argv[i], backing_path)) {
    perror(argv[i]);
    return 1;
  }
  backing = open(backing_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (backing < 0) {
    perror(backing_path);
    return 1;
  }
  const char* mountpoint = argv[i + 1];

  // Options for the high-level library only; the mount is ours.
  char* fargv[] = {argv[0], NULL};
  struct fuse_args args = FUSE_ARGS_INIT(1, fargv);
  struct fuse* fuse = fuse_new(&args, &ops, sizeof ops, NULL);
  if (!fuse) return 1;
  struct fuse_session* se = fuse_get_session(fuse);

  int dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (dev < 0) {
    perror("/dev/fuse");
    return 1;
  }
  char opts[256];
  snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", dev);
  if (mount("slowfs", mountpoint, "fuse.slowfs", MS_NOSUID | MS_NODEV, opts) != 0) {
    perror("mount");
    return 1;
  }
  const struct fuse_custom_io io = {.writev = io_writev, .read = io_read};
  if (fuse_session_custom_io(se, &io, dev) != 0) {
    fprintf(stderr, "slowfs: fuse_session_custom_io failed\n");
    umount2(mountpoint, MNT_DETACH);
    return 1;
  }
  fuse_set_signal_handlers(se);
  struct fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, threads);
  fuse_loop_cfg_set_idle_threads(cfg, threads);  // no thread churn between bursts
  fprintf(stderr, "slowfs: %s on %s, %ld us per request, up to %u threads%s\n", backing_path, mountpoint,
          delay_ns / 1000, threads, squash_root ? ", root squashed" : "");
  int rc = fuse_loop_mt(fuse, cfg);
  fuse_loop_cfg_destroy(cfg);
  char stats[2048];
  int n = sf_stats(stats, sizeof stats);
  fprintf(stderr, "slowfs: %.*s\n", n > 0 ? n : 0, stats);
  fuse_remove_signal_handlers(se);
  umount2(mountpoint, MNT_DETACH);
  fuse_destroy(fuse);
  return rc < 0 ? 1 : 0;
}
