// SiteEvictor: the watermark eviction of a site cache (site mode, upstream/site_cache.h). A site
// holds copies of what its upstream has; when the free space of its cluster falls under the low
// watermark, it evicts the least recently pulled blobs (MetaStore::ListEvictionCandidates, which
// leaves out what the async queue has not shipped yet) until free space, counting what the
// collector has still to delete, reaches the high watermark. An evicted blob's chunks become
// garbage and the garbage collector deletes them; its manifests stay, and its next pull fetches
// it from the upstream again (SiteCache::OpenBlob).
//
// Free space is the cached cluster map's: a group's capacity and free space are its smallest
// member's (a chunk goes to every member), the fraction is Σ free / Σ capacity.
//
// Pulls are remembered by the BlobService (RecordPulls) and written to the store in batches
// (FlushPulls: MetaStore::TouchBlobs), so the last pull lags by up to one period.
//
// Several gateways of one store may run it: EvictBlob re-checks the last pull and the queue in
// its transaction, so a blob pulled or queued since the listing stays, and a blob is evicted
// once. The gateway runs the eviction only while it holds the background lease (and flushes
// pulls in every gateway).
//
// Threading: one executor; every metadata call is offloaded. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "blob/blob_service.h"
#include "common/asio.h"
#include "common/log.h"
#include "common/log_throttle.h"
#include "master/cluster_map.h"
#include "meta/meta_store.h"

namespace wharf {

struct SiteEvictionOptions {
  double low_percent = 10;   // a pass evicts when free space is under this (0 < low < high)
  double high_percent = 20;  // ... until it is back at this (< 100)
  size_t batch = 256;        // candidates listed at once
  size_t max_batches = 16;   // per pass: the next pass goes on
  // Bytes evicted stay counted as "to be freed" until the collector left no garbage in the
  // ledger for this long (the chunkservers' next heartbeats carry the freed space to the map).
  int64_t settle_seconds = 10;
};

// The numbers of one pass.
struct EvictionPass {
  std::optional<double> free_percent;  // nullopt: no cluster map (or no capacity) yet
  uint64_t pending_bytes = 0;          // evicted before, not freed yet (as counted)
  bool below_low = false;              // the pass had to evict
  uint64_t blobs = 0;                  // evicted in this pass
  uint64_t bytes = 0;
};

// "10%" -> 10: a watermark percentage, 0 < x < 100. kInvalidArgument naming `flag` otherwise.
Result<double> ParseWatermark(std::string_view flag, std::string_view text);

class SiteEvictor {
 public:
  using MapSource = std::function<std::optional<ClusterMap>()>;
  using Clock = std::function<int64_t()>;  // unix seconds
  // Not owned: `meta`, `blobs` outlive the evictor. Turns recording of pulls on in `blobs`.
  SiteEvictor(MapSource map, MetaStore* meta, BlobService* blobs, SiteEvictionOptions options,
              Clock clock, Logger log);

  // Writes the pulls recorded since the last call (MetaStore::TouchBlobs, offloaded). A
  // failure is logged (throttled) and counted; those pulls are lost (their blobs look older).
  awaitable<void> FlushPulls();
  // One pass: measures, and evicts when under the low watermark. Errors of the store end the
  // pass early (logged; the next pass tries again).
  awaitable<EvictionPass> RunOnce();

  // Free space of `map` in percent (Σ group free / Σ group capacity, a group's being its
  // smallest member's); nullopt without capacity. `capacity`/`free` receive the sums.
  static std::optional<double> FreePercent(const ClusterMap& map, uint64_t* capacity = nullptr,
                                           uint64_t* free = nullptr);

 private:
  // Bytes still to be freed by the collector, updating pending_ from the ledger's garbage.
  awaitable<Result<uint64_t>> Pending(int64_t now);

  MapSource map_;
  MetaStore* meta_;
  BlobService* blobs_;
  SiteEvictionOptions options_;
  Clock clock_;
  Logger log_;
  LogThrottle throttle_;
  uint64_t pending_ = 0;           // bytes this evictor evicted that may not be freed yet
  int64_t garbage_seen_unix_ = 0;  // the last pass that found garbage in the ledger
};

}  // namespace wharf
