#include "volprep/bolt.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>

namespace volprep {

namespace {

constexpr uint32_t kMagic = 0xED0CDAED;
constexpr uint32_t kVersion = 2;
constexpr uint16_t kBranch = 0x01, kLeaf = 0x02, kMeta = 0x04;
constexpr uint32_t kBucketLeaf = 0x01;
constexpr size_t kPageHeader = 16, kElement = 16, kMetaSize = 64, kBucketHeader = 16;
constexpr uint32_t kMinPageSize = 512, kMaxPageSize = 64 << 10;
// bbolt's trees are a few levels deep; anything deeper is a cycle or damage.
constexpr int kMaxDepth = 32;

uint64_t get(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[at + size_t(i)]);
  return v;
}

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

struct Meta {
  uint32_t page_size = 0;
  uint64_t root = 0, high_water = 0, txid = 0;
};

// The meta in `page` (a meta page's first bytes), if it is valid.
std::optional<Meta> parse_meta(std::string_view page) {
  if (page.size() < kPageHeader + kMetaSize || !(get(page, 8, 2) & kMeta)) return std::nullopt;
  std::string_view m = page.substr(kPageHeader, kMetaSize);
  if (get(m, 0, 4) != kMagic || get(m, 4, 4) != kVersion || fnv1a64(m.substr(0, 56)) != get(m, 56, 8))
    return std::nullopt;
  Meta out{uint32_t(get(m, 8, 4)), get(m, 16, 8), get(m, 40, 8), get(m, 48, 8)};
  const uint32_t ps = out.page_size;
  if (ps < kMinPageSize || ps > kMaxPageSize || (ps & (ps - 1))) return std::nullopt;
  return out;
}

}  // namespace

// One read of a bucket: each page read once (a page reached twice is a cycle, or two trees
// sharing a page: damage either way), and no more than kMaxBoltBytes in all.
struct BoltFile::Walk {
  const BoltFile& file;
  std::unordered_set<uint64_t> seen;
  uint64_t budget = kMaxBoltBytes;

  // The items of the tree whose root is page `id`, appended to `out`.
  Result<bool> tree(uint64_t id, int depth, std::vector<BoltItem>& out) {
    const std::string where = "page " + std::to_string(id);
    if (depth > kMaxDepth) return file.bad(where + ": the tree is deeper than " + std::to_string(kMaxDepth) + " levels");
    if (id < 2 || id >= file.high_water_)
      return file.bad(where + ": a page id outside the file's pages (2 to " + std::to_string(file.high_water_) + ")");
    if (!seen.insert(id).second) return file.bad(where + ": reached twice (a cycle in the tree)");
    const uint64_t ps = file.page_size_;
    std::string page;
    if (!file.read(id * ps, kPageHeader, page)) return file.bad(where + ": past the end of the file");
    if (get(page, 0, 8) != id) return file.bad(where + ": its header says page " + std::to_string(get(page, 0, 8)));
    const uint64_t bytes = (get(page, 12, 4) + 1) * ps;  // with its overflow pages
    if (id + get(page, 12, 4) >= file.high_water_ || bytes > budget || !file.read(id * ps, bytes, page))
      return file.bad(where + ": its overflow (" + std::to_string(get(page, 12, 4)) + " pages) runs past the file");
    budget -= bytes;
    const uint16_t flags = uint16_t(get(page, 8, 2));
    if (flags & kLeaf) return file.leaf(page, where, out);
    if (!(flags & kBranch)) return file.bad(where + ": neither a branch nor a leaf page (flags " + std::to_string(flags) + ")");
    const uint64_t count = get(page, 10, 2);
    if (count == 0 || kPageHeader + count * kElement > page.size())
      return file.bad(where + ": " + std::to_string(count) + " elements do not fit the page");
    for (uint64_t i = 0; i < count; ++i) {
      if (auto r = tree(get(page, kPageHeader + i * kElement + 8, 8), depth + 1, out); !r) return r;
    }
    return true;
  }

  // A bucket's items from its value: its header, and its inline page when its root is 0.
  Result<std::vector<BoltItem>> bucket(std::string_view value, const std::string& where) {
    std::vector<BoltItem> out;
    if (value.size() < kBucketHeader) return file.bad(where + ": a bucket value shorter than a bucket header");
    if (uint64_t root = get(value, 0, 8); root != 0) {
      if (auto r = tree(root, 0, out); !r) return r.error();
      return out;
    }
    std::string_view page = value.substr(kBucketHeader);
    if (page.size() < kPageHeader || !(get(page, 8, 2) & kLeaf))
      return file.bad(where + ": an inline bucket whose page is not a leaf");
    if (auto r = file.leaf(page, where + " (inline)", out); !r) return r.error();
    return out;
  }
};

