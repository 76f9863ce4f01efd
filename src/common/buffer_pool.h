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
// Threading: thread-safe. A PooledBuffer may be released on any thread. SharedBufferPool()
// pools live for the whole process (never destroyed), so a buffer may outlive any daemon.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

#include "common/asio.h"

namespace wharf {

class BufferPool;

// A buffer on loan from a pool; returns to it when destroyed. Move-only. An empty handle
// (default-constructed, moved from, or a TryAcquire that found none) has data() == nullptr.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  ~PooledBuffer() { Release(); }
  PooledBuffer(PooledBuffer&& o) noexcept : pool_(o.pool_), data_(o.data_) {
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
  PooledBuffer(BufferPool* pool, char* data) : pool_(pool), data_(data) {}
  BufferPool* pool_ = nullptr;
  char* data_ = nullptr;
};

class BufferPool {
 public:
  // Buffers of `buffer_bytes` each; at most `max_buffers` out at once, `max_idle` kept.
  BufferPool(size_t buffer_bytes, size_t max_buffers, size_t max_idle);
  // Every buffer must have come back.
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer, or an empty handle when max_buffers are out (or the memory could not be mapped).
  PooledBuffer TryAcquire();
  // A buffer; waits (polling with a short back-off on the calling coroutine's executor) while
  // max_buffers are out. Never fails unless the memory cannot be mapped (empty handle).
  awaitable<PooledBuffer> Acquire();

  size_t buffer_bytes() const { return buffer_bytes_; }
  size_t max_buffers() const { return max_buffers_; }
  size_t in_use() const;
  size_t idle() const;
  // Buffers mapped over the pool's life (a test can tell reuse from allocation).
  uint64_t mapped_total() const;

 private:
  friend class PooledBuffer;
  void Return(char* data);
  const size_t buffer_bytes_;
  const size_t max_buffers_;
  const size_t max_idle_;
  mutable std::mutex mu_;
  std::vector<char*> idle_;
  size_t in_use_ = 0;
  uint64_t mapped_ = 0;
};

// The process-wide pool of `buffer_bytes` buffers (made on first use, never destroyed), bounded
// to 512 MiB handed out and 64 MiB kept idle (at least 4 and 2 buffers), so that daemons
// sharing a process (`wharf up`) share buffers too.
BufferPool& SharedBufferPool(size_t buffer_bytes);

}  // namespace wharf
