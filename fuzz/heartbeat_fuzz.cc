// What a master does with a heartbeat body (master/topology.h): parse any bytes with
// nlohmann's non-throwing parser, HeartbeatReport::FromJson, then Topology::Heartbeat and the
// cluster map it publishes. A valid report round-trips through ToJson/FromJson, and the map
// shows exactly what it said.
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "fuzz_check.h"
#include "master/cluster_map.h"
#include "master/topology.h"

namespace {

using nlohmann::json;
using wharf::ClusterMap;
using wharf::Code;
using wharf::HeartbeatReport;

void CheckPublished(const HeartbeatReport& r) {
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  wharf::Topology::Options options;
  options.chunk_size = 1;
  wharf::Topology topology(options, [t0] { return t0; });
  FUZZ_CHECK(topology.Heartbeat(r).ok());
  ClusterMap map = topology.Snapshot();
  // The reported roster joins the map: every other member of it, offline until it reports.
  size_t others = 0;
  for (const auto& e : r.roster) others += e.id != r.id ? 1 : 0;
  FUZZ_CHECK(map.groups.size() == 1 && map.groups[0].members.size() == 1 + others);
  const wharf::GroupInfo& g = map.groups[0];
  FUZZ_CHECK(g.FindMember(r.id) != nullptr);
  const wharf::MemberInfo& m = *g.FindMember(r.id);
  for (const auto& e : r.roster) {
    if (e.id == r.id) continue;
    const wharf::MemberInfo* o = g.FindMember(e.id);
    FUZZ_CHECK(o != nullptr && o->addr == e.addr && o->state == wharf::MemberState::kOffline);
  }
  FUZZ_CHECK(m.missing == r.missing);
  FUZZ_CHECK(g.id == r.group && m.id == r.id && m.addr == r.addr && m.state == r.state);
  FUZZ_CHECK(m.capacity == r.capacity && m.free == r.free && m.reserve == r.reserve);
  FUZZ_CHECK(m.chunks == r.chunks && m.busy == r.busy);
  FUZZ_CHECK(g.writable ==
             (others == 0 && r.state == wharf::MemberState::kActive && m.Available() >= 1));
  // The map a gateway fetches parses back to the same map.
  auto back = ClusterMap::Parse(map.ToJson(/*full=*/true).dump());
  FUZZ_CHECK(back && *back == map);
  // A second heartbeat of the same member in another group is refused, the first stays.
  HeartbeatReport other = r;
  other.group.assign(1, r.group == "g" ? 'h' : 'g');
  FUZZ_CHECK(topology.Heartbeat(other).code() == Code::kConflict);
  FUZZ_CHECK(topology.Snapshot().groups == map.groups);
}

// The master's reply, parsed by members: the same bytes through HeartbeatReply::Parse.
void CheckReply(const uint8_t* data, size_t size) {
  auto reply =
      wharf::HeartbeatReply::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!reply) {
    FUZZ_CHECK(reply.error().code() == Code::kInvalidArgument);
    return;
  }
  auto again = wharf::HeartbeatReply::Parse(reply->ToJson().dump());
  FUZZ_CHECK(again && again->ToJson() == reply->ToJson());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = wharf::SetLogLevel("off");
  (void)quiet;
  CheckReply(data, size);
  json j = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  auto report = HeartbeatReport::FromJson(j);
  if (!report) {
    FUZZ_CHECK(report.error().code() == Code::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(report->Validate().ok());
  json out = report->ToJson();
  auto again = HeartbeatReport::FromJson(json::parse(out.dump()));
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->ToJson() == out);
  CheckPublished(*report);
  return 0;
}
