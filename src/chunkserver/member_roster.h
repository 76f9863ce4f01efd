// MemberRoster: the roster of its group a chunkserver has seen, kept on its own disk so that a
// master that lost its data dir learns the whole group from the members (master/topology.h).
//
//   <first dir>/roster.json   {"format": 1, "group": "g1",
//                              "members": [{"id": "cs1", "addr": "127.0.0.1:7001"}, ...]}
//
// written with WriteFileAtomic whenever the roster changes: a master's heartbeat reply names a
// member it did not know or a new address, or an operator decommissioned one (`removed`).
//
// Not thread-safe: one owner (the chunkserver's heartbeat loop; Load at start).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "master/heartbeat.h"

namespace wharf {

class MemberRoster {
 public:
  MemberRoster(std::string group, std::string self_id, std::string self_addr);

  // The roster of `text` (a roster.json). kInvalidArgument for a malformed document. A file of
  // another group is not an error: it is ignored (the member moved; its old roster means
  // nothing here) and *ignored set to true.
  Status ParseFile(std::string_view text, bool* ignored);
  std::string ToFile() const;

  // Merges a master's heartbeat reply: its members join (or update their address), its
  // removed ids leave; this member itself always stays. True when anything changed.
  bool Merge(const HeartbeatReply& reply);
  // Updates this member's own address (--advertise may change across restarts).
  void SetSelfAddr(std::string addr);

  // Sorted by id; always includes this member.
  const std::vector<RosterEntry>& entries() const { return entries_; }

 private:
  bool Upsert(const RosterEntry& entry);

  std::string group_;
  std::string self_id_;
  std::vector<RosterEntry> entries_;
};

}  // namespace wharf
