#include "common/memory_budget.h"

#include <algorithm>
#include <functional>

#include "common/async.h"

namespace wharf {

MemoryGrant& MemoryGrant::operator=(MemoryGrant&& o) noexcept {
  if (this != &o) {
    Release();
    budget_ = o.budget_;
    bytes_ = o.bytes_;
    o.budget_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void MemoryGrant::Release() {
  if (budget_) budget_->Return(bytes_);
  budget_ = nullptr;
  bytes_ = 0;
}

MemoryBudget::MemoryBudget(uint64_t limit, const std::string& component, const Labels& labels)
    : limit_(limit) {
  const std::string prefix = "wharf_" + component + "_memory_";
  Metrics()
      .Gauge(prefix + "budget_bytes", "The bound on bytes held by in-flight buffers.", labels)
      .Set(static_cast<double>(limit));
  in_use_gauge_ = &Metrics().Gauge(prefix + "in_use_bytes",
                                   "Bytes of the memory budget held by in-flight buffers.", labels);
  waits_ = &Metrics().Counter(
      prefix + "waits_total",
      "Buffer requests that waited because the memory budget was spent (back-pressure).", labels);
  refusals_ = &Metrics().Counter(
      prefix + "refusals_total",
      "Optional buffers done without because the memory budget was spent.", labels);
}

MemoryGrant MemoryBudget::TryTakeQuietly(uint64_t n) { return TryTakeBelow(n, limit_); }

MemoryGrant MemoryBudget::TryTakeBelow(uint64_t n, uint64_t ceiling) {
  ceiling = std::min(ceiling, limit_);
  uint64_t cur = in_use_.load(std::memory_order_relaxed);
  do {
    if (n > ceiling || cur > ceiling - n) return {};
  } while (!in_use_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
  in_use_gauge_->Add(static_cast<double>(n));
  return MemoryGrant(this, n);
}

MemoryGrant MemoryBudget::TryTake(uint64_t n) {
  MemoryGrant g = TryTakeQuietly(n);
  if (!g) refusals_->Inc();
  return g;
}

awaitable<MemoryGrant> MemoryBudget::Take(uint64_t n) { return TakeBelow(n, limit_); }

awaitable<MemoryGrant> MemoryBudget::TakeBelow(uint64_t n, uint64_t ceiling) {
  ceiling = std::min(ceiling, limit_);
  n = std::min(n, ceiling);
  MemoryGrant g = TryTakeBelow(n, ceiling);
  if (g) co_return g;
  waits_->Inc();
  std::function<bool()> ready = [&] {
    g = TryTakeBelow(n, ceiling);
    return static_cast<bool>(g);
  };
  co_await PollWithBackoff(ready);
  co_return g;
}

uint64_t MemoryBudget::waits() const { return static_cast<uint64_t>(waits_->Value()); }

void MemoryBudget::Return(uint64_t n) {
  in_use_.fetch_sub(n, std::memory_order_relaxed);
  in_use_gauge_->Add(-static_cast<double>(n));
}

}  // namespace wharf
