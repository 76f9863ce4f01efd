// Placement: which group takes the next chunk. Pure functions over a ClusterMap, so the master
// and the gateway's cluster client (which picks groups itself from its cached map, as Speedy's
// ImageServer does) share one implementation.
#pragma once

#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"
#include "master/cluster_map.h"

namespace wharf {

enum class PlacementPolicy {
  // Default. Among writable groups, the "top groups" are those whose MinAvailable() is within
  // 10% of the best one; of those the least busy (sum of members' busy) wins. Ties take turns
  // when the request carries a counter (round_robin_counter), else go to the smallest id.
  // Spreads load without always hammering the single emptiest group.
  kMostFree,
  // Writable groups sorted by id, in turn, driven by a caller-held counter.
  kRoundRobin,
  // One given group (FastDFS's store_lookup=1).
  kNamed,
};

// "most_free", "round_robin", "named". kInvalidArgument otherwise.
Result<PlacementPolicy> ParsePlacementPolicy(std::string_view name);
std::string_view PlacementPolicyName(PlacementPolicy policy);

struct PlacementRequest {
  PlacementPolicy policy = PlacementPolicy::kMostFree;
  std::string group;  // kNamed only: the group to use
  // Bytes about to be written: groups whose MinAvailable() is smaller are skipped. 0 trusts the
  // map's `writable` flag alone (which the master computed against its chunk size).
  uint64_t chunk_bytes = 0;
  // Groups never to choose (e.g. those a write just failed on).
  std::set<std::string, std::less<>> exclude;
  // kRoundRobin: required. kMostFree: optional, rotates among tied top groups. Not owned;
  // shared by the caller's threads (one fetch_add per call that uses it).
  std::atomic<uint64_t>* round_robin_counter = nullptr;
};

// The id of the group to write to. Errors:
//   kUnavailable     no writable, non-excluded group with room (or the named group is one of
//                    not writable / excluded / too full);
//   kNotFound        kNamed with a group the map does not know;
//   kInvalidArgument kNamed without a group, kRoundRobin without a counter.
// Thread-safe (reads `map`, touches only the counter atomically).
Result<std::string> ChooseGroup(const ClusterMap& map, const PlacementRequest& request);

}  // namespace wharf
