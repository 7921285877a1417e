// Reading a journal back: a streaming reader that verifies every record, and the reads built
// on it (a whole journal, a summary, the list of a journal directory, `rollback --last`).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <tuple>

#include "volprep/journal.h"
#include "volprep/walk.h"

namespace volprep {

namespace {

uint32_t get_u32le(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint32_t get_u32le(std::string_view s, size_t at) {
  return get_u32le(reinterpret_cast<const unsigned char*>(s.data() + at));
}

// Reads the fields of one payload; any overrun marks it bad.
class Fields {
 public:
  explicit Fields(std::string_view s) : s_(s) {}
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
  std::string_view view() {
    uint64_t n = varint();
    if (bad_ || n > s_.size() - pos_) return fail(), std::string_view();
    auto out = s_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::string string() { return std::string(view()); }
  bool ok() const { return !bad_ && pos_ == s_.size(); }
  bool at_end() const { return pos_ == s_.size(); }
  bool failed() const { return bad_; }

 private:
  uint64_t fail() {
    bad_ = true;
    return 0;
  }
  std::string_view s_;
  size_t pos_ = 0;
  bool bad_ = false;
};

// A record's path must stay below the volume root.
bool safe_relative(std::string_view p) {
  if (p.empty()) return true;  // the root itself
  if (p.front() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string_view part = p.substr(start, (slash == std::string_view::npos ? p.size() : slash) - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos)
      return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}
// A root's or a move's directory: absolute, without "." or ".." (rollback opens it from "/").
bool safe_absolute(std::string_view p) {
  return p == "/" || (p.size() > 1 && p.front() == '/' && safe_relative(p.substr(1)));
}
bool safe_name(std::string_view n) {
  return !n.empty() && n != "." && n != ".." && n.find('/') == n.npos && n.find('\0') == n.npos;
}

JournalEnd read_end(Fields& f, uint32_t version) {
  JournalEnd e;
  e.scanned = f.varint();
  e.changed = f.varint();
  e.failed = f.varint();
  e.end_ns = int64_t(f.varint());
  e.records = version >= 4 ? f.varint() : 0;
  return e;
}

constexpr uint64_t kHole = 32;
constexpr uint64_t kReadChunk = 256 << 10;

}  // namespace

Result<JournalReader> JournalReader::open(const std::string& path, bool* headerless) {
  struct stat lst{};
  if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
    return Error{kExitRefused, path + " is a symlink; refusing to read a journal through it"};
  // O_NONBLOCK: a FIFO in the journal directory must not hang journal list.
  JournalReader r;
  r.fd_.reset(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!r.fd_.valid()) return config_error("cannot open journal " + path + ": " + std::strerror(errno));
  struct stat st{};
  if (::fstat(r.fd_.get(), &st) != 0) return config_error("cannot stat journal " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return config_error(path + " is not a regular file, so not a volprep journal");
  // Rollback as root does what the journal says: only a journal nobody else could have
  // written is believed (as ssh and sudo treat their files).
  if (st.st_uid != ::geteuid())
    return Error{kExitRefused, path + " belongs to uid " + std::to_string(st.st_uid) +
                                   ", not to you; refusing a journal someone else could have written"};
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return Error{kExitRefused, path + " is writable by its group or others; refusing it"};
  r.path_ = path;
  r.size_ = r.limit_ = uint64_t(st.st_size);
  r.mtime_ns_ = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  // Every directory's path is counted, and a few bytes of a record can repeat a long one: a
  // crafted journal must not take all memory or time. A run's journal holds at least ~40 bytes
  // per directory, so only a tree whose directories average over 10 KB of path comes near this.
  r.max_dir_bytes_ = std::max<uint64_t>(uint64_t(64) << 20, 256 * r.size_);
  // Shorter than magic and version, and what is there of the magic is right: a crash cut the
  // first write (the header's) short.
  if (r.size_ < 12 && r.fill(0, r.size_) &&
      std::memcmp(r.buf_.data(), kJournalMagic, std::min<size_t>(r.size_, sizeof kJournalMagic)) == 0) {
    if (headerless) *headerless = true;
    return config_error("journal " + path + " has no header (" + std::to_string(r.size_) + " bytes)");
  }
  if (!r.fill(0, 12) || std::memcmp(r.buf_.data(), kJournalMagic, 8) != 0)
    return config_error(path + " is not a volprep journal");
  r.version_ = get_u32le(r.buf_, 8);
  if (r.version_ < kOldestJournalVersion || r.version_ > kJournalVersion)
    return config_error("journal " + path + " has format version " + std::to_string(r.version_) +
                        "; this volprep reads versions " + std::to_string(kOldestJournalVersion) +
                        " to " + std::to_string(kJournalVersion) +
                        (r.version_ > kJournalVersion ? " (a newer volprep wrote it)" : ""));
  r.off_ = 12;
  uint64_t at = 0;
  char kind = 0;
  std::string_view payload;
  auto first = r.read_record(at, kind, payload);
  if (!first) return first.error();
  if (!*first) {
    if (headerless) *headerless = true;
    if (r.torn_at_) return config_error("journal " + path + " has no complete header (torn at offset 12)");
    return config_error("journal " + path + " has no header");
  }
  if (kind != 'H') return r.bad(at, "no header record");
  Fields f(payload);
  auto& h = r.header_;
  h.volprep_version = f.string();
  h.volume = f.string();
  h.dev_major = f.u32();
  h.dev_minor = f.u32();
  h.ino = f.varint();
  h.uid_map = f.string();
  h.gid_map = f.string();
  h.command_line = f.string();
  h.start_ns = int64_t(f.varint());
  h.rollback_of = f.string();
  auto read_project_dir = [&]() -> std::optional<Error> {
    JournalRoot d;
    d.volume = f.string();
    d.dev_major = f.u32();
    d.dev_minor = f.u32();
    d.ino = f.varint();
    if (f.ok() && (d.volume.empty() || d.volume.front() != '/'))
      return r.bad(at, "the project directory in the header is not absolute");
    h.project_dir = std::move(d);
    return std::nullopt;
  };
  if (r.version_ >= 5) {  // every field there
    h.project = f.string();
    if (f.varint() == 1)
      if (auto e = read_project_dir()) return *e;
    h.command = f.string();
    h.reverse = f.varint() & 1;
    if (r.version_ >= 6) h.btime_ns = int64_t(f.varint());
  } else if (r.version_ >= 4 && !f.at_end()) {  // optional in version 4
    h.project = f.string();
    // Written by volprep before version 5 was: read it as it was written.
    if (!f.at_end())
      if (auto e = read_project_dir()) return *e;
  }
  if (!f.ok()) return r.bad(at, "a malformed record");
  if (h.volume.empty() || h.volume.front() != '/')
    return config_error("journal " + path + ": the volume path in the header is not absolute");
  return r;
}

Error JournalReader::bad(uint64_t at, const std::string& why) const {
  return config_error("journal " + path_ + " is damaged at offset " + std::to_string(at) + ": " + why +
                      "; refusing it");
}

bool JournalReader::fill(uint64_t at, uint64_t n) {
  if (at >= buf_at_ && at + n <= buf_at_ + buf_.size()) return true;
  if (at + n > size_) return false;
  if (at >= buf_at_ && at <= buf_at_ + buf_.size()) buf_.erase(0, size_t(at - buf_at_));
  else buf_.clear();
  buf_at_ = at;
  size_t have = buf_.size();  // bytes from `at` on, already read
  const uint64_t want = std::max<uint64_t>(std::min(std::max(n, kReadChunk), size_ - at), have);
  buf_.resize(size_t(want));
  while (have < n) {
    ssize_t got = ::pread(fd_.get(), buf_.data() + have, size_t(want - have), off_t(at + have));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    have += size_t(got);
  }
  buf_.resize(have);
  return have >= n;
}

std::string JournalReader::rest(uint64_t from) {
  std::string out;
  if (from >= size_) return out;
  out.resize(size_t(size_ - from));
  size_t have = 0;
  while (have < out.size()) {
    ssize_t got = ::pread(fd_.get(), out.data() + have, out.size() - have, off_t(from + have));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    have += size_t(got);
  }
  out.resize(have);
  return out;
}

Result<bool> JournalReader::read_record(uint64_t& at, char& kind, std::string_view& payload) {
  if (off_ >= limit_) return false;
  at = off_;
  if (size_ - off_ < 4) {
    torn_at_ = off_;
    return false;
  }
  if (!fill(off_, 4)) return config_error("cannot read journal " + path_ + ": " + std::strerror(errno));
  const uint64_t len = get_u32le(buf_, size_t(off_ - buf_at_));
  if (len == 0 || len > kMaxJournalRecord || off_ + 8 + len > size_) return torn_or_damaged(off_, len);
  if (!fill(off_, 8 + len)) return config_error("cannot read journal " + path_ + ": " + std::strerror(errno));
  const size_t p = size_t(off_ - buf_at_);
  if (crc32c(buf_.data() + p + 4, len) != get_u32le(buf_, p + 4 + len)) return torn_or_damaged(off_, len);
  kind = buf_[p + 4];
  payload = std::string_view(buf_).substr(p + 5, len - 1);
  off_ += 8 + len;
  return true;
}

// The record at `at` is not whole: a torn tail (a crash cut the last write short, or left a
// hole) ends the records; anything else is damage. Reads the rest of the file to tell.
Result<bool> JournalReader::torn_or_damaged(uint64_t at, uint64_t len) {
  const std::string data = rest(at);  // data[i] is the byte at offset at + i
  auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const uint64_t end = at + 8 + len;
  auto rest_is_zero = [&](uint64_t from) {
    for (uint64_t i = from - at; i < data.size(); ++i)
      if (data[i]) return false;
    return true;
  };
  // The offset of a whole record with a valid checksum at or after `from`, if any.
  auto next_valid_record = [&](uint64_t from) -> std::optional<uint64_t> {
    for (uint64_t i = from - at; i + 9 <= data.size(); ++i) {
      uint64_t n = get_u32le(bytes + i);
      char k = char(bytes[i + 4]);
      if (n < 2 || n > kMaxJournalRecord || i + 8 + n > data.size() || (k != 'C' && k != 'A' && k != 'E')) continue;
      if (crc32c(bytes + i + 4, n) == get_u32le(bytes + i + 4 + n)) return at + i;
    }
    return std::nullopt;
  };
  // Whether the file ends with its end record (zeros after it aside; an 'E' frame is at most
  // 59 bytes).
  auto ends_with_end_record = [&] {
    uint64_t z = size_;
    while (z > 12) {  // the trailing zeros, a page at a time from the end
      const uint64_t from = z > 12 + 4096 ? z - 4096 : 12;
      std::string_view page;
      std::string read;
      if (from >= at) {
        page = std::string_view(data).substr(size_t(from - at), size_t(z - from));
      } else {
        std::string whole = rest(from);
        read = whole.substr(0, size_t(z - from));
        page = read;
      }
      size_t k = page.size();
      while (k > 0 && page[k - 1] == 0) --k;
      z = from + k;
      if (k > 0) break;
    }
    const uint64_t lo = z >= 64 ? z - 64 : 0;
    std::string window = rest(lo).substr(0, size_t(std::min<uint64_t>(size_, z + 64) - lo));
    auto* w = reinterpret_cast<const unsigned char*>(window.data());
    for (uint64_t p = lo; p + 9 <= z; ++p) {
      const uint64_t n = get_u32le(w + (p - lo)), e = p + 8 + n;
      if (e >= z && e <= lo + window.size() && w[p - lo + 4] == 'E' &&
          crc32c(w + (p - lo) + 4, n) == get_u32le(w + (p - lo) + 4 + n))
        return true;
    }
    return false;
  };
  // Power lost during a sync can leave a page of the tail unwritten while a later page was
  // written: a hole of zeros, then records again. No change at or after the hole had been
  // made: changes wait for a sync that covers their records, and that sync never finished.
  // So the hole starts a torn tail, unless the journal ends with its end record, written
  // after every record before it was on disk. Records never hold 32 zero bytes in a row:
  // names and paths hold no NUL, capability and ACL values at most about 20 in a row.
  // Here: a hole that starts in the record at `at`, which ends at `to`.
  auto crash_hole_in = [&](uint64_t to) {
    to = std::min<uint64_t>(to + kHole, size_);
    for (uint64_t i = 0, run = 0; at + i < to; ++i)
      if ((run = data[i] ? 0 : run + 1) == kHole) return !ends_with_end_record();
    return false;
  };
  auto torn = [&](bool hole) -> Result<bool> {
    torn_at_ = at;
    torn_by_hole_ = hole;
    return false;
  };
  if (len == 0 || len > kMaxJournalRecord) {
    if (rest_is_zero(at)) return torn(false);
    if (crash_hole_in(at + 4)) return torn(true);  // the length is zeros or junk
    return bad(at, "impossible record length " + std::to_string(len));
  }
  if (end > size_) {
    // A write cut short by a crash leaves nothing whole after it; a damaged length field in
    // the middle does.
    if (crash_hole_in(end)) return torn(true);
    if (auto valid = next_valid_record(at + 1))
      return bad(at, "a record length runs past the end, but a valid record follows at offset " +
                         std::to_string(*valid));
    return torn(false);
  }
  if ((end == size_ || rest_is_zero(end)) && !next_valid_record(at + 1)) return torn(false);
  if (crash_hole_in(end)) return torn(true);
  return bad(at, "checksum mismatch");
}

namespace {

// The one translation of a journaled device to the device it is now (DeviceMoves).
void translate(const DeviceMoves& moved, uint32_t& major, uint32_t& minor) {
  if (moved.empty()) return;
  if (auto it = moved.find(device_key(major, minor)); it != moved.end()) {
    major = uint32_t(it->second >> 32);
    minor = uint32_t(it->second);
  }
}

}  // namespace

Result<bool> JournalReader::next(JournalItem& item) {
  uint64_t at = 0;
  char kind = 0;
  std::string_view payload;
  auto more = read_record(at, kind, payload);
  if (!more || !*more) return more;
  item.kind = kind;
  item.offset = at;
  Fields f(payload);
  auto too_many_dir_bytes = [&] {
    return bad(at, "its directory paths add up to more than " + std::to_string(max_dir_bytes_ >> 20) +
                       " MiB, far more than any run writes");
  };
  // 'R' and 'M' records start the directory chain afresh, at the root.
  auto at_root = [&] {
    dir_.clear();
    dir_seq_ = ++last_seq_;
  };
  if (kind == 'C') {
    if (ended_) return bad(at, "a change after the end record");
    JournalRecord& rec = item.change;
    rec.xattrs.clear();
    rec.dev_major = f.u32();
    rec.dev_minor = f.u32();
    rec.ino = f.varint();
    rec.mode_before = f.u32();
    rec.uid_before = f.u32();
    rec.gid_before = f.u32();
    rec.mode_after = f.u32();
    rec.uid_after = f.u32();
    rec.gid_after = f.u32();
    rec.name = f.view();
    for (uint64_t n = f.varint(), i = 0; i < n && i < 16; ++i) {
      XattrChange x;
      x.name = f.string();
      uint64_t flags = f.varint();
      if (flags & 1) x.before = f.string();
      if (flags & 2) x.after = f.string();
      rec.xattrs.push_back(std::move(x));
    }
    rec.btime_ns = version_ >= 3 ? int64_t(f.varint()) : 0;
    if (f.ok() && !safe_relative(rec.name))
      return bad(at, "a record names a path outside the volume (absolute or with ..)");
    if (!f.ok()) return bad(at, "a malformed record");
    translate(moved_, rec.dev_major, rec.dev_minor);
    rec.root = root_;
    item.root = root_;
    if (auto slash = rec.name.rfind('/'); slash != std::string::npos) {
      // A name with directories in it: a directory of its own, so that rollback opens every
      // component by descriptor. The next 'D' record still follows the last one.
      split_dir_ = join_path(dir_, std::string_view(rec.name).substr(0, slash));
      if ((dir_bytes_ += split_dir_.size()) > max_dir_bytes_) return too_many_dir_bytes();
      rec.name.erase(0, slash + 1);
      item.dir = split_dir_;
      item.dir_seq = ++last_seq_;
    } else {
      item.dir = dir_;
      item.dir_seq = dir_seq_;
    }
    return true;
  }
  item.root = root_;
  if (ended_) return bad(at, std::string("a record ('") + kind + "') after the end record");
  if (kind == 'D') {
    if (version_ >= 2) {  // the bytes it shares with the last 'D' record's path, then the rest
      uint64_t shared = f.varint();
      if (shared > dir_.size()) return bad(at, "a directory record shares more of the previous one than it has");
      dir_.resize(size_t(shared));
    } else {
      dir_.clear();
    }
    dir_ += f.view();
    if (f.ok() && !safe_relative(dir_))
      return bad(at, "a directory record names a path outside the volume (absolute or with ..)");
    if ((dir_bytes_ += dir_.size()) > max_dir_bytes_) return too_many_dir_bytes();
    if (!f.ok()) return bad(at, "a malformed record");
    dir_seq_ = ++last_seq_;
    item.dir = dir_;
    item.dir_seq = dir_seq_;
  } else if (kind == 'A' && version_ >= 3) {
    auto major = uint32_t(f.varint()), minor = uint32_t(f.varint());
    translate(moved_, major, minor);
    item.armed_dev = device_key(major, minor);
    item.armed_ino = f.varint();
    item.armed_ctime = int64_t(f.varint());
  } else if (kind == 'R' && version_ >= 4) {
    JournalRoot& r = item.new_root;
    r.volume = f.string();
    r.dev_major = f.u32();
    r.dev_minor = f.u32();
    r.ino = f.varint();
    item.root_btime = version_ >= 6 ? int64_t(f.varint()) : 0;
    if (!f.ok()) return bad(at, "a malformed record");
    if (ended_) return bad(at, "a root after the end record");
    if (!safe_absolute(r.volume)) return bad(at, "a root record's path is not absolute (or has . or ..)");
    translate(moved_, r.dev_major, r.dev_minor);
    root_ = roots_++;
    item.root = root_;
    at_root();
  } else if (kind == 'M' && version_ >= 4) {
    JournalMove& m = item.move;
    m.from_dir = f.string();
    m.from_dir_ino = f.varint();
    m.from_name = f.string();
    m.to_dir = f.string();
    m.to_dir_ino = f.varint();
    m.to_name = f.string();
    m.dev_major = f.u32();
    m.dev_minor = f.u32();
    m.ino = f.varint();
    m.mode = f.u32();
    m.btime_ns = int64_t(f.varint());
    if (!f.ok()) return bad(at, "a malformed record");
    if (ended_) return bad(at, "a move after the end record");
    if (!safe_absolute(m.from_dir) || !safe_absolute(m.to_dir) || !safe_name(m.from_name) || !safe_name(m.to_name))
      return bad(at, "a move record names a directory that is not absolute (or has . or ..) or a name with a /");
    translate(moved_, m.dev_major, m.dev_minor);
    at_root();
  } else if (kind == 'V' && version_ >= 5) {
    VolumeRecord& v = item.docker_volume;
    v.name = f.string();
    v.driver = f.string();
    for (KeyValues* kv : {&v.labels, &v.options}) {
      kv->clear();
      for (uint64_t n = f.varint(), i = 0; i < n; ++i) {
        // Each pair takes two bytes at least: a count past the payload stops here.
        if (f.at_end() || f.failed()) return bad(at, "a malformed record");
        std::string key = f.string();
        kv->emplace_back(std::move(key), f.string());
      }
    }
    if (!f.ok()) return bad(at, "a malformed record");
  } else if (kind == 'E') {
    item.end = read_end(f, version_);
    ended_ = true;
  } else if (kind == 'H') {
    return bad(at, "a second header");
  } else {
    return bad(at, std::string("unknown record kind '") + kind + "'");
  }
  if (!f.ok()) return bad(at, "a malformed record");
  return true;
}

void JournalReader::restart(uint64_t begin, uint64_t end, uint32_t root) {
  off_ = begin;
  limit_ = std::min(end, size_);
  root_ = root;
  dir_.clear();
  dir_seq_ = ++last_seq_;
  ended_ = false;
  torn_at_.reset();
  torn_by_hole_ = false;
}

std::optional<JournalEnd> JournalReader::end_record() {
  // An 'E' frame is 9 to 59 bytes: try each place it could start in the last 64 bytes.
  const uint64_t lo = std::max<uint64_t>(off_, size_ >= 64 ? size_ - 64 : 0);
  if (lo >= size_ || !fill(lo, size_ - lo)) return std::nullopt;
  const std::string_view tail = std::string_view(buf_).substr(size_t(lo - buf_at_), size_t(size_ - lo));
  for (size_t p = 0; p + 9 <= tail.size(); ++p) {
    const uint64_t n = get_u32le(tail, p);
    if (n < 2 || p + 8 + n != tail.size() || tail[p + 4] != 'E') continue;
    if (crc32c(tail.data() + p + 4, n) != get_u32le(tail, p + 4 + n)) continue;
    Fields f(tail.substr(p + 5, n - 1));
    JournalEnd e = read_end(f, version_);
    if (f.ok()) return e;
  }
  return std::nullopt;
}

std::string path_of(const Journal& j, const JournalRecord& r) { return join_path(j.dirs[r.dir], r.name); }

namespace {

// The rest of read_journal, once its header is read.
Result<Journal> read_opened(JournalReader& reader, JournalRead what) {
  Journal j;
  j.path = reader.path();
  j.version = reader.version();
  j.header = reader.header();
  j.last_written_ns = reader.last_written_ns();
  j.roots.push_back(root_of(j.header));
  if (what == JournalRead::kList && j.version >= 4)
    if (auto end = reader.end_record()) {  // nothing between the header and it is read
      j.end = *end;
      j.changes = end->records;
      return j;
    }
  const bool keep = what == JournalRead::kAll;
  if (keep) {  // Room for every change record, by an estimate of their size: growing the vector costs more.
    // Of the file opened (no second lookup of its name), and never more than a record per
    // byte of what a journal of kMaxJournalRecord-bounded records could hold in memory.
    j.records.reserve(size_t(std::min<uint64_t>(reader.size() / 48, uint64_t(1) << 24)));
  }
  j.root_btime.push_back(j.header.btime_ns);
  j.devices.insert(device_key(j.header.dev_major, j.header.dev_minor));
  uint64_t last_dev = device_key(j.header.dev_major, j.header.dev_minor);  // inserted already
  JournalSegment seg{reader.offset(), 0, 0, std::nullopt, 0};
  auto close_segment = [&](uint64_t at) {
    seg.end = at;
    if (seg.changes) j.segments.push_back(seg);
  };
  // j.dirs indexes of the last 'D' record's directory and of the last other one (a name
  // with a '/', or the root after an 'R' or 'M' record), by the reader's dir_seq.
  uint64_t d_seq = 0, other_seq = 0;
  uint32_t d_index = 0, other_index = 0;
  JournalItem item;
  for (;;) {
    auto more = reader.next(item);
    if (!more) return more.error();
    if (!*more) break;
    switch (item.kind) {
      case 'D':
        if (!keep) j.dirs.resize(1);  // the root and this one
        j.dirs.emplace_back(item.dir);
        d_seq = item.dir_seq;
        d_index = uint32_t(j.dirs.size() - 1);
        break;
      case 'C': {
        ++j.changes;
        ++seg.changes;
        const JournalRecord& c = item.change;
        if (const uint64_t dev = device_key(c.dev_major, c.dev_minor); dev != last_dev) {
          j.devices.insert(dev);
          last_dev = dev;
        }
        // The root's own record (a single-file root's is in its parent, the root's directory):
        // its birth time, where the header or 'R' record gives none (before version 6). Both
        // come from statx of one inode, held open: two that differ are not what volprep wrote.
        const JournalRoot& root = j.roots[item.root];
        if (item.dir.empty() && c.ino == root.ino && c.dev_major == root.dev_major && c.dev_minor == root.dev_minor) {
          int64_t& known = j.root_btime[item.root];
          if (known && c.btime_ns && known != c.btime_ns)
            return config_error("journal " + j.path + " is damaged at offset " + std::to_string(item.offset) +
                                ": the record of the volume root " + root.volume + " gives it another birth time (" +
                                std::to_string(c.btime_ns) + " ns) than its " +
                                (item.root ? "root record" : "header") + " does (" + std::to_string(known) +
                                " ns); refusing it");
          if (!known) known = c.btime_ns;
        }
        if (keep) {
          JournalRecord& rec = j.records.emplace_back(std::move(item.change));
          if (item.dir_seq == d_seq) {
            rec.dir = d_index;
          } else {
            if (item.dir_seq != other_seq) {
              j.dirs.emplace_back(item.dir);
              other_seq = item.dir_seq;
              other_index = uint32_t(j.dirs.size() - 1);
            }
            rec.dir = other_index;
          }
        }
        break;
      }
      case 'A':
        j.armed_ctime[{item.armed_dev, item.armed_ino}] = item.armed_ctime;
        break;
      case 'R':
        close_segment(item.offset);
        j.roots.push_back(item.new_root);
        j.root_btime.push_back(item.root_btime);
        j.devices.insert(device_key(item.new_root.dev_major, item.new_root.dev_minor));
        seg = {reader.offset(), 0, item.root, std::nullopt, 0};
        break;
      case 'M':
        close_segment(item.offset);
        j.moves.push_back(item.move);
        j.devices.insert(device_key(item.move.dev_major, item.move.dev_minor));
        j.segments.push_back({item.offset, reader.offset(), item.root, j.moves.size() - 1, 0});
        seg = {reader.offset(), 0, item.root, std::nullopt, 0};
        break;
      case 'V':
        j.docker_volumes.push_back(std::move(item.docker_volume));
        break;
      case 'E':
        j.end = item.end;
        break;
    }
  }
  close_segment(reader.offset());
  j.torn_at = reader.torn_at();
  j.torn_bytes = reader.torn_bytes();
  j.torn_by_hole = reader.torn_by_hole();
  return j;
}

}  // namespace

Result<Journal> read_journal(const std::string& path, JournalRead what) {
  auto reader = JournalReader::open(path);
  if (!reader) return reader.error();
  return read_opened(*reader, what);
}

std::vector<Journal> read_journal_dir(const std::string& dir, std::vector<UnreadJournal>& unread, JournalRead what) {
  std::vector<Journal> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno != ENOENT) unread.push_back({dir, "cannot read the journal directory " + dir + ": " + std::strerror(errno), {}});
    return out;
  }
  while (dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (!name.ends_with(".vpj")) continue;
    const std::string path = dir + "/" + name;
    bool headerless = false;
    auto reader = JournalReader::open(path, &headerless);
    if (!reader) {
      unread.push_back({path, reader.error().message, {}, headerless});
      continue;
    }
    JournalHeader header = reader->header();
    auto j = read_opened(*reader, what);
    if (!j) {
      unread.push_back({path, j.error().message, std::move(header)});
      continue;
    }
    out.push_back(std::move(*j));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const Journal& a, const Journal& b) {
    return std::tie(a.header.start_ns, a.path) < std::tie(b.header.start_ns, b.path);
  });
  return out;
}

std::vector<Journal> read_journal_dir(const std::string& dir, std::vector<std::string>& unreadable,
                                      JournalRead what) {
  std::vector<UnreadJournal> unread;
  auto out = read_journal_dir(dir, unread, what);
  for (auto& u : unread) unreadable.push_back(std::move(u.reason));
  return out;
}

Result<std::vector<std::string>> unfinished_runs(const std::string& dir,
                                                 const std::function<bool(const JournalHeader&)>& match,
                                                 std::vector<UnreadJournal>& ignored) {
  std::vector<UnreadJournal> unread;
  std::vector<std::string> out;
  const auto all = read_journal_dir(dir, unread);
  auto base_name = [](const std::string& p) { return p.substr(p.rfind('/') + 1); };
  auto undone = [&](const std::string& path) {
    return std::any_of(all.begin(), all.end(), [&](const Journal& r) {
      return r.header.rollback_of == base_name(path) && r.end && !r.end->failed;
    });
  };
  // One that cannot be read might be a run of these that did not finish: which entries it
  // changed is unknown. One with no header holds no change.
  for (UnreadJournal& u : unread) {
    if (u.headerless) {
      ignored.push_back(std::move(u));
      continue;
    }
    if (!u.header)
      return Error{kExitRefused, "the journal " + u.path + " cannot be read (" + u.reason + "), so whether it is " +
                                     "a run that did not finish here is unknown; nothing changed. `volprep journal " +
                                     "show " + u.path + "` shows what can be read of it; move it out of " + dir +
                                     " once you know it is not"};
    if (u.header->rollback_of.empty() && match(*u.header) && !undone(u.path))
      return Error{kExitRefused, "an earlier run (journal " + u.path + ") may not have finished, and its journal " +
                                     "cannot be read (" + u.reason + "): what it changed is unknown; nothing " +
                                     "changed. Put right by hand what that run left half done, then move the " +
                                     "journal out of " + dir};
  }
  for (const Journal& j : all) {
    if ((j.end && !j.end->failed) || !j.header.rollback_of.empty() || !match(j.header)) continue;
    if (!undone(j.path)) out.push_back(j.path);
  }
  return out;
}

void translate_devices(Journal& j, const DeviceMoves& moved) {
  auto one = [&](uint32_t& major, uint32_t& minor) { translate(moved, major, minor); };
  one(j.header.dev_major, j.header.dev_minor);
  if (j.header.project_dir) one(j.header.project_dir->dev_major, j.header.project_dir->dev_minor);
  for (auto& r : j.roots) one(r.dev_major, r.dev_minor);
  for (auto& m : j.moves) one(m.dev_major, m.dev_minor);
  for (auto& r : j.records) one(r.dev_major, r.dev_minor);
  std::map<std::pair<uint64_t, uint64_t>, int64_t> armed;
  for (auto [key, ctime] : j.armed_ctime) {
    auto major = uint32_t(key.first >> 32), minor = uint32_t(key.first);
    one(major, minor);
    armed[{device_key(major, minor), key.second}] = ctime;
  }
  j.armed_ctime = std::move(armed);
  std::set<uint64_t> devices;
  for (uint64_t d : j.devices) devices.insert(moved.count(d) ? moved.at(d) : d);
  j.devices = std::move(devices);
  for (auto [from, to] : moved) j.moved_devices[from] = to;
}

LastJournal find_last_journal(const std::string& dir, const JournalMatch& match) {
  LastJournal out;
  const auto all = read_journal_dir(dir, out.unreadable);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const JournalHeader& h = it->header;
    if (!h.rollback_of.empty()) continue;
    if (match.volume) {
      if (h.volume != match.volume->volume) continue;
      if (root_of(h) == *match.volume) {
        out.path = it->path;
        break;
      }
      // The same root remounted on another device: decided on its birth time, which the
      // records hold (read them).
      if (h.ino == match.volume->ino && match.remounted) {
        auto summary = read_journal(it->path, JournalRead::kSummary);
        const auto verdict = summary ? match.remounted(*summary) : JournalMatch::Remount::kUntold;
        if (verdict == JournalMatch::Remount::kSame) {
          out.path = it->path;
          break;
        }
        if (verdict == JournalMatch::Remount::kUntold && out.undecided.empty()) out.undecided = it->path;
      }
      if (!out.other_inode) {
        out.other_inode = h;
        out.other_path = it->path;
      }
    } else if ((!match.project.empty() || match.project_dir) && !h.project.empty()) {
      if (!match.project.empty() && h.project != match.project) continue;
      if (match.project_dir && h.project_dir != match.project_dir) continue;
      auto seen = std::find_if(out.ambiguous.begin(), out.ambiguous.end(),
                               [&](const ProjectRun& r) { return r.dir == h.project_dir; });
      if (seen == out.ambiguous.end()) out.ambiguous.push_back({h.project_dir, h.start_ns, it->path});
    }
  }
  if (!match.volume && !out.ambiguous.empty()) {
    if (out.ambiguous.size() == 1) out.path = out.ambiguous[0].path;
    if (out.ambiguous.size() == 1) out.ambiguous.clear();
  }
  if (!out.path.empty()) out.other_inode.reset();
  return out;
}

}  // namespace volprep
