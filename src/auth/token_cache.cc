#include "auth/token_cache.h"

namespace wharf::auth {

std::shared_ptr<const TokenClaims> TokenCache::Get(std::string_view signature,
                                                   std::string_view signed_part,
                                                   Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(signature);
  if (it == index_.end()) return nullptr;
  auto entry = it->second;
  if (now >= entry->expires) {
    index_.erase(it);
    lru_.erase(entry);
    return nullptr;
  }
  if (entry->signed_part != signed_part) return nullptr;
  lru_.splice(lru_.begin(), lru_, entry);
  return entry->claims;
}

void TokenCache::Put(std::string_view signature, std::string_view signed_part,
                     std::shared_ptr<const TokenClaims> claims, Clock::time_point expires) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mutex_);
  if (auto it = index_.find(signature); it != index_.end()) {
    auto entry = it->second;
    index_.erase(it);
    lru_.erase(entry);
  }
  while (lru_.size() >= capacity_) {
    index_.erase(lru_.back().signature);
    lru_.pop_back();
  }
  lru_.push_front(
      Entry{std::string(signature), std::string(signed_part), std::move(claims), expires});
  index_.emplace(lru_.front().signature, lru_.begin());
}

size_t TokenCache::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace wharf::auth
