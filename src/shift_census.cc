#include <tbb/enumerable_thread_specific.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "volprep/shift.h"

namespace volprep {
namespace {

// Keeps the smallest few paths, sorted: the same samples whatever order the threads saw them in.
void add_sample(std::vector<std::string>& samples, std::string path) {
  auto at = std::lower_bound(samples.begin(), samples.end(), path);
  if (at == samples.end() && samples.size() >= kCensusSamples) return;
  if (at != samples.end() && *at == path) return;  // a directory listed twice
  samples.insert(at, std::move(path));
  if (samples.size() > kCensusSamples) samples.pop_back();
}

struct CensusState {
  Census census;
  std::unordered_map<uint64_t, UnmappedId> unmapped;  // by gid << 32 | id
  std::vector<HeldId> ids;                            // one entry's, reused
  std::vector<BareInodes::Key> bare;
};

class CensusVisitor final : public WalkVisitor {
 public:
  CensusVisitor(CensusState& state, const ShiftSpec& spec, const CensusOptions& options, bool listed)
      : s_(state), spec_(spec), options_(options), listed_(listed) {}

  Visit visit(const DirView& dir, std::span<Entry> entries) override {
    for (const Entry& e : entries) {
      if (e.skip || shift_skips(e.st)) continue;
      if (!e.name.empty() && S_ISDIR(e.st.mode) && nests_another(e.st)) {
        s_.census.nested = join_path(dir.path, e.name);
        s_.census.complete = false;
        return Visit::kQuit;
      }
      // By name in the open directory: nothing is changed on what is read here, and the run
      // reads everything again through each entry's pinned descriptor.
      const auto reads = shift_reads(e.st);
      std::optional<std::string> values[4];
      const char* names[std::size(values)];
      int rcs[std::size(values)];
      const size_t n = std::min(reads.size(), std::size(values));
      for (size_t i = 0; i < n; ++i) names[i] = reads[i].name;
      get_xattrs_at(dir.fd, e.name, std::span(names, n), listed_, std::span(values, n), std::span(rcs, n));
      bool readable = true;
      for (size_t i = 0; i < n; ++i) {
        const int rc = rcs[i];
        if (rc != 0 && rc != -ENODATA && !(rc == -EOPNOTSUPP && reads[i].unsupported_is_absent)) {
          s_.census.errors.push_back({join_path(dir.path, e.name), std::string(reads[i].unreadable) + ": " + std::strerror(-rc)});
          readable = false;
        }
      }
      if (!readable) continue;
      // What an unfinished shift changed, or began to, is not what the tree was: the run
      // finishes it (or leaves it alone) through its record, whatever the verdicts say.
      if (const JournalRecord* r = options_.resumed ? options_.resumed->find(e.st) : nullptr)
        if (ResumedShift::state(*r, e.st, std::span(values, n)) != ResumedShift::State::kBefore) {
          ++s_.census.resumed;
          continue;
        }
      if (listed_ && n > 0 && std::none_of(values, values + n, [](const auto& v) { return v.has_value(); }))
        s_.bare.push_back(BareInodes::key(e.st));
      ++s_.census.entries;
      s_.ids.clear();
      shift_held_ids(spec_, e.st, std::span(values, reads.size()), s_.ids);
      for (const HeldId& id : s_.ids) count(id, dir.path, e.name);
    }
    if (!options_.every_id && refuted()) {
      s_.census.complete = false;
      return Visit::kQuit;
    }
    return Visit::kContinue;
  }
  void vanished(const std::string&) override {}
  void skipped(const std::string&, Skip, const char*) override {}
  void error(const std::string& path, int err, const char* what) override {
    s_.census.errors.push_back({path, std::string(what) + ": " + std::strerror(err)});
  }

 private:
  bool nests_another(const EntryStat& st) const {
    for (const VolumeRoot* v : options_.others)
      if (v->file_name.empty() && v->st.same_inode(st)) return true;
    return false;
  }
  // The shifted-already verdict cannot hold any more, whatever the rest of the tree holds.
  bool refuted() const {
    const Census& c = s_.census;
    return spec_.reverse ? c.in_host_range > 0 : c.in_host_range < c.ids;
  }
  void count(const HeldId& id, const std::string& dir_path, const std::string& name) {
    const bool gid = id.is_gid();
    ++s_.census.ids;
    s_.census.in_host_range += gid ? spec_.gid_in_host_range(id.id) : spec_.uid_in_host_range(id.id);
    if (gid ? spec_.translate_gid(id.id) : spec_.translate_uid(id.id)) return;
    UnmappedId& u = s_.unmapped[uint64_t(gid) << 32 | id.id];
    u.gid = gid;
    u.id = id.id;
    ++u.count;
    add_sample(u.samples, join_path(dir_path, name));
  }

