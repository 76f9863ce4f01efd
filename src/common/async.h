// Coroutine helpers: moving blocking work off the event loop, and waiting for several
// coroutines at once (Boost 1.74 has no awaitable operators).
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <vector>

#include "common/asio.h"
#include "common/status.h"

namespace wharf {

// The process-wide pool for disk and database work (blocking calls). Sized at first use
// from WHARF_IO_THREADS or max(4, 2*cores).
asio::thread_pool& IoPool();

// Runs f() on `pool` and resumes the calling coroutine on its own executor with the result.
// Exceptions from f propagate to the caller.
namespace internal {
// The work of one Offload call, owned through a raw pointer until its handler runs.
template <typename F, typename R>
struct OffloadTask {
  explicit OffloadTask(const F& fn) : f(fn) {}
  F f;
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> result;
};
}  // namespace internal

// Boost 1.74 implements use_awaitable initiation as a coroutine taking its arguments by
// value, and GCC 12 corrupts some by-value coroutine arguments (a lambda capturing short
// strings is destroyed after a bitwise copy). So only a raw pointer crosses that boundary.
//
// `f` must be a named variable: it is copied. (GCC 12 also miscompiles a capturing lambda
// *temporary* inside a co_await expression, destroying a bitwise copy of it; taking F& makes
// that mistake a compile error.)  Usage:
//   auto stat = [this, id] { return store_->Stat(id); };
//   auto info = co_await Offload(stat);
template <typename F>
awaitable<std::invoke_result_t<F>> Offload(asio::thread_pool& pool, F& f) {
  using R = std::invoke_result_t<F>;
  using Task = internal::OffloadTask<F, R>;
  Task* task = new Task(f);
  auto initiate = [pool_ptr = &pool, task](auto handler) {
    auto ex = asio::get_associated_executor(handler);
    asio::post(*pool_ptr, [task, ex, handler = std::move(handler)]() mutable {
      try {
        if constexpr (std::is_void_v<R>) {
          task->f();
          task->result.emplace(true);
        } else {
          task->result.emplace(task->f());
        }
      } catch (...) {
        task->error = std::current_exception();
      }
      asio::post(ex, [task, handler = std::move(handler)]() mutable {
        std::unique_ptr<Task> owned(task);
        if constexpr (std::is_void_v<R>) {
          handler(owned->error);
        } else {
          handler(owned->error, owned->result ? std::move(*owned->result) : R{});
        }
      });
    });
  };
  if constexpr (std::is_void_v<R>) {
    return asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr)>(
        std::move(initiate), asio::use_awaitable);
  } else {
    return asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr, R)>(
        std::move(initiate), asio::use_awaitable);
  }
}
template <typename F>
awaitable<std::invoke_result_t<F>> Offload(F& f) {
  return Offload(IoPool(), f);
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

// What RunHedged saw.
template <typename T>
struct HedgeOutcome {
  std::optional<T> value;      // the first success
  size_t winner = 0;           // its attempt index (when value is set)
  size_t started = 0;          // attempts started
  size_t hedges = 0;           // of them, started because the ones before were slow, not failed
  bool winner_hedged = false;  // the winner was started by a hedge (not first, not a failover)
  std::vector<std::pair<size_t, Status>> failed;  // attempts that failed, in completion order
  std::vector<size_t> overtaken;                  // attempts still running when one won
};

// Runs attempt(0), attempt(1)... up to n, on the caller's executor, until one succeeds: the next
// starts as soon as every running one has failed, or, when `hedge` > 0, once `hedge` passed
// since the last start with none finished (a hedge against a slow peer). The first success
// wins; an attempt still running then is left to end on its own (its peer deadline bounds it)
// and whatever it returns is destroyed at once, which for a held connection closes it.
// attempt(i) must return a coroutine that owns what it uses (by-value parameters): it may run
// on after RunHedged returned.
template <typename T>
awaitable<HedgeOutcome<T>> RunHedged(size_t n, std::function<awaitable<Result<T>>(size_t)> attempt,
                                     std::chrono::milliseconds hedge) {
  auto ex = co_await asio::this_coro::executor;
  struct State {
    explicit State(asio::any_io_executor e) : wake(e) {}
    asio::steady_timer wake;
    std::optional<std::pair<size_t, T>> won;
    std::vector<std::pair<size_t, Status>> failed;
    std::vector<bool> running;
    size_t running_count = 0;
  };
  auto s = std::make_shared<State>(ex);
  s->running.assign(n, false);
  HedgeOutcome<T> out;
  auto last_start = std::chrono::steady_clock::now();
  std::vector<bool> by_hedge(n, false);
  auto start = [&] {
    const size_t i = out.started++;
    s->running[i] = true;
    ++s->running_count;
    last_start = std::chrono::steady_clock::now();
    asio::co_spawn(ex, attempt(i), [s, i](std::exception_ptr e, Result<T> r) {
      s->running[i] = false;
      --s->running_count;
      if (e) r = Err(Internal("attempt threw"));
      if (!r) {
        s->failed.emplace_back(i, r.error());
      } else if (!s->won) {
        s->won.emplace(i, std::move(*r));
      }  // else: a late success, dropped here
      s->wake.cancel();
    });
  };
  for (;;) {
    if (s->won) break;
    if (s->running_count == 0) {
      if (out.started == n) break;
      start();
      continue;
    }
    const bool may_hedge = hedge.count() > 0 && out.started < n;
    if (may_hedge && std::chrono::steady_clock::now() >= last_start + hedge) {
      ++out.hedges;
      by_hedge[out.started] = true;
      start();
      continue;
    }
    s->wake.expires_at(may_hedge ? last_start + hedge
                                 : std::chrono::steady_clock::time_point::max());
    boost::system::error_code ec;
    co_await s->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  out.failed = s->failed;
  if (s->won) {
    out.winner = s->won->first;
    out.winner_hedged = by_hedge[out.winner];
    out.value.emplace(std::move(s->won->second));
    for (size_t i = 0; i < n; ++i) {
      if (s->running[i]) out.overtaken.push_back(i);
    }
  }
  co_return out;
}

// Sleeps without blocking the event loop.
awaitable<void> SleepFor(std::chrono::milliseconds d);

// Polls `ready` until it returns true: sleeps 1 ms before the first call, and twice as long
// (at most 20 ms) after each false. For a caller whose resource has no wake-up of its own
// (a buffer pool or memory budget shared across threads). `ready` must outlive the wait.
awaitable<void> PollWithBackoff(const std::function<bool()>& ready);

}  // namespace wharf
