// Journal: the rollback record of a run. A versioned, append-only file; every record carries
// a CRC32C; change records reach the disk (fdatasync) before the changes they describe.
//
// Layout: "VOLPREPJ", u32 version (little endian), then records, each
//   u32 length of (kind + payload) | u8 kind | payload | u32 crc32c(kind + payload)
// Kinds: 'H' header (first), 'D' a directory (its path relative to the current volume root;
// the names of the 'C' records after it are relative to it), 'C' one changed entry, 'A' an
// entry left with set-id bits or file capabilities (version 3), 'R' another volume root
// (version 4), 'M' a rename (version 4), 'E' end of a finished run (last).
// 'H': volprep version, volume (absolute path), dev major, dev minor, inode, uid map, gid map,
// command line, start time (ns), the journal a rollback undid ("" for a run); version 4: then
// the compose project, if the run has one (absent, not empty, for none); then, optionally
// (absent in journals of older volprep), the project's directory: absolute path, dev major,
// dev minor, inode. The name is whatever the compose file says, which any user may choose;
// the directory tells two projects of one name apart. Version 5: every field after the
// rollback's journal is there: the project ("" for none), a varint 1 and the project's
// directory (4 fields as above) or 0 for none, the command that ran (prepare, shift,
// migrate-volumes, compose, rollback: what the command line says, without parsing it again)
// and a varint of flags (1: --reverse). Version 6: then the volume root's birth time (ns; 0
// where unknown), from the statx that gave its device and inode, whether or not the run
// changes the root.
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
// 'R' (version 4): the volume root the records after it are relative to, until the next 'R':
// absolute path, dev major, dev minor, inode; version 6: then its birth time (ns; 0 where
// unknown), as the header's. The header's volume is the first root (root 0),
// so a journal of one volume has no 'R'. Roots are journaled one after the other: a driver
// starts the next root once every record of the previous one is written (its appliers
// flushed), so an 'R' record ties every record after it to its root without an index in each.
// 'M' (version 4): a directory entry renamed, written and synced before the rename: the
// directory it left (absolute path) and its inode, its name there, the directory it went to
// and its inode, its name there, then the moved entry's dev major, dev minor, inode, st_mode
// and birth time (ns; 0 where unknown). Both directories are on the entry's device.
// migrate-volumes journals a copied volume the same way: the rename of the finished copy
// from <target's parent>/volprep-copies/NAME.<UTC time> into the volumes directory (the copy
// before it changed nothing Docker sees), so rollback moves the copy back there, aside.
// 'R' and 'M' start the directory chain afresh: the next 'D' shares nothing with earlier ones.
// 'V' (version 5; an older volprep refuses a version 5 journal as one a newer volprep wrote):
// a Docker volume's record in the volume store it leaves (<volumes dir>/metadata.db),
// which its move does not carry, written before the 'M' record of the move (and synced with
// it): the volume's name, its driver, the number of its labels, each label's key and value,
// the number of its options, each option's key and value. Nothing is undone by it: rollback
// and migrate-volumes --reverse report from it what Docker lost.
// 'E': entries scanned, changed, failed, end time (ns); version 4: then the number of 'C'
// records in the journal (so journal list reads the header and this record only).
// A root's birth time tells the same filesystem remounted on another device from another one
// mounted there (find_moved_devices). Before version 6 it is known only from the root's own
// 'C' record, so only for a run that changed the root; where version 6's and that record's
// are both known and differ, the journal is refused as damaged.
// Rollback undoes the journal from its end: the records of a root between two 'R'/'M'
// records in parallel, each 'M' on its own, newest first.
// Numbers in payloads are LEB128 varints; strings are a varint length and raw bytes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "volprep/error.h"
#include "volprep/fd.h"
#include "volprep/plan.h"
#include "volprep/volume_store.h"

