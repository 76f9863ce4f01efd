// `wharf up`: a whole small cluster in one process, for a laptop or a CI job:
// a master, two groups of two chunkservers and a gateway, each on its own event loop thread,
// data under --data:
//
//   <data>/master/          the master's persisted member list
//   <data>/g1-a/ g1-b/      chunkservers of group g1
//   <data>/g2-a/ g2-b/      chunkservers of group g2
//   <data>/meta.db          the gateway's metadata store (SQLite)
#include <fmt/format.h>

#include <csignal>
#include <iostream>
#include <thread>

#include "chunkserver/chunkserver.h"
#include "cli/commands.h"
#include "common/config.h"
#include "common/log.h"
#include "common/units.h"
#include "gateway/gateway.h"
#include "master/master_server.h"

namespace wharf::cli {

int RunUp(Args args) {
  const std::string role = "up";
  CLI::App app{"wharf up: a whole cluster in one process", "wharf up"};
  std::string data = "./wharf-data", host = "127.0.0.1", log_level = "info", config;
  std::string reserve = "1GiB", chunk_size = "16MiB";
  int base_port = 7700;
  std::string listen = "127.0.0.1:5000";
  app.add_option("--config", config, "YAML file of flag values (flags win)");
  app.add_option("--data", data, "data directory")->capture_default_str();
  app.add_option("--listen", listen, "HOST:PORT of the gateway (registry and file API)")
      ->capture_default_str();
  app.add_option("--cluster-host", host, "address the cluster's daemons bind")
      ->capture_default_str();
  app.add_option("--cluster-port", base_port,
                 "master port; chunkservers use the next four (0 = any free ports)")
      ->capture_default_str();
  app.add_option("--reserve", reserve, "free space each chunkserver keeps")->capture_default_str();
  app.add_option("--chunk-size", chunk_size, "chunk size")->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  std::string access_log = "stderr";
  app.add_option("--access-log", access_log, "the gateway's request log: off|stderr|FILE")
      ->capture_default_str();
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  if (!SetLogLevel(log_level)) return ConfigError(role, "unknown --log-level " + log_level);
  auto res = ParseReserve(reserve);
  if (!res) return ConfigError(role, "--reserve: " + res.error().message());
  auto cs = ParseBytes(chunk_size);
  if (!cs || *cs == 0) return ConfigError(role, "--chunk-size: bad size " + chunk_size);
  if (base_port < 0 || base_port > 65530) return ConfigError(role, "--cluster-port out of range");
  auto port = [&](int i) { return base_port == 0 ? 0 : base_port + i; };

  asio::io_context master_io;
  MasterOptions mo;
  mo.listen = fmt::format("{}:{}", host, port(0));
  mo.data_dir = data + "/master";
  mo.chunk_size = *cs;
  MasterServer master(master_io.get_executor(), mo);
  if (Status st = master.Start(); !st.ok()) return ConfigError(role, st.ToString());

  struct Member {
    std::string group, name;
    std::unique_ptr<asio::io_context> io;
    std::unique_ptr<Chunkserver> server;
  };
  std::vector<Member> members;
  int i = 1;
  for (std::string g : {"g1", "g2"}) {
    for (std::string m : {"a", "b"}) {
      Member mem{g, g + "-" + m, std::make_unique<asio::io_context>(), nullptr};
      ChunkserverOptions co;
      co.group = g;
      co.id = mem.name;
      co.listen = fmt::format("{}:{}", host, port(i++));
      co.dirs = {data + "/" + mem.name};
      co.masters = {master.address()};
      co.reserve = *res;
      co.heartbeat = std::chrono::seconds(1);
      co.max_chunk_bytes = std::max<uint64_t>(*cs, 1u << 20);
      mem.server = std::make_unique<Chunkserver>(mem.io->get_executor(), co);
      if (Status st = mem.server->Start(); !st.ok()) {
        return ConfigError(role, mem.name + ": " + st.ToString());
      }
      members.push_back(std::move(mem));
    }
  }
  asio::io_context gateway_io;
  GatewayOptions go;
  go.listen = listen;
  go.masters = {master.address()};
  go.meta_url = "sqlite:" + data + "/meta.db";
  go.chunk_size = *cs;
  go.access_log = access_log;
  Gateway gateway(gateway_io.get_executor(), go);
  if (Status st = gateway.Start(); !st.ok()) return ConfigError(role, "gateway: " + st.ToString());

  std::cout << "wharf up: data in " << data << "\n  gateway      " << gateway.address()
            << "  (registry: /v2/, files: /files)\n  master       " << master.address() << "\n";
  for (auto& m : members) {
    std::cout << "  chunkserver  " << m.server->address() << "  (" << m.name << ", group "
              << m.group << ")\n";
  }
  std::cout << "  status:      wharf status --master " << master.address() << std::endl;

  std::vector<std::thread> threads;
  for (auto& m : members) threads.emplace_back([&io = *m.io] { io.run(); });
  threads.emplace_back([&gateway_io] { gateway_io.run(); });
  asio::signal_set signals(master_io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    GetLogger("wharf")->info("stopping the cluster");
    master.Stop();
    master_io.stop();
  });
  master_io.run();
  gateway.Stop();
  gateway_io.stop();
  for (auto& m : members) {
    m.server->Stop();
    m.io->stop();
  }
  for (auto& t : threads) t.join();
  std::cout << "wharf up: stopped" << std::endl;
  return 0;
}

}  // namespace wharf::cli
