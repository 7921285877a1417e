// IdMap: a user-namespace id mapping, as in /proc/PID/uid_map.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "volprep/error.h"

namespace volprep {

using id_t32 = uint32_t;

struct Extent {
  uint32_t container = 0;
  uint32_t host = 0;
  uint32_t count = 0;
  bool operator==(const Extent&) const = default;
};

class IdMap {
 public:
  // Linux 4.15 and later accept this many extents per map.
  static constexpr size_t kMaxExtents = 340;
  // Linux before 4.15 accepts at most this many.
  static constexpr size_t kOldKernelExtents = 5;

  IdMap() = default;
  explicit IdMap(std::vector<Extent> extents) : extents_(std::move(extents)) {}

  // The identity map of the initial namespace: "0 0 4294967295".
  static IdMap identity();

  // Parses the kernel's format: one "container host count" triple per line,
  // fields separated by any amount of white space. `origin` names the source in messages.
  static Result<IdMap> parse_proc(std::string_view text, const std::string& origin);

  // Checks the rules the kernel applies when the map is written: count > 0, no overlap in
  // either column, no range past 2^32-1, at most kMaxExtents extents.
  // Returns an empty string when valid, else the reason.
  std::string validate() const;

  std::optional<uint32_t> to_host(uint32_t container_id) const;
  std::optional<uint32_t> to_container(uint32_t host_id) const;

  // The kernel's format, one extent a line, each line ending in '\n'.
  std::string to_proc() const;
  // One line, extents separated by ", ", for messages.
  std::string describe() const;

  const std::vector<Extent>& extents() const { return extents_; }
  bool empty() const { return extents_.empty(); }
  bool is_identity() const;
  bool operator==(const IdMap&) const = default;

 private:
  std::vector<Extent> extents_;
};

// Why an extent is unusable whatever --force says: in either column it reaches id 4294967295,
// (uid_t)-1, which chown(2) takes for "leave unchanged", so every change onto it would be a
// silent no-op. Empty when it is usable.
std::string reaches_last_id(const Extent& e);

// Parses an unsigned 32-bit decimal id; rejects signs, spaces, empty text and overflow.
std::optional<uint32_t> parse_u32(std::string_view text);

}  // namespace volprep