namespace volprep {

inline constexpr char kJournalMagic[8] = {'V', 'O', 'L', 'P', 'R', 'E', 'P', 'J'};
// Version 5: the header's command and direction, its project directory and the 'V' record.
// Version 6: every root's birth time, in the header and the 'R' records.
inline constexpr uint32_t kJournalVersion = 6;
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
// The directory `dir`, none of its components a symlink, each missing one made 0700
// (kLastOnly: only the last; a missing one above it is kExitUsage, naming it); refused
// (kExitRefused) unless this user owns it and no one else may write there. `what` names it
// in messages ("journal directory").
enum class MakeDirs { kWithParents, kLastOnly };
Result<UniqueFd> open_private_dir(const std::string& dir, const std::string& what,
                                  MakeDirs make = MakeDirs::kWithParents);
// The journal directory `dir`: the default and $VOLPREP_JOURNAL_DIR made with their parents
// (journal_dir_made_with_parents), any other (--journal-dir) only its last component.
Result<UniqueFd> open_journal_dir(const std::string& dir);
// Whether `dir` is the default journal directory, $VOLPREP_JOURNAL_DIR, or the default below
// another root (/host/var/lib/volprep/journals): made with its parents.
bool journal_dir_made_with_parents(const std::string& dir);

uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

// A volume root the records are relative to: the header's volume, or an 'R' record's.
struct JournalRoot {
  std::string volume;  // absolute path of the volume root (or single file)
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t ino = 0;
  bool operator==(const JournalRoot&) const = default;
};

struct JournalHeader {
  std::string volprep_version;
  std::string volume;  // absolute path of the volume root
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t ino = 0;
  std::string uid_map, gid_map;  // /proc/PID/uid_map format
  std::string command_line;
  int64_t start_ns = 0;  // UTC, nanoseconds since the epoch
  std::string rollback_of;  // a rollback's journal: the journal it undid (file name)
  std::string project;      // version 4: the compose project the run prepared ("" for none)
  // Its directory (the root fields: path, device, inode), when the journal records it.
  std::optional<JournalRoot> project_dir;
  // Version 5: the command that ran ("" in older journals: only the command line says) and
  // whether it ran --reverse.
  std::string command;
  bool reverse = false;
  // Version 6: the volume root's birth time (0: unknown, or an older journal), taken with its
  // device and inode.
  int64_t btime_ns = 0;
};

JournalRoot root_of(const JournalHeader& h);

// A directory entry renamed (an 'M' record): `from_dir`/`from_name` to `to_dir`/`to_name`.
// Rollback renames it back, once it has checked by descriptor that the entry at the new name
// is this inode.
struct JournalMove {
  std::string from_dir, from_name;  // absolute path of the directory it left; its name there
  std::string to_dir, to_name;      // where it went
  uint64_t from_dir_ino = 0, to_dir_ino = 0;  // the two directories (on the entry's device)
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t ino = 0;       // the moved entry
  uint32_t mode = 0;      // its st_mode (type included)
  int64_t btime_ns = 0;   // its birth time (0: unknown)
  bool operator==(const JournalMove&) const = default;
};

struct JournalRecord {
  uint32_t root = 0;  // read back: the index in Journal::roots of the root `dir` is below
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
  uint64_t records = 0;  // version 4: 'C' records in the journal (the writer counts them)
};

std::string encode_header(const JournalHeader& h);
std::string encode_record(const JournalRecord& r);
std::string encode_end(const JournalEnd& e);
// An 'R' payload: the root and (version 6) its birth time.
std::string encode_root(const JournalRoot& r, int64_t btime_ns = 0);
std::string encode_move(const JournalMove& m);
std::string encode_docker_volume(const VolumeRecord& v);
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
  // Starts the records of another volume root (an 'R' record): every 'D' and 'C' record
  // written after it is relative to `root`. Call it between two roots' runs, once every
  // applier of the previous root has flushed and before the next root's first record. The
  // record goes out with the next write() (a root whose run changes nothing leaves none, and
  // a lazy journal is still not created). `btime_ns`: the root's birth time (0: unknown),
  // from the same statx as its device and inode.
  Result<bool> start_root(const JournalRoot& root, int64_t btime_ns);
  // Journals a rename before it is made (an 'M' record): durable when it returns. Call it
  // between roots' runs too (not while records of a root are written); the records written
  // after it are still relative to the current root.
  Result<bool> record_move(const JournalMove& move);
  // Journals a Docker volume's record in the store it leaves (a 'V' record), before the 'M'
  // record of its move, which makes it durable too. Between roots' runs, as record_move.
  Result<bool> record_docker_volume(const VolumeRecord& volume);
  // Whether everything up to `offset` is on disk: changes recorded before it may be applied.
  bool durable(uint64_t offset) const { return durable_.load(std::memory_order_acquire) >= offset; }
  // Waits until it is, or fails if the journal could not be written.
  Result<bool> wait_durable(uint64_t offset);
  // The end record, durable when it returns. A lazy journal never created stays so (nothing
  // changed), unless `even_empty`: then it is created with no record but the end.
  Result<bool> finish(const JournalEnd& end, bool even_empty = false);
  const std::string& path() const { return path_; }  // once created(), where it is

