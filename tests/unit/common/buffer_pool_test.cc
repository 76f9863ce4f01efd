#include "common/buffer_pool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

namespace wharf {
namespace {

TEST(BufferPoolTest, ReturnedBuffersAreReusedNotMappedAgain) {
  BufferPool pool(1 << 20, 4, 2);
  char* first = nullptr;
  for (int i = 0; i < 10; ++i) {
    PooledBuffer b = pool.TryAcquire();
    ASSERT_TRUE(b);
    EXPECT_EQ(b.capacity(), 1u << 20);
    std::memset(b.data(), i, b.capacity());
    if (i == 0) first = b.data();
    EXPECT_EQ(b.data(), first);
    EXPECT_EQ(pool.in_use(), 1u);
  }
  EXPECT_EQ(pool.mapped_total(), 1u);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.idle(), 1u);
}

TEST(BufferPoolTest, AtMostMaxBuffersOutAndAtMostMaxIdleKept) {
  BufferPool pool(4096, 3, 1);
  {
    PooledBuffer a = pool.TryAcquire(), b = pool.TryAcquire(), c = pool.TryAcquire();
    ASSERT_TRUE(a && b && c);
    PooledBuffer d = pool.TryAcquire();
    EXPECT_FALSE(d);  // the bound
    EXPECT_EQ(pool.in_use(), 3u);
    b.Release();
    EXPECT_FALSE(b);
    PooledBuffer e = pool.TryAcquire();
    EXPECT_TRUE(e);
    PooledBuffer moved = std::move(e);
    EXPECT_FALSE(e);
    EXPECT_TRUE(moved);
    EXPECT_EQ(pool.in_use(), 3u);
  }
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.idle(), 1u);  // the other two were unmapped
}

TEST(BufferPoolTest, AcquireWaitsForABufferToComeBack) {
  BufferPool pool(4096, 1, 1);
  asio::io_context io;
  PooledBuffer held = pool.TryAcquire();
  ASSERT_TRUE(held);
  bool got = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        PooledBuffer b = co_await pool.Acquire();
        got = static_cast<bool>(b);
      },
      asio::detached);
  // The waiter polls while the only buffer is out; it is released from another thread.
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    held.Release();
  });
  io.run_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(got);
  io.run_for(std::chrono::seconds(5));
  releaser.join();
  EXPECT_TRUE(got);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.mapped_total(), 1u);
}

TEST(BufferPoolTest, SharedPoolsAreOnePerSize) {
  EXPECT_EQ(&SharedBufferPool(12345), &SharedBufferPool(12345));
  EXPECT_NE(&SharedBufferPool(12345), &SharedBufferPool(12346));
  EXPECT_GE(SharedBufferPool(16u << 20).max_buffers(), 4u);
}

// Pools of different buffer sizes drawing on one budget share its bound: what one holds the
// other cannot take, an Acquire waits (counted) until bytes come back, and a grant is returned
// with its buffer.
TEST(BufferPoolTest, PoolsOnOneBudgetShareItsBound) {
  MemoryBudget budget(3 << 20, "test_budget");
  BufferPool big(2 << 20, 100, 1, &budget);
  BufferPool small(1 << 20, 100, 1, &budget);
  PooledBuffer a = big.TryAcquire();
  ASSERT_TRUE(a);
  EXPECT_EQ(budget.in_use(), 2u << 20);
  PooledBuffer b = small.TryAcquire();
  ASSERT_TRUE(b);
  EXPECT_FALSE(small.TryAcquire());  // 3 MiB out: spent, although each pool has room
  EXPECT_FALSE(big.TryAcquire());
  MemoryGrant g = budget.TryTake(1);
  EXPECT_FALSE(g);
  asio::io_context io;
  bool got = false;
  const uint64_t waits_before = budget.waits();
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        PooledBuffer c = co_await big.Acquire();
        got = static_cast<bool>(c);
        EXPECT_EQ(budget.in_use(), 3u << 20);
      },
      asio::detached);
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(got);  // waits: back-pressure, not growth
  EXPECT_EQ(budget.waits(), waits_before + 1);
  a.Release();
  io.restart();
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(got);
  b.Release();
  EXPECT_EQ(budget.in_use(), 0u);
  {
    MemoryGrant whole = budget.TryTake(3 << 20);
    EXPECT_TRUE(whole);
    EXPECT_FALSE(budget.TryTake(1));
  }
  EXPECT_EQ(budget.in_use(), 0u);
  EXPECT_FALSE(budget.TryTake((3 << 20) + 1));  // never fits
}

}  // namespace
}  // namespace wharf
