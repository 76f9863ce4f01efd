// GarbageCollector: the one owner of reclaiming space in the cluster.
//
// Each round (RunOnce):
//   1. every `sweep_every`-th round, the inventory sweep: every reachable member's chunks are
//      compared with the chunk ledger, and chunks the ledger does not know (orphans of a crash
//      before RecordChunks, or of a member that was away) older than `sweep_grace` are deleted;
//   2. upload sessions idle for `upload_expiry` are deleted (their chunks become garbage), by
//      the metadata store's own clock: the cutoff comes from the same clock the store stamps
//      `updated_unix` with;
//   3. garbage chunks are deleted from every member of their group, then forgotten. A chunk
//      stays in the ledger until every member confirmed, so a member that was down when its
//      object was deleted is cleaned when it returns. Garbage on a group with an offline member
//      is deferred without a network call, and asked for beyond the page so that it never
//      starves newer garbage.
//
// Threading: lives on the gateway's executor; RunOnce runs one round at a time (callers do not
// overlap rounds). MetaStore calls are offloaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "cluster/chunk_cluster.h"
#include "common/asio.h"
#include "common/log.h"
#include "meta/meta_store.h"

namespace wharf {

struct GarbageCollectorOptions {
  std::chrono::seconds upload_expiry{24 * 3600};
  int sweep_every = 6;                    // inventory sweep every this many rounds; 0 = never
  std::chrono::seconds sweep_grace{600};  // unknown chunks younger than this are left alone
  size_t page = 256;                      // garbage chunks deleted per round
};

// Unix seconds from the system clock: the default clock of the gateway's store and collector.
int64_t SystemNowUnix();

class GarbageCollector {
 public:
  // Current time in unix seconds. Pass the clock the MetaStore was opened with.
  using Clock = std::function<int64_t()>;

  // `cluster` and `meta` must outlive the collector. An empty `now_unix` is the system clock.
  GarbageCollector(ChunkCluster* cluster, MetaStore* meta, GarbageCollectorOptions options,
                   Clock now_unix = {});

  // One round (see above). Never fails: errors are logged and counted, and retried next round.
  awaitable<void> RunOnce();
  // Makes a running round stop early (between pages of the sweep).
  void Stop() { stopped_ = true; }

  // Garbage chunks currently deferred (their group has an offline member, or a delete failed).
  size_t deferred_count() const { return deferred_.size(); }
  uint64_t rounds() const { return rounds_; }

 private:
  awaitable<void> ExpireUploads();
  awaitable<void> CollectGarbage();
  awaitable<void> SweepInventories();
  awaitable<void> SweepMember(MemberInfo member, int64_t cutoff);

  ChunkCluster* const cluster_;
  MetaStore* const meta_;
  const GarbageCollectorOptions options_;
  const Clock now_unix_;
  const Logger log_;
  uint64_t rounds_ = 0;
  bool stopped_ = false;
  std::set<std::string> deferred_;
};

}  // namespace wharf
