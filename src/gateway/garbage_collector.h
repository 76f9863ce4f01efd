// GarbageCollector: the one owner of reclaiming space in the cluster. Online: pushes, pulls and
// deletes go on while it runs, and each round's work is bounded.
//
// Each round (RunOnce):
//   1. every `sweep_every`-th round, if `may_sweep` allows it, the inventory sweep: every reachable
//   member's chunks are
//      compared with the chunk ledger, and chunks the ledger does not know (orphans of a crash
//      before RecordChunks, or of a member that was away) older than `sweep_grace` are deleted;
//   2. upload sessions idle for `upload_expiry` are deleted (their chunks become garbage), by
//      the metadata store's own clock: the cutoff comes from the same clock the store stamps
//      `updated_unix` with (at every append, and as bytes arrive: BlobWriter touches it);
//      sessions with no progress for `upload_stale` lose what a request that died mid-body
//      left (a crashed gateway's): MetaStore::ReleaseStaleUploads;
//   3. with `untagged_after` set, one page (`scan_page` manifests) of the untagged-manifest
//      scan: untagged manifests pushed longer ago than that are deleted with their referrers;
//   4. one page (`scan_page` links) of the blob-link scan: links no manifest of their repository
//      references, made longer ago than `grace`, are removed; a blob goes with its last link and
//      its chunks become garbage. The scans go on from a cursor the next round, and start over
//      at the end, so a full pass takes (manifests + links) / scan_page rounds;
//   5. garbage chunks are deleted from every member of their group, then forgotten. A chunk
//      stays in the ledger until every member confirmed, so a member that was down when its
//      object was deleted is cleaned when it returns. Garbage on a group with an offline member
//      is deferred without a network call, and asked for beyond the page so that it never
//      starves newer garbage.
//
// Steps 3 and 4 list (a read), then collect: the store re-decides each item in one transaction
// (MetaStore, "Garbage collection"), so a manifest that commits between the listing and the
// collection keeps its blobs, and once a blob's deletion has committed, no manifest can commit
// referencing it; its chunks leave the cluster only in step 5, after that commit. Correctness
// does not depend on `grace`: a client slower than the grace between a blob push and its
// manifest gets MANIFEST_BLOB_UNKNOWN and pushes the blob again.
//
// Threading: lives on the gateway's executor; RunOnce runs one round at a time (callers do not
// overlap rounds). MetaStore calls are offloaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "cluster/chunk_cluster.h"
#include "common/asio.h"
#include "common/log.h"
#include "meta/meta_store.h"

namespace wharf {

// The points between the collector's steps where a test may act (hook_for_test).
enum class GcStep {
  kManifestsListed,     // a page of untagged manifests is decided, not yet collected
  kManifestsCollected,  // their deletion committed
  kLinksListed,         // a page of unreferenced blob links is decided, not yet collected
  kLinksCollected,      // their deletion committed; no chunk of theirs deleted yet
};

struct GarbageCollectorOptions {
  std::chrono::seconds upload_expiry{24 * 3600};
  // Sessions with no progress for this long lose what a dead request left (file-API sessions
  // whole, unappended chunks of OCI ones): MetaStore::ReleaseStaleUploads.
  std::chrono::seconds upload_stale{600};
  int sweep_every = 6;                    // inventory sweep every this many rounds; 0 = never
  std::chrono::seconds sweep_grace{600};  // unknown chunks younger than this are left alone
  size_t page = 256;                      // garbage chunks deleted per round
  std::chrono::seconds grace{3600};       // unreferenced blob links younger than this stay
  // Untagged manifests pushed longer ago than this are collected; nullopt: kept for ever.
  std::optional<std::chrono::seconds> untagged_after;
  size_t scan_page = 1000;  // manifests, and blob links, examined per round
  // Whether the inventory sweep may run now. The gateway answers whether the masters confirmed
  // that the cluster serves its metadata store: a sweep against another store's ledger would
  // delete every chunk of that store. Empty: always.
  std::function<bool()> may_sweep;
  // Test-only: called on the collector's executor between its steps (it may use the store
  // directly, and must not block for long).
  std::function<void(GcStep)> hook_for_test;
};

// What a round or a pass freed, or with DryRun would free.
struct GcReport {
  uint64_t manifests = 0;        // manifests deleted (referrers included)
  uint64_t links = 0;            // blob links removed
  uint64_t blobs = 0;            // blobs deleted (their last link went)
  uint64_t blob_bytes = 0;       // the sizes of those blobs
  uint64_t chunks_released = 0;  // chunks that became garbage with them
  uint64_t chunks_deleted = 0;   // garbage chunks deleted from every member and forgotten
  uint64_t bytes_deleted = 0;    // the bytes of those chunks
  uint64_t chunks_pending = 0;   // DryRun: garbage chunks already waiting in the ledger...
  uint64_t bytes_pending = 0;    // ...and their bytes
  uint64_t uploads_expired = 0;  // idle upload sessions deleted
  uint64_t uploads_stale = 0;    // file-API sessions of dead requests deleted
  uint64_t stale_chunks = 0;     // unappended chunks of dead requests released
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
  awaitable<GcReport> RunOnce();
  // `wharf gc`: steps 3 to 5 to the end of the scans (still page by page), then the garbage
  // chunks until the ledger has none that can be deleted now. No sweep, no upload expiry.
  awaitable<GcReport> RunPass();
  // What RunPass would free now, reading only: untagged manifests (not counting the referrers
  // that would go with them, nor what their deletion would make unreferenced), unreferenced
  // links and the blobs whose every link is one, and the garbage chunks already waiting.
  awaitable<Result<GcReport>> DryRun();
  // Makes a running round stop early (between pages of the sweep).
  void Stop() { stopped_ = true; }

  // Garbage chunks currently deferred (their group has an offline member, or a delete failed).
  size_t deferred_count() const { return deferred_.size(); }
  uint64_t rounds() const { return rounds_; }

 private:
  awaitable<void> ExpireUploads(GcReport& report);
  awaitable<void> ReleaseStale(GcReport& report);
  // One page of a scan; false when it reached the end (the cursor is back at the start).
  awaitable<bool> CollectManifestsPage(GcReport& report);
  awaitable<bool> CollectLinksPage(GcReport& report);
  awaitable<void> CollectGarbage(GcReport& report);
  void Hook(GcStep step) const;
  void Count(const GcReport& report) const;
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
  GcCursor manifest_cursor_;
  GcCursor link_cursor_;
};

}  // namespace wharf
