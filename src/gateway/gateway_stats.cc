#include "gateway/gateway_stats.h"

#include <algorithm>

namespace wharf {
namespace {

struct MemberGauges {
  GaugeMetric& capacity;
  GaugeMetric& free;
};

MemberGauges MemberGaugesOf(MetricsRegistry& m, const std::string& group,
                            const std::string& member) {
  Labels l = {{"group", group}, {"member", member}};
  return {m.Gauge("wharf_gateway_member_capacity_bytes",
                  "Capacity of a member's data directories, from the cluster map.", l),
          m.Gauge("wharf_gateway_member_free_bytes",
                  "Free bytes of a member's data directories, from the cluster map.", l)};
}

struct GroupGauges {
  GaugeMetric& capacity;
  GaugeMetric& free;
  GaugeMetric& writable;
};

GroupGauges GroupGaugesOf(MetricsRegistry& m, const std::string& group) {
  Labels l = {{"group", group}};
  return {m.Gauge("wharf_gateway_group_capacity_bytes",
                  "What a group can hold: its smallest member's capacity.", l),
          m.Gauge("wharf_gateway_group_free_bytes",
                  "Free space of a group: its smallest member's free bytes.", l),
          m.Gauge("wharf_gateway_group_writable", "1 when the group takes writes, else 0.", l)};
}

}  // namespace

void GatewayStats::UpdateCluster(const ClusterMap& map) {
  std::set<std::pair<std::string, std::string>> members;
  std::set<std::string> groups;
  for (const GroupInfo& g : map.groups) {
    uint64_t capacity = g.members.empty() ? 0 : UINT64_MAX;
    uint64_t free = capacity;
    for (const MemberInfo& m : g.members) {
      MemberGauges mg = MemberGaugesOf(metrics_, g.id, m.id);
      mg.capacity.Set(static_cast<double>(m.capacity));
      mg.free.Set(static_cast<double>(m.free));
      capacity = std::min(capacity, m.capacity);
      free = std::min(free, m.free);
      members.emplace(g.id, m.id);
    }
    GroupGauges gg = GroupGaugesOf(metrics_, g.id);
    gg.capacity.Set(static_cast<double>(capacity));
    gg.free.Set(static_cast<double>(free));
    gg.writable.Set(g.writable ? 1 : 0);
    groups.insert(g.id);
  }
  std::lock_guard lock(mu_);
  for (const auto& [group, member] : members_) {
    if (members.contains({group, member})) continue;
    MemberGauges mg = MemberGaugesOf(metrics_, group, member);
    mg.capacity.Set(0);
    mg.free.Set(0);
  }
  for (const std::string& group : groups_) {
    if (groups.contains(group)) continue;
    GroupGauges gg = GroupGaugesOf(metrics_, group);
    gg.capacity.Set(0);
    gg.free.Set(0);
    gg.writable.Set(0);
  }
  members_ = std::move(members);
  groups_ = std::move(groups);
}

void GatewayStats::UpdateTotals(const StoredTotals& t, int64_t unix) {
  auto objects = [this](const char* kind) -> GaugeMetric& {
    return metrics_.Gauge("wharf_gateway_stored_objects",
                          "Objects in the metadata store by kind (blob, manifest, file).",
                          {{"kind", kind}});
  };
  auto bytes = [this](const char* kind) -> GaugeMetric& {
    return metrics_.Gauge("wharf_gateway_stored_bytes",
                          "Bytes of the objects in the metadata store by kind (blob, manifest, "
                          "file); a blob linked into several repositories counts once.",
                          {{"kind", kind}});
  };
  objects("blob").Set(static_cast<double>(t.blobs));
  bytes("blob").Set(static_cast<double>(t.blob_bytes));
  objects("manifest").Set(static_cast<double>(t.manifests));
  bytes("manifest").Set(static_cast<double>(t.manifest_bytes));
  objects("file").Set(static_cast<double>(t.files));
  bytes("file").Set(static_cast<double>(t.file_bytes));
  metrics_
      .Gauge("wharf_gateway_stored_repositories", "Repositories holding a blob link or a manifest.")
      .Set(static_cast<double>(t.repositories));
  metrics_.Gauge("wharf_gateway_stored_tags", "Tags over all repositories.")
      .Set(static_cast<double>(t.tags));
  std::lock_guard lock(mu_);
  totals_ = Totals{t, unix};
}

std::optional<GatewayStats::Totals> GatewayStats::totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

void GatewayStats::UpdateGc(const GcReport& report, int64_t finished_unix, uint64_t rounds) {
  std::lock_guard lock(mu_);
  gc_ = Gc{report, finished_unix, rounds};
}

std::optional<GatewayStats::Gc> GatewayStats::gc() const {
  std::lock_guard lock(mu_);
  return gc_;
}

}  // namespace wharf
