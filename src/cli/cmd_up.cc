// `wharf up`: a whole small cluster in one process, for a laptop or a CI job (a LocalCluster:
// a master, two groups of two chunkservers and a gateway; see cli/local_cluster.h for the data
// layout), until SIGINT or SIGTERM.
#include <csignal>
#include <functional>
#include <iostream>

#include "cli/commands.h"
#include "cli/daemon_flags.h"
#include "common/log.h"
#include "http/cluster_auth.h"

namespace wharf::cli {

int RunUp(Args args) {
  const std::string role = "up";
  CLI::App app{"wharf up: a whole cluster in one process", "wharf up"};
  UpFlags f;
  AddUpFlags(app, &f);
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  if (auto rc = ApplyLogLevel(role, f.common.log_level)) return *rc;
  if (Status st = FinishUpFlags(&f); !st.ok()) return ConfigError(role, st.message());
  const LocalClusterOptions& o = f.o;
  if (f.common.check_config) {
    if (Status st = o.Validate(); !st.ok()) return ConfigError(role, st.message());
    std::shared_ptr<const ClusterKey> key;  // an explicit key file must exist
    if (auto rc = LoadClusterKeyFlag(role, o.cluster_key_file, &key)) return *rc;
  }
  if (auto rc = CheckConfigDone(role, f.common)) return *rc;

  LocalCluster cluster(o);
  if (Status st = cluster.Start(); !st.ok()) return ConfigError(role, st.message());
  // Signals are caught from here on and queued until io.run(): a SIGHUP or SIGINT while
  // waiting for "ready" below must not kill the process.
  asio::io_context io;
  // SIGHUP: the gateway reloads its TLS certificate, and the cluster runs on.
  asio::signal_set hup(io, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hup =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        (void)cluster.ReloadTls();  // the gateway logs what happened
        hup.async_wait(on_hup);
      };
  hup.async_wait(on_hup);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&hup](const boost::system::error_code& ec, int) {
    if (!ec) GetLogger("wharf")->info("stopping the cluster");
    hup.cancel();
  });
  std::cout << "wharf up: data in " << o.data_dir << "\n  gateway      "
            << cluster.gateway_address() << "  (registry: /v2/, files: /files)\n  master       "
            << cluster.master_address() << "\n";
  for (const auto& m : cluster.members()) {
    std::cout << "  chunkserver  " << m.address << "  (" << m.id << ", group " << m.group << ")\n";
  }
  std::cout << "  status:      wharf status --master " << cluster.master_address()
            << " --cluster-key " << cluster.cluster_key_file() << std::endl;
  // "ready" only once a push would be taken: every member has reported and caught up.
  if (Status st = cluster.WaitUntilWritable(std::chrono::seconds(30)); st.ok()) {
    std::cout << "wharf up: ready" << std::endl;
  } else {
    GetLogger("wharf")->warn("the cluster is not writable yet ({}); see wharf status --master {}",
                             st.message(), cluster.master_address());
  }

  io.run();
  cluster.Stop();
  std::cout << "wharf up: stopped" << std::endl;
  return 0;
}

}  // namespace wharf::cli
