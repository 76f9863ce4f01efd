// `wharf gc --meta URL --master HOST:PORT [--dry-run] [--gc-grace D] [--gc-untagged-after D]`:
// one garbage collection pass from the command line, next to running gateways (no read-only
// window: the store re-decides every deletion in its transactions). Prints what it freed, or
// with --dry-run what it would free, deleting nothing. With --master, it first checks that the
// cluster serves this metadata store (master/namespace_registry.h): deleting another store's
// garbage from this cluster is refused with one line and exit 1.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/common_flags.h"
#include "cli/gc_flags.h"
#include "cluster/cluster_client.h"
#include "common/config.h"
#include "common/log.h"
#include "common/units.h"
#include "gateway/garbage_collector.h"
#include "gateway/gc_report_json.h"
#include "http/cluster_auth.h"
#include "meta/meta_store.h"

namespace wharf::cli {
namespace {

std::optional<GcStep> ParseStep(const std::string& s) {
  if (s == "manifests-listed") return GcStep::kManifestsListed;
  if (s == "manifests-collected") return GcStep::kManifestsCollected;
  if (s == "links-listed") return GcStep::kLinksListed;
  if (s == "links-collected") return GcStep::kLinksCollected;
  return std::nullopt;
}

nlohmann::json ToJson(const GcReport& r, bool dry_run) {
  nlohmann::json j = GcReportJson(r);
  j["dry_run"] = dry_run;
  return j;
}

void PrintReport(const GcReport& r, bool dry_run) {
  if (dry_run) {
    fmt::print("dry run: nothing was deleted. A pass now would free:\n");
    fmt::print("  manifests   {} untagged (with their referrers)\n", r.manifests);
    fmt::print("  blob links  {}\n", r.links);
    fmt::print("  blobs       {} ({}, {} chunks)\n", r.blobs, FormatBytes(r.blob_bytes),
               r.chunks_released);
    fmt::print("  garbage     {} chunks already waiting ({})\n", r.chunks_pending,
               FormatBytes(r.bytes_pending));
    return;
  }
  fmt::print("manifests deleted   {}\n", r.manifests);
  fmt::print("blob links removed  {}\n", r.links);
  fmt::print("blobs deleted       {} ({}, {} chunks)\n", r.blobs, FormatBytes(r.blob_bytes),
             r.chunks_released);
  fmt::print("chunks deleted      {} from every member ({} freed)\n", r.chunks_deleted,
             FormatBytes(r.bytes_deleted));
}

}  // namespace

int RunGc(Args args) {
  const std::string role = "gc";
  CLI::App app{"wharf gc: one garbage collection pass, online", "wharf gc"};
  std::string meta_url, grace = "1h", untagged_after, log_level = "warn", pause_at;
  std::vector<std::string> masters;
  bool dry_run = false, as_json = false;
  size_t scan_page = 1000;
  app.add_option("--meta", meta_url, "the gateways' metadata store: sqlite:PATH or postgres://...")
      ->required();
  app.add_option("--master", masters, "master HOST:PORT (repeatable, or comma-separated)");
  app.add_flag("--dry-run", dry_run, "print what a pass would free; delete nothing");
  app.add_option("--gc-grace", grace,
                 "unreferenced blobs linked more recently than this stay (a client between "
                 "blob push and manifest push)")
      ->capture_default_str();
  app.add_option("--gc-untagged-after", untagged_after,
                 "also collect untagged manifests pushed longer ago than this (default: keep "
                 "them)");
  app.add_option("--scan-page", scan_page, "manifests or blob links per store transaction")
      ->capture_default_str();
  app.add_flag("--json", as_json, "print the report as JSON");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  // Test-only: stop once at this step, print "paused at STEP", go on after a line on stdin.
  app.add_option("--pause-at-for-test", pause_at)->group("");
  std::string key_path;
  AddClusterKeyFlag(app, &key_path,
                    "the cluster's key file, when the cluster is closed (wharf up: "
                    "DATA/cluster.key)");
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  if (!SetLogLevel(log_level)) return ConfigError(role, "unknown --log-level " + log_level);
  GarbageCollectorOptions o;
  o.sweep_every = 0;
  auto flags = ParseGcFlags(grace, untagged_after);
  if (!flags) return ConfigError(role, flags.error().message());
  o.grace = flags->grace;
  o.untagged_after = flags->untagged_after;
  if (scan_page < 1 || scan_page > 100000)
    return ConfigError(role, "--scan-page must be 1..100000");
  o.scan_page = scan_page;
  if (!pause_at.empty()) {
    auto step = ParseStep(pause_at);
    if (!step) return ConfigError(role, "--pause-at-for-test: unknown step " + pause_at);
    auto paused = std::make_shared<bool>(false);
    o.hook_for_test = [want = *step, pause_at, paused](GcStep s) {
      if (s != want || *paused) return;
      *paused = true;
      std::cout << "paused at " << pause_at << std::endl;
      std::string line;
      std::getline(std::cin, line);  // blocks the loop on purpose: nothing else runs meanwhile
    };
  }
  const std::vector<std::string> list = SplitCommas(masters);
  if (list.empty() && !dry_run) return ConfigError(role, "--master is required (unless --dry-run)");
  // A typo must not create (and "collect") an empty database next to the real one.
  if (meta_url.starts_with("sqlite:") && !std::filesystem::exists(meta_url.substr(7))) {
    return ConfigError(role, "--meta: no such database file " + meta_url.substr(7));
  }
  auto store = OpenMetaStore(meta_url);
  if (!store) return ConfigError(role, "--meta: " + store.error().ToString());

  asio::io_context io;
  ClusterClientOptions co;
  co.masters = list;
  if (auto rc = LoadClusterKeyFlag(role, key_path, &co.cluster_key)) return *rc;
  ClusterClient cluster(io.get_executor(), co);
  GarbageCollector gc(&cluster, store->get(), o);
  int rc = 1;
  auto store_id = (*store)->StoreId();
  if (!store_id)
    return ConfigError(role, "--meta: reading its identity: " + store_id.error().ToString());
  auto run = [&]() -> awaitable<void> {
    if (!list.empty()) {
      auto served = co_await cluster.masters().FetchNamespace();
      if (!served) {
        std::cerr << "wharf gc: asking --master which metadata store the cluster serves: "
                  << served.error().ToString() << std::endl;
        co_return;
      }
      if (!served->empty() && *served != *store_id) {
        std::cerr << "wharf gc: the cluster serves metadata store " << *served << ", --meta is "
                  << *store_id << ": refusing to collect another store's garbage" << std::endl;
        co_return;
      }
    }
    GcReport report;
    if (dry_run) {
      auto r = co_await gc.DryRun();
      if (!r) {
        std::cerr << "wharf gc: " << r.error().ToString() << std::endl;
        co_return;
      }
      report = *r;
    } else {
      Status st = co_await cluster.Refresh();
      if (!st.ok()) {
        std::cerr << "wharf gc: no cluster map from --master: " << st.ToString() << std::endl;
        co_return;
      }
      report = co_await gc.RunPass();
    }
    if (as_json) {
      std::cout << ToJson(report, dry_run).dump() << std::endl;
    } else {
      PrintReport(report, dry_run);
    }
    rc = 0;
  };
  asio::co_spawn(io, run, asio::detached);
  io.run();
  return rc;
}

}  // namespace wharf::cli
