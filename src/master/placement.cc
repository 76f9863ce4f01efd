#include "master/placement.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace wharf {
namespace {

// Why `g` cannot take the request's chunk, or "" when it can.
std::string WhyNotEligible(const GroupInfo& g, const PlacementRequest& request) {
  if (request.exclude.count(g.id) != 0) return "excluded";
  if (!g.writable) return "not writable";
  if (g.MinAvailable() < request.chunk_bytes) {
    return fmt::format("too full ({} bytes available, {} needed)", g.MinAvailable(),
                       request.chunk_bytes);
  }
  return "";
}

// Eligible groups, sorted by id (the map is sorted, but a hand-built map may not be).
std::vector<const GroupInfo*> Candidates(const ClusterMap& map, const PlacementRequest& request) {
  std::vector<const GroupInfo*> out;
  for (const GroupInfo& g : map.groups) {
    if (WhyNotEligible(g, request).empty()) out.push_back(&g);
  }
  std::sort(out.begin(), out.end(),
            [](const GroupInfo* a, const GroupInfo* b) { return a->id < b->id; });
  return out;
}

Status NoWritableGroup(const ClusterMap& map, const PlacementRequest& request) {
  size_t writable = 0;
  for (const GroupInfo& g : map.groups) writable += g.writable ? 1 : 0;
  return Unavailable(fmt::format(
      "no writable group: {} groups, {} writable, {} excluded, chunk {} bytes (cluster map "
      "version {})",
      map.groups.size(), writable, request.exclude.size(), request.chunk_bytes, map.version));
}

std::string ChooseMostFree(const std::vector<const GroupInfo*>& candidates,
                           std::atomic<uint64_t>* tie_counter) {
  uint64_t best = 0;
  for (const GroupInfo* g : candidates) best = std::max(best, g->MinAvailable());
  const uint64_t threshold = best - best / 10;  // within 10% of the best
  uint64_t least_busy = UINT64_MAX;
  for (const GroupInfo* g : candidates) {
    if (g->MinAvailable() >= threshold) least_busy = std::min(least_busy, g->Busy());
  }
  // The top groups that are least busy, by id. Without a counter the smallest id wins; with
  // one they take turns, so equally empty, equally idle groups share the writes (otherwise a
  // burst of writes between two heartbeats would all land on the first group).
  std::vector<const GroupInfo*> tied;
  for (const GroupInfo* g : candidates) {
    if (g->MinAvailable() >= threshold && g->Busy() == least_busy) tied.push_back(g);
  }
  if (tie_counter == nullptr || tied.size() == 1) return tied.front()->id;
  uint64_t n = tie_counter->fetch_add(1, std::memory_order_relaxed);
  return tied[n % tied.size()]->id;
}

Result<std::string> ChooseNamed(const ClusterMap& map, const PlacementRequest& request) {
  if (request.group.empty()) return Err(InvalidArgument("placement policy named needs a group"));
  const GroupInfo* g = map.FindGroup(request.group);
  if (g == nullptr) return Err(NotFound(fmt::format("unknown group {}", request.group)));
  std::string why = WhyNotEligible(*g, request);
  if (!why.empty()) return Err(Unavailable(fmt::format("group {} is {}", g->id, why)));
  return g->id;
}

}  // namespace

Result<PlacementPolicy> ParsePlacementPolicy(std::string_view name) {
  for (PlacementPolicy p :
       {PlacementPolicy::kMostFree, PlacementPolicy::kRoundRobin, PlacementPolicy::kNamed}) {
    if (name == PlacementPolicyName(p)) return p;
  }
  return Err(InvalidArgument(
      fmt::format("unknown placement policy \"{}\" (want most_free, round_robin or named)",
                  name.substr(0, std::min<size_t>(name.size(), 32)))));
}

std::string_view PlacementPolicyName(PlacementPolicy policy) {
  switch (policy) {
    case PlacementPolicy::kMostFree:
      return "most_free";
    case PlacementPolicy::kRoundRobin:
      return "round_robin";
    case PlacementPolicy::kNamed:
      return "named";
  }
  return "most_free";
}

Result<std::string> ChooseGroup(const ClusterMap& map, const PlacementRequest& request) {
  if (request.policy == PlacementPolicy::kNamed) return ChooseNamed(map, request);
  if (request.policy == PlacementPolicy::kRoundRobin && request.round_robin_counter == nullptr) {
    return Err(InvalidArgument("placement policy round_robin needs a counter"));
  }
  std::vector<const GroupInfo*> candidates = Candidates(map, request);
  if (candidates.empty()) return Err(NoWritableGroup(map, request));
  if (request.policy == PlacementPolicy::kRoundRobin) {
    uint64_t n = request.round_robin_counter->fetch_add(1, std::memory_order_relaxed);
    return candidates[n % candidates.size()]->id;
  }
  return ChooseMostFree(candidates, request.round_robin_counter);
}

}  // namespace wharf
