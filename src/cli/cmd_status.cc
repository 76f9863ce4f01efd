// `wharf status`: the cluster as fdfs_monitor shows it, from the first master that answers.
// `wharf member rm ID [--force]`: forgets a decommissioned member on every master.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "common/config.h"
#include "common/units.h"
#include "common/version.h"
#include "http/client.h"
#include "http/cluster_auth.h"
#include "master/cluster_map.h"

namespace wharf::cli {
namespace {

void PrintTable(const ClusterMap& map, const std::string& from, std::string_view version) {
  size_t members = 0, writable = 0;
  for (const auto& g : map.groups) {
    members += g.members.size();
    writable += g.writable ? 1 : 0;
  }
  fmt::print("cluster map version {} from master {} (wharf {})\n", map.version, from,
             version.empty() ? "?" : version);
  fmt::print("groups: {} ({} writable), members: {}\n", map.groups.size(), writable, members);
  for (const auto& g : map.groups) {
    size_t active = 0;
    for (const auto& m : g.members) active += m.state == MemberState::kActive ? 1 : 0;
    std::string health = g.writable ? "writable" : "NOT writable";
    if (active < g.members.size()) {
      health += fmt::format("  DEGRADED ({} of {} members active)", active, g.members.size());
    }
    if (!g.removed.empty()) {
      // Decommissioned and not replaced: fewer copies of every new chunk than before.
      health += fmt::format("  REDUCED ({} of {} members, removed: {})", g.members.size(),
                            g.members.size() + g.removed.size(), fmt::join(g.removed, ","));
    }
    if (g.under_replicated > 0) {
      health += fmt::format("  UNDER-REPLICATED ({} chunk copies missing)", g.under_replicated);
    }
    fmt::print("\ngroup {}  {}  members={} under_replicated={}\n", g.id, health, g.members.size(),
               g.under_replicated);
    fmt::print("  {:<20} {:<22} {:<9} {:>11} {:>11} {:>9} {:>9}\n", "MEMBER", "ADDRESS", "STATE",
               "CAPACITY", "FREE", "CHUNKS", "MISSING");
    for (const auto& m : g.members) {
      // What an offline member last reported is stale: show that it is unknown now.
      const bool stale = m.state == MemberState::kOffline;
      fmt::print("  {:<20} {:<22} {:<9} {:>11} {:>11} {:>9} {:>9}\n", m.id, m.addr,
                 MemberStateName(m.state), stale ? "-" : FormatBytes(m.capacity),
                 stale ? "-" : FormatBytes(m.free), stale ? "-" : std::to_string(m.chunks),
                 stale ? "-" : std::to_string(m.missing));
    }
  }
}

// Why `body` (answered with `status` to GET /v1/status) is not a master's status: a gateway
// has no /v1/status, a chunkserver's describes one member.
std::string NotAMaster(unsigned status, const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (status == 200 && j.is_object() && j.contains("group") && !j.contains("groups")) {
    return "is a chunkserver, not a master (give a master's address with --master)";
  }
  if (status == 404) {
    return "is not a wharf master (no /v1/status there: a gateway? give a master's address "
           "with --master)";
  }
  return "";
}

// HTTP client options of the tools: short timeouts, one idle connection, the cluster key.
ClientOptions ToolClientOptions(std::shared_ptr<const ClusterKey> key) {
  return ClientOptions{std::chrono::seconds(3), std::chrono::seconds(10), 1, std::move(key)};
}

constexpr const char* kToolKeyHelp =
    "the cluster's key file, when the cluster is closed (masters answer 401 without it)";

}  // namespace

int RunStatus(Args args) {
  const std::string role = "status";
  CLI::App app{"wharf status: print the cluster", "wharf status"};
  std::string masters = "127.0.0.1:7700";
  std::string key_path;
  bool as_json = false;
  app.add_option("--master", masters, "master HOST:PORT[,HOST:PORT...]")->capture_default_str();
  app.add_flag("--json", as_json, "print the status JSON for scripts");
  AddClusterKeyFlag(app, &key_path, kToolKeyHelp);
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  std::shared_ptr<const ClusterKey> key;
  if (auto rc = LoadClusterKeyFlag(role, key_path, &key)) return *rc;
  std::vector<std::string> list = SplitCommas({masters});
  if (list.empty()) return ConfigError(role, "--master is required");
  asio::io_context io;
  int rc = 1;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        HttpClient client(io.get_executor(), ToolClientOptions(key));
        std::string errors;
        for (const auto& m : list) {
          auto r = co_await client.Request(m, http::verb::get, "/v1/status");
          if (r) {
            if (std::string why = NotAMaster(r->status, r->body); !why.empty()) {
              errors += fmt::format(" {} {};", m, why);
              continue;
            }
          }
          if (r && r->status == 401) {
            errors += fmt::format(
                " {}: HTTP 401, the cluster is closed: {};", m,
                key ? "this --cluster-key is not its key" : "give its key with --cluster-key");
            continue;
          }
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
            PrintTable(*map, m, r->header("X-Wharf-Version"));
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

int RunMember(Args args) {
  const std::string role = "member";
  CLI::App app{"wharf member: decommission members", "wharf member"};
  app.require_subcommand(1);
  CLI::App* rm = app.add_subcommand("rm", "forget a member for good, on every master");
  std::string id, masters = "127.0.0.1:7700", key_path;
  bool force = false;
  rm->add_option("id", id, "the member's id (as wharf status shows it)")->required();
  rm->add_option("--master", masters, "master HOST:PORT[,HOST:PORT...]: every one of them")
      ->capture_default_str();
  rm->add_flag("--force", force,
               "remove it even though it was heard from recently (its group then runs on "
               "fewer copies)");
  AddClusterKeyFlag(*rm, &key_path, kToolKeyHelp);
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  std::shared_ptr<const ClusterKey> key;
  if (auto rc = LoadClusterKeyFlag(role, key_path, &key)) return *rc;
  if (Status st = ValidateId("member id", id); !st.ok()) return ConfigError(role, st.message());
  std::vector<std::string> list = SplitCommas({masters});
  if (list.empty()) return ConfigError(role, "--master is required");
  asio::io_context io;
  int failures = 0;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        HttpClient client(io.get_executor(), ToolClientOptions(key));
        // Masters keep their member lists independently: remove it from each.
        for (const auto& m : list) {
          std::string target = "/v1/members/" + id + (force ? "?force=1" : "");
          auto r = co_await client.Request(m, http::verb::delete_, target);
          std::string problem;
          if (!r) {
            problem = r.error().ToString();
          } else if (r->status != 204) {
            auto j = nlohmann::json::parse(r->body, nullptr, false);
            problem = j.is_object() && j.contains("error") && j["error"].is_object() &&
                              j["error"].contains("message") && j["error"]["message"].is_string()
                          ? j["error"]["message"].get<std::string>()
                          : "HTTP " + std::to_string(r->status);
          }
          if (problem.empty()) {
            std::cout << "member " << id << " removed on master " << m << std::endl;
          } else {
            ++failures;
            std::cerr << "wharf member: " << m << ": " << problem << std::endl;
          }
        }
      },
      asio::detached);
  io.run();
  return failures == 0 ? 0 : 1;
}

}  // namespace wharf::cli
