// `wharf up`: a whole small cluster in one process, for a laptop or a CI job (a LocalCluster:
// a master, two groups of two chunkservers and a gateway; see cli/local_cluster.h for the data
// layout), until SIGINT or SIGTERM.
#include <csignal>
#include <iostream>

#include "cli/commands.h"
#include "cli/gc_flags.h"
#include "cli/local_cluster.h"
#include "common/config.h"
#include "common/log.h"
#include "common/units.h"

namespace wharf::cli {

int RunUp(Args args) {
  const std::string role = "up";
  CLI::App app{"wharf up: a whole cluster in one process", "wharf up"};
  LocalClusterOptions o;
  std::string log_level = "info", config;
  std::string reserve = "1GiB", chunk_size = "16MiB", gc_grace = "1h", gc_untagged_after;
  app.add_option("--config", config, "YAML file of flag values (flags win)");
  app.add_option("--data", o.data_dir, "data directory")->capture_default_str();
  app.add_option("--listen", o.gateway_listen, "HOST:PORT of the gateway (registry and file API)")
      ->capture_default_str();
  app.add_option("--cluster-host", o.host, "address the cluster's daemons bind")
      ->capture_default_str();
  app.add_option("--cluster-port", o.base_port,
                 "master port; chunkservers use the next four (0 = any free ports)")
      ->capture_default_str();
  app.add_option("--reserve", reserve, "free space each chunkserver keeps")->capture_default_str();
  app.add_option("--chunk-size", chunk_size, "chunk size")->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_option("--access-log", o.access_log, "the gateway's request log: off|stderr|FILE")
      ->capture_default_str();
  app.add_option("--gc-grace", gc_grace,
                 "unreferenced blobs linked more recently than this are kept")
      ->capture_default_str();
  app.add_option("--gc-untagged-after", gc_untagged_after,
                 "collect untagged manifests pushed longer ago than this (default: keep them)");
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  if (!SetLogLevel(log_level)) return ConfigError(role, "unknown --log-level " + log_level);
  auto res = ParseReserve(reserve);
  if (!res) return ConfigError(role, "--reserve: " + res.error().message());
  o.reserve = *res;
  auto cs = ParseBytes(chunk_size);
  if (!cs) return ConfigError(role, "--chunk-size: " + cs.error().message());
  o.chunk_size = *cs;
  auto gcf = ParseGcFlags(gc_grace, gc_untagged_after);
  if (!gcf) return ConfigError(role, gcf.error().message());
  o.gc_grace = gcf->grace;
  o.gc_untagged_after = gcf->untagged_after;

  LocalCluster cluster(o);
  if (Status st = cluster.Start(); !st.ok()) return ConfigError(role, st.message());
  std::cout << "wharf up: data in " << o.data_dir << "\n  gateway      "
            << cluster.gateway_address() << "  (registry: /v2/, files: /files)\n  master       "
            << cluster.master_address() << "\n";
  for (const auto& m : cluster.members()) {
    std::cout << "  chunkserver  " << m.address << "  (" << m.id << ", group " << m.group << ")\n";
  }
  std::cout << "  status:      wharf status --master " << cluster.master_address() << std::endl;

  asio::io_context io;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([](const boost::system::error_code& ec, int) {
    if (!ec) GetLogger("wharf")->info("stopping the cluster");
  });
  io.run();
  cluster.Stop();
  std::cout << "wharf up: stopped" << std::endl;
  return 0;
}

}  // namespace wharf::cli
