// Runs an io_context until SIGINT or SIGTERM, for the daemon commands.
#pragma once

#include <functional>

#include "common/asio.h"

namespace wharf::cli {

// Runs `io` on `threads` threads (the caller's included) until a signal arrives; then
// calls `on_stop` and stops the context. Returns 0.
int RunUntilSignal(asio::io_context& io, std::function<void()> on_stop, int threads = 1);

}  // namespace wharf::cli