 private:
  JournalWriter() = default;
  Result<bool> create_file();                          // under mu_
  Result<uint64_t> write_locked(std::string_view bytes);  // under mu_
  Result<uint64_t> append(std::string_view bytes, bool records);
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
  std::string pending_root_;         // an 'R' record that goes out before the next records
  uint64_t changes_ = 0;             // 'C' records written, under mu_
  int waiting_ = 0;                  // threads in wait_durable()
  std::atomic<uint64_t> durable_{0};  // bytes known to be on disk
  std::string broken_;               // the first failed write or fdatasync: nothing more is written
  bool stopping_ = false;
  std::thread syncer_;
};

// Devices the journal recorded that are other devices now: (major << 32 | minor) as journaled
// -> as now. The same filesystem, remounted (see find_moved_devices in rollback.h).
using DeviceMoves = std::map<uint64_t, uint64_t>;
inline uint64_t device_key(uint32_t major, uint32_t minor) { return uint64_t(major) << 32 | minor; }

// Reading, with verification, one record at a time.
struct JournalItem {
  char kind = 0;        // 'D', 'C', 'A', 'R', 'M', 'V' or 'E' (the header is read by open())
  uint64_t offset = 0;  // where the record starts in the file
  uint32_t root = 0;    // the index of the root the record is relative to (0: the header's)
  // 'D' and 'C': the directory (relative to the root) the entry is in, valid until the next
  // call; `dir_seq` changes whenever the directory does.
  std::string_view dir;
  uint64_t dir_seq = 0;
  JournalRecord change;  // 'C' (its name within `dir`)
  JournalRoot new_root;  // 'R'
  int64_t root_btime = 0;  // 'R': its birth time (version 6; 0: unknown)
  JournalMove move;      // 'M'
  VolumeRecord docker_volume;  // 'V'
  JournalEnd end;        // 'E'
  uint64_t armed_dev = 0, armed_ino = 0;  // 'A': (major << 32 | minor), inode
  int64_t armed_ctime = 0;
};

// Streams a journal's records, verifying each: memory stays bounded by the longest record
// and directory path, however long the journal.
class JournalReader {
 public:
  // Opens, checks who could have written the file, and reads magic, version and header.
  // `headerless`, when given, is set when the error is that the file holds no header (see
  // UnreadJournal::headerless).
  static Result<JournalReader> open(const std::string& path, bool* headerless = nullptr);
  JournalReader(JournalReader&&) noexcept = default;
  JournalReader& operator=(JournalReader&&) noexcept = default;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  const JournalHeader& header() const { return header_; }
  int64_t last_written_ns() const { return mtime_ns_; }
  // The next verified record: true with `item` set, false after the last valid record (then
  // torn_at() says whether a torn tail was ignored), or the error for damage, naming the
  // offset. Records with an absolute path or a ".." component are damage too.
  Result<bool> next(JournalItem& item);
  // Where the next record starts (after the last one read).
  uint64_t offset() const { return off_; }
  uint64_t size() const { return size_; }  // the file's size when it was opened
  std::optional<uint64_t> torn_at() const { return torn_at_; }
  uint64_t torn_bytes() const { return torn_at_ ? size_ - *torn_at_ : 0; }
  bool torn_by_hole() const { return torn_by_hole_; }
  // Reads the records in [begin, end) again, from `begin` relative to root `root` with no
  // directory yet: the start of a segment (after the header, an 'R' or an 'M' record).
  void restart(uint64_t begin, uint64_t end, uint32_t root);
  // The end record, when the file ends with a whole one (version 4), found from the end:
  // nothing between the header and it is read.
  std::optional<JournalEnd> end_record();
  // Every device number read from here on ('C', 'A', 'R' and 'M' records) is given as it is
  // now: the one place where a journal's devices are translated (translate_devices too).
  void translate_devices(const DeviceMoves& moved) { moved_ = moved; }

