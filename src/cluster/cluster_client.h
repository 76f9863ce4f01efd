// The gateway's view of the chunk cluster (Speedy's ImageServer side): it caches the master's
// map (refreshed every few seconds, and at once after an error; any master will do, a dead
// one is skipped), picks the group for each chunk itself with the master's placement policy,
// writes a chunk to every member of the group in parallel, and reads a chunk from any
// active member with failover.
//
// Threading: a ClusterClient lives on one event loop (executor); call it from coroutines on
// that executor only.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/log.h"
#include "common/log_throttle.h"
#include "common/status.h"
#include "http/client.h"
#include "master/cluster_map.h"
#include "master/placement.h"
#include "meta/meta_store.h"

namespace wharf {

struct ClusterClientOptions {
  std::vector<std::string> masters;
  std::chrono::milliseconds refresh{2000};
  PlacementPolicy policy = PlacementPolicy::kMostFree;
  std::string named_group;
  // How many groups a chunk write tries before giving up.
  int max_write_attempts = 4;
};

class ClusterClient {
 public:
  ClusterClient(asio::any_io_executor ex, ClusterClientOptions options);
  ~ClusterClient();

  // Starts the map refresh loop.
  void Start();
  void Stop();
  // Fetches the map now from the first master that answers. kUnavailable if none does.
  awaitable<Status> Refresh();
  // The cached map (nullopt before the first successful fetch).
  std::optional<ClusterMap> map() const { return map_; }
  // True if some group is writable in the cached map.
  bool writable() const;

  // Chooses a group for a chunk of `size` bytes (kUnavailable if none is writable).
  Result<const GroupInfo*> ChooseGroup(uint64_t size,
                                       const std::set<std::string, std::less<>>& exclude);

  // Writes one chunk (id and checksum already chosen by the caller) to every member of
  // `group` in parallel. Ok only when every member acknowledged it durable.
  awaitable<Status> PutChunkToGroup(const GroupInfo& group, const ChunkRef& ref,
                                    std::string_view data);

  // Reads bytes [offset, offset+len) of a chunk. A whole-chunk read is verified against the
  // chunk's checksum; on error or mismatch the next member is tried (active ones first).
  // kUnavailable when no member could serve it; kCorruption when every copy was bad.
  awaitable<Result<std::string>> GetChunk(const ChunkRef& ref, uint64_t offset, uint64_t len);

  // Deletes a chunk from every member of its group. Ok only if every member confirmed
  // (deleted, or did not have it); kUnavailable if some member could not be reached.
  awaitable<Status> DeleteChunk(const ChunkRef& ref);

  HttpClient& http() { return http_; }
  const ClusterClientOptions& options() const { return options_; }

 private:
  awaitable<void> RefreshLoop();
  // Members of `group` in read preference order: active first, then readonly, then others.
  std::vector<MemberInfo> ReadOrder(const std::string& group);

  asio::any_io_executor ex_;
  ClusterClientOptions options_;
  HttpClient http_;
  std::optional<ClusterMap> map_;
  std::atomic<uint64_t> round_robin_{0};
  uint64_t read_spread_ = 0;
  bool stopped_ = false;
  bool refresh_now_ = false;
  Logger log_;
  LogThrottle refresh_log_;  // a master down would log every 500 ms
};

}  // namespace wharf
