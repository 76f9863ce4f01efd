// What the gateway knows about the cluster and its store beyond single requests, for /metrics
// and the status page: capacity gauges from the cached cluster map, the stored totals the
// stats loop counted last (MetaStore::GetStoredTotals is a table scan: never per scrape), and
// the garbage collector's last round.
//
// Gauges (README "Metrics"):
//   wharf_gateway_member_capacity_bytes{group,member}  wharf_gateway_member_free_bytes{...}
//   wharf_gateway_group_capacity_bytes{group}          wharf_gateway_group_free_bytes{group}
//   wharf_gateway_group_writable{group}
//   wharf_gateway_stored_objects{kind}  wharf_gateway_stored_bytes{kind}   kind: blob|manifest|file
//   wharf_gateway_stored_repositories   wharf_gateway_stored_tags
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "common/metrics.h"
#include "gateway/garbage_collector.h"
#include "master/cluster_map.h"
#include "meta/meta_store.h"

namespace wharf {

class GatewayStats {
 public:
  explicit GatewayStats(MetricsRegistry& metrics = Metrics()) : metrics_(metrics) {}

  // Sets the capacity gauges from `map`. A group's capacity and free space are its smallest
  // member's (every chunk goes to every member). Members and groups that left the map since
  // the last call read 0.
  void UpdateCluster(const ClusterMap& map);

  // Records totals counted at `unix` and sets the stored gauges.
  void UpdateTotals(const StoredTotals& totals, int64_t unix);
  struct Totals {
    StoredTotals totals;
    int64_t counted_unix = 0;
  };
  std::optional<Totals> totals() const;

  // Records a finished collector round.
  void UpdateGc(const GcReport& report, int64_t finished_unix, uint64_t rounds);
  struct Gc {
    GcReport report;
    int64_t finished_unix = 0;
    uint64_t rounds = 0;
  };
  std::optional<Gc> gc() const;

 private:
  MetricsRegistry& metrics_;
  mutable std::mutex mu_;
  std::set<std::pair<std::string, std::string>> members_;  // (group, member) last set
  std::set<std::string> groups_;
  std::optional<Totals> totals_;
  std::optional<Gc> gc_;
};

}  // namespace wharf
