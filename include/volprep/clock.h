// Wall-clock time as journals record it.
#pragma once

#include <cstdint>
#include <ctime>

namespace volprep {

// The current time, UTC, in nanoseconds since the epoch.
inline int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace volprep
