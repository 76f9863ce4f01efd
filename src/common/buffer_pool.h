// BufferPool: fixed-size byte buffers that are reused instead of allocated per chunk.
//
// Why: a fresh 16 MiB buffer per chunk is an mmap, 4096 page faults as it is first written (or
// zero-filled, for a resized std::vector/std::string) and an munmap when it is freed. On the
// virtual machines wharf runs on that was a sixth of a pull's CPU time. A pooled buffer is
// mapped and faulted once, then handed from chunk to chunk; its bytes are never zero-filled
// (a buffer holds whatever its previous user left: callers write before they read).
//
// Bounds: at most max_buffers are handed out at once (Acquire waits for one to come back:
// back-pressure), and at most max_idle are kept when returned (the rest are unmapped), so the
// resident memory a pool holds is bounded both while busy and while idle.
//
// A pool may also draw on a MemoryBudget (common/memory_budget.h): each buffer handed out then
// holds buffer_bytes of it, so that pools of different buffer sizes share one bound.
//
// Threading: thread-safe. A PooledBuffer may be released on any thread. SharedBufferPool()
// pools live for the whole process (never destroyed), so a buffer may outlive any daemon.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/asio.h"
#include "common/memory_budget.h"

namespace wharf {

class BufferPool;

// A buffer on loan from a pool; returns to it when destroyed. Move-only. An empty handle
// (default-constructed, moved from, or a TryAcquire that found none) has data() == nullptr.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  ~PooledBuffer() { Release(); }
  PooledBuffer(PooledBuffer&& o) noexcept
      : pool_(o.pool_), data_(o.data_), grant_(std::move(o.grant_)) {
    o.pool_ = nullptr;
    o.data_ = nullptr;
  }
  PooledBuffer& operator=(PooledBuffer&& o) noexcept;
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;

  char* data() const { return data_; }
  size_t capacity() const;
  explicit operator bool() const { return data_ != nullptr; }
  // Gives the buffer back now (the handle becomes empty).
  void Release();

 private:
  friend class BufferPool;
  PooledBuffer(BufferPool* pool, char* data, MemoryGrant grant)
      : pool_(pool), data_(data), grant_(std::move(grant)) {}
  BufferPool* pool_ = nullptr;
  char* data_ = nullptr;
  MemoryGrant grant_;  // of the pool's budget, if it has one
};

class BufferPool {
 public:
  // Buffers of `buffer_bytes` each; at most `max_buffers` out at once, `max_idle` kept. With a
  // `budget` (not owned; outlives the pool), a buffer is handed out only when its bytes fit.
  BufferPool(size_t buffer_bytes, size_t max_buffers, size_t max_idle,
             MemoryBudget* budget = nullptr);
  // Every buffer must have come back.
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer, or an empty handle when max_buffers are out or the budget is spent (or the
  // memory could not be mapped).
  PooledBuffer TryAcquire();
  // A buffer; waits (polling with a short back-off on the calling coroutine's executor) while
  // max_buffers are out or the budget is spent (counted in wharf_buffer_pool_waits_total and
  // the budget's waits). Never fails unless the memory cannot be mapped (empty handle).
  awaitable<PooledBuffer> Acquire();

  size_t buffer_bytes() const { return buffer_bytes_; }
  size_t max_buffers() const { return max_buffers_; }
  size_t in_use() const;
  size_t idle() const;
  // Buffers mapped over the pool's life (a test can tell reuse from allocation).
  uint64_t mapped_total() const;

 private:
  friend class PooledBuffer;
  enum class Miss { kNone, kBusy, kNoMemory };
  PooledBuffer TryAcquire(Miss* why);
  void Return(char* data);
  const size_t buffer_bytes_;
  const size_t max_buffers_;
  const size_t max_idle_;
  MemoryBudget* const budget_;
  mutable std::mutex mu_;
  std::vector<char*> idle_;
  size_t in_use_ = 0;
  uint64_t mapped_ = 0;
};

// The process-wide pool of `buffer_bytes` buffers (made on first use, never destroyed), bounded
// to 512 MiB handed out and 64 MiB kept idle (at least 4 and 2 buffers), so that daemons
// sharing a process (`wharf up`) share buffers too.
BufferPool& SharedBufferPool(size_t buffer_bytes);

// Pools of every buffer size drawn from one MemoryBudget: what a daemon under a budget (the
// gateway's --memory-budget) takes its chunk and read buffers from. Made on first use, one per
// (component, limit), never destroyed (as SharedBufferPool: a buffer may outlive its daemon),
// so daemons of one component sharing a process (`wharf up`, tests) share the budget too.
class BudgetedPools {
 public:
  static BudgetedPools& Get(const std::string& component, uint64_t limit);
  MemoryBudget& budget() { return budget_; }
  // The pool of `buffer_bytes` buffers: as many out as the budget holds, idle ones kept up to
  // an eighth of the budget (at most 64 MiB, at least one buffer).
  BufferPool& PoolFor(size_t buffer_bytes);

 private:
  BudgetedPools(const std::string& component, uint64_t limit);
  MemoryBudget budget_;
  std::mutex mu_;
  std::vector<std::pair<size_t, BufferPool*>> pools_;  // never freed
};

}  // namespace wharf
