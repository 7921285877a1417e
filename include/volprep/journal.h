// Journal: the rollback record of a run. A versioned, append-only file; every record carries
// a CRC32C; change records reach the disk (fdatasync) before the changes they describe.
//
// Layout: "VOLPREPJ", u32 version (little endian), then records, each
//   u32 length of (kind + payload) | u8 kind | payload | u32 crc32c(kind + payload)
// Kinds: 'H' header (first), 'D' a directory (its path relative to the volume root; the names
// of the 'C' records after it are relative to it), 'C' one changed entry, 'A' an entry left
// with set-id bits or file capabilities (version 3), 'E' end of a finished run.
// 'D' (version 2): how many leading bytes of the previous 'D' record's path this path shares,
// then the rest of the path. Version 1 (still read): the whole path.
// 'C': dev major, dev minor, inode, mode before (with type), uid, gid before, mode, uid, gid
// after, name (within the last 'D'), then xattrs: a count, and for each its name, a flags
// varint (1: a value before, 2: a value after) and those values (security.capability kept
// across chown; ACLs set); version 3: then the inode's birth time (ns; 0 where unknown).
// 'A' (version 3): dev major, dev minor, inode, and the inode's ctime (ns) right after the
// change, written once the change is made (not synced: a lost one only withholds bits).
// Rollback re-arms set-id bits and capabilities only on an inode whose ctime is still that:
// its content and metadata untouched since volprep set them.
// Numbers in payloads are LEB128 varints; strings are a varint length and raw bytes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "volprep/error.h"
#include "volprep/fd.h"
#include "volprep/plan.h"

namespace volprep {

inline constexpr char kJournalMagic[8] = {'V', 'O', 'L', 'P', 'R', 'E', 'P', 'J'};
inline constexpr uint32_t kJournalVersion = 3;
inline constexpr uint32_t kOldestJournalVersion = 1;  // read, never written
inline constexpr const char* kDefaultJournalDir = "/var/lib/volprep/journals";
// The longest record read back (a longer length is damage).
inline constexpr uint64_t kMaxJournalRecord = 1 << 20;
// The longest directory path the writer journals (four times PATH_MAX): a deeper directory's
// entries are reported as failed and left alone. Reading keeps every directory's path, so
// this bounds what rollback needs: a chain of one-byte names 8192 levels deep holds 64 MiB.
inline constexpr size_t kMaxJournalPath = 16 << 10;
// The longest a directory record can hold and still be read: what rollback journals, since
// it undoes journals written before the limit above (up to this, or refused when read).
inline constexpr size_t kMaxRecordPath = kMaxJournalRecord - 64;
static_assert(kMaxJournalPath <= kMaxRecordPath);
// $VOLPREP_JOURNAL_DIR if set, else kDefaultJournalDir.
std::string default_journal_dir();

uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

struct JournalHeader {
  std::string volprep_version;
  std::string volume;  // absolute path of the volume root
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t ino = 0;
  std::string uid_map, gid_map;  // /proc/PID/uid_map format
  std::string command_line;
  int64_t start_ns = 0;  // UTC, nanoseconds since the epoch
  std::string rollback_of;  // a rollback's journal: the journal it undid (file name)
};

struct JournalRecord {
  uint32_t dir = 0;  // read back: the index in Journal::dirs of the directory the entry is in
  std::string name;  // within that directory, raw bytes; empty: the directory itself
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t ino = 0;
  uint32_t mode_before = 0;  // st_mode, type included
  uint32_t uid_before = 0, gid_before = 0;
  uint32_t mode_after = 0;   // permission bits
  uint32_t uid_after = 0, gid_after = 0;
  std::vector<XattrChange> xattrs;  // capabilities kept, ACLs set: raw, before and after
  int64_t btime_ns = 0;  // the inode's birth time (version 3; 0: unknown): a new inode that
                         // reuses the number has another
};

struct JournalEnd {
  uint64_t scanned = 0, changed = 0, failed = 0;
  int64_t end_ns = 0;
};

std::string encode_header(const JournalHeader& h);
std::string encode_record(const JournalRecord& r);
std::string encode_end(const JournalEnd& e);
// An 'A' payload: the inode `st` (after its change) and its ctime.
std::string encode_armed(const EntryStat& st);
// Frames a payload of `kind` as a record (length, kind, payload, crc).
std::string frame(char kind, std::string_view payload);

// A 'D' payload for `dir_path`, after a 'D' record for `previous` ("" if none precedes it).
std::string encode_directory(std::string_view dir_path, std::string_view previous = {});
// The writer's encoders, framing in place: a 'D' record, then the 'C' records of the changes
// in that directory, each naming its entry within it (Change::name). A batch of records is
// written at once, so `previous` is the batch's last 'D' path, or "" for its first.
void append_directory_record(std::string& out, std::string_view dir_path, std::string_view previous);
void append_change_record(std::string& out, const Change& c);

// Writing. Thread-safe. Writes return at once; a background thread fdatasyncs what has been
// written once 128 KiB have gathered or someone waits, so one sync covers every thread's
// records and nobody waits for the disk until they must apply a change.
class JournalWriter {
 public:
  // Creates a new journal file. With an empty `file`, a file named by UTC time and volume in
  // `dir` (created 0700 if missing). Refuses a symlink at the file, or in `dir`'s last
  // component, and a directory writable by others. With `lazy`, everything is checked now
  // but the file is created by the first write(): a run that changes nothing leaves none.
  static Result<std::unique_ptr<JournalWriter>> create(const std::string& dir, const std::string& file,
                                                       const JournalHeader& header, bool lazy = false);
  ~JournalWriter();
  bool created() const { return fd_.valid(); }
  // Writes the records; returns the offset at their end, for durable() and wait_durable().
  Result<uint64_t> write(std::string_view framed_records);
  // Whether everything up to `offset` is on disk: changes recorded before it may be applied.
  bool durable(uint64_t offset) const { return durable_.load(std::memory_order_acquire) >= offset; }
  // Waits until it is, or fails if the journal could not be written.
  Result<bool> wait_durable(uint64_t offset);
  Result<bool> finish(const JournalEnd& end);  // the end record, durable when it returns
  const std::string& path() const { return path_; }  // once created(), where it is

