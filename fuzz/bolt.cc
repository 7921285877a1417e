// The bbolt reader and Docker's volume records, as migrate-volumes reads metadata.db. When the
// input's first byte (the low byte of meta page 0's id, which nothing reads) is even, the
// harness rewrites both metas' checksums (at the page size meta 0 names), so that mutations
// reach the pages behind them instead of dying at the checksum.
#include <cstring>

#include "fuzz_input.h"
#include "volprep/bolt.h"
#include "volprep/volume_store.h"

using namespace volprep;

namespace {

uint64_t fnv1a64(const char* p, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
  return h;
}

void fix_checksum(std::string& file, size_t meta) {
  if (file.size() < meta + 64) return;
  uint64_t sum = fnv1a64(file.data() + meta, 56);
  std::memcpy(file.data() + meta + 56, &sum, 8);  // little endian, as bbolt writes it
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string file(fuzz::as_text(data, size));
  if (!file.empty() && !(file[0] & 1)) {
    fix_checksum(file, 16);
    if (file.size() >= 28) {
      uint32_t ps;
      std::memcpy(&ps, file.data() + 24, 4);
      if (ps >= 512 && ps <= 65536) fix_checksum(file, size_t(ps) + 16);
    }
  }
  auto f = BoltFile::from_bytes(std::move(file), "fuzz.db");
  if (!f) return 0;
  auto items = f->bucket("volumes");
  if (!items || !*items) return 0;
  for (const auto& item : **items)
    if (auto r = parse_volume_record(item.key, item.value)) {
      (void)describe_labels(*r);
      (void)create_arguments(*r);
      (void)labels_after_move(*r, "fuzz.db", &*r, "/data");
    }
  return 0;
}
