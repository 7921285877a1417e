// A read-only reader of a bbolt (BoltDB) file, the format of dockerd's volume store
// (<data-root>/volumes/metadata.db): only what reading one top-level bucket needs. The file is
// root's, but its bytes are treated as untrusted: every offset, page id, count and overflow is
// checked against the page and the file, a page reached twice (a cycle) is refused, and the
// tree's depth and the bytes read are bounded.
//
// The format (etcd-io/bbolt page.go, bucket.go, db.go): pages of the meta's page size; page id
// N at offset N * page size. A page: u64 id, u16 flags (1 branch, 2 leaf, 4 meta, 0x10
// freelist), u16 count, u32 overflow (the pages after it that it spans), then its data. Pages 0
// and 1 are metas (magic 0xED0CDAED, version 2, page size, flags, the root bucket (u64 root
// page, u64 sequence), freelist page, high-water page id, txid, FNV-1a 64 checksum of the
// fields before it): the valid one with the higher txid is current. A branch page holds count
// elements (u32 pos, u32 key size, u64 child page), a leaf page count elements (u32 flags
// (1: a bucket), u32 pos, u32 key size, u32 value size); pos is from the element's start. A
// bucket's value is its header (u64 root page, u64 sequence) and, when the root page is 0,
// the bucket's one leaf page inline after it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "volprep/error.h"

namespace volprep {

struct BoltItem {
  std::string key, value;
  bool bucket = false;  // a nested bucket: `value` is its header (and inline page)
};

// The most bytes a reader reads from one file: far more than any volume store holds.
inline constexpr uint64_t kMaxBoltBytes = 256 << 20;

class BoltFile {
 public:
  // Reads the metas from `fd` (borrowed: it must stay open while the reader is used; read
  // with pread, its offset untouched). `name` names the file in errors.
  static Result<BoltFile> open(int fd, std::string name);
  // The same over bytes in memory (tests, fuzzing).
  static Result<BoltFile> from_bytes(std::string bytes, std::string name);

  uint32_t page_size() const { return page_size_; }
  uint64_t txid() const { return txid_; }
  // The items of the top-level bucket `name`, in the file's (key) order; nullopt when the file
  // has no such bucket. An error names the file and the page that is damaged.
  Result<std::optional<std::vector<BoltItem>>> bucket(std::string_view name) const;

 private:
  BoltFile() = default;
  struct Walk;  // one read of a bucket: the pages seen, the bytes left to read
  Result<bool> read_metas();
  bool read(uint64_t offset, uint64_t size, std::string& out) const;
  Error bad(const std::string& why) const;
  // Appends the items of a leaf page (whole, or a bucket's inline page) to `out`.
  Result<bool> leaf(std::string_view page, const std::string& where, std::vector<BoltItem>& out) const;

  int fd_ = -1;
  std::string bytes_;  // from_bytes
  uint64_t size_ = 0;
  std::string name_;
  uint32_t page_size_ = 0;
  uint64_t root_ = 0, high_water_ = 0, txid_ = 0;
};

}  // namespace volprep