 private:
  JournalWriter() = default;
  Result<bool> create_file();                          // under mu_
  Result<uint64_t> write_locked(std::string_view bytes);  // under mu_
  void sync_loop();
  UniqueFd dir_;           // where the file is (to be) created
  std::string name_;       // its name there
  std::string dir_path_;   // `dir` of create(): another name may be taken if name_ exists
  std::string head_;       // magic, version and header record
  UniqueFd fd_;
  std::string path_;
  std::mutex mu_;
  std::condition_variable wrote_, synced_;
  uint64_t written_ = 0;             // bytes written so far, under mu_
  int waiting_ = 0;                  // threads in wait_durable()
  std::atomic<uint64_t> durable_{0};  // bytes known to be on disk
  std::string broken_;               // the first failed write or fdatasync: nothing more is written
  bool stopping_ = false;
  std::thread syncer_;
};

// Reading, with verification.
struct Journal {
  std::string path;
  uint32_t version = 0;
  JournalHeader header;
  // The directories the records are in, relative to the volume root: one per 'D' record, and
  // one per record whose name has a '/' in it (split there); dirs[0] is the root itself ("").
  std::vector<std::string> dirs{""};
  std::vector<JournalRecord> records;
  uint64_t changes = 0;  // 'C' records: records.size(), also when they are not kept
  std::optional<JournalEnd> end;
  // When the file was last written (its mtime): no change of the run it records is later.
  int64_t last_written_ns = 0;
  // 'A' records: (device major << 32 | minor, inode) -> the ctime volprep left it with.
  std::map<std::pair<uint64_t, uint64_t>, int64_t> armed_ctime;
  // A crash leaves at most a torn tail: bytes after the last valid record, ignored.
  std::optional<uint64_t> torn_at;
  uint64_t torn_bytes = 0;
  // The tail starts with a hole the disk never got (power lost during a sync), and may hold
  // whole records after it: none of them had been applied.
  bool torn_by_hole = false;
};

// A record's path relative to the volume root.
std::string path_of(const Journal& j, const JournalRecord& r);

// What read_journal keeps. kSummary verifies exactly as kAll does but keeps no records and
// only the last directory: header, counts, end and tail (journal list reads every journal).
enum class JournalRead { kAll, kSummary };

// Verifies version and every checksum. Damage anywhere but the tail is an error naming the
// offset; records with an absolute path or a ".." component are refused.
Result<Journal> read_journal(const std::string& path, JournalRead what = JournalRead::kAll);

// Name of a new journal: "20261122T084900Z-tmp-jenkins_home.vpj".
std::string journal_file_name(const std::string& volume, int64_t start_ns);

}  // namespace volprep
