// Splitting one libFuzzer input into the several values a parser takes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace volprep::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The pieces of `text` between `sep` bytes (a trailing empty piece is kept).
inline std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  for (size_t start = 0;;) {
    size_t end = text.find(sep, start);
    out.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

// What a command line can carry: argv strings end at the first NUL.
inline std::string c_string(std::string_view s) { return std::string(s.substr(0, s.find('\0'))); }

// Writes the pieces of `text` between lines "%%" to DIR/NAME for each of `names` in turn
// (missing pieces: empty files), for targets that read several files.
inline void write_parts(std::string_view text, const std::string& dir, const std::vector<const char*>& names) {
  size_t start = 0;
  for (const char* name : names) {
    size_t end = start <= text.size() ? text.find("\n%%\n", start) : std::string_view::npos;
    std::string_view part = start <= text.size() ? text.substr(start, end == std::string_view::npos ? end : end - start) : "";
    std::ofstream(dir + "/" + name, std::ios::binary | std::ios::trunc) << part;
    start = end == std::string_view::npos ? text.size() + 1 : end + 4;
  }
}

// A new directory /tmp/volprep-fuzz-NAME.XXXXXX, removed when the fuzzer exits.
inline std::string temp_dir(const std::string& name) {
  static std::vector<std::string> dirs;
  std::string path = "/tmp/volprep-fuzz-" + name + ".XXXXXX";
  if (!::mkdtemp(path.data())) std::abort();
  if (dirs.empty())
    std::atexit([] { for (const auto& d : dirs) std::filesystem::remove_all(d); });
  dirs.push_back(path);
  return path;
}

}  // namespace volprep::fuzz
