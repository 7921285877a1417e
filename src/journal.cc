#include "volprep/journal.h"

#include "volprep/clock.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <cstdint>
#include <chrono>
#include <ctime>
#include <cstdlib>

#include "volprep/host_db.h"
#include "volprep/walk.h"

namespace volprep {

namespace {
#if defined(__x86_64__)
// The SSE4.2 crc32 instruction computes CRC32C eight bytes at a time.
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const unsigned char* p, size_t n, uint32_t crc) {
  uint64_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  uint32_t c32 = uint32_t(c);
  for (; n; --n, ++p) c32 = __builtin_ia32_crc32qi(c32, *p);
  return ~c32;
}
#endif
}  // namespace

// CRC32C (Castagnoli), reflected polynomial 0x82f63b78: in hardware where the CPU has it,
// else table-driven.
uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return crc32c_sse42(static_cast<const unsigned char*>(data), size, crc);
#endif
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

namespace {

// Writes v's LEB128 bytes (at most 10) at `out`; returns how many.
size_t encode_varint(char* out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = char(v | 0x80);
    v >>= 7;
  }
  out[n++] = char(v);
  return n;
}
void put_varint(std::string& out, uint64_t v) {
  char buf[10];  // one append, not a push_back per byte
  out.append(buf, encode_varint(buf, v));
}
void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}
void put_u32le(std::string& out, uint32_t v) {
  const char bytes[4] = {char(v), char(v >> 8), char(v >> 16), char(v >> 24)};
  out.append(bytes, 4);
}

}  // namespace

std::string default_journal_dir() {
  const char* env = std::getenv("VOLPREP_JOURNAL_DIR");
  return env && *env ? env : kDefaultJournalDir;
}

namespace {
// Appends one record to `out` in place: length, kind, what `payload` appends, checksum.
template <typename Payload>
void append_framed(std::string& out, char kind, Payload payload) {
  const size_t start = out.size();
  put_u32le(out, 0);
  out.push_back(kind);
  payload(out);
  const uint32_t len = uint32_t(out.size() - start - 4);
  for (int i = 0; i < 4; ++i) out[start + i] = char(len >> (8 * i));
  put_u32le(out, crc32c(out.data() + start + 4, len));
}

// A 'C' payload. Both the writer's Change and a JournalRecord go through this one encoder.
struct RecordFields {
  uint32_t dev_major, dev_minor;
  uint64_t ino;
  uint32_t mode_before, uid_before, gid_before, mode_after, uid_after, gid_after;
  std::string_view name;
  const std::vector<XattrChange>& xattrs;
  int64_t btime_ns;
};
void put_record(std::string& p, const RecordFields& r) {
  // A record per change: its fixed fields and the name's length go out in one append (each
  // append of a varint was 2% of a one-thread run's time).
  char fixed[10 * 10];
  size_t n = 0;
  for (uint64_t v : {uint64_t(r.dev_major), uint64_t(r.dev_minor), r.ino, uint64_t(r.mode_before),
                     uint64_t(r.uid_before), uint64_t(r.gid_before), uint64_t(r.mode_after), uint64_t(r.uid_after),
                     uint64_t(r.gid_after), uint64_t(r.name.size())})
    n += encode_varint(fixed + n, v);
  p.append(fixed, n);
  p.append(r.name);
  put_varint(p, r.xattrs.size());
  for (const auto& x : r.xattrs) {
    put_string(p, x.name);
    put_varint(p, (x.before ? 1 : 0) | (x.after ? 2 : 0));
    if (x.before) put_string(p, *x.before);
    if (x.after) put_string(p, *x.after);
  }
  put_varint(p, uint64_t(r.btime_ns));  // version 3
}
}  // namespace

std::string frame(char kind, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 9);
  append_framed(out, kind, [&](std::string& p) { p.append(payload); });
  return out;
}

