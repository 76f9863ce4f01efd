// The heartbeat: the one message a chunkserver sends to every master. Its own header so that a
// chunkserver depends on the wire type only, not on the master's Topology.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "master/cluster_map.h"

namespace wharf {

// What a chunkserver POSTs to the master every interval, as JSON:
//   {"group": "g1", "id": "cs1", "addr": "127.0.0.1:7001", "state": "active",
//    "capacity": 1000, "free": 600, "reserve": 100, "chunks": 12, "busy": 3,
//    "interval_ms": 2000}
// "chunks" and "busy" default to 0; every other field is required.
struct HeartbeatReport {
  std::string group;
  std::string id;
  std::string addr;
  MemberState state = MemberState::kActive;  // kSyncing, kActive or kReadonly
  uint64_t capacity = 0;
  uint64_t free = 0;
  uint64_t reserve = 0;
  uint64_t chunks = 0;
  uint64_t busy = 0;         // requests in flight
  uint64_t interval_ms = 0;  // how often it heartbeats: 1 .. kMaxIntervalMs

  static constexpr uint64_t kMaxIntervalMs = 3600 * 1000;

  // kInvalidArgument for malformed fields (ids, addr, a state of offline, a zero interval...).
  Status Validate() const;
  // Parses and validates. Never throws; kInvalidArgument on any malformed input.
  static Result<HeartbeatReport> FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
};

}  // namespace wharf
