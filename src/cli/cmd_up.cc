// `wharf up`: a whole small cluster in one process, for a laptop or a CI job (a LocalCluster:
// a master, two groups of two chunkservers and a gateway; see cli/local_cluster.h for the data
// layout), until SIGINT or SIGTERM.
#include <csignal>
#include <functional>
#include <iostream>

#include "cli/commands.h"
#include "cli/gateway_flags.h"
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
  std::string reserve = "1GiB", chunk_size = "16MiB", token_ttl = "5m", gc_grace = "1h";
  std::string gc_untagged_after, member_timeout = "5s";
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
  app.add_option("--meta", o.meta_url,
                 "the gateway's metadata store (default sqlite:DATA/meta.db; or postgres://...)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_option("--access-log", o.access_log, "the gateway's request log: off|stderr|FILE")
      ->capture_default_str();
  AddGatewayAuthFlags(app, &o.gateway_auth, &token_ttl);
  GatewayUrlFlags url_flags;
  AddGatewayUrlFlags(app, &url_flags);
  app.add_option("--tls-cert", o.tls_cert,
                 "the gateway's PEM certificate (a chain allowed); reloaded on SIGHUP");
  app.add_option("--tls-key", o.tls_key, "the gateway's PEM private key");
  app.add_option("--tls-client-ca", o.tls_client_ca,
                 "ask the gateway's clients for certificates signed by these CAs");
  app.add_option("--cluster-key", o.cluster_key_file,
                 "the cluster's key file (default: DATA/cluster.key, created when absent)");
  app.add_option("--gc-grace", gc_grace,
                 "unreferenced blobs linked more recently than this are kept")
      ->capture_default_str();
  app.add_option("--gc-untagged-after", gc_untagged_after,
                 "collect untagged manifests pushed longer ago than this (default: keep them)");
  app.add_option("--member-timeout", member_timeout,
                 "the gateway's deadline for each call to a chunkserver or master")
      ->capture_default_str();
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  auto mt = ParseMemberTimeout(member_timeout);
  if (!mt) return ConfigError(role, mt.error().message());
  o.member_timeout = *mt;
  o.public_url = url_flags.public_url;
  o.trusted_proxies = SplitCommas(url_flags.trusted_proxies);
  o.allow_foreign_layers = !url_flags.refuse_foreign_layers;
  if (!SetLogLevel(log_level)) return ConfigError(role, "unknown --log-level " + log_level);
  if (Status st = FinishGatewayAuthFlags(token_ttl, &o.gateway_auth); !st.ok()) {
    return ConfigError(role, st.message());
  }
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
