// Keeps a failure that repeats every few hundred milliseconds (a master down, a disk full)
// from flooding the log: the first occurrence is logged, repeats within a window are only
// counted, and the next line after the window says how many were held back.
//
//   if (!st.ok()) {
//     if (auto held = throttle.Admit()) log->warn("refresh failed err={}{}", st, Held(*held));
//   } else if (uint64_t n = throttle.Reset(); n > 0) {
//     log->info("refresh works again after {} failures", n);
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace wharf {

// One per call site; thread-safe.
class LogThrottle {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit LogThrottle(std::chrono::steady_clock::duration window = std::chrono::seconds(60),
                       Clock clock = &std::chrono::steady_clock::now);
  // nullopt: suppress this line (it was counted). Otherwise log it: the value is how many
  // lines were held back since the last one logged.
  std::optional<uint64_t> Admit();
  // The condition cleared: returns how many occurrences there were since the last Reset (0 if
  // none) and starts afresh, so the next failure is logged at once.
  uint64_t Reset();

 private:
  const std::chrono::steady_clock::duration window_;
  const Clock clock_;
  std::mutex mutex_;
  bool logged_any_ = false;
  std::chrono::steady_clock::time_point last_logged_{};
  uint64_t held_ = 0;
  uint64_t total_ = 0;
};

// " (N similar lines held back)", or "" for 0: the suffix for a line LogThrottle admitted.
std::string Held(uint64_t held);

}  // namespace wharf
