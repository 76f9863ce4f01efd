#include "common/log_throttle.h"

namespace wharf {

LogThrottle::LogThrottle(std::chrono::steady_clock::duration window, Clock clock)
    : window_(window), clock_(std::move(clock)) {}

std::optional<uint64_t> LogThrottle::Admit() {
  std::lock_guard lock(mutex_);
  ++total_;
  const auto now = clock_();
  if (logged_any_ && now - last_logged_ < window_) {
    ++held_;
    return std::nullopt;
  }
  logged_any_ = true;
  last_logged_ = now;
  uint64_t held = held_;
  held_ = 0;
  return held;
}

uint64_t LogThrottle::Reset() {
  std::lock_guard lock(mutex_);
  uint64_t total = total_;
  total_ = 0;
  held_ = 0;
  logged_any_ = false;
  return total;
}

std::string Held(uint64_t held) {
  if (held == 0) return std::string();
  return " (" + std::to_string(held) + (held == 1 ? " similar line" : " similar lines") +
         " held back)";
}

}  // namespace wharf
