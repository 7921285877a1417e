// Finding: something in the configuration worth telling the user, with where it was found.
#pragma once

#include <string>
#include <vector>

namespace volprep {

struct Finding {
  enum Level { kWarning, kError };
  Level level = kWarning;
  std::string where;    // "file:line", or empty
  std::string message;

  // "error: /etc/subuid:3: ..." — the form used in text output and JSON `warnings`.
  std::string text() const {
    std::string s = level == kError ? "error: " : "warning: ";
    if (!where.empty()) s += where + ": ";
    return s + message;
  }
};

inline bool has_error(const std::vector<Finding>& findings) {
  for (const auto& f : findings)
    if (f.level == Finding::kError) return true;
  return false;
}

}  // namespace volprep
