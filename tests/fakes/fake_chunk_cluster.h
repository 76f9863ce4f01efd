// FakeChunkCluster: an in-memory ChunkCluster for unit tests of the gateway's logic (BlobWriter,
// ReadChunks, GarbageCollector) without processes. Groups and members live in memory; each
// member holds its copies in a map and can be given faults. Reads go through the same
// ReadOrder/ReadWithFailover rule as the HTTP ClusterClient, so failover and verification are
// the real ones.
//
// Threading: one executor, like every ChunkCluster. Not for concurrent use from several threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/chunk_cluster.h"

namespace wharf {

// Faults of one member. Each can be set or cleared at any time.
struct FakeMemberFaults {
  bool fail_put = false;               // every put is refused before a byte is stored
  bool fail_mid_chunk = false;         // a put stores half of the bytes (not a copy), then fails
  bool offline = false;                // unreachable, and the map shows it offline
  bool unreachable = false;            // unreachable, but the map still shows it active (just died)
  bool corrupt = false;                // reads return its copy with one byte flipped
  std::chrono::milliseconds delay{0};  // every call to the member waits this long first
};

class FakeChunkCluster final : public ChunkCluster {
 public:
  FakeChunkCluster() = default;

  // Adds a group whose members (all active) are named by `member_ids` (unique cluster-wide).
  void AddGroup(const std::string& group, const std::vector<std::string>& member_ids);
  FakeMemberFaults& faults(const std::string& member_id);
  // When false, map() is nullopt (as before the first successful fetch).
  void set_has_map(bool v) { has_map_ = v; }
  void set_max_write_attempts(int n) { max_write_attempts_ = n; }

  // The member's copy of a chunk.
  std::optional<std::string> Copy(const std::string& member_id, const std::string& chunk_id) const;
  size_t CopyCount(const std::string& member_id) const;
  // Stores a copy directly (an orphan left by a crash, for the sweep).
  void PutCopyForTest(const std::string& member_id, const std::string& chunk_id, std::string data,
                      int64_t mtime_unix);

  // One PutChunkToGroup call.
  struct PutAttempt {
    std::string group;
    std::string chunk_id;
    bool ok = false;
  };
  const std::vector<PutAttempt>& put_attempts() const { return put_attempts_; }
  // PutChunkToGroup calls running right now, and the most ever at once.
  size_t puts_in_flight() const { return puts_in_flight_; }
  size_t max_puts_in_flight() const { return max_puts_in_flight_; }
  // Calls that reached (or tried to reach) the member: puts, gets, deletes, inventory pages.
  uint64_t calls(const std::string& member_id) const;
  // Every non-empty request id an operation was given, in order.
  const std::vector<std::string>& request_ids() const { return request_ids_; }

  // ChunkCluster.
  awaitable<Status> Refresh(std::string_view request_id = {}) override;
  std::optional<ClusterMap> map() const override;
  bool writable() const override;
  int max_write_attempts() const override { return max_write_attempts_; }
  // The first writable group (by id) not excluded.
  Result<GroupInfo> ChooseGroup(uint64_t size, const std::set<std::string, std::less<>>& exclude,
                                std::string_view request_id = {}) override;
  awaitable<Status> PutChunkToGroup(GroupInfo group, ChunkRef ref, std::string_view data,
                                    std::string_view request_id = {}) override;
  awaitable<Result<std::string>> GetChunk(ChunkRef ref, uint64_t offset, uint64_t len,
                                          std::string_view request_id = {}) override;
  awaitable<Status> DeleteChunk(ChunkRef ref, std::string_view request_id = {}) override;
  awaitable<Result<InventoryPage>> ListMemberChunks(MemberInfo member, std::string after,
                                                    size_t limit,
                                                    std::string_view request_id = {}) override;
  awaitable<Result<bool>> DeleteMemberChunk(MemberInfo member, std::string id,
                                            std::string_view request_id = {}) override;

 private:
  struct StoredCopy {
    std::string data;
    int64_t mtime_unix = 0;
  };
  struct Member {
    std::string group;
    FakeMemberFaults faults;
    std::map<std::string, StoredCopy> copies;
    std::map<std::string, std::string> partial;  // bytes of puts that failed mid-chunk
    uint64_t calls = 0;
  };

  void NoteRequestId(std::string_view request_id);
  // Counts the call, waits the member's delay; kUnavailable if it cannot be reached.
  awaitable<Status> Reach(std::string member_id);
  awaitable<Status> PutOne(std::string member_id, ChunkRef ref, std::string_view data);
  awaitable<Result<std::string>> ReadOne(std::string member_id, std::string chunk_id,
                                         uint64_t offset, uint64_t len, bool whole);

  std::map<std::string, std::vector<std::string>> groups_;  // group -> member ids
  std::map<std::string, Member> members_;
  bool has_map_ = true;
  int max_write_attempts_ = 4;
  uint64_t read_spread_ = 0;
  int64_t clock_ = 0;  // mtime stamped on stored copies: 1, 2, 3...
  std::vector<PutAttempt> put_attempts_;
  size_t puts_in_flight_ = 0;
  size_t max_puts_in_flight_ = 0;
  std::vector<std::string> request_ids_;
};

}  // namespace wharf