 private:
  JournalReader() = default;
  // The next framed record, its checksum verified.
  Result<bool> read_record(uint64_t& at, char& kind, std::string_view& payload);
  bool fill(uint64_t at, uint64_t n);           // bytes [at, at + n) into buf_
  std::string rest(uint64_t from);              // bytes [from, size) (damage and torn tails)
  Error bad(uint64_t at, const std::string& why) const;
  Result<bool> torn_or_damaged(uint64_t at, uint64_t len);  // a record that is not whole

  UniqueFd fd_;
  std::string path_;
  uint32_t version_ = 0;
  JournalHeader header_;
  int64_t mtime_ns_ = 0;
  uint64_t size_ = 0;            // the file's size when opened: nothing after it is read
  uint64_t limit_ = 0;           // where reading stops
  uint64_t off_ = 0;
  std::string buf_;              // bytes [buf_at_, buf_at_ + buf_.size()) of the file
  uint64_t buf_at_ = 0;
  uint32_t root_ = 0, roots_ = 1;
  std::string dir_;              // the last 'D' record's path
  std::string split_dir_;        // a 'C' record whose name has a '/': its directory
  uint64_t dir_seq_ = 0, last_seq_ = 0;
  uint64_t dir_bytes_ = 0, max_dir_bytes_ = 0;
  bool ended_ = false;           // an 'E' record was read
  std::optional<uint64_t> torn_at_;
  bool torn_by_hole_ = false;
  DeviceMoves moved_;
};

// A stretch of a journal rollback undoes as one step: the 'C' records of one root between
// two 'R'/'M' records (in parallel), or one 'M' record.
struct JournalSegment {
  uint64_t begin = 0, end = 0;  // file offsets; records: [begin, end), for JournalReader::restart
  uint32_t root = 0;            // records: the index in Journal::roots
  std::optional<size_t> move;   // a move: the index in Journal::moves
  uint64_t changes = 0;         // records: how many 'C' records
};

// A verified journal: what every read keeps, and (kAll) its records.
struct Journal {
  std::string path;
  uint32_t version = 0;
  JournalHeader header;
  std::vector<JournalRoot> roots;  // roots[0] is the header's volume; then one per 'R' record
  std::vector<JournalMove> moves;  // one per 'M' record, in order
  std::vector<VolumeRecord> docker_volumes;  // one per 'V' record, in order (not kept by kList)
  std::vector<JournalSegment> segments;  // in file order (not kept by kList)
  // The directories the records are in, relative to their root: one per 'D' record, and
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
  // Per root (as `roots`): the birth time of the root itself, from the header or its 'R'
  // record (version 6), else from its own 'C' record (version 3); 0: not known (an older
  // journal of a run that left the root as it was, or a filesystem that keeps none). Not
  // read by kList.
  std::vector<int64_t> root_btime;
  // Every device a 'C', 'R' or 'M' record names, and the header's (device_key). Not by kList.
  std::set<uint64_t> devices;
  // The devices translate_devices translated (journaled -> now); the reader rollback streams
  // the records with translates them too.
  DeviceMoves moved_devices;
};

// Gives every device of `j` that `moved` names as it is now: header, roots, moves, 'A'
// records, devices; and keeps `moved` for the records read again (JournalReader).
void translate_devices(Journal& j, const DeviceMoves& moved);

// A record's path relative to its root.
std::string path_of(const Journal& j, const JournalRecord& r);

