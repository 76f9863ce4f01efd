// The chunkserver daemon: a ChunkStore behind HTTP, heartbeating to every master, catching
// up from a peer of its group at start, repairing continuously from every peer (anti-entropy,
// anti_entropy.h), and scrubbing its chunks in the background. It keeps the roster of its
// group on its own disk (member_roster.h) and reports it in every heartbeat.
//
//   PUT    /v1/chunks/{id}   body = chunk data; headers Content-Length and
//                            X-Wharf-Checksum: xxh3:<16 hex>  -> 201 stored / 200 already there
//   GET    /v1/chunks/{id}   (Range) -> 200/206/416, X-Wharf-Checksum of the whole chunk
//   HEAD   /v1/chunks/{id}
//   DELETE /v1/chunks/{id}   -> 204 / 404
//   GET    /v1/chunks?after=ID&limit=N  -> {"chunks": [{"id","size","checksum","mtime"}],
//                                          "next": ID | null}     (the inventory, for peers)
//   GET    /v1/digests       -> per-range digests of the sorted chunk ids (anti_entropy.h)
//   GET    /v1/status        -> {"id","group","addr","state","capacity","free","reserve","chunks",
//                                 "missing","roster","wharf_version"} (and an X-Wharf-Version
//                                 header)
//   GET    /healthz, /metrics
//
// Errors are JSON {"error": {"code": "<status code name>", "message": "…"}} with 400
// (invalid_argument, digest_mismatch), 404, 409 (conflict), 503 (syncing), 507 (no_space).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "chunkserver/anti_entropy.h"
#include "chunkserver/chunk_store.h"
#include "chunkserver/local_chunk_store.h"
#include "chunkserver/member_roster.h"
#include "common/asio.h"
#include "common/units.h"
#include "http/client.h"
#include "http/router.h"
#include "http/server.h"
#include "master/cluster_map.h"

namespace wharf {

struct ChunkserverOptions {
  std::string group;
  std::string id;  // "" = the id persisted in the first dir (generated on first start)
  std::string listen = "127.0.0.1:7001";
  std::string advertise;  // address reported to masters; "" = the bound listen address
  std::vector<std::string> dirs;
  std::vector<std::string> masters;
  Reserve reserve;
  std::chrono::milliseconds heartbeat{2000};
  std::chrono::milliseconds scrub_interval{std::chrono::hours(1)};
  uint64_t scrub_rate = 64u << 20;  // bytes per second the scrubber may read
  uint64_t max_chunk_bytes = 1u << 30;
  // How commits are made durable (LocalChunkStore::Options::sync).
  LocalChunkStore::Options::Sync sync = LocalChunkStore::Options::Sync::kGroup;
  // Chunks of 1 MiB or more are written with O_DIRECT (LocalChunkStore::Options::
  // direct_io_min_bytes); off: through the page cache.
  bool direct_io = true;
  // Anti-entropy: every interval, compare the inventory with every peer's and pull what is
  // missing (at most repair_rate bytes per second), leaving chunks younger than repair_grace
  // on the peer alone (they may still be in flight from a gateway).
  std::chrono::milliseconds repair_interval{std::chrono::seconds(30)};
  std::chrono::milliseconds repair_grace{std::chrono::seconds(60)};
  uint64_t repair_rate = 64u << 20;
  // How long a deleted chunk is remembered (<first dir>/tombstones.log, anti_entropy.h), so
  // that neither anti-entropy nor catch-up pulls it back from a peer GC has not reached yet.
  // Well past the repair interval (the flag wants at least 10 of them).
  std::chrono::seconds tombstone_ttl{std::chrono::hours(24)};
  // Set: every route but /healthz and /metrics needs the cluster-key proof, and every request
  // this member sends (heartbeats, catch-up, repair) carries it (http/cluster_auth.h).
  std::shared_ptr<const ClusterKey> cluster_key;
};

class Chunkserver {
 public:
  Chunkserver(asio::any_io_executor ex, ChunkserverOptions options);
  ~Chunkserver();
  // Opens the store, binds, and starts the heartbeat, catch-up and scrub loops.
  Status Start();
  void Stop();
  std::string address() const;
  const std::string& id() const { return options_.id; }

