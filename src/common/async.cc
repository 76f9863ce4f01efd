#include "common/async.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace wharf {

asio::thread_pool& IoPool() {
  static asio::thread_pool* pool = [] {
    size_t n = std::max<size_t>(4, 2 * std::thread::hardware_concurrency());
    if (const char* env = std::getenv("WHARF_IO_THREADS")) {
      long v = std::strtol(env, nullptr, 10);
      if (v > 0 && v < 1024) n = static_cast<size_t>(v);
    }
    return new asio::thread_pool(n);
  }();
  return *pool;
}

awaitable<void> SleepFor(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

awaitable<void> PollWithBackoff(const std::function<bool()>& ready) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto backoff = std::chrono::milliseconds(1);
  for (;;) {
    timer.expires_after(backoff);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ready()) co_return;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(20));
  }
}

}  // namespace wharf
