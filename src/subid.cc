#include "volprep/subid.h"

#include <algorithm>
#include <optional>

namespace volprep {
namespace {

std::string_view trim(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_colon(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t colon = s.find(':', start);
    parts.push_back(s.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return parts;
}

// Go's strconv.Atoi, as Docker 20.10 to 27 read the numbers (moby v20.10.24
// pkg/idtools/idtools.go:223): an optional sign, then decimal digits, leading zeros allowed,
// within int64. The value, or Go's reason ("invalid syntax", "value out of range").
struct GoAtoi {
  int64_t value = 0;
  const char* error = nullptr;
};
GoAtoi go_atoi(std::string_view field) {
  std::string_view digits = field;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return {0, "invalid syntax"};
  uint64_t v = 0;
  const uint64_t limit = negative ? uint64_t(INT64_MAX) + 1 : uint64_t(INT64_MAX);
  for (char c : digits) {
    if (v > (limit - uint64_t(c - '0')) / 10)
      return {negative ? INT64_MIN : INT64_MAX, "value out of range"};  // Go's value with it
    v = v * 10 + uint64_t(c - '0');
  }
  return {negative ? int64_t(0 - v) : int64_t(v), nullptr};
}

// Go's strconv.ParseInt(s, 10, 64), as Docker 28 reads the numbers: it ignores the error, so
// a syntax error reads as 0 and an out-of-range number as the int64 limit of its sign (what
// go_atoi returns with them). The value Docker reads, and whether it is a valid 32-bit id as
// written.
std::pair<int64_t, bool> docker_lenient_number(std::string_view field) {
  if (auto v = parse_u32(field)) return {*v, true};
  return {go_atoi(field).value, false};
}

}  // namespace

Result<SubidLookup> SubidFile::lookup(const std::string& user, uint32_t uid,
                                      SubidRules rules) const {
  return lookup_lines(user, std::to_string(uid), rules);
}

Result<SubidLookup> SubidFile::lookup_key(const std::string& key, SubidRules rules) const {
  return lookup_lines(key, key, rules);
}

Result<SubidLookup> SubidFile::all_lines(SubidRules rules) const {
  return lookup_lines({}, {}, rules);
}

Result<SubidLookup> SubidFile::lookup_lines(const std::string& user, const std::string& uid_text,
                                            SubidRules rules) const {
  struct Keyed {
    SubidRange range;
    bool by_uid;
  };
  std::vector<Keyed> matched;
  std::vector<Finding> findings;
  // Docker 20.10 reads the file twice, keyed by uid and then (only when that found nothing)
  // by name, so a bad number in a name-keyed line matters only when no line is uid-keyed.
  std::optional<Error> uid_error, name_error;
  std::optional<Error> first_error;  // of either kind, for the one-pass readers

  std::string_view text = content_;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;

    const std::string where = origin_ + ":" + std::to_string(line_no);
    auto fields = split_colon(line);
    const bool strict = rules != SubidRules::kDocker28;
    if (fields.size() != 3) {
      if (strict) {
        // The pass that runs first stops at its own bad number before this line.
        if (rules == SubidRules::kDocker2010 && uid_error) return *uid_error;
        if (rules == SubidRules::kDocker2010Early && name_error) return *name_error;
        if (rules == SubidRules::kGoIdtools && first_error) return *first_error;
        return config_error("Cannot parse subuid/gid information: Format not correct for " +
                            display_path_ + " file (" + where + ": \"" + std::string(line) +
                            "\")");
      }
      findings.push_back({Finding::kWarning, where,
                          "\"" + std::string(line) + "\" has " + std::to_string(fields.size()) +
                              " field(s), not NAME:START:COUNT; Docker reads missing ones as 0 "
                              "and ignores extra ones"});
    }
    const bool every_line = user.empty() && uid_text.empty();
    bool by_uid = !every_line && fields[0] == uid_text;
    if (!every_line && fields[0] != user && !by_uid) continue;

    SubidRange range{0, 0, where, std::string(line)};
    if (fields.size() < 2)
      findings.push_back({Finding::kError, where,
                          "no start field; Docker reads the start as 0, which maps container "
                          "ids onto host root's"});
    bool bad_number = false;
    for (size_t f = 1; f <= 2 && f < fields.size() && !bad_number; ++f) {
      uint32_t& out = f == 1 ? range.start : range.count;
      if (strict) {
        auto [value, go_error] = go_atoi(fields[f]);
        auto& pending = by_uid ? uid_error : name_error;
        auto remember_first = [&] {
          if (!first_error) first_error = pending;
        };
        if (go_error) {
          if (!pending)
            pending = config_error("String to int conversion failed during subuid/gid parsing of " +
                                   display_path_ + ": strconv.Atoi: parsing \"" +
                                   std::string(fields[f]) + "\": " + go_error + " (" + where + ")");
          remember_first();
          bad_number = true;
          continue;
        }
        // Docker takes a number outside the ids (a sign, 2^32 and beyond) and fails later,
        // when the kernel or chown gets it.
        if (value < 0 || value > int64_t(UINT32_MAX)) {
          if (!pending)
            pending = config_error(where + ": \"" + std::string(line) + "\": Docker reads the " +
                                   (f == 1 ? "start " : "count ") + std::to_string(value) +
                                   ", which is not an id in 0..4294967295; no kernel takes the "
                                   "map it makes");
          remember_first();
          bad_number = true;
          continue;
        }
        out = uint32_t(value);
        continue;
      }
      auto [value, valid] = docker_lenient_number(fields[f]);
      out = value < 0 || value > UINT32_MAX ? 0 : uint32_t(value);
      if (valid) continue;
      std::string msg = std::string("the ") + (f == 1 ? "start" : "count") + " \"" +
                        std::string(fields[f]) + "\" is not an id in 0..4294967295; Docker reads it as " +
                        std::to_string(value);
      if (f == 1 && value == 0) msg += ", which maps container ids onto host root's";
      findings.push_back({Finding::kError, where, std::move(msg)});
    }
    if (bad_number) continue;
    if (range.count == 0)
      findings.push_back({Finding::kWarning, where,
                          "\"" + range.line + "\" gives a count of 0; the kernel refuses the "
                          "resulting map"});
    matched.push_back({std::move(range), by_uid});
  }

  // Docker 28 and the one-pass Go readers use every line keyed by name or uid, in file order.
  // Docker 20.10.4 to 27 use the uid-keyed lines, and the name-keyed ones only when there are
  // none (moby v20.10.4 pkg/idtools/idtools_unix.go:263). 20.10.0 to 20.10.3 read the file by
  // name, then by uid, and use both (v20.10.0 pkg/idtools/idtools_unix.go:244-262).
  bool uid_only = rules == SubidRules::kDocker2010 &&
                  std::any_of(matched.begin(), matched.end(), [](auto& k) { return k.by_uid; });
  if (rules == SubidRules::kGoIdtools && first_error) return *first_error;
  if (rules == SubidRules::kDocker2010Early && name_error) return *name_error;
  if (uid_error) return *uid_error;
  if (name_error && !uid_only) return *name_error;
  if (rules == SubidRules::kDocker2010Early)
    std::stable_partition(matched.begin(), matched.end(), [](auto& k) { return !k.by_uid; });
  SubidLookup result;
  for (auto& k : matched)
    if (!uid_only || k.by_uid) result.ranges.push_back(std::move(k.range));
  result.findings = std::move(findings);
  auto overlaps = overlapping_ranges(result.ranges);
  result.findings.insert(result.findings.end(), overlaps.begin(), overlaps.end());
  return result;
}

Result<IdMap> ranges_to_map(const std::vector<SubidRange>& ranges, uint32_t first_container) {
  std::vector<Extent> extents;
  uint64_t next = first_container;
  for (const auto& r : ranges) {
    // Each range checked keeps the running total within 32 bits.
    Extent e{uint32_t(next), r.start, r.count};
    if (auto why = reaches_last_id(e); !why.empty())
      return config_error(r.where + ": \"" + r.line + "\": " + why);
    extents.push_back(e);
    next += r.count;
  }
  return IdMap(std::move(extents));
}

std::vector<Finding> overlapping_ranges(const std::vector<SubidRange>& ranges) {
  auto end_of = [&](size_t i) { return uint64_t(ranges[i].start) + ranges[i].count; };
  std::vector<size_t> by_start;
  for (size_t i = 0; i < ranges.size(); ++i)
    if (ranges[i].count) by_start.push_back(i);
  std::sort(by_start.begin(), by_start.end(), [&](size_t a, size_t b) {
    return std::pair(ranges[a].start, a) < std::pair(ranges[b].start, b);
  });
  // Swept by start, a range overlaps an earlier-starting one exactly when it starts before the
  // farthest end so far; a pair is reported once, at the range later in the file.
  std::vector<std::optional<size_t>> overlapped(ranges.size());
  std::optional<size_t> farthest;
  for (size_t i : by_start) {
    if (farthest && ranges[i].start < end_of(*farthest)) {
      auto [first, later] = std::minmax(i, *farthest);
      if (!overlapped[later]) overlapped[later] = first;
    }
    if (!farthest || end_of(i) > end_of(*farthest)) farthest = i;
  }
  std::vector<Finding> out;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (!overlapped[i]) continue;
    const auto &a = ranges[i], &b = ranges[*overlapped[i]];
    out.push_back({Finding::kWarning, a.where,
                   "range \"" + a.line + "\" overlaps \"" + b.line + "\" (" + b.where +
                       "); the kernel refuses the resulting map"});
  }
  return out;
}

}  // namespace volprep
