// The heartbeat: the one message a chunkserver sends to every master, and the master's reply.
// Its own header so that a chunkserver depends on the wire types only, not on the master's
// Topology.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "master/cluster_map.h"

namespace wharf {

// One member of a group's roster, as members and masters exchange it.
struct RosterEntry {
  std::string id;
  std::string addr;
  bool operator==(const RosterEntry&) const = default;
};

// At most this many entries in a roster on the wire (a group is a handful of members).
inline constexpr size_t kMaxRosterEntries = 64;

// Parses `j[key]`, an optional array of {"id", "addr"} (absent: empty). kInvalidArgument for a
// malformed entry, a duplicate id or more than kMaxRosterEntries entries. Never throws.
Result<std::vector<RosterEntry>> RosterFromJson(const nlohmann::json& j, std::string_view key);
nlohmann::json RosterToJson(const std::vector<RosterEntry>& roster);

// What a chunkserver POSTs to the master every interval, as JSON:
//   {"group": "g1", "id": "cs1", "addr": "127.0.0.1:7001", "state": "active",
//    "capacity": 1000, "free": 600, "reserve": 100, "chunks": 12, "busy": 3,
//    "interval_ms": 2000, "missing": 0,
//    "roster": [{"id": "cs1", "addr": "127.0.0.1:7001"}, {"id": "cs2", "addr": "..."}]}
// "chunks", "busy" and "missing" default to 0 and "roster" to empty (older members send none);
// every other field is required.
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
  // Chunks its peers hold that it lacks, as its anti-entropy last counted them.
  uint64_t missing = 0;
  // Every member of its group it has ever seen (persisted on its disk): the master adds those
  // it does not know, so a master that lost its data dir still knows the whole group.
  std::vector<RosterEntry> roster;

  static constexpr uint64_t kMaxIntervalMs = 3600 * 1000;

  // kInvalidArgument for malformed fields (ids, addr, a state of offline, a zero interval, a
  // malformed or oversized roster...).
  Status Validate() const;
  // Parses and validates. Never throws; kInvalidArgument on any malformed input.
  static Result<HeartbeatReport> FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
};

// The master's answer to a heartbeat:
//   {"version": 7, "roster": [{"id", "addr"}, ...], "removed": ["cs3"]}
// "roster" is the reporting member's group as this master knows it, "removed" the ids an
// operator decommissioned from it (`wharf member rm`): the member adds the first to the roster
// it persists and drops the second. Both default to empty (an older master sends only
// "version").
struct HeartbeatReply {
  uint64_t version = 0;
  std::vector<RosterEntry> roster;
  std::vector<std::string> removed;

  // Never throws; kInvalidArgument on any malformed input (ids, addresses, sizes).
  static Result<HeartbeatReply> Parse(std::string_view body);
  nlohmann::json ToJson() const;
};

}  // namespace wharf
