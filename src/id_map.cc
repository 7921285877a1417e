#include "volprep/id_map.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace volprep {

std::optional<uint32_t> parse_u32(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + uint64_t(c - '0');
  }
  if (value > UINT32_MAX) return std::nullopt;
  return uint32_t(value);
}

std::string reaches_last_id(const Extent& e) {
  for (auto [column, start] : {std::pair{"container", e.container}, std::pair{"host", e.host}}) {
    uint64_t last = uint64_t(start) + e.count - 1;
    if (e.count && last >= UINT32_MAX)
      return std::string(column) + " ids " + std::to_string(start) + ".." + std::to_string(last) +
             " reach 4294967295, (uid_t)-1, which chown takes for \"leave unchanged\"; the "
             "last usable id is 4294967294";
  }
  return {};
}

IdMap IdMap::identity() { return IdMap({{0, 0, UINT32_MAX}}); }

bool IdMap::is_identity() const {
  return extents_.size() == 1 && extents_[0].container == 0 && extents_[0].host == 0 &&
         extents_[0].count == UINT32_MAX;
}

Result<IdMap> IdMap::parse_proc(std::string_view text, const std::string& origin) {
  std::vector<Extent> extents;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;

    std::vector<std::string_view> fields;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      size_t start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
      if (i > start) fields.push_back(line.substr(start, i - start));
    }
    if (fields.empty()) continue;
    auto where = origin + ":" + std::to_string(line_no);
    if (fields.size() != 3)
      return config_error(where + ": expected \"CONTAINER HOST COUNT\", got \"" +
                          std::string(line) + "\"");
    Extent e;
    uint32_t* out[] = {&e.container, &e.host, &e.count};
    for (int f = 0; f < 3; ++f) {
      auto v = parse_u32(fields[f]);
      if (!v)
        return config_error(where + ": not a number in 0..4294967295: \"" +
                            std::string(fields[f]) + "\"");
      *out[f] = *v;
    }
    if (auto why = reaches_last_id(e); !why.empty()) return config_error(where + ": " + why);
    extents.push_back(e);
  }
  return IdMap(std::move(extents));
}

std::string IdMap::validate() const {
  if (extents_.empty()) return "the map is empty";
  if (extents_.size() > kMaxExtents)
    return "the map has " + std::to_string(extents_.size()) + " extents; the kernel accepts at most " +
           std::to_string(kMaxExtents);
  for (size_t i = 0; i < extents_.size(); ++i) {
    const Extent& e = extents_[i];
    auto name = "extent \"" + std::to_string(e.container) + " " + std::to_string(e.host) + " " +
                std::to_string(e.count) + "\"";
    if (e.count == 0) return name + " has a count of 0";
    // The kernel refuses (u32)-1 as a start and any range that reaches or wraps past it.
    if (uint64_t(e.container) + e.count > UINT32_MAX || uint64_t(e.host) + e.count > UINT32_MAX)
      return name + " runs past 4294967294";
    for (size_t j = 0; j < i; ++j) {
      const Extent& o = extents_[j];
      auto overlaps = [](uint64_t a, uint64_t an, uint64_t b, uint64_t bn) {
        return a < b + bn && b < a + an;
      };
      auto other = "extent \"" + std::to_string(o.container) + " " + std::to_string(o.host) + " " +
                   std::to_string(o.count) + "\"";
      if (overlaps(e.container, e.count, o.container, o.count))
        return name + " overlaps " + other + " in the container ids";
      if (overlaps(e.host, e.count, o.host, o.count))
        return name + " overlaps " + other + " in the host ids";
    }
  }
  return {};
}

std::optional<uint32_t> IdMap::to_host(uint32_t id) const {
  for (const Extent& e : extents_)
    if (id >= e.container && uint64_t(id) < uint64_t(e.container) + e.count)
      return e.host + (id - e.container);
  return std::nullopt;
}

std::optional<uint32_t> IdMap::to_container(uint32_t id) const {
  for (const Extent& e : extents_)
    if (id >= e.host && uint64_t(id) < uint64_t(e.host) + e.count)
      return e.container + (id - e.host);
  return std::nullopt;
}

std::string IdMap::to_proc() const {
  std::ostringstream out;
  for (const Extent& e : extents_) out << e.container << ' ' << e.host << ' ' << e.count << '\n';
  return out.str();
}

std::string IdMap::describe() const {
  if (extents_.empty()) return "(empty)";
  std::string s;
  for (const Extent& e : extents_) {
    if (!s.empty()) s += ", ";
    s += std::to_string(e.container) + " " + std::to_string(e.host) + " " + std::to_string(e.count);
  }
  return s;
}

}  // namespace volprep
