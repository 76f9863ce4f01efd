// Runs an io_context until SIGINT or SIGTERM, for the daemon commands.
#pragma once

#include <functional>

#include "common/asio.h"

namespace wharf::cli {

// Runs `io` on `threads` threads (the caller's included) until SIGINT or SIGTERM arrives; then
// calls `on_stop` and stops the context. With `on_hup`, SIGHUP calls it (on the loop; it must
// not block) instead of ending the process. Returns 0.
int RunUntilSignal(asio::io_context& io, std::function<void()> on_stop, int threads = 1,
                   std::function<void()> on_hup = nullptr);

}  // namespace wharf::cli
