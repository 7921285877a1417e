#include "volprep/capability.h"

#include <cstring>

namespace volprep {
namespace {

constexpr uint32_t kRevisionMask = 0xff000000, kRevision1 = 0x01000000, kRevision2 = 0x02000000,
                   kRevision3 = 0x03000000, kEffective = 0x000001;
constexpr size_t kSize1 = 12, kSize2 = 20, kSize3 = 24;

uint32_t get_le32(const std::string& s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void put_le32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
}

}  // namespace

std::optional<FileCaps> FileCaps::parse(const std::string& raw) {
  if (raw.size() < 4) return std::nullopt;
  const uint32_t magic = get_le32(raw, 0);
  const uint32_t revision = magic & kRevisionMask;
  // Only the effective flag may be set beside the revision.
  if (magic & ~(kRevisionMask | kEffective)) return std::nullopt;
  FileCaps c;
  c.effective = magic & kEffective;
  if (revision == kRevision1 && raw.size() == kSize1) {
    c.permitted[0] = get_le32(raw, 4);
    c.inheritable[0] = get_le32(raw, 8);
    return c;
  }
  if (!((revision == kRevision2 && raw.size() == kSize2) || (revision == kRevision3 && raw.size() == kSize3)))
    return std::nullopt;
  c.revision = revision == kRevision3 ? 3 : 2;
  for (int i = 0; i < 2; ++i) {
    c.permitted[i] = get_le32(raw, 4 + 8 * size_t(i));
    c.inheritable[i] = get_le32(raw, 8 + 8 * size_t(i));
  }
  if (c.revision == 3) c.root_id = get_le32(raw, 20);
  return c;
}

std::string FileCaps::serialize() const {
  std::string out;
  out.reserve(kSize3);
  put_le32(out, (revision == 3 ? kRevision3 : kRevision2) | (effective ? kEffective : 0));
  for (int i = 0; i < 2; ++i) {
    put_le32(out, permitted[i]);
    put_le32(out, inheritable[i]);
  }
  if (revision == 3) put_le32(out, root_id);
  return out;
}

std::string FileCaps::describe() const {
  return revision == 3 ? "v3 rootid " + std::to_string(root_id) : "v2";
}

}  // namespace volprep
