#include "gateway/garbage_collector.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include "common/async.h"
#include "common/metrics.h"

namespace wharf {

int64_t SystemNowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

GarbageCollector::GarbageCollector(ChunkCluster* cluster, MetaStore* meta,
                                   GarbageCollectorOptions options, Clock now_unix)
    : cluster_(cluster),
      meta_(meta),
      options_(std::move(options)),
      now_unix_(now_unix ? std::move(now_unix) : Clock(&SystemNowUnix)),
      log_(GetLogger("gateway")) {}

awaitable<GcReport> GarbageCollector::RunOnce() {
  const auto start = std::chrono::steady_clock::now();
  GcReport report;
  ++rounds_;
  if (options_.sweep_every > 0 && rounds_ % options_.sweep_every == 0) {
    if (!options_.may_sweep || options_.may_sweep()) {
      co_await SweepInventories();
    } else {
      static auto& skipped = Metrics().Counter(
          "wharf_gateway_sweeps_skipped_total",
          "Inventory sweeps not run: the cluster's namespace is not confirmed for this store.");
      skipped.Inc();
      log_->warn(
          "gc: inventory sweep skipped: the masters have not confirmed that the cluster "
          "serves this metadata store");
    }
  }
  co_await ExpireUploads(report);
  if (options_.untagged_after) co_await CollectManifestsPage(report);
  co_await CollectLinksPage(report);
  if (cluster_->map()) co_await CollectGarbage(report);
  Count(report);
  Metrics()
      .Histogram("wharf_gc_seconds", "Garbage collection rounds and passes, by duration.")
      .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  co_return report;
}

awaitable<GcReport> GarbageCollector::RunPass() {
  const auto start = std::chrono::steady_clock::now();
  GcReport report;
  if (options_.untagged_after) {
    // Deleting an index (or a subject) makes its children (referrers) collectable on the next
    // scan: repeat while a scan frees something, a few times at most.
    for (int scan = 0; scan < 8 && !stopped_; ++scan) {
      const uint64_t before = report.manifests;
      manifest_cursor_ = {};
      while (!stopped_ && co_await CollectManifestsPage(report)) {
      }
      if (report.manifests == before) break;
    }
  }
  link_cursor_ = {};
  while (!stopped_ && co_await CollectLinksPage(report)) {
  }
  for (int page = 0; page < 100000 && !stopped_ && cluster_->map(); ++page) {
    const uint64_t before = report.chunks_deleted;
    co_await CollectGarbage(report);
    if (report.chunks_deleted == before) break;  // nothing more can go now
  }
  Count(report);
  Metrics()
      .Histogram("wharf_gc_seconds", "Garbage collection rounds and passes, by duration.")
      .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  co_return report;
}

awaitable<Result<GcReport>> GarbageCollector::DryRun() {
  MetaStore* meta = meta_;
  const size_t limit = options_.scan_page;
  GcReport report;
  if (options_.untagged_after) {
    const int64_t cutoff = now_unix_() - options_.untagged_after->count();
    GcCursor cursor;
    do {
      auto list = [meta, cursor, cutoff, limit] {
        return meta->ListUntaggedManifests(cursor, cutoff, limit);
      };
      auto page = co_await Offload(list);
      if (!page) co_return Err(page.error());
      report.manifests += page->items.size();
      cursor = page->next;
    } while (!cursor.at_start());
  }
  // digest -> (links listed, the item): a blob goes when every one of its links is listed.
  std::map<std::string, std::pair<uint64_t, GcItem>> blobs;
  const int64_t cutoff = now_unix_() - options_.grace.count();
  GcCursor cursor;
  do {
    auto list = [meta, cursor, cutoff, limit] {
      return meta->ListUnreferencedBlobLinks(cursor, cutoff, limit);
    };
    auto page = co_await Offload(list);
    if (!page) co_return Err(page.error());
    report.links += page->items.size();
    for (GcItem& item : page->items) {
      auto& entry = blobs[item.digest.ToString()];
      entry.first += 1;
      entry.second = std::move(item);
    }
    cursor = page->next;
  } while (!cursor.at_start());
  for (const auto& [text, entry] : blobs) {
    if (entry.first < entry.second.links) continue;
    report.blobs += 1;
    report.blob_bytes += entry.second.size;
    const Digest digest = entry.second.digest;
    auto get = [meta, digest] { return meta->GetBlob(digest); };
    auto blob = co_await Offload(get);
    if (blob) report.chunks_released += blob->chunks.size();
  }
  constexpr size_t kMaxGarbage = 1'000'000;
  auto list_garbage = [meta] { return meta->ListGarbageChunks(kMaxGarbage); };
  auto garbage = co_await Offload(list_garbage);
  if (!garbage) co_return Err(garbage.error());
  report.chunks_pending = garbage->size();
  for (const ChunkRef& ref : *garbage) report.bytes_pending += ref.size;
  co_return report;
}

void GarbageCollector::Hook(GcStep step) const {
  if (options_.hook_for_test) options_.hook_for_test(step);
}

void GarbageCollector::Count(const GcReport& report) const {
  auto& m = Metrics();
  m.Counter("wharf_gc_runs_total", "Garbage collection rounds and passes run.").Inc();
  m.Counter("wharf_gc_bytes_freed_total",
            "Bytes of garbage chunks deleted from every member of their group.")
      .Inc(report.bytes_deleted);
  const char* kHelp = "What garbage collection freed, by kind.";
  m.Counter("wharf_gc_items_freed_total", kHelp, {{"kind", "manifest"}}).Inc(report.manifests);
  m.Counter("wharf_gc_items_freed_total", kHelp, {{"kind", "blob_link"}}).Inc(report.links);
  m.Counter("wharf_gc_items_freed_total", kHelp, {{"kind", "blob"}}).Inc(report.blobs);
  m.Counter("wharf_gc_items_freed_total", kHelp, {{"kind", "chunk"}}).Inc(report.chunks_deleted);
  m.Counter("wharf_gc_items_freed_total", kHelp, {{"kind", "upload"}}).Inc(report.uploads_expired);
}

awaitable<bool> GarbageCollector::CollectManifestsPage(GcReport& report) {
  MetaStore* meta = meta_;
  const int64_t cutoff = now_unix_() - options_.untagged_after->count();
  const GcCursor after = manifest_cursor_;
  const size_t limit = options_.scan_page;
  auto list = [meta, after, cutoff, limit] {
    return meta->ListUntaggedManifests(after, cutoff, limit);
  };
  auto page = co_await Offload(list);
  if (!page) {
    log_->warn("gc: listing untagged manifests failed err={}", page.error());
    co_return false;
  }
  manifest_cursor_ = page->next;
  Hook(GcStep::kManifestsListed);
  if (!page->items.empty()) {
    std::vector<GcItem> items = std::move(page->items);
    auto collect = [meta, items, cutoff] { return meta->CollectManifests(items, cutoff); };
    auto freed = co_await Offload(collect);
    if (!freed) {
      log_->warn("gc: collecting untagged manifests failed err={}", freed.error());
      co_return false;
    }
    report.manifests += freed->manifests;
    if (freed->manifests > 0) {
      log_->info("gc: untagged manifests deleted count={} listed={}", freed->manifests,
                 items.size());
    }
  }
  Hook(GcStep::kManifestsCollected);
  co_return !manifest_cursor_.at_start();
}

awaitable<bool> GarbageCollector::CollectLinksPage(GcReport& report) {
  MetaStore* meta = meta_;
  const int64_t cutoff = now_unix_() - options_.grace.count();
  const GcCursor after = link_cursor_;
  const size_t limit = options_.scan_page;
  auto list = [meta, after, cutoff, limit] {
    return meta->ListUnreferencedBlobLinks(after, cutoff, limit);
  };
  auto page = co_await Offload(list);
  if (!page) {
    log_->warn("gc: listing unreferenced blob links failed err={}", page.error());
    co_return false;
  }
  link_cursor_ = page->next;
  Hook(GcStep::kLinksListed);
  if (!page->items.empty()) {
    std::vector<GcItem> items = std::move(page->items);
    auto collect = [meta, items, cutoff] { return meta->CollectBlobLinks(items, cutoff); };
    auto freed = co_await Offload(collect);
    if (!freed) {
      log_->warn("gc: collecting blob links failed err={}", freed.error());
      co_return false;
    }
    report.links += freed->links;
    report.blobs += freed->blobs;
    report.blob_bytes += freed->blob_bytes;
    report.chunks_released += freed->chunks;
    if (freed->links > 0) {
      log_->info("gc: blob links removed links={} blobs={} bytes={} chunks={} listed={}",
                 freed->links, freed->blobs, freed->blob_bytes, freed->chunks, items.size());
    }
  }
  Hook(GcStep::kLinksCollected);
  co_return !link_cursor_.at_start();
}

awaitable<void> GarbageCollector::ExpireUploads(GcReport& report) {
  static auto& expired = Metrics().Counter("wharf_gateway_gc_uploads_expired_total",
                                           "Upload sessions expired and released.");
  co_await ReleaseStale(report);
  MetaStore* meta = meta_;
  // The store stamps updated_unix with its clock, so the cutoff must come from the same one.
  const int64_t cutoff = now_unix_() - options_.upload_expiry.count();
  auto list_expired = [meta, cutoff] { return meta->ListExpiredUploads(cutoff, 100); };
  auto stale = co_await Offload(list_expired);
  if (!stale) co_return;
  for (const auto& id : *stale) {
    auto drop = [meta, id] { return meta->DeleteUpload(id); };
    if ((co_await Offload(drop)).ok()) {
      expired.Inc();
      ++report.uploads_expired;
    }
  }
}

awaitable<void> GarbageCollector::ReleaseStale(GcReport& report) {
  static auto& sessions = Metrics().Counter(
      "wharf_gateway_gc_uploads_stale_total",
      "File-API upload sessions of requests that died mid-body (no progress), deleted.");
  static auto& chunks = Metrics().Counter(
      "wharf_gateway_gc_stale_chunks_released_total",
      "Chunks of requests that died mid-body, never appended to their session, released.");
  MetaStore* meta = meta_;
  const int64_t cutoff = now_unix_() - options_.upload_stale.count();
  auto release = [meta, cutoff] { return meta->ReleaseStaleUploads(cutoff, 1000); };
  auto got = co_await Offload(release);
  if (!got) {
    log_->warn("gc: releasing stale uploads failed err={}", got.error());
    co_return;
  }
  sessions.Inc(got->sessions);
  chunks.Inc(got->chunks);
  report.uploads_stale += got->sessions;
  report.stale_chunks += got->chunks;
  if (got->sessions > 0 || got->chunks > 0) {
    log_->info("gc: leftovers of dead uploads released sessions={} chunks={}", got->sessions,
               got->chunks);
  }
}

awaitable<void> GarbageCollector::CollectGarbage(GcReport& report) {
  static auto& reclaimed = Metrics().Counter("wharf_gateway_gc_chunks_reclaimed_total",
                                             "Garbage chunks deleted from every member.");
  static auto& deferred = Metrics().Counter("wharf_gateway_gc_chunks_deferred_total",
                                            "Garbage chunks a member could not delete yet.");
  MetaStore* meta = meta_;
  const size_t kPage = options_.page;
  const size_t want = std::min<size_t>(kPage + deferred_.size(), 20000);
  auto list_garbage = [meta, want] { return meta->ListGarbageChunks(want); };
  auto garbage = co_await Offload(list_garbage);
  if (!garbage) {
    log_->warn("gc: listing garbage failed err={}", garbage.error());
    co_return;
  }
  if (garbage->size() < want) {
    // The whole garbage list is in hand: forget deferrals of chunks no longer listed.
    std::set<std::string> listed;
    for (const auto& ref : *garbage) listed.insert(ref.id);
    std::erase_if(deferred_, [&listed](const std::string& id) { return !listed.count(id); });
  }
  const auto map = cluster_->map();
  if (!map) co_return;
  std::vector<std::string> gone;
  uint64_t gone_bytes = 0;
  size_t tried = 0;
  for (const auto& ref : *garbage) {
    if (tried >= kPage) break;
    const GroupInfo* g = map->FindGroup(ref.group);
    bool reachable = g != nullptr;
    for (const auto& m : g ? g->members : std::vector<MemberInfo>{}) {
      reachable = reachable && m.state != MemberState::kOffline;
    }
    if (!reachable) {
      if (deferred_.insert(ref.id).second) deferred.Inc();
      continue;
    }
    ++tried;
    Status st = co_await cluster_->DeleteChunk(ref);
    if (st.ok()) {
      gone.push_back(ref.id);
      gone_bytes += ref.size;
      deferred_.erase(ref.id);
    } else {
      if (deferred_.insert(ref.id).second) deferred.Inc();
      log_->debug("gc: chunk not deleted everywhere yet chunk={} err={}", ref.id, st);
    }
  }
  if (!gone.empty()) {
    auto forget = [meta, gone] { return meta->ForgetChunks(gone); };
    Status st = co_await Offload(forget);
    if (st.ok()) {
      reclaimed.Inc(gone.size());
      report.chunks_deleted += gone.size();
      report.bytes_deleted += gone_bytes;
    }
  }
}

awaitable<void> GarbageCollector::SweepInventories() {
  auto map = cluster_->map();
  if (!map) co_return;
  const int64_t cutoff = now_unix_() - options_.sweep_grace.count();
  for (const auto& g : map->groups) {
    for (const auto& m : g.members) {
      if (m.state != MemberState::kActive && m.state != MemberState::kReadonly) continue;
      co_await SweepMember(m, cutoff);
    }
  }
}

awaitable<void> GarbageCollector::SweepMember(MemberInfo member, int64_t cutoff) {
  static auto& swept = Metrics().Counter("wharf_gateway_sweep_chunks_deleted_total",
                                         "Chunks on a member that the ledger did not know.");
  MetaStore* meta = meta_;
  std::string after;
  for (int page = 0; page < 10000 && !stopped_; ++page) {
    auto inventory = co_await cluster_->ListMemberChunks(member, after, 1000);
    if (!inventory) break;
    for (const InventoryEntry& c : inventory->chunks) {
      if (c.mtime_unix > cutoff) continue;
      const std::string id = c.id;
      auto state_of = [meta, id] { return meta->GetChunkState(id); };
      auto state = co_await Offload(state_of);
      if (!state || *state != ChunkState::kUnknown) continue;
      auto deleted = co_await cluster_->DeleteMemberChunk(member, id);
      if (deleted && *deleted) {
        swept.Inc();
        log_->info("sweep deleted unknown chunk chunk={} member={}", id, member.id);
      }
    }
    if (inventory->next.empty()) break;
    after = inventory->next;
  }
}

}  // namespace wharf
