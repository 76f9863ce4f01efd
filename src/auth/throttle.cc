#include "auth/throttle.h"

namespace wharf::auth {

LoginThrottle::LoginThrottle(ThrottleOptions options) : options_(std::move(options)) {}

void LoginThrottle::DropOld(Entry& e, TimePoint now) const {
  while (!e.failures.empty() && e.failures.front() + options_.window <= now) {
    e.failures.pop_front();
  }
}

std::optional<std::chrono::seconds> LoginThrottle::RetryAfter(std::string_view address) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(address);
  if (it == index_.end()) return std::nullopt;
  Entry& e = *it->second;
  TimePoint now = options_.clock();
  DropOld(e, now);
  if (e.failures.empty()) {
    lru_.erase(it->second);
    index_.erase(it);
    return std::nullopt;
  }
  if (e.failures.size() < options_.max_failures) return std::nullopt;
  auto wait = e.failures.front() + options_.window - now;
  auto secs = std::chrono::ceil<std::chrono::seconds>(wait);
  return std::max(secs, std::chrono::seconds(1));
}

void LoginThrottle::RecordFailure(std::string_view address) {
  if (options_.max_failures == 0) return;
  std::lock_guard lock(mutex_);
  TimePoint now = options_.clock();
  auto it = index_.find(address);
  if (it == index_.end()) {
    if (lru_.size() >= options_.max_addresses && !lru_.empty()) {
      index_.erase(lru_.back().address);
      lru_.pop_back();
    }
    lru_.push_front(Entry{std::string(address), {}});
    it = index_.emplace(lru_.front().address, lru_.begin()).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second);
  }
  Entry& e = *it->second;
  DropOld(e, now);
  e.failures.push_back(now);
  while (e.failures.size() > options_.max_failures) e.failures.pop_front();
}

void LoginThrottle::RecordSuccess(std::string_view address) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(address);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

size_t LoginThrottle::tracked_addresses() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace wharf::auth
