#include "vigil/core/clock.h"

#include <cstdio>
#include <ctime>

namespace vigil {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

std::size_t format_utc_iso8601(SystemTime t, char (&out)[32]) {
  using namespace std::chrono;
  const auto ms_total = duration_cast<milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms_total / 1000);
  auto ms = static_cast<int>(ms_total % 1000);
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  const int n = std::snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace vigil