  CensusState& s_;
  const ShiftSpec& spec_;
  const CensusOptions& options_;
  // The tree's filesystem lists every attribute it holds: a listxattr says which to read.
  const bool listed_;
};

}  // namespace

namespace {
size_t hash_key(const BareInodes::Key& k) {
  uint64_t h = k.ino ^ (k.dev * 0x9e3779b97f4a7c15ull) ^ uint64_t(k.ctime_ns) * 0xbf58476d1ce4e5b9ull;
  h ^= h >> 31;  // the finalizer of splitmix64: every bit of the input reaches the low bits
  h *= 0x94d049bb133111ebull;
  return size_t(h ^ (h >> 29));
}
}  // namespace

size_t BareInodes::find(const Key& k) const {
  const size_t mask = index_.size() - 1;
  for (size_t at = hash_key(k) & mask;; at = (at + 1) & mask)
    if (index_[at] == 0 || keys_[index_[at] - 1] == k) return at;
}

void BareInodes::insert(const Key& k) {
  // An index of 2^32 - 1 keys at most: past that (some hundred gigabytes of them) a key is
  // not kept, and the run reads that inode's attributes again, as anywhere else.
  if (keys_.size() >= UINT32_MAX - 1) return;
  if (2 * (keys_.size() + 1) > index_.size()) {
    std::vector<uint32_t> old = std::exchange(index_, std::vector<uint32_t>(std::max<size_t>(64, 2 * index_.size())));
    for (uint32_t slot : old)
      if (slot) index_[find(keys_[slot - 1])] = slot;
  }
  const size_t at = find(k);
  if (index_[at]) return;  // a directory listed twice
  keys_.push_back(k);
  index_[at] = uint32_t(keys_.size());
}

void BareInodes::add(std::vector<Key> keys) {
  keys_.reserve(keys_.size() + keys.size());
  for (const Key& k : keys) insert(k);
}

void BareInodes::merge(BareInodes&& other) {
  if (keys_.empty()) {
    *this = std::move(other);
    return;
  }
  add(std::move(other.keys_));
}

bool BareInodes::contains(const EntryStat& st) const {
  if (index_.empty()) return false;
  return index_[find(key(st))] != 0;
}

Census take_census(const VolumeRoot& volume, const ShiftSpec& spec, const CensusOptions& options) {
  tbb::enumerable_thread_specific<CensusState> states;
  WalkOptions walk;
  walk.cross_filesystems = options.cross_filesystems;
  walk.in_flight = int(options.threads);
  const ExcludeSet excludes(options.excludes);
  if (!options.excludes.empty())
    walk.excluded = [&](std::string_view rel, bool is_dir) { return excludes.matches(rel, is_dir); };
  // The walk lists the root through its descriptor's file position: a descriptor of its own
  // (an open file description, not a dup), so the run after the census lists it from the start.
  VolumeRoot root;
  root.real = volume.real;
  root.file_name = volume.file_name;
  root.st = volume.st;
  root.fs_magic = volume.fs_magic;
  int fd = open_dir_at(volume.fd.get(), ".");
  if (fd < 0) {
    Census failed;
    failed.errors.push_back({"", std::string("cannot open it again: ") + std::strerror(-fd)});
    failed.complete = false;
    return failed;
  }
  root.fd.reset(fd);
  // A listxattr first where it is known to list what a get would find (a local filesystem,
  // the walk staying on it): one syscall for an entry with none of the attributes.
  const bool listed = is_local_fs(volume.fs_magic) && !options.cross_filesystems;
  walk_volume(root, std::move(walk),
              [&] { return std::make_unique<CensusVisitor>(states.local(), spec, options, listed); });

  // Merged, then sorted: the same verdict and message whatever the threads did.
  Census out;
  std::unordered_map<uint64_t, UnmappedId> unmapped;
  for (CensusState& s : states) {
    out.entries += s.census.entries;
    out.ids += s.census.ids;
    out.in_host_range += s.census.in_host_range;
    out.resumed += s.census.resumed;
    out.complete &= s.census.complete;
    if (out.nested.empty()) out.nested = s.census.nested;
    std::move(s.census.errors.begin(), s.census.errors.end(), std::back_inserter(out.errors));
    out.bare.add(std::move(s.bare));
    for (auto& [key, u] : s.unmapped) {
      UnmappedId& m = unmapped[key];
      m.gid = u.gid;
      m.id = u.id;
      m.count += u.count;
      for (auto& p : u.samples) add_sample(m.samples, std::move(p));
    }
  }
  for (auto& [key, u] : unmapped) out.unmapped.push_back(std::move(u));
  std::sort(out.unmapped.begin(), out.unmapped.end(),
            [](const UnmappedId& a, const UnmappedId& b) { return std::pair(a.gid, a.id) < std::pair(b.gid, b.id); });
  std::sort(out.errors.begin(), out.errors.end());
  return out;
}

}  // namespace volprep
