// `wharf status`: the cluster as fdfs_monitor shows it, from the first master that answers.
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.h"
#include "common/config.h"
#include "common/units.h"
#include "http/client.h"
#include "master/cluster_map.h"

namespace wharf::cli {
namespace {

void PrintTable(const ClusterMap& map, const std::string& from) {
  size_t members = 0, writable = 0;
  for (const auto& g : map.groups) {
    members += g.members.size();
    writable += g.writable ? 1 : 0;
  }
  fmt::print("cluster map version {} from master {}\n", map.version, from);
  fmt::print("groups: {} ({} writable), members: {}\n", map.groups.size(), writable, members);
  for (const auto& g : map.groups) {
    fmt::print("\ngroup {}  {}  members={}\n", g.id, g.writable ? "writable" : "NOT writable",
               g.members.size());
    fmt::print("  {:<20} {:<22} {:<9} {:>11} {:>11} {:>9}\n", "MEMBER", "ADDRESS", "STATE",
               "CAPACITY", "FREE", "CHUNKS");
    for (const auto& m : g.members) {
      fmt::print("  {:<20} {:<22} {:<9} {:>11} {:>11} {:>9}\n", m.id, m.addr,
                 MemberStateName(m.state), FormatBytes(m.capacity), FormatBytes(m.free), m.chunks);
    }
  }
}

}  // namespace

int RunStatus(Args args) {
  const std::string role = "status";
  CLI::App app{"wharf status: print the cluster", "wharf status"};
  std::string masters = "127.0.0.1:7700";
  bool as_json = false;
  app.add_option("--master", masters, "master HOST:PORT[,HOST:PORT...]")->capture_default_str();
  app.add_flag("--json", as_json, "print the status JSON for scripts");
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  std::vector<std::string> list = SplitCommas({masters});
  if (list.empty()) return ConfigError(role, "--master is required");
  asio::io_context io;
  int rc = 1;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        HttpClient client(io.get_executor(),
                          ClientOptions{std::chrono::seconds(3), std::chrono::seconds(10), 1});
        std::string errors;
        for (const auto& m : list) {
          auto r = co_await client.Request(m, http::verb::get, "/v1/status");
          if (!r || r->status != 200) {
            errors += fmt::format(" {}: {};", m,
                                  r ? "HTTP " + std::to_string(r->status) : r.error().ToString());
            continue;
          }
          auto map = ClusterMap::Parse(r->body);
          if (!map) {
            errors += fmt::format(" {}: {};", m, map.error().ToString());
            continue;
          }
          if (as_json) {
            std::cout << map->ToJson(false).dump() << std::endl;
          } else {
            PrintTable(*map, m);
          }
          rc = 0;
          co_return;
        }
        std::cerr << "wharf status: no master answered:" << errors << std::endl;
      },
      asio::detached);
  io.run();
  return rc;
}

}  // namespace wharf::cli
