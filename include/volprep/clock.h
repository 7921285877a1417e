// Wall-clock time as journals record it.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace volprep {

// The current time, UTC, in nanoseconds since the epoch.
inline int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A journal's time for people: "2026-11-22 08:49:00Z".
inline std::string format_utc(int64_t ns) {
  time_t secs = time_t(ns / 1000000000);
  tm t{};
  ::gmtime_r(&secs, &t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &t);
  return buf;
}

}  // namespace volprep