namespace {
void put_directory(std::string& p, std::string_view dir_path, std::string_view previous) {
  size_t shared = 0;  // paths run to hundreds of bytes: compare 8 at a time first
  const size_t most = std::min(dir_path.size(), previous.size());
  while (shared + 8 <= most && std::memcmp(dir_path.data() + shared, previous.data() + shared, 8) == 0)
    shared += 8;
  while (shared < most && dir_path[shared] == previous[shared]) ++shared;
  put_varint(p, shared);
  put_string(p, dir_path.substr(shared));
}
}  // namespace

void append_directory_record(std::string& out, std::string_view dir_path, std::string_view previous) {
  append_framed(out, 'D', [&](std::string& p) { put_directory(p, dir_path, previous); });
}

void append_change_record(std::string& out, const Change& c) {
  append_framed(out, 'C', [&](std::string& p) {
    put_record(p, {c.before.dev_major, c.before.dev_minor, c.before.ino, c.before.mode, c.before.uid,
                   c.before.gid, c.mode, c.uid, c.gid, c.name, c.xattrs, c.before.btime_ns});
  });
}

std::string encode_header(const JournalHeader& h) {
  std::string p;
  put_string(p, h.volprep_version);
  put_string(p, h.volume);
  put_varint(p, h.dev_major);
  put_varint(p, h.dev_minor);
  put_varint(p, h.ino);
  put_string(p, h.uid_map);
  put_string(p, h.gid_map);
  put_string(p, h.command_line);
  put_varint(p, uint64_t(h.start_ns));
  put_string(p, h.rollback_of);
  put_string(p, h.project);  // version 5: every field
  put_varint(p, h.project_dir ? 1 : 0);
  if (h.project_dir) {
    put_string(p, h.project_dir->volume);
    put_varint(p, h.project_dir->dev_major);
    put_varint(p, h.project_dir->dev_minor);
    put_varint(p, h.project_dir->ino);
  }
  put_string(p, h.command);
  put_varint(p, h.reverse ? 1 : 0);
  put_varint(p, uint64_t(h.btime_ns));  // version 6
  return p;
}

JournalRoot root_of(const JournalHeader& h) { return {h.volume, h.dev_major, h.dev_minor, h.ino}; }

std::string encode_root(const JournalRoot& r, int64_t btime_ns) {
  std::string p;
  put_string(p, r.volume);
  put_varint(p, r.dev_major);
  put_varint(p, r.dev_minor);
  put_varint(p, r.ino);
  put_varint(p, uint64_t(btime_ns));  // version 6
  return p;
}

std::string encode_move(const JournalMove& m) {
  std::string p;
  put_string(p, m.from_dir);
  put_varint(p, m.from_dir_ino);
  put_string(p, m.from_name);
  put_string(p, m.to_dir);
  put_varint(p, m.to_dir_ino);
  put_string(p, m.to_name);
  put_varint(p, m.dev_major);
  put_varint(p, m.dev_minor);
  put_varint(p, m.ino);
  put_varint(p, m.mode);
  put_varint(p, uint64_t(m.btime_ns));
  return p;
}

std::string encode_docker_volume(const VolumeRecord& v) {
  std::string p;
  put_string(p, v.name);
  put_string(p, v.driver);
  for (const KeyValues* kv : {&v.labels, &v.options}) {
    put_varint(p, kv->size());
    for (const auto& [key, value] : *kv) {
      put_string(p, key);
      put_string(p, value);
    }
  }
  return p;
}

std::string encode_record(const JournalRecord& r) {
  std::string p;
  put_record(p, {r.dev_major, r.dev_minor, r.ino, r.mode_before, r.uid_before, r.gid_before,
                 r.mode_after, r.uid_after, r.gid_after, r.name, r.xattrs, r.btime_ns});
  return p;
}

std::string encode_directory(std::string_view dir_path, std::string_view previous) {
  std::string p;
  put_directory(p, dir_path, previous);
  return p;
}

std::string encode_armed(const EntryStat& st) {
  std::string p;
  put_varint(p, st.dev_major);
  put_varint(p, st.dev_minor);
  put_varint(p, st.ino);
  put_varint(p, uint64_t(st.ctime_ns));
  return p;
}