Result<BoltFile> BoltFile::open(int fd, std::string name) {
  BoltFile f;
  f.fd_ = fd;
  f.name_ = std::move(name);
  struct stat st;
  if (::fstat(fd, &st) != 0) return config_error(f.name_ + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return config_error(f.name_ + ": not a regular file");
  f.size_ = uint64_t(st.st_size);
  if (auto r = f.read_metas(); !r) return r.error();
  return f;
}

Result<BoltFile> BoltFile::from_bytes(std::string bytes, std::string name) {
  BoltFile f;
  f.bytes_ = std::move(bytes);
  f.size_ = f.bytes_.size();
  f.name_ = std::move(name);
  if (auto r = f.read_metas(); !r) return r.error();
  return f;
}

Error BoltFile::bad(const std::string& why) const { return config_error(name_ + ": not a bbolt file Docker wrote: " + why); }

bool BoltFile::read(uint64_t offset, uint64_t size, std::string& out) const {
  if (offset > size_ || size > size_ - offset) return false;
  if (fd_ < 0) {
    out.assign(bytes_, size_t(offset), size_t(size));
    return true;
  }
  out.resize(size_t(size));
  for (uint64_t done = 0; done < size;) {
    ssize_t n = ::pread(fd_, out.data() + done, size_t(size - done), off_t(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // an error, or the file shrank
    done += uint64_t(n);
  }
  return true;
}

Result<bool> BoltFile::read_metas() {
  // Meta 0 names the page size; when it is damaged, meta 1 is looked for where each page size
  // would put it (as bbolt does).
  std::string page;
  std::optional<Meta> m0, m1;
  if (read(0, kPageHeader + kMetaSize, page)) m0 = parse_meta(page);
  for (uint32_t ps = m0 ? m0->page_size : kMinPageSize; ps <= kMaxPageSize && !m1; ps *= 2) {
    if (read(ps, kPageHeader + kMetaSize, page))
      if (auto m = parse_meta(page); m && m->page_size == ps) m1 = m;
    if (m0) break;
  }
  if (!m0 && !m1) return bad("neither meta page is valid (magic, version 2, checksum)");
  const Meta& m = !m1 || (m0 && m0->txid >= m1->txid) ? *m0 : *m1;
  page_size_ = m.page_size;
  root_ = m.root;
  high_water_ = m.high_water;
  txid_ = m.txid;
  if (high_water_ > size_ / page_size_)
    return bad("its meta counts " + std::to_string(high_water_) + " pages, the file holds " +
               std::to_string(size_ / page_size_));
  return true;
}

Result<bool> BoltFile::leaf(std::string_view page, const std::string& where, std::vector<BoltItem>& out) const {
  const uint64_t count = get(page, 10, 2);
  if (kPageHeader + count * kElement > page.size())
    return bad(where + ": " + std::to_string(count) + " elements do not fit the page");
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t at = kPageHeader + i * kElement;
    const uint64_t key = at + get(page, at + 4, 4), ksize = get(page, at + 8, 4), vsize = get(page, at + 12, 4);
    if (key > page.size() || ksize + vsize > page.size() - key)
      return bad(where + ": element " + std::to_string(i) + " runs past the page");
    BoltItem& item = out.emplace_back();
    item.key = page.substr(size_t(key), size_t(ksize));
    item.value = page.substr(size_t(key + ksize), size_t(vsize));
    item.bucket = get(page, at, 4) & kBucketLeaf;
  }
  return true;
}

Result<std::optional<std::vector<BoltItem>>> BoltFile::bucket(std::string_view name) const {
  Walk walk{*this, {}, kMaxBoltBytes};
  std::vector<BoltItem> top;
  if (auto r = walk.tree(root_, 0, top); !r) return r.error();
  for (const auto& item : top) {
    if (item.key != name) continue;
    if (!item.bucket) return bad("the key \"" + item.key + "\" is not a bucket");
    auto items = walk.bucket(item.value, "bucket " + item.key);
    if (!items) return items.error();
    return std::optional(std::move(*items));
  }
  return std::optional<std::vector<BoltItem>>();
}

}  // namespace volprep
