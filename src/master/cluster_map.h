// The cluster map: which groups exist, their members, each member's state and space, and
// whether the group takes writes. The master computes it (see topology.h) and serves it; the
// gateway's cluster client fetches it, parses it with ClusterMap::FromJson and chooses groups
// from it with the pure functions of placement.h.
//
// Wire format (ToJson(false), served to `wharf status --json`; exactly these fields):
//
//   {"version": 7,
//    "groups": [{"id": "g1", "writable": true, "under_replicated": 0, "removed": [],
//                "members": [{"id": "cs1", "addr": "127.0.0.1:7001", "state": "active",
//                             "capacity": 1000, "free": 600, "chunks": 12, "missing": 0}]}]}
//
// "under_replicated", "removed" and "missing" are optional on input (default 0 / empty).
//
// ToJson(true) (the "full" map, served to gateways) adds "reserve" and "busy" to each member.
// Groups are sorted by id, members by id within a group.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace wharf {

// The state the master publishes for a member. Chunkservers report only kSyncing, kActive or
// kReadonly; the master derives kReadonly (missed a heartbeat) and kOffline (silent too long).
enum class MemberState {
  kSyncing,   // catching up from a peer; serves nothing yet
  kActive,    // serves reads and takes writes
  kReadonly,  // serves reads; under its disk reserve, or missed a heartbeat
  kOffline,   // not heard from for several heartbeat intervals (or never since master start)
};

// "syncing", "active", "readonly", "offline".
std::string_view MemberStateName(MemberState state);
// The inverse of MemberStateName. kInvalidArgument for anything else.
Result<MemberState> ParseMemberState(std::string_view name);

// Ids of groups and members: 1..64 characters of [A-Za-z0-9._-]. kInvalidArgument otherwise;
// `what` names the field in the message.
Status ValidateId(std::string_view what, std::string_view id);
// A member address "host:port": at most 255 characters of [A-Za-z0-9._:[]-], a non-empty
// host and a port in 1..65535. kInvalidArgument otherwise.
Status ValidateAddr(std::string_view addr);

struct MemberInfo {
  std::string id;    // unique cluster-wide
  std::string addr;  // "host:port" of its chunk API
  MemberState state = MemberState::kOffline;
  uint64_t capacity = 0;  // bytes of its data directories
  uint64_t free = 0;      // bytes free
  uint64_t reserve = 0;   // bytes it keeps free; it refuses writes under it (full map only)
  uint64_t chunks = 0;    // chunks stored
  uint64_t busy = 0;      // requests in flight, as it last reported (full map only)
  uint64_t missing = 0;   // chunks its peers hold that it lacks (its last anti-entropy count)

  // free - reserve, or 0 when under the reserve: what a write may still use.
  uint64_t Available() const { return free > reserve ? free - reserve : 0; }
  bool operator==(const MemberInfo&) const = default;
};

struct GroupInfo {
  std::string id;
  // True only when every member the group has ever had is active and MinAvailable() is at
  // least the master's chunk size (Speedy's rule).
  bool writable = false;
  std::vector<MemberInfo> members;  // sorted by id
  // Chunk copies the group's members lack: the sum of the members' `missing` (for a group of
  // two, the chunks held by one member only). 0 in steady state.
  uint64_t under_replicated = 0;
  // Members an operator decommissioned (`wharf member rm`) and no new member has replaced yet:
  // the group runs on fewer members than it had. Sorted.
  std::vector<std::string> removed;

  // The smallest Available() among members (0 with no members): a chunk goes to all of them.
  uint64_t MinAvailable() const;
  // Sum of the members' busy counts.
  uint64_t Busy() const;
  const MemberInfo* FindMember(std::string_view member_id) const;
  bool operator==(const GroupInfo&) const = default;
};

struct ClusterMap {
  // Changes whenever anything else in the map changes. Comparable only between maps of the same
  // master process.
  uint64_t version = 0;
  std::vector<GroupInfo> groups;  // sorted by id

  // The status shape (full=false) or the gateway shape (full=true, adds reserve and busy).
  nlohmann::json ToJson(bool full = false) const;
  // Parses either shape (reserve and busy default to 0). Validates ids, addresses, states and
  // numbers; rejects duplicate ids; sorts groups and members. Never throws: malformed input is
  // kInvalidArgument.
  static Result<ClusterMap> FromJson(const nlohmann::json& j);
  // FromJson over text; unparsable text is kInvalidArgument.
  static Result<ClusterMap> Parse(std::string_view text);

  // nullptr when absent.
  const GroupInfo* FindGroup(std::string_view group_id) const;
  bool operator==(const ClusterMap&) const = default;
};

}  // namespace wharf
