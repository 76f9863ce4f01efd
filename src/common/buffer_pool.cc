#include "common/buffer_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#include "common/metrics.h"

namespace wharf {
namespace {

constexpr size_t kHugePage = 2u << 20;

// Anonymous memory straight from the kernel: glibc would zero-fill nothing either, but its
// mmap threshold makes every large free an munmap, which a pool is here to avoid. Buffers of
// a huge page or more ask for transparent huge pages (where the kernel grants them, 512 times
// fewer page faults on first use).
char* MapBuffer(size_t n) {
  void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  if (n >= kHugePage) (void)::madvise(p, n, MADV_HUGEPAGE);
  return static_cast<char*>(p);
}

void UnmapBuffer(char* p, size_t n) { ::munmap(p, n); }

}  // namespace

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& o) noexcept {
  if (this != &o) {
    Release();
    pool_ = o.pool_;
    data_ = o.data_;
    o.pool_ = nullptr;
    o.data_ = nullptr;
  }
  return *this;
}

size_t PooledBuffer::capacity() const { return pool_ ? pool_->buffer_bytes() : 0; }

void PooledBuffer::Release() {
  if (pool_ && data_) pool_->Return(data_);
  pool_ = nullptr;
  data_ = nullptr;
}

BufferPool::BufferPool(size_t buffer_bytes, size_t max_buffers, size_t max_idle)
    : buffer_bytes_(std::max<size_t>(buffer_bytes, 1)),
      max_buffers_(std::max<size_t>(max_buffers, 1)),
      max_idle_(std::min(max_idle, max_buffers_)) {}

BufferPool::~BufferPool() {
  for (char* p : idle_) UnmapBuffer(p, buffer_bytes_);
}

PooledBuffer BufferPool::TryAcquire() {
  std::unique_lock lock(mu_);
  if (in_use_ >= max_buffers_) return {};
  ++in_use_;
  if (!idle_.empty()) {
    char* p = idle_.back();
    idle_.pop_back();
    return PooledBuffer(this, p);
  }
  ++mapped_;
  lock.unlock();  // the mmap needs no lock
  char* p = MapBuffer(buffer_bytes_);
  if (p == nullptr) {
    std::lock_guard relock(mu_);
    --in_use_;
    return {};
  }
  return PooledBuffer(this, p);
}

awaitable<PooledBuffer> BufferPool::Acquire() {
  static auto& waits = Metrics().Counter("wharf_buffer_pool_waits_total",
                                         "Buffer requests that waited for a pooled buffer.");
  PooledBuffer b = TryAcquire();
  if (b || in_use() < max_buffers_) co_return b;  // got one, or the mapping failed
  waits.Inc();
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  auto backoff = std::chrono::milliseconds(1);
  for (;;) {
    timer.expires_after(backoff);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    b = TryAcquire();
    if (b || in_use() < max_buffers_) co_return b;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(20));
  }
}

void BufferPool::Return(char* data) {
  std::unique_lock lock(mu_);
  --in_use_;
  if (idle_.size() < max_idle_) {
    idle_.push_back(data);
    return;
  }
  lock.unlock();
  UnmapBuffer(data, buffer_bytes_);
}

size_t BufferPool::in_use() const {
  std::lock_guard lock(mu_);
  return in_use_;
}

size_t BufferPool::idle() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

uint64_t BufferPool::mapped_total() const {
  std::lock_guard lock(mu_);
  return mapped_;
}

BufferPool& SharedBufferPool(size_t buffer_bytes) {
  static std::mutex mu;
  static auto* pools = new std::map<size_t, std::unique_ptr<BufferPool>>();  // never destroyed
  constexpr size_t kMaxOut = 512u << 20, kMaxIdle = 64u << 20;
  std::lock_guard lock(mu);
  auto& pool = (*pools)[buffer_bytes];
  if (!pool) {
    const size_t n = std::max<size_t>(buffer_bytes, 1);
    pool = std::make_unique<BufferPool>(n, std::max<size_t>(4, kMaxOut / n),
                                        std::max<size_t>(2, kMaxIdle / n));
  }
  return *pool;
}

}  // namespace wharf
