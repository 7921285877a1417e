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

  // "/etc/subuid:3: ...": where and what, for a log line that says its level itself.
  std::string located() const { return where.empty() ? message : where + ": " + message; }
  // "error: /etc/subuid:3: ..." — the form used in text output and JSON `warnings`.
  std::string text() const { return (level == kError ? "error: " : "warning: ") + located(); }
};

inline bool has_error(const std::vector<Finding>& findings) {
  for (const auto& f : findings)
    if (f.level == Finding::kError) return true;
  return false;
}

}  // namespace volprep
