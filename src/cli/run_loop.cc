#include "cli/run_loop.h"

#include <thread>
#include <vector>

#include "common/log.h"

namespace wharf::cli {

int RunUntilSignal(asio::io_context& io, std::function<void()> on_stop, int threads,
                   std::function<void()> on_hup) {
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    GetLogger("wharf")->info("signal={} stopping", sig);
    if (on_stop) on_stop();
    io.stop();
  });
  asio::signal_set hup(io);
  std::function<void(const boost::system::error_code&, int)> on_signal;
  if (on_hup) {
    hup.add(SIGHUP);
    on_signal = [&](const boost::system::error_code& ec, int) {
      if (ec) return;
      GetLogger("wharf")->info("signal=SIGHUP reopening logs");
      on_hup();
      hup.async_wait(on_signal);
    };
    hup.async_wait(on_signal);
  }
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : extra) t.join();
  return 0;
}

}  // namespace wharf::cli
