// The master's view of the cluster, rebuilt from chunkserver heartbeats (soft state, as in
// FastDFS's tracker: several masters run as peers, each fed by every chunkserver, no consensus).
//
// Only the list of members ever seen per group is persisted, so that a restarted master knows
// at once that a group with a silent member is degraded instead of calling it writable:
//
//   <data_dir>/
//     members.json   {"format": 1,
//                     "members": [{"group": "g1", "id": "cs1", "addr": "127.0.0.1:7001"}, ...],
//                     "removed": [{"group": "g1", "id": "cs3", "at_ms": 1700000000000}]}
//
// written with WriteFileAtomic whenever a member appears, changes address or is forgotten.
// ("removed" is optional: files written before it existed have none.)
//
// The roster of a group does not depend on this file alone (a master may lose its data dir):
// every member persists the roster it has seen and reports it in its heartbeats, and peer
// masters exchange their member lists (the same document, GET /v1/roster). The topology takes
// the union: a member it learns of that way is offline until it heartbeats itself, so its group
// is not writable until every member of the roster is active. Decommissioned members are kept
// in "removed" so that stale rosters do not bring them back, and so that `wharf status` can say
// the group runs on fewer members than it had.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/log.h"
#include "common/status.h"
#include "master/cluster_map.h"
#include "master/heartbeat.h"

namespace wharf {

// Thread-safe: every method takes one mutex. Heartbeat() and ForgetMember() may write the
// members file (blocking disk I/O, rare): call them off the event loop.
class Topology {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  struct Options {
    std::string data_dir;     // where members.json lives; "" keeps nothing on disk
    uint64_t chunk_size = 0;  // a group is writable only if each member has this much room
    // A member is offline after this many of its heartbeat intervals without one...
    double offline_after_intervals = 3;
    // ...and readonly after more than this many (it missed one).
    double readonly_after_intervals = 1.5;
    // The version of the first published map. A daemon may seed it from the wall clock (e.g.
    // milliseconds since the epoch) so versions keep growing across master restarts.
    uint64_t first_version = 1;

    // kInvalidArgument unless chunk_size > 0 and 0 < readonly_after < offline_after.
    Status Validate() const;
  };

  // `clock` is injectable for tests; it must be monotonic.
  explicit Topology(Options options, Clock clock = &std::chrono::steady_clock::now);

  // Reads the persisted members: each becomes a member in state offline until it heartbeats.
  // A missing file is an empty cluster. kCorruption for an unreadable file, kIOError for a
  // disk error. Call once at start, before heartbeats.
  Status Load();

  // Records a heartbeat. kInvalidArgument for a malformed report; kConflict when the member id
  // already belongs to another group (ForgetMember first to move it). A new member or a new
  // address is persisted; if that write fails the heartbeat is still accepted, the failure is
  // logged and counted (wharf_master_persist_errors_total) and retried on the next heartbeat.
  Status Heartbeat(const HeartbeatReport& report);

  // The cluster map as of the clock's now. Its version is bumped whenever its content differs
  // from the previously returned map's.
  ClusterMap Snapshot();

  // Ok, or kUnavailable (with the reason) while the last write of members.json failed: a
  // restarted master would not know every member then. Clears when a later write succeeds
  // (they are retried on every heartbeat).
  Status PersistHealth();

  // Forgets a decommissioned member for good (memory and disk), so its group can be writable
  // again without it. kNotFound if unknown; kIOError if the file cannot be written (the member
  // is forgotten in memory regardless and the write retried on the next heartbeat). A member
  // that heartbeats again afterwards is simply a new member.
  Status ForgetMember(const std::string& id);

  // The roster of `group` as this master knows it, and the ids decommissioned from it (for the
  // heartbeat reply, master/heartbeat.h).
  void RosterOf(const std::string& group, std::vector<RosterEntry>* roster,
                std::vector<std::string>* removed);

  // The member list in the members.json format (with "removed"), for peer masters.
  nlohmann::json ExportRoster();

  // Merges a peer master's ExportRoster() document: members this master does not know join as
  // offline (unless decommissioned here), and members the peer decommissioned are forgotten here
  // too unless this master hears from them. May write members.json (call off the event loop).
  // kInvalidArgument for a malformed document (nothing is merged then).
  Status MergePeerRoster(std::string_view text);

 private:
  struct Member {
    std::string group;
    std::string addr;
    bool heard = false;  // false: known from members.json only, since this process started
    std::chrono::steady_clock::time_point last_heartbeat;
    HeartbeatReport last;  // valid when heard
  };

  struct Removed {
    std::string group;
    int64_t at_ms = 0;  // wall clock of the removal (ordering between masters)
  };

  MemberState StateLocked(const Member& m, std::chrono::steady_clock::time_point now) const;
  // Adds `entry` of `group` as an offline member unless it is known or decommissioned. True
  // when it was added.
  bool AddRosterEntryLocked(const std::string& group, const RosterEntry& entry);
  // The members.json document (format, members, removed): what PersistLocked writes and
  // ExportRoster serves to peers, so the two can never drift apart.
  nlohmann::json RosterDocLocked() const;
  Status PersistLocked();

  const Options options_;
  const Clock clock_;
  const Logger log_;
  std::mutex mutex_;
  std::map<std::string, Member> members_;   // by member id
  std::map<std::string, Removed> removed_;  // decommissioned, by member id
  bool persist_pending_ = false;            // the last members.json write failed
  Status persist_error_;                    // the last members.json write's result
  uint64_t version_ = 0;
  std::string last_published_;  // serialized full map (version 0) of the last Snapshot()
};

}  // namespace wharf
