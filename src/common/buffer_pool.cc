#include "common/buffer_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "common/async.h"
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
    grant_ = std::move(o.grant_);
    o.pool_ = nullptr;
    o.data_ = nullptr;
  }
  return *this;
}

size_t PooledBuffer::capacity() const { return pool_ ? pool_->buffer_bytes() : 0; }

void PooledBuffer::Release() {
  if (pool_ && data_) pool_->Return(data_);
  grant_.Release();  // after the buffer is back (or unmapped)
  pool_ = nullptr;
  data_ = nullptr;
}

BufferPool::BufferPool(size_t buffer_bytes, size_t max_buffers, size_t max_idle,
                       MemoryBudget* budget)
    : buffer_bytes_(std::max<size_t>(buffer_bytes, 1)),
      max_buffers_(std::max<size_t>(max_buffers, 1)),
      max_idle_(std::min(max_idle, max_buffers_)),
      budget_(budget) {}

BufferPool::~BufferPool() {
  for (char* p : idle_) UnmapBuffer(p, buffer_bytes_);
}

PooledBuffer BufferPool::TryAcquire() {
  Miss why;
  return TryAcquire(&why);
}

PooledBuffer BufferPool::TryAcquire(Miss* why) {
  *why = Miss::kBusy;
  MemoryGrant grant;
  if (budget_) {
    grant = budget_->TryTakeQuietly(buffer_bytes_);
    if (!grant) return {};
  }
  std::unique_lock lock(mu_);
  if (in_use_ >= max_buffers_) return {};
  ++in_use_;
  if (!idle_.empty()) {
    char* p = idle_.back();
    idle_.pop_back();
    *why = Miss::kNone;
    return PooledBuffer(this, p, std::move(grant));
  }
  ++mapped_;
  lock.unlock();  // the mmap needs no lock
  char* p = MapBuffer(buffer_bytes_);
  if (p == nullptr) {
    std::lock_guard relock(mu_);
    --in_use_;
    *why = Miss::kNoMemory;
    return {};
  }
  *why = Miss::kNone;
  return PooledBuffer(this, p, std::move(grant));
}

awaitable<PooledBuffer> BufferPool::Acquire() {
  static auto& waits = Metrics().Counter("wharf_buffer_pool_waits_total",
                                         "Buffer requests that waited for a pooled buffer.");
  Miss why;
  PooledBuffer b = TryAcquire(&why);
  if (why != Miss::kBusy) co_return b;  // got one, or the mapping failed
  waits.Inc();
  // A wait the budget caused (not the pool's own max_buffers) counts once in its waits too.
  bool counted = false;
  auto count_budget_wait = [&] {
    if (budget_ && !counted && budget_->in_use() + buffer_bytes_ > budget_->limit()) {
      budget_->CountWait();
      counted = true;
    }
  };
  count_budget_wait();
  std::function<bool()> ready = [&] {
    b = TryAcquire(&why);
    if (why != Miss::kBusy) return true;
    count_budget_wait();
    return false;
  };
  co_await PollWithBackoff(ready);
  co_return b;
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

BudgetedPools::BudgetedPools(const std::string& component, uint64_t limit)
    : budget_(limit, component) {}

BudgetedPools& BudgetedPools::Get(const std::string& component, uint64_t limit) {
  static std::mutex mu;
  static auto* all = new std::map<std::pair<std::string, uint64_t>, BudgetedPools*>();
  std::lock_guard lock(mu);
  BudgetedPools*& p = (*all)[{component, limit}];
  if (p == nullptr) p = new BudgetedPools(component, limit);  // never destroyed
  return *p;
}

BufferPool& BudgetedPools::PoolFor(size_t buffer_bytes) {
  std::lock_guard lock(mu_);
  for (auto& [bytes, pool] : pools_) {
    if (bytes == buffer_bytes) return *pool;
  }
  const uint64_t limit = budget_.limit();
  const size_t n = std::max<size_t>(buffer_bytes, 1);
  const uint64_t idle_bytes = std::min<uint64_t>(limit / 8, 64u << 20);
  auto* pool = new BufferPool(n, std::max<uint64_t>(1, limit / n),
                              std::max<uint64_t>(1, idle_bytes / n), &budget_);
  pools_.emplace_back(buffer_bytes, pool);
  return *pool;
}

}  // namespace wharf
