// ClusterClient: the ChunkCluster over HTTP. It caches the master's map (refreshed every few
// seconds, and at once after an error; any master will do, a dead one is skipped: see
// master/master_client.h), picks the group for each chunk itself with the master's placement
// policy, and speaks to chunkservers through the one ChunkClient (chunkserver/chunk_client.h):
// a chunk goes to every member of its group in parallel, and is read from any active member
// with failover.
//
// Threading: a ClusterClient lives on one event loop (executor); call it from coroutines on
// that executor only.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chunkserver/chunk_client.h"
#include "cluster/chunk_cluster.h"
#include "cluster/local_read.h"
#include "common/asio.h"
#include "common/log.h"
#include "common/log_throttle.h"
#include "common/status.h"
#include "http/client.h"
#include "master/cluster_map.h"
#include "master/master_client.h"
#include "master/placement.h"

namespace wharf {

struct ClusterClientOptions {
  std::vector<std::string> masters;
  std::chrono::milliseconds refresh{2000};
  PlacementPolicy policy = PlacementPolicy::kMostFree;
  std::string named_group;
  // How many groups a chunk write tries before giving up.
  int max_write_attempts = 4;
  // Set: every request to masters and chunkservers carries the cluster-key proof
  // (http/cluster_auth.h).
  std::shared_ptr<const ClusterKey> cluster_key;
  // The deadline of every call to a member (and a master): the connection, and then each
  // read and write of it, must make progress within this. A hung member (SIGSTOP, a dead
  // disk) thus fails a write within it, and the chunk goes to another group.
  std::chrono::milliseconds member_timeout{5000};
  // A read asks a second member when the first has not answered after this (the first good
  // copy wins); 0: member_timeout / 4; negative: never (a read fails over only on a failure,
  // the member timeout included).
  std::chrono::milliseconds read_hedge{0};
  // A member that failed or was overtaken by a hedge is read last, and its group chosen for
  // writes only when no other will do, for this long.
  std::chrono::milliseconds suspect_for{30000};
  // Where streamed reads take their buffer (ReadPolicy::buffers; not owned); null: shared.
  BufferPool* read_buffers = nullptr;
  // Set (`wharf up`): the chunkserver members living in this process, whose copies streamed
  // reads take from their stores directly (cluster/local_read.h) before asking any member
  // over HTTP. Null (a gateway process of its own): every read goes over HTTP.
  std::shared_ptr<LocalMembers> local_members;
};

class ClusterClient final : public ChunkCluster {
 public:
  ClusterClient(asio::any_io_executor ex, ClusterClientOptions options);
  ~ClusterClient() override;

  // Starts the map refresh loop.
  void Start();
  void Stop();

  awaitable<Status> Refresh(std::string_view request_id = {}) override;
  std::optional<ClusterMap> map() const override { return map_; }
  bool writable() const override;
  int max_write_attempts() const override { return options_.max_write_attempts; }
  Result<GroupInfo> ChooseGroup(uint64_t size, const std::set<std::string, std::less<>>& exclude,
                                std::string_view request_id = {}) override;
  awaitable<Status> PutChunkToGroup(GroupInfo group, ChunkRef ref, std::string_view data,
                                    std::string_view request_id = {}) override;
  awaitable<Result<std::string>> GetChunk(ChunkRef ref, uint64_t offset, uint64_t len,
                                          std::string_view request_id = {}) override;
  awaitable<Status> StreamChunk(ChunkRef ref, uint64_t offset, uint64_t len, ChunkSink sink,
                                std::string_view request_id = {},
                                std::shared_ptr<PreparedRead> prepared = nullptr) override;
  // With local members (`wharf up`): begins verifying the first local copy of `ref`.
  std::shared_ptr<PreparedRead> PrepareRead(const ChunkRef& ref) override;
  awaitable<Status> DeleteChunk(ChunkRef ref, std::string_view request_id = {}) override;
  awaitable<Result<InventoryPage>> ListMemberChunks(MemberInfo member, std::string after,
                                                    size_t limit,
                                                    std::string_view request_id = {}) override;
  awaitable<Result<bool>> DeleteMemberChunk(MemberInfo member, std::string id,
                                            std::string_view request_id = {}) override;

  const ClusterClientOptions& options() const { return options_; }
  // The masters, for what is not the map (the namespace claim).
  MasterClient& masters() { return masters_; }

 private:
  awaitable<void> RefreshLoop();
  // The members of a chunk's group in read order, suspects last.
  std::vector<MemberInfo> ReadMembers(const ChunkRef& ref);
  ReadPolicy Policy();
  Result<GroupInfo> ChooseGroupAmong(uint64_t size,
                                     const std::set<std::string, std::less<>>& exclude);
  void Suspect(const MemberInfo& m);
  bool IsSuspect(const std::string& addr);

  asio::any_io_executor ex_;
  ClusterClientOptions options_;
  HttpClient http_;
  MasterClient masters_;
  ChunkClient chunks_;
  std::optional<ClusterMap> map_;
  std::atomic<uint64_t> round_robin_{0};
  uint64_t read_spread_ = 0;
  bool stopped_ = false;
  bool refresh_now_ = false;
  std::map<std::string, std::chrono::steady_clock::time_point> suspect_until_;  // by address
  Logger log_;
  LogThrottle refresh_log_;  // a master down would log every 500 ms
};

}  // namespace wharf
