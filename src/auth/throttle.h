// Throttles password guessing: per remote address, more than `max_failures` failed logins
// within `window` and that address is refused (429 with Retry-After) until the oldest of those
// failures leaves the window.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace wharf::auth {

struct ThrottleOptions {
  uint32_t max_failures = 10;  // failures allowed within a window; the next attempt waits
  std::chrono::seconds window{60};
  size_t max_addresses = 65536;  // tracked addresses; the least recently failed one goes first
  std::function<std::chrono::steady_clock::time_point()> clock = &std::chrono::steady_clock::now;
};

// Thread-safe. Memory: at most max_addresses entries of at most max_failures time points.
class LoginThrottle {
 public:
  explicit LoginThrottle(ThrottleOptions options = {});

  // Before checking credentials: nullopt to go ahead, or how many seconds (>= 1) to wait.
  std::optional<std::chrono::seconds> RetryAfter(std::string_view address);
  // After a failed login from `address`.
  void RecordFailure(std::string_view address);
  // After a successful login: that address starts afresh.
  void RecordSuccess(std::string_view address);
  size_t tracked_addresses() const;

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Entry {
    std::string address;
    std::deque<TimePoint> failures;  // oldest first, at most max_failures
  };
  void DropOld(Entry& e, TimePoint now) const;

  const ThrottleOptions options_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // front: most recent failure
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
};

}  // namespace wharf::auth