std::string encode_end(const JournalEnd& e) {
  std::string p;
  put_varint(p, e.scanned);
  put_varint(p, e.changed);
  put_varint(p, e.failed);
  put_varint(p, uint64_t(e.end_ns));
  put_varint(p, e.records);  // version 4
  return p;
}

std::string journal_file_name(const std::string& volume, int64_t start_ns) {
  time_t secs = time_t(start_ns / 1000000000);
  tm utc{};
  ::gmtime_r(&secs, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &utc);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", int((start_ns / 1000000) % 1000));
  std::string name = std::string(stamp) + ms;
  std::string vol;
  for (char c : volume) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
    vol.push_back(c == '/' ? '-' : plain ? c : '_');
  }
  if (vol.size() > 120) vol = vol.substr(vol.size() - 120);
  return name + (vol.starts_with('-') ? "" : "-") + vol + ".vpj";
}

bool journal_dir_made_with_parents(const std::string& dir) {
  // A directory given on the command line is made, not its parents: a typo there
  // (/var/lib/volprep/jouranls) would put a run's journal where a later rollback --last, without
  // the typo, never looks. The default and $VOLPREP_JOURNAL_DIR, which every run reads alike,
  // are made with their parents; so is the default below a host's root mounted elsewhere (the
  // helper container's /host/var/lib/volprep/journals), which a fresh host has not got yet.
  std::string_view d = dir;
  while (d.size() > 1 && d.back() == '/') d.remove_suffix(1);
  const std::string_view def = kDefaultJournalDir;
  return d == def || dir == default_journal_dir() || (d.ends_with(def) && d.size() > def.size());
}

Result<UniqueFd> open_journal_dir(const std::string& dir) {
  return open_private_dir(dir, "journal directory",
                          journal_dir_made_with_parents(dir) ? MakeDirs::kWithParents : MakeDirs::kLastOnly);
}

