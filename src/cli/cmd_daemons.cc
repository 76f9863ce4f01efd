// `wharf master`, `wharf chunkserver` and `wharf gateway`. Their flags are in daemon_flags.cc.
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/daemon_flags.h"
#include "cli/run_loop.h"
#include "common/log.h"
#include "gateway/gateway.h"
#include "http/access_log.h"
#include "http/cluster_auth.h"

namespace wharf::cli {
namespace {

// Once the daemon runs: one warning line when it runs without a key.
void WarnIfOpen(const std::string& role, const std::shared_ptr<const ClusterKey>& key) {
  if (key) return;
  GetLogger(role)->warn(
      "no --cluster-key: internal requests are not authenticated, anyone who can reach the "
      "cluster's ports can register members, read and delete chunks");
}

}  // namespace

int RunMaster(Args args) {
  const std::string role = "master";
  CLI::App app{"wharf master: the topology tracker", "wharf master"};
  MasterFlags f;
  AddMasterFlags(app, &f);
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  if (auto rc = ApplyLogLevel(role, f.common.log_level)) return *rc;
  if (Status st = FinishMasterFlags(&f); !st.ok()) return ConfigError(role, st.message());
  if (auto rc = LoadClusterKeyFlag(role, f.cluster_key, &f.o.cluster_key)) return *rc;
  if (auto rc = CheckConfigDone(role, f.common)) return *rc;
  asio::io_context io;
  MasterServer master(io.get_executor(), f.o);
  if (Status st = master.Start(); !st.ok()) return ConfigError(role, st.ToString());
  WarnIfOpen(role, f.o.cluster_key);
  std::cout << "master listening on " << master.address() << std::endl;
  return RunUntilSignal(io, [&] { master.Stop(); });
}

int RunChunkserver(Args args) {
  const std::string role = "chunkserver";
  CLI::App app{"wharf chunkserver: a storage member of one group", "wharf chunkserver"};
  ChunkserverFlags f;
  AddChunkserverFlags(app, &f);
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  if (auto rc = ApplyLogLevel(role, f.common.log_level)) return *rc;
  if (Status st = FinishChunkserverFlags(&f); !st.ok()) return ConfigError(role, st.message());
  if (auto rc = LoadClusterKeyFlag(role, f.cluster_key, &f.o.cluster_key)) return *rc;
  if (auto rc = CheckConfigDone(role, f.common)) return *rc;
  asio::io_context io;
  Chunkserver cs(io.get_executor(), f.o);
  if (Status st = cs.Start(); !st.ok()) return ConfigError(role, st.ToString());
  WarnIfOpen(role, f.o.cluster_key);
  std::cout << "chunkserver " << cs.id() << " listening on " << cs.address() << std::endl;
  return RunUntilSignal(io, [&] { cs.Stop(); });
}

int RunGateway(Args args) {
  const std::string role = "gateway";
  CLI::App app{"wharf gateway: the registry and file API", "wharf gateway"};
  GatewayCommandFlags f;
  AddGatewayCommandFlags(app, &f);
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  if (auto rc = ApplyLogLevel(role, f.common.log_level)) return *rc;
  GatewayOptions& o = f.o;
  if (Status st = FinishGatewayFlags(f.gateway, &o); !st.ok()) {
    return ConfigError(role, st.message());
  }
  if (auto rc = LoadClusterKeyFlag(role, f.cluster_key, &o.cluster_key)) return *rc;
  if (f.common.check_config) {
    if (o.meta_url.empty()) {
      return ConfigError(role, "--meta is required (sqlite:PATH or postgres://...)");
    }
    if (Status st = CheckGatewayFiles(o); !st.ok()) return ConfigError(role, st.message());
  }
  if (auto rc = CheckConfigDone(role, f.common)) return *rc;
  asio::io_context io;
  // A gateway on another metadata store than the cluster's: one line, and exit 1.
  std::optional<Status> fatal;
  Gateway* running = nullptr;
  o.on_fatal = [&](const Status& st) {
    fatal = st;
    std::cerr << "wharf gateway: " << st.message() << std::endl;
    if (running) running->Stop();
    io.stop();
  };
  Gateway gw(io.get_executor(), o);
  running = &gw;
  if (Status st = gw.Start(); !st.ok()) return ConfigError(role, st.ToString());
  WarnIfOpen(role, o.cluster_key);
  std::cout << "gateway listening on " << gw.address() << std::endl;
  RunUntilSignal(
      io, [&] { gw.Stop(); }, 1,
      [&gw] {
        AccessLog::ReopenAll();
        (void)gw.ReloadTls();  // logs what happened
      });
  return fatal ? 1 : 0;
}

}  // namespace wharf::cli