  // For a reader in this process (the gateway of `wharf up`, cluster/local_read.h), which
  // reads this member's chunks from its store instead of over HTTP. Thread-safe.
  // True from a successful Start() until Stop().
  bool serving() const { return serving_.load(std::memory_order_acquire); }
  // Opens chunk `id` as GET /v1/chunks/{id} would (ChunkStore::Open). BLOCKING: call on the
  // I/O pool. kUnavailable when not serving(); ChunkStore::Open's errors.
  Result<OpenChunk> OpenLocal(const std::string& id);

 private:
  // HTTP (chunkserver.cc)
  // The route table every request goes through (http/router.h).
  void BuildRouter();
  // /v1/chunks/{id}: answers 400 for a malformed id, else calls `op` (405 when it is null).
  using ChunkOp = awaitable<void> (Chunkserver::*)(Exchange&, std::string);
  awaitable<void> ServeChunk(Exchange& ex, ChunkOp op);
  awaitable<void> HandlePut(Exchange& ex, std::string id);
  awaitable<void> HandleGet(Exchange& ex, std::string id);
  awaitable<void> HandleDelete(Exchange& ex, std::string id);
  awaitable<void> HandleList(Exchange& ex);
  awaitable<void> HandleStatus(Exchange& ex);
  awaitable<void> HandleDigests(Exchange& ex);
  // Background (chunk_sync.cc)
  awaitable<void> HeartbeatLoop();
  awaitable<void> CatchUp();
  awaitable<void> ScrubLoop();
  // Anti-entropy (chunk_repair.cc): a round every repair_interval once catch-up ended.
  awaitable<void> RepairLoop();
  awaitable<void> RepairRound(HttpClient& client);
  // The store's range digests (cached by the store; call off the event loop all the same).
  Result<RangeDigests> ComputeDigests();
  // Roster (chunk_repair.cc): loads <first dir>/roster.json at start.
  Status LoadRoster();
  // Merges a master's heartbeat reply and persists the roster when it changed.
  awaitable<void> LearnRoster(std::string reply_body);
  std::vector<RosterEntry> RosterEntries();
  awaitable<Result<ClusterMap>> FetchMap(HttpClient& client);
  // Options of the clients that reach peers and masters (they sign with the cluster key).
  ClientOptions PeerClientOptions() const;
  // Active peers of this group in `map` (not this member).
  std::vector<MemberInfo> ActivePeers(const ClusterMap& map) const;
  // True when the map lists at least one peer of this group and every peer is online and
  // holds no chunk: nobody has anything this member could lack (a new cluster, or new members
  // starting together), so it need not wait out the catch-up grace.
  bool NothingToLearn(const ClusterMap& map) const;
  // Copies all of the peer's chunks this store lacks. Returns how many were fetched.
  awaitable<Result<uint64_t>> SyncFrom(HttpClient& client, const MemberInfo& peer);
  // Fetches one chunk from `peer_addr` into the store, verifying its checksum.
  awaitable<Status> FetchChunk(HttpClient& client, const std::string& peer_addr,
                               const std::string& id, uint64_t size, uint64_t checksum);
  awaitable<void> Repair(HttpClient& client, ChunkInfo info);
  // The state this member reports, from the store's health and `space` (which the caller
  // fetched off the event loop).
  std::string ReportedState(const Result<SpaceInfo>& space);

  struct Counters;

  asio::any_io_executor ex_;
  ChunkserverOptions options_;
  std::unique_ptr<Counters> counters_;  // set by Start()
  std::unique_ptr<ChunkStore> store_;
  std::unique_ptr<Router> router_;  // outlives server_
  std::unique_ptr<Server> server_;
  std::atomic<bool> syncing_{true};
  std::optional<asio::steady_timer> heartbeat_wake_;  // the heartbeat loop's sleep (Start())
  std::atomic<bool> stopped_{false};
  std::atomic<bool> serving_{false};  // Start() succeeded, Stop() not called
  std::atomic<uint64_t> busy_{0};
  std::string addr_;
  Logger log_;
  std::mutex map_mu_;
  std::optional<ClusterMap> last_map_;
  std::unique_ptr<Tombstones> tombstones_;  // set by Start(), persisted in the first dir
  std::mutex roster_mu_;
  std::unique_ptr<MemberRoster> roster_;  // guarded by roster_mu_; set by Start()
  std::atomic<uint64_t> missing_{0};      // the last anti-entropy count
};

}  // namespace wharf
