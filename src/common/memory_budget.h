// MemoryBudget: one bound on the bytes a daemon's in-flight buffers may hold, whatever their
// size or user (chunk buffers of uploads, chunk read buffers, request body read buffers).
//
// Why: per-connection buffers multiply by the number of connections. A gateway with 16 MiB
// chunks held chunk_size x (1 + inflight) per stalled upload: 64 uploads stalled just under
// a chunk boundary took it from 30 MB to 1.08 GB of RSS. Under a budget, a buffer that does
// not fit waits until one comes back (back-pressure: the waiting connection's socket is not
// read meanwhile), or the caller does without it (TryTake).
//
// Progress: a grant is held only by work that ends by itself: a request body being read (cut
// by the server's io timeout and --min-body-rate), a chunk being written to a group (bounded
// by --member-timeout), a chunk being read. So a wait never lasts past those bounds.
//
// Threading: thread-safe; a Grant may be returned on any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "common/asio.h"
#include "common/metrics.h"

namespace wharf {

class MemoryBudget;

// Bytes taken from a budget; returned when destroyed. Move-only; empty when default-made,
// moved from, or a TryTake that did not fit.
class MemoryGrant {
 public:
  MemoryGrant() = default;
  ~MemoryGrant() { Release(); }
  MemoryGrant(MemoryGrant&& o) noexcept : budget_(o.budget_), bytes_(o.bytes_) {
    o.budget_ = nullptr;
    o.bytes_ = 0;
  }
  MemoryGrant& operator=(MemoryGrant&& o) noexcept;
  MemoryGrant(const MemoryGrant&) = delete;
  MemoryGrant& operator=(const MemoryGrant&) = delete;
  uint64_t bytes() const { return bytes_; }
  explicit operator bool() const { return budget_ != nullptr; }
  void Release();

 private:
  friend class MemoryBudget;
  MemoryGrant(MemoryBudget* b, uint64_t n) : budget_(b), bytes_(n) {}
  MemoryBudget* budget_ = nullptr;
  uint64_t bytes_ = 0;
};

class MemoryBudget {
 public:
  // `limit` bytes at most out at once. Metrics: wharf_<component>_memory_budget_bytes (the
  // limit), ..._memory_in_use_bytes, ..._memory_waits_total (takes that had to wait) and
  // ..._memory_refusals_total (TryTake that did not fit), with `labels`.
  MemoryBudget(uint64_t limit, const std::string& component, const Labels& labels = {});
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // `n` bytes if they fit now, else an empty grant. n > limit never fits.
  MemoryGrant TryTake(uint64_t n);
  // Like TryTake, but a refusal is not counted (a caller that polls).
  MemoryGrant TryTakeQuietly(uint64_t n);
  // `n` bytes if the budget's use stays at most `ceiling` with them (an optional buffer that
  // must leave room for others: see ServerOptions::memory_budget), else an empty grant.
  MemoryGrant TryTakeBelow(uint64_t n, uint64_t ceiling);
  // `n` bytes; waits (polling with a short back-off on the calling coroutine's executor) until
  // they fit. An n over the limit is capped to the limit (it waits for the whole budget).
  awaitable<MemoryGrant> Take(uint64_t n);
  // Like Take, but waits until the use stays at most `ceiling` with the n bytes (memory a
  // caller holds while it may wait for more: see BlobWriter::WriteFrom).
  awaitable<MemoryGrant> TakeBelow(uint64_t n, uint64_t ceiling);

  uint64_t limit() const { return limit_; }
  uint64_t in_use() const { return in_use_.load(std::memory_order_relaxed); }
  uint64_t waits() const;
  // Counts a wait of a caller that polls TryTakeQuietly itself (BufferPool::Acquire).
  void CountWait() { waits_->Inc(); }

 private:
  friend class MemoryGrant;
  void Return(uint64_t n);
  const uint64_t limit_;
  std::atomic<uint64_t> in_use_{0};
  GaugeMetric* in_use_gauge_;
  CounterMetric* waits_;
  CounterMetric* refusals_;
};

}  // namespace wharf
