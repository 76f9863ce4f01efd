// SiteQueue: a site's asynchronous write-through (`--site-write async`). A push is acknowledged
// once it is stored at the site and its items are in the metadata store's work queue
// (MetaStore "Work queue"); workers on the gateway's executor claim the items and ship them to
// the upstream through SiteCache's client:
//
//   blob      pushed from the site's cluster (skipped when the upstream's HEAD finds it);
//   manifest  its children (an index's manifests) and blobs made sure of first, then PUT by
//             digest: so the upstream never sees a manifest before what it names, whatever
//             order the items are claimed in (blobs are claimed first anyway);
//   tag       the tag's value read HERE at ship time, that manifest made sure of, then PUT by
//             tag: an old item shipped late never moves the upstream's tag backwards, and a tag
//             pushed again while its item ships is shipped again (the queue's version);
//   delete    (replication rules with `delete: true`) a manifest or tag deleted here, DELETEd
//             at the target: only while it is still absent here (pushed again since, nothing
//             is deleted); a target that lacks it counts as done.
//
// Every step is idempotent (content by digest; a tag PUT of the current value), so an item
// shipped twice (a gateway killed between the upload and the completion, a lease run out)
// changes nothing. Content no longer stored here (deleted or collected) completes its item with
// nothing shipped.
//
// Failures: kUnavailable (upstream down, 5xx, refused credentials) is retried for ever with
// capped exponential backoff, and pauses every worker for the same backoff (no point hammering
// a registry that is down); any other error is retried max_attempts times, then the item is
// failed with its error (GET /admin/queue lists it; pushing the content again revives it).
//
// Claims carry a lease renewed while the gateway lives; a gateway restarting under the same
// name takes its claims back at Start, another gateway after the lease runs out.
//
// Metrics: wharf_gateway_site_queue_depth (pending + running), _oldest_seconds (age of the
// oldest of those), _failed (items given up), _shipped_total{kind}, _failures_total{kind}
// (failed attempts), _enqueued_total{kind}, _recovered_total (claims taken back at start).
//
// Threading: one executor, the gateway's; store calls go through Offload. Not thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/log.h"
#include "common/log_throttle.h"
#include "common/metrics.h"
#include "meta/meta_store.h"

namespace wharf::upstream {

class SiteCache;

struct SiteQueueOptions {
  std::string target;  // the queue's target: the upstream's URL
  std::string holder;  // this gateway's name in claims
  int workers = 4;     // items shipped at once
  std::chrono::seconds lease{60};
  int64_t backoff_initial_seconds = 1;
  int64_t backoff_max_seconds = 30;
  int max_attempts = 8;  // of errors other than kUnavailable, before the item is failed
  std::chrono::milliseconds poll{1000};  // idle workers look again this often (or when woken)
  std::chrono::seconds keep_done{3600};  // done items are pruned after this
  // How the queue names itself: its metrics (METRICS_depth, METRICS_shipped_total{kind,
  // outcome}, ...; each with `labels`), what its messages call it, and the admin view of it.
  std::string metrics = "wharf_gateway_site_queue";
  Labels labels;
  std::string what = "the site's write";
  std::string admin_path = "/admin/queue";
  std::string log_prefix = "site queue";  // of its log lines
};

class SiteQueue {
 public:
  // `meta` and `site` are not owned and outlive the queue.
  SiteQueue(asio::any_io_executor ex, SiteQueueOptions options, MetaStore* meta, SiteCache* site,
            Logger log);

  // Takes back the claims this holder left running (a restart): call once before Start.
  Result<uint64_t> Recover();
  // Spawns the workers and the housekeeping loop on the executor.
  void Start();
  // The loops end at their next wake-up.
  void Stop();

  // Enqueue (on the pool): a push's items. Errors: the store's (the push fails with them).
  awaitable<Status> EnqueueBlob(std::string repo, Digest digest);
  awaitable<Status> EnqueueManifest(std::string repo, std::optional<std::string> tag,
                                    ManifestRecord manifest);
  // A deletion here of manifest `digest`, or of tag `tag` (the other empty), to repeat there.
  awaitable<Status> EnqueueDelete(std::string repo, std::string digest, std::string tag);
  // Whether the tag item of repo:tag is not done yet (the site's own value is the newest).
  awaitable<Result<bool>> TagQueued(std::string repo, std::string tag);

  const SiteQueueOptions& options() const { return options_; }

 private:
  enum class Outcome { kShipped, kGone };
  awaitable<void> Worker(size_t index);
  awaitable<void> Housekeeping();
  awaitable<Status> Enqueue(QueueKey key);
  awaitable<Result<Outcome>> Ship(const QueueItem& item);
  awaitable<Result<Outcome>> ShipBlob(std::string repo, Digest digest);
  awaitable<Result<Outcome>> ShipDelete(std::string repo, std::string digest, std::string tag);
  // Makes sure the upstream holds manifest `digest` of `repo` and what it names, and PUTs it
  // under `reference` (its digest, or a tag).
  awaitable<Result<Outcome>> ShipManifest(std::string repo, Digest digest, std::string reference,
                                          int depth);
  awaitable<void> Finish(QueueItem item, Result<Outcome> result);
  void Wake();
  int64_t NowUnix() const;

  asio::any_io_executor ex_;
  SiteQueueOptions options_;
  MetaStore* meta_;
  SiteCache* site_;
  Logger log_;
  bool stopped_ = false;
  std::vector<asio::steady_timer*> idle_;  // each worker's own timer; cancelled to wake
  std::chrono::steady_clock::time_point paused_until_{};  // the upstream is down: wait
  int64_t unavailable_streak_ = 0;
  size_t in_flight_ = 0;
  // Blob pushes in progress, by digest: a second ship of the same blob waits for the first.
  struct Flight;
  std::map<std::string, std::shared_ptr<Flight>> pushing_;
  LogThrottle store_log_{std::chrono::seconds(30)};
  LogThrottle down_log_{std::chrono::seconds(30)};
};

}  // namespace wharf::upstream
