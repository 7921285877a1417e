// The census before a shift: every id the shift would translate in a volume, read before
// anything changes. A shift is not idempotent, so the two things that make it wrong are
// refused with nothing changed: a tree that reads as shifted already, and ids the map cannot
// translate. The policy that makes the changes is in policy.h (make_shift_policy).
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "volprep/engine.h"
#include "volprep/journal.h"
#include "volprep/policy.h"
#include "volprep/volume.h"

namespace volprep {

// An unfinished shift read back from its journals: each inode it recorded (by device, inode
// and birth time), with the state before its change and the one after. A rerun finishes
// that shift: an inode in its after-state is shifted already, one in its before-state is
// shifted as any other, one between the two (killed between the chown and the ACL, say) is
// brought to its after-state, and one in any other state was changed since: left alone.
class ResumedShift {
 public:
  enum class State : uint8_t { kBefore, kBetween, kAfter, kConflict };
  // The oldest journal first: an inode's first record is kept (a later run that resumed it
  // recorded a state between as its before-state).
  void add(const JournalRecord& r);
  const JournalRecord* find(const EntryStat& st) const;
  size_t size() const { return records_.size(); }
  // Where `st` stands from what its stat shows (owner, group, mode): kBetween when it may
  // be any but kConflict.
  static State stat_state(const JournalRecord& r, const EntryStat& st);
  // Where it stands, its xattrs read as shift_reads(st) says into `values`.
  static State state(const JournalRecord& r, const EntryStat& st, std::span<const std::optional<std::string>> values);

 private:
  struct Key {
    uint64_t dev, ino;
    int64_t btime_ns;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<uint64_t>()(k.ino * 0x9e3779b97f4a7c15ull ^ k.dev ^ uint64_t(k.btime_ns)); }
  };
  std::unordered_map<Key, JournalRecord, KeyHash> records_;
};

struct CensusOptions {
  bool cross_filesystems = false;
  unsigned threads = 0;  // --threads (0: as the filesystem wants, as the run after it)
  std::vector<std::string> excludes;  // as the run's: an excluded entry is not counted
  // False: every id is not needed (no --unmapped=refuse), only the shifted-already verdict:
  // the census stops at the first id that refutes it, most often the first entry.
  bool every_id = true;
  // The other volumes of the command: a tree that holds one would shift it twice.
  std::vector<const VolumeRoot*> others;
  // An unfinished shift being finished: an inode it shifted, or began to, is not counted.
  const ResumedShift* resumed = nullptr;
};

// Inodes the census read without any of the attributes the shift reads, each with its ctime
// and birth time: while its ctime stays (every change of an attribute moves it) the run need
// not read them again through its pin. Kept only on a local filesystem (is_local_fs), where a
// stat shows every change at once. A hash set: 32 bytes an inode, and 4 to 8 of index.
class BareInodes {
 public:
  struct Key {
    uint64_t dev = 0, ino = 0;
    int64_t ctime_ns = 0, btime_ns = 0;
    auto operator<=>(const Key&) const = default;
  };
  static Key key(const EntryStat& st) {
    return {uint64_t(st.dev_major) << 32 | st.dev_minor, st.ino, st.ctime_ns, st.btime_ns};
  }
  // Adds keys (any order; one added already is not added twice).
  void add(std::vector<Key> keys);
  void merge(BareInodes&& other);
  bool contains(const EntryStat& st) const;
  size_t size() const { return keys_.size(); }

 private:
  void insert(const Key& k);
  size_t find(const Key& k) const;  // the index slot holding k, or the empty one it would go in
  std::vector<Key> keys_;           // as added
  // Open addressing over keys_, linear probing: 1 + a key's position, 0 for an empty slot.
  // Its size a power of two, at most half full.
  std::vector<uint32_t> index_;
};

struct UnmappedId {
  bool gid = false;
  uint32_t id = 0;
  uint64_t count = 0;                // times seen: owners, groups, ACL entries, capabilities
  std::vector<std::string> samples;  // the first few paths (sorted), relative to the root
};

struct Census {
  uint64_t entries = 0;  // examined (devices and skipped entries are not)
  uint64_t ids = 0;      // ids seen on them
  uint64_t in_host_range = 0;   // of those, in the map's host range
  uint64_t resumed = 0;         // entries an unfinished shift changed (or began to): not counted
  std::vector<UnmappedId> unmapped;  // sorted by uid first, then id
  std::vector<Note> errors;     // entries whose ids could not all be read
  std::string nested;           // the path of another volume of the command found in the tree
  bool complete = true;         // false: stopped early (every_id false, or nested)
  BareInodes bare;              // what was read without attributes (local filesystems only)

  // Every id lies in the host range (forward), or none does (reverse).
  bool shifted_already(bool reverse) const {
    return ids > 0 && (reverse ? in_host_range == 0 : in_host_range == ids);
  }
};

inline constexpr size_t kCensusSamples = 3;

Census take_census(const VolumeRoot& volume, const ShiftSpec& spec, const CensusOptions& options);

// The shift policy (make_shift_policy) that reads nothing of an inode `bare` holds as it is
// now: one read by the census, unchanged since.
// Finishing an unfinished shift (`resumed`): an inode it recorded is brought to its recorded
// after-state, or left alone (ResumedShift).
std::unique_ptr<Policy> make_shift_policy(const ShiftSpec& spec, std::shared_ptr<const BareInodes> bare,
                                          std::shared_ptr<const ResumedShift> resumed = nullptr);

}  // namespace volprep
