#include "volprep/journal.h"

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

void put_varint(std::string& out, uint64_t v) {
  char buf[10];  // a run encodes ~10 per change: one append each, not a push_back per byte
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = char(v | 0x80);
    v >>= 7;
  }
  buf[n++] = char(v);
  out.append(buf, n);
}
void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}
void put_u32le(std::string& out, uint32_t v) {
  const char bytes[4] = {char(v), char(v >> 8), char(v >> 16), char(v >> 24)};
  out.append(bytes, 4);
}
uint32_t get_u32le(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// Reads the fields of one payload; any overrun marks it bad.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= s_.size()) return fail();
      auto b = static_cast<unsigned char>(s_[pos_++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return fail();
  }
  uint32_t u32() {
    uint64_t v = varint();
    if (v > UINT32_MAX) return uint32_t(fail());
    return uint32_t(v);
  }
  std::string string() {
    uint64_t n = varint();
    if (bad_ || n > s_.size() - pos_) return fail(), std::string();
    std::string out(s_.substr(pos_, n));
    pos_ += n;
    return out;
  }
  bool ok() const { return !bad_ && pos_ == s_.size(); }

 private:
  uint64_t fail() {
    bad_ = true;
    return 0;
  }
  std::string_view s_;
  size_t pos_ = 0;
  bool bad_ = false;
};

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A record's path must stay below the volume root.
bool safe_relative(const std::string& p) {
  if (p.empty()) return true;  // the root itself
  if (p.front() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string_view part(p.data() + start, (slash == std::string::npos ? p.size() : slash) - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos)
      return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
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
  put_varint(p, r.dev_major);
  put_varint(p, r.dev_minor);
  put_varint(p, r.ino);
  put_varint(p, r.mode_before);
  put_varint(p, r.uid_before);
  put_varint(p, r.gid_before);
  put_varint(p, r.mode_after);
  put_varint(p, r.uid_after);
  put_varint(p, r.gid_after);
  put_string(p, r.name);
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

Result<std::unique_ptr<JournalWriter>> JournalWriter::create(const std::string& dir, const std::string& file,
                                                             const JournalHeader& header, bool lazy) {
  std::string path = file;
  // The directory the file is created in, by descriptor; the name within it.
  UniqueFd cur;
  std::string name;
  if (path.empty()) {
    // Each component made 0700 if missing and entered without following a symlink; a
    // relative directory starts where volprep runs.
    cur.reset(::open(dir.starts_with('/') ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    size_t start = 0;
    while (start < dir.size()) {
      size_t slash = dir.find('/', start);
      std::string part = dir.substr(start, slash == std::string::npos ? slash : slash - start);
      start = slash == std::string::npos ? dir.size() : slash + 1;
      if (part.empty()) continue;
      const bool made = ::mkdirat(cur.get(), part.c_str(), 0700) == 0;
      if (!made && errno != EEXIST)
        return config_error("cannot create journal directory " + dir + ": " + std::strerror(errno));
      // A directory made now must survive a crash with the journal in it: its parent is
      // synced (the journal's own directory is synced with the journal's first records).
      if (made && ::fsync(cur.get()) != 0)
        return config_error("cannot sync " + dir + " after creating it: " + std::strerror(errno));
      int fd = open_dir_at(cur.get(), part.c_str());
      if (fd < 0)
        return config_error("cannot open journal directory " + dir + ": " + std::strerror(-fd) +
                            (fd == -ELOOP || fd == -ENOTDIR ? " (a symlink? refused)" : ""));
      cur.reset(fd);
    }
    struct stat st{};
    if (::fstat(cur.get(), &st) != 0 || (st.st_mode & 022) || st.st_uid != ::geteuid())
      return Error{kExitRefused, "journal directory " + dir +
                                     " is writable by others or not owned by this user; refused"};
    name = journal_file_name(header.volume, header.start_ns);
    path = dir + "/" + name;
  } else {
    auto slash = path.rfind('/');
    std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    name = slash == std::string::npos ? path : path.substr(slash + 1);
    cur.reset(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cur.valid())
      return config_error("cannot open the journal's directory " + parent + ": " + std::strerror(errno));
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

Result<uint64_t> JournalWriter::write(std::string_view bytes) {
  std::lock_guard lock(mu_);
  if (!broken_.empty()) return config_error(broken_);
  if (!fd_.valid())
    if (auto r = create_file(); !r) return r.error();
  return write_locked(bytes);
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

Result<bool> JournalWriter::finish(const JournalEnd& end) {
  if (!created()) return true;  // nothing was ever written: no journal
  JournalEnd e = end;
  e.end_ns = now_ns();
  auto at = write(frame('E', encode_end(e)));
  if (!at) return at.error();
  return wait_durable(*at);
}

std::string path_of(const Journal& j, const JournalRecord& r) { return join_path(j.dirs[r.dir], r.name); }

Result<Journal> read_journal(const std::string& path, JournalRead what) {
  const bool keep = what == JournalRead::kAll;
  struct stat lst{};
  if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
    return Error{kExitRefused, path + " is a symlink; refusing to read a journal through it"};
  // O_NONBLOCK: a FIFO in the journal directory must not hang journal list.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return config_error("cannot open journal " + path + ": " + std::strerror(errno));
  std::string data;
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return config_error("cannot stat journal " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return config_error(path + " is not a regular file, so not a volprep journal");
  // Rollback as root does what the journal says: only a journal nobody else could have
  // written is believed (as ssh and sudo treat their files).
  if (st.st_uid != ::geteuid())
    return Error{kExitRefused, path + " belongs to uid " + std::to_string(st.st_uid) +
                                   ", not to you; refusing a journal someone else could have written"};
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return Error{kExitRefused, path + " is writable by its group or others; refusing it"};
  if (st.st_size > 0) data.reserve(size_t(st.st_size));
  char buf[1 << 16];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return config_error("cannot read journal " + path + ": " + std::strerror(errno));
    data.append(buf, size_t(n));
  }
  Journal j;
  j.path = path;
  j.last_written_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  auto bad = [&](uint64_t offset, const std::string& why) {
    return config_error("journal " + path + " is damaged at offset " + std::to_string(offset) +
                        ": " + why + "; refusing it");
  };
  if (data.size() < 12 || std::memcmp(data.data(), kJournalMagic, 8) != 0)
    return config_error(path + " is not a volprep journal");
  auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  j.version = get_u32le(bytes + 8);
  if (j.version < kOldestJournalVersion || j.version > kJournalVersion)
    return config_error("journal " + path + " has format version " + std::to_string(j.version) +
                        "; this volprep reads versions " + std::to_string(kOldestJournalVersion) +
                        " to " + std::to_string(kJournalVersion) +
                        (j.version > kJournalVersion ? " (a newer volprep wrote it)" : ""));
  uint64_t off = 12;
  bool first = true;
  size_t current_dir = 0;  // index in j.dirs of the last 'D' record
  if (keep) {  // Room for every change record, counted by their lengths: growing the vector costs more.
    size_t count = 0;
    for (uint64_t at = off; at + 4 <= data.size();) {
      uint64_t n = get_u32le(bytes + at);
      if (n == 0 || at + 8 + n > data.size()) break;
      count += bytes[at + 4] == 'C';
      at += 8 + n;
    }
    j.records.reserve(count);
  }
  // Every directory's whole path is kept, and a few bytes of a record can repeat a long one:
  // a crafted journal must not take all memory. A run's journal holds at least ~40 bytes per
  // directory, so only a tree whose directories average over 10 KB of path comes near this.
  const uint64_t kMaxDirBytes = std::max<uint64_t>(uint64_t(64) << 20, 256 * data.size());
  uint64_t dir_bytes = 0;
  auto add_dir = [&](std::string dir) {
    dir_bytes += dir.size();
    j.dirs.push_back(std::move(dir));
    return dir_bytes <= kMaxDirBytes;
  };
  auto too_many_dir_bytes = [&](uint64_t at) {
    return bad(at, "its directory paths add up to more than " + std::to_string(kMaxDirBytes >> 20) +
                       " MiB, far more than any run writes");
  };
  constexpr uint64_t kHole = 32;
  auto ends_with_end_record = [&] {  // zeros after it aside; an 'E' frame is at most 49 bytes
    uint64_t z = data.size();
    while (z > 12 && data[z - 1] == 0) --z;
    for (uint64_t p = z >= 64 ? z - 64 : 0; p + 9 <= z; ++p)
      if (uint64_t n = get_u32le(bytes + p), e = p + 8 + n; e >= z && e <= data.size() && bytes[p + 4] == 'E' &&
                                                          crc32c(bytes + p + 4, n) == get_u32le(bytes + p + 4 + n))
        return true;
    return false;
  };
  JournalRecord rec;  // parsed into, then kept or dropped
  while (off < data.size()) {
    auto torn = [&](uint64_t at) {
      j.torn_at = at;
      j.torn_bytes = data.size() - at;
    };
    // The offset of a whole record with a valid checksum at or after `from`, if any.
    auto next_valid_record = [&](uint64_t from) -> std::optional<uint64_t> {
      for (uint64_t p = from; p + 9 <= data.size(); ++p) {
        uint64_t n = get_u32le(bytes + p);
        char k = char(bytes[std::min<uint64_t>(p + 4, data.size() - 1)]);
        if (n < 2 || n > kMaxJournalRecord || p + 8 + n > data.size() || (k != 'C' && k != 'A' && k != 'E')) continue;
        if (crc32c(bytes + p + 4, n) == get_u32le(bytes + p + 4 + n)) return p;
      }
      return std::nullopt;
    };
    auto rest_is_zero = [&](uint64_t at) {
      for (uint64_t i = at; i < data.size(); ++i)
        if (data[i]) return false;
      return true;
    };
    // Power lost during a sync can leave a page of the tail unwritten while a later page was
    // written: a hole of zeros, then records again. No change at or after the hole had been
    // made: changes wait for a sync that covers their records, and that sync never finished.
    // So the hole starts a torn tail, unless the journal ends with its end record, written
    // after every record before it was on disk. Records never hold 32 zero bytes in a row:
    // names and paths hold no NUL, capability and ACL values at most about 20 in a row.
    // Here: a hole that starts in the record at `from`, which ends at `to`.
    auto crash_hole_in = [&](uint64_t from, uint64_t to) {
      to = std::min<uint64_t>(to + kHole, data.size());
      for (uint64_t i = from, run = 0; i < to; ++i)
        if ((run = data[i] ? 0 : run + 1) == kHole) return !ends_with_end_record();
      return false;
    };
    auto hole = [&](uint64_t at) {
      torn(at);
      j.torn_by_hole = true;
    };
    if (data.size() - off < 4) {
      torn(off);
      break;
    }
    uint64_t len = get_u32le(bytes + off);
    uint64_t end = off + 4 + len + 4;
    if (len == 0 || len > kMaxJournalRecord) {
      if (rest_is_zero(off)) {
        torn(off);
        break;
      }
      if (crash_hole_in(off, off + 4)) {  // the length is zeros or junk
        hole(off);
        break;
      }
      return bad(off, "impossible record length " + std::to_string(len));
    }
    if (end > data.size()) {
      // A write cut short by a crash leaves nothing whole after it; a damaged length field
      // in the middle does.
      if (crash_hole_in(off, end)) {
        hole(off);
        break;
      }
      if (auto at = next_valid_record(off + 1)) return bad(off, "a record length runs past the end, but a valid record follows at offset " + std::to_string(*at));
      torn(off);
      break;
    }
    uint32_t want = get_u32le(bytes + off + 4 + len);
    if (crc32c(bytes + off + 4, len) != want) {
      if ((end == data.size() || rest_is_zero(end)) && !next_valid_record(off + 1)) {
        torn(off);
        break;
      }
      if (crash_hole_in(off, end)) {
        hole(off);
        break;
      }
      return bad(off, "checksum mismatch");
    }
    char kind = char(bytes[off + 4]);
    Reader r(std::string_view(data).substr(off + 5, len - 1));
    if (first && kind != 'H') return bad(off, "no header record");
    if (kind == 'H') {
      if (!first) return bad(off, "a second header");
      auto& h = j.header;
      h.volprep_version = r.string();
      h.volume = r.string();
      h.dev_major = r.u32();
      h.dev_minor = r.u32();
      h.ino = r.varint();
      h.uid_map = r.string();
      h.gid_map = r.string();
      h.command_line = r.string();
      h.start_ns = int64_t(r.varint());
      h.rollback_of = r.string();
    } else if (kind == 'C') {
      if (j.end) return bad(off, "a change after the end record");
      rec.xattrs.clear();
      rec.dev_major = r.u32();
      rec.dev_minor = r.u32();
      rec.ino = r.varint();
      rec.mode_before = r.u32();
      rec.uid_before = r.u32();
      rec.gid_before = r.u32();
      rec.mode_after = r.u32();
      rec.uid_after = r.u32();
      rec.gid_after = r.u32();
      rec.name = r.string();
      rec.dir = uint32_t(current_dir);
      for (uint64_t n = r.varint(), i = 0; i < n && i < 16; ++i) {
        XattrChange x;
        x.name = r.string();
        uint64_t flags = r.varint();
        if (flags & 1) x.before = r.string();
        if (flags & 2) x.after = r.string();
        rec.xattrs.push_back(std::move(x));
      }
      rec.btime_ns = j.version >= 3 ? int64_t(r.varint()) : 0;
      if (r.ok() && !safe_relative(rec.name))
        return bad(off, "a record names a path outside the volume (absolute or with ..)");
      if (auto slash = rec.name.rfind('/'); slash != std::string::npos) {
        // A name with directories in it: its own directory entry, so that rollback opens
        // every component by descriptor.
        if (!add_dir(join_path(j.dirs[rec.dir], std::string_view(rec.name).substr(0, slash))))
          return too_many_dir_bytes(off);
        rec.name.erase(0, slash + 1);
        rec.dir = uint32_t(j.dirs.size() - 1);
        if (!keep) j.dirs.pop_back();  // counted, not kept
      }
      ++j.changes;
      if (keep) j.records.push_back(std::move(rec));
    } else if (kind == 'D') {
      std::string dir;
      if (j.version >= 2) {  // the bytes it shares with the last 'D' record's path, then the rest
        const std::string& previous = j.dirs[current_dir];
        uint64_t shared = r.varint();
        if (shared > previous.size())
          return bad(off, "a directory record shares more of the previous one than it has");
        dir.assign(previous, 0, size_t(shared));
      }
      dir += r.string();
      if (r.ok() && !safe_relative(dir))
        return bad(off, "a directory record names a path outside the volume (absolute or with ..)");
      if (!add_dir(std::move(dir))) return too_many_dir_bytes(off);
      if (!keep) j.dirs.erase(j.dirs.begin() + 1, j.dirs.end() - 1);  // the root and this one
      current_dir = j.dirs.size() - 1;
    } else if (kind == 'A' && j.version >= 3) {
      uint64_t major = r.varint(), minor = r.varint(), ino = r.varint();
      int64_t ctime = int64_t(r.varint());
      if (keep) j.armed_ctime[{major << 32 | minor, ino}] = ctime;
    } else if (kind == 'E') {
      JournalEnd e;
      e.scanned = r.varint();
      e.changed = r.varint();
      e.failed = r.varint();
      e.end_ns = int64_t(r.varint());
      j.end = e;
    } else {
      return bad(off, std::string("unknown record kind '") + kind + "'");
    }
    if (!r.ok()) return bad(off, "a malformed record");
    first = false;
    off = end;
  }
  if (first) {
    if (j.torn_at) return config_error("journal " + path + " has no complete header (torn at offset 12)");
    return config_error("journal " + path + " has no header");
  }
  if (j.header.volume.empty() || j.header.volume.front() != '/')
    return config_error("journal " + path + ": the volume path in the header is not absolute");
  return j;
}

}  // namespace volprep
