// Errors as values. Library code returns these; only the command drivers log and exit.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace volprep {

// Process exit codes, shared by every subcommand (the command-line contract).
enum ExitCode : int {
  kExitOk = 0,
  kExitFound = 1,      // check/compare found something
  kExitUsage = 2,      // bad command line
  kExitConfig = 3,     // bad or missing remap configuration, unmapped id
  kExitPartial = 4,    // some entries failed
  kExitRefused = 5,    // refused for safety
};

struct Error {
  ExitCode code = kExitConfig;
  std::string message;
};

inline Error config_error(std::string msg) { return {kExitConfig, std::move(msg)}; }
inline Error usage_error(std::string msg) { return {kExitUsage, std::move(msg)}; }

// A value or an Error; the small subset of std::expected (C++23) we need.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace volprep