// What read_journal keeps. kSummary verifies exactly as kAll does but keeps no records and
// only the last directory: header, roots, moves, segments, counts, end and tail (what
// rollback needs before it streams the records). kList reads only the header and the end
// record, found from the file's end, when the journal ends with one of version 4 (it counts
// the records); else it reads as kSummary.
enum class JournalRead { kAll, kSummary, kList };

// Verifies version and every checksum (kList: of the header and the end record). Damage
// anywhere but the tail is an error naming the offset; records with an absolute path or a
// ".." component are refused.
Result<Journal> read_journal(const std::string& path, JournalRead what = JournalRead::kAll);

// Every *.vpj journal in `dir` read as `what`, oldest first (by start time); the error of
// each one that cannot be read goes to `unreadable`.
std::vector<Journal> read_journal_dir(const std::string& dir, std::vector<std::string>& unreadable,
                                      JournalRead what = JournalRead::kList);
// A journal of a directory that could not be read: why, and its header when that much was
// read (the damage is after it). A directory that exists but cannot be listed is one too.
struct UnreadJournal {
  std::string path;
  std::string reason;
  std::optional<JournalHeader> header;
  // The file holds no header: empty, or cut short in it (a crash between creating the file
  // and writing its header). It records no change either, since every record synced syncs
  // the header before it: reported, and otherwise ignored.
  bool headerless = false;
};
std::vector<Journal> read_journal_dir(const std::string& dir, std::vector<UnreadJournal>& unread,
                                      JournalRead what = JournalRead::kList);

// The journals in `dir` of the runs `match` picks (by their header) that did not finish
// cleanly (no end record: killed or stopped; or failed entries) and that no finished
// rollback undid: their paths, oldest first. Their trees are half changed. Refused (naming the
// file) when a journal cannot be read and might be one of them: its header cannot be read, or
// it can and `match` picks it; a headerless one goes to `ignored` (to be warned of).
Result<std::vector<std::string>> unfinished_runs(const std::string& dir,
                                                 const std::function<bool(const JournalHeader&)>& match,
                                                 std::vector<UnreadJournal>& ignored);

// Which run `rollback --last` undoes: the newest of a volume root (a journal whose first
// root has this path, taken only with this device and inode), or of a compose project (a
// journal whose header names it, and whose project directory is `project_dir` (path, device
// and inode) when that is given). A rollback's own journal never matches.
struct JournalMatch {
  std::optional<JournalRoot> volume;
  std::string project;  // used when `volume` is not set; "" with `project_dir`: any name
  std::optional<JournalRoot> project_dir;
  // With `volume`: a journal of its path whose root has its inode but another device (read as
  // kSummary): the same filesystem remounted (it matches then), another filesystem mounted
  // there, or untold (no birth time to go by). None: it never matches, never untold.
  enum class Remount { kSame, kOther, kUntold };
  std::function<Remount(const Journal& summary)> remounted = {};
};
// The newest run of a project from one directory (none: a journal that does not record it).
struct ProjectRun {
  std::optional<JournalRoot> dir;
  int64_t start_ns = 0;
  std::string path;
};
struct LastJournal {
  std::string path;  // the newest matching journal; "" if none
  // None matched, but the newest run on that path changed another inode there: its header.
  std::optional<JournalHeader> other_inode;
  std::string other_path;  // its journal
  // A run newer than `path` (or than any, when none matched) on that path and inode but on
  // another device, which could not be told from this filesystem remounted (`remounted` said
  // kUntold, or its journal could not be read): the newest such journal. The caller must not
  // undo an older run in its place in silence. (A run told to be of another filesystem that
  // was mounted there is passed over.)
  std::string undecided;
  // A project matched by name alone has runs from more than one directory: the newest of
  // each, newest first, and no `path` (the name is anyone's to choose: which one is meant?).
  std::vector<ProjectRun> ambiguous;
  std::vector<std::string> unreadable;  // journals passed over: why each could not be read
};
LastJournal find_last_journal(const std::string& dir, const JournalMatch& match);

// Name of a new journal: "20261122T084900Z-tmp-jenkins_home.vpj".
std::string journal_file_name(const std::string& volume, int64_t start_ns);

}  // namespace volprep