Result<UniqueFd> open_private_dir(const std::string& dir, const std::string& what, MakeDirs make) {
  // Each component entered without following a symlink, the missing ones made 0700 (with
  // kLastOnly only the last); a relative directory starts where volprep runs.
  UniqueFd cur(::open(dir.starts_with('/') ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  const std::vector<std::string> parts = path_parts(dir);
  std::string so_far = dir.starts_with('/') ? "" : ".";
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    so_far += "/" + part;
    const bool may_make = make == MakeDirs::kWithParents || i + 1 == parts.size();
    const bool made = may_make && ::mkdirat(cur.get(), part.c_str(), 0700) == 0;
    if (may_make && !made && errno != EEXIST)
      return config_error("cannot create " + what + " " + dir + ": " + std::strerror(errno));
    // A directory made now must survive a crash with the journal in it: its parent is
    // synced (the journal's own directory is synced with the journal's first records).
    if (made && ::fsync(cur.get()) != 0)
      return config_error("cannot sync " + dir + " after creating it: " + std::strerror(errno));
    int fd = open_dir_at(cur.get(), part.c_str());
    if (fd == -ENOENT && !may_make)
      return usage_error(what + " " + dir + ": " + so_far + " does not exist; only the last component of a " + what +
                         " is made (a typo?); nothing changed");
    if (fd < 0)
      return config_error("cannot open " + what + " " + dir + ": " + std::strerror(-fd) +
                          (fd == -ELOOP || fd == -ENOTDIR ? " (a symlink? refused)" : ""));
    cur.reset(fd);
  }
  struct stat st{};
  if (::fstat(cur.get(), &st) != 0 || (st.st_mode & 022) || st.st_uid != ::geteuid())
    return Error{kExitRefused, what + " " + dir + " is writable by others or not owned by this user; refused"};
  return cur;
}

Result<std::unique_ptr<JournalWriter>> JournalWriter::create(const std::string& dir, const std::string& file,
                                                             const JournalHeader& header, bool lazy) {
  std::string path = file;
  // The directory the file is created in, by descriptor; the name within it.
  UniqueFd cur;
  std::string name;
  if (path.empty()) {
    auto opened = open_journal_dir(dir);
    if (!opened) return opened.error();
    cur = std::move(*opened);
    name = journal_file_name(header.volume, header.start_ns);
    path = dir + "/" + name;
  } else {
    auto slash = path.rfind('/');
    std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    name = slash == std::string::npos ? path : path.substr(slash + 1);
    // Through no symlink, as every path volprep opens: one in a tree's owner's hands would
    // put root's journal where they choose (inside the tree a run gives them, say).
    std::string absolute = parent;
    if (!parent.starts_with('/')) {
      char cwd[PATH_MAX];
      if (!::getcwd(cwd, sizeof cwd))
        return config_error("cannot open the journal's directory " + parent + ": " + std::strerror(errno));
      absolute = std::string(cwd) + "/" + parent;
    }
    const int fd = open_absolute(absolute, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
      return config_error("cannot open the journal's directory " + parent + ": " +
                          (fd == -ELOOP || fd == -ENOTDIR
                               ? std::string("not a directory, or a symlink is on its path, which volprep does not "
                                             "follow: give the directory's real path")
                                        : std::string(std::strerror(-fd))));
    cur.reset(fd);
  }
  // Checked now, so that a run that will not be able to create its journal changes nothing.
  struct stat existing{};
  if (!file.empty() && ::fstatat(cur.get(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0)
    return config_error("cannot create journal " + path + ": " + std::strerror(EEXIST));
  std::unique_ptr<JournalWriter> w(new JournalWriter());
  w->dir_ = std::move(cur);
  w->name_ = name;
  w->path_ = path;
  w->dir_path_ = file.empty() ? dir : "";
  w->head_.assign(kJournalMagic, sizeof kJournalMagic);
  put_u32le(w->head_, kJournalVersion);
  w->head_ += frame('H', encode_header(header));
  w->syncer_ = std::thread([p = w.get()] { p->sync_loop(); });
  if (!lazy) {
    std::lock_guard lock(w->mu_);
    if (auto r = w->create_file(); !r) return r.error();
  }
  return w;
}

Result<bool> JournalWriter::create_file() {
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  fd_.reset(::openat(dir_.get(), name_.c_str(), flags, 0600));
  // Two runs in the same millisecond: the second takes the next free name.
  for (int n = 1; !fd_.valid() && errno == EEXIST && !dir_path_.empty() && n < 100; ++n) {
    std::string next = name_.substr(0, name_.size() - 4) + "." + std::to_string(n) + ".vpj";
    fd_.reset(::openat(dir_.get(), next.c_str(), flags, 0600));
    if (fd_.valid()) path_ = dir_path_ + "/" + next;
  }
  if (!fd_.valid()) {
    broken_ = "cannot create journal " + path_ + ": " + std::strerror(errno);
    return config_error(broken_);
  }
  // Not synced here: the first change waits for its own records, and so for the header too.
  if (auto r = write_locked(head_); !r) return r.error();
  return true;
}

JournalWriter::~JournalWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wrote_.notify_one();
  if (syncer_.joinable()) syncer_.join();
}

// The background sync waits for this much, unless someone waits for it. Fewer syncs cost
// less, but a batch is applied only once synced, and the longer after its statx the colder
// the kernel's caches. On the standard tree (42 bytes per change) 128 KiB, about 3000 records,
// measured best: 256 KiB and 64 KiB were 1-2% slower, 32 KiB 3%.
constexpr uint64_t kSyncBytes = 128 << 10;
constexpr auto kSyncAge = std::chrono::milliseconds(20);

Result<uint64_t> JournalWriter::write(std::string_view bytes) { return append(bytes, true); }

// `records`: a batch of a root's records, which a pending 'R' record goes out before; else
// an 'M' or 'E' record, which leaves it pending.
Result<uint64_t> JournalWriter::append(std::string_view bytes, bool records) {
  std::lock_guard lock(mu_);
  if (!broken_.empty()) return config_error(broken_);
  if (!fd_.valid())
    if (auto r = create_file(); !r) return r.error();
  if (records && !pending_root_.empty()) {
    if (auto r = write_locked(pending_root_); !r) return r.error();
    pending_root_.clear();
  }
  // The 'C' records, counted for the end record: journal list reads nothing else.
  for (size_t at = 0; at + 5 <= bytes.size();) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    changes_ += p[4] == 'C';
    at += 8 + (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
  }
  return write_locked(bytes);
}

Result<bool> JournalWriter::start_root(const JournalRoot& root, int64_t btime_ns) {
  std::lock_guard lock(mu_);
  if (!broken_.empty()) return config_error(broken_);
  pending_root_ = frame('R', encode_root(root, btime_ns));  // a root with no records is never written
  return true;
}

Result<bool> JournalWriter::record_move(const JournalMove& move) {
  auto at = append(frame('M', encode_move(move)), false);
  if (!at) return at.error();
  return wait_durable(*at);
}

Result<bool> JournalWriter::record_docker_volume(const VolumeRecord& volume) {
  if (auto at = append(frame('V', encode_docker_volume(volume)), false); !at) return at.error();
  return true;
}

Result<uint64_t> JournalWriter::write_locked(std::string_view bytes) {
  const size_t size = bytes.size();
  while (!bytes.empty()) {
    ssize_t n = ::write(fd_.get(), bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // A record cut short here would make every later one look like damage: stop writing.
      broken_ = "journal " + path_ + ": write failed: " + std::strerror(errno);
      synced_.notify_all();
      return config_error(broken_);
    }
    bytes.remove_prefix(size_t(n));
  }
  const uint64_t was_pending = written_ - durable_.load();
  written_ += size;
  // The sync thread sleeps until something is pending, then gathers for kSyncAge.
  if (was_pending == 0 || written_ - durable_.load() >= kSyncBytes) wrote_.notify_one();
  return written_;
}

void JournalWriter::sync_loop() {
  std::unique_lock lock(mu_);
  bool dir_synced = false;
  auto pending = [&] { return written_ - durable_.load(); };
  for (;;) {
    if (pending() == 0) {  // idle: sleep until something is written
      wrote_.wait(lock, [&] { return stopping_ || !broken_.empty() || pending() > 0; });
      if (!broken_.empty() || pending() == 0) return;  // failed, or stopping with nothing left
      if (!stopping_) continue;
    } else {
      // Each fdatasync costs CPU and wakeups: gather kSyncBytes, unless someone waits or
      // what is pending has waited kSyncAge.
      wrote_.wait_for(lock, kSyncAge, [&] {
        return stopping_ || !broken_.empty() || waiting_ > 0 || pending() >= kSyncBytes;
      });
      if (!broken_.empty()) return;
    }
    const uint64_t target = written_;
    lock.unlock();
    const char* what = "fdatasync";
    int rc = ::fdatasync(fd_.get());
    int err = errno;
    if (rc == 0 && !dir_synced) {  // the file's name must survive a crash too: once
      what = "fsync of its directory";
      rc = ::fsync(dir_.get());
      err = errno;
      dir_synced = rc == 0;
    }
    lock.lock();
    if (rc != 0) {
      broken_ = "journal " + path_ + ": " + what + " failed: " + std::strerror(err);
      synced_.notify_all();
      return;
    }
    durable_.store(target, std::memory_order_release);
    synced_.notify_all();
  }
}

Result<bool> JournalWriter::wait_durable(uint64_t offset) {
  if (durable(offset)) return true;
  std::unique_lock lock(mu_);
  ++waiting_;
  wrote_.notify_one();
  synced_.wait(lock, [&] { return durable(offset) || !broken_.empty(); });
  --waiting_;
  if (durable(offset)) return true;
  return config_error(broken_);
}

Result<bool> JournalWriter::finish(const JournalEnd& end, bool even_empty) {
  if (!created() && !even_empty) return true;  // nothing was ever written: no journal
  JournalEnd e = end;
  e.end_ns = now_ns();
  {
    std::lock_guard lock(mu_);
    e.records = changes_;
  }
  auto at = append(frame('E', encode_end(e)), false);
  if (!at) return at.error();
  return wait_durable(*at);
}

}  // namespace volprep
