// Coroutine helpers: moving blocking work off the event loop, and waiting for several
// coroutines at once (Boost 1.74 has no awaitable operators).
#pragma once

#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <vector>

#include "common/asio.h"

namespace wharf {

// The process-wide pool for disk and database work (blocking calls). Sized at first use
// from WHARF_IO_THREADS or max(4, 2*cores).
asio::thread_pool& IoPool();

// Runs f() on `pool` and resumes the calling coroutine on its own executor with the result.
// Exceptions from f propagate to the caller.
template <typename F>
awaitable<std::invoke_result_t<F>> Offload(asio::thread_pool& pool, F f) {
  using R = std::invoke_result_t<F>;
  co_return co_await asio::co_spawn(
      pool.get_executor(),
      [f = std::move(f)]() mutable -> awaitable<R> { co_return f(); }, asio::use_awaitable);
}
template <typename F>
awaitable<std::invoke_result_t<F>> Offload(F f) {
  co_return co_await Offload(IoPool(), std::move(f));
}

// Runs every task concurrently on the caller's executor and returns their results in order
// once all have finished. If any task throws, the first exception is rethrown after all end.
template <typename T>
awaitable<std::vector<T>> WhenAll(std::vector<awaitable<T>> tasks) {
  std::vector<T> out;
  if (tasks.empty()) co_return out;
  auto ex = co_await asio::this_coro::executor;
  struct State {
    std::mutex mu;
    size_t remaining;
    std::vector<std::optional<T>> results;
    std::exception_ptr error;
  };
  auto st = std::make_shared<State>();
  st->remaining = tasks.size();
  st->results.resize(tasks.size());
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&](auto handler) {
        using H = decltype(handler);
        auto h = std::make_shared<std::optional<H>>(std::move(handler));
        for (size_t i = 0; i < tasks.size(); ++i) {
          asio::co_spawn(ex, std::move(tasks[i]), [st, h, i, ex](std::exception_ptr e, T v) {
            std::unique_lock lock(st->mu);
            if (e && !st->error) st->error = e;
            if (!e) st->results[i].emplace(std::move(v));
            if (--st->remaining == 0) {
              lock.unlock();
              asio::post(ex, [h]() mutable {
                H done = std::move(**h);
                h->reset();
                done();
              });
            }
          });
        }
      },
      asio::use_awaitable);
  if (st->error) std::rethrow_exception(st->error);
  out.reserve(st->results.size());
  for (auto& r : st->results) out.push_back(std::move(*r));
  co_return out;
}

// Sleeps without blocking the event loop.
awaitable<void> SleepFor(std::chrono::milliseconds d);

}  // namespace wharf
