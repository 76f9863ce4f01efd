#include "gateway/garbage_collector.h"

#include <algorithm>
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

awaitable<void> GarbageCollector::RunOnce() {
  ++rounds_;
  if (options_.sweep_every > 0 && rounds_ % options_.sweep_every == 0) {
    co_await SweepInventories();
  }
  co_await ExpireUploads();
  if (!cluster_->map()) co_return;
  co_await CollectGarbage();
}

awaitable<void> GarbageCollector::ExpireUploads() {
  static auto& expired = Metrics().Counter("wharf_gateway_gc_uploads_expired_total",
                                           "Upload sessions expired and released.");
  MetaStore* meta = meta_;
  // The store stamps updated_unix with its clock, so the cutoff must come from the same one.
  const int64_t cutoff = now_unix_() - options_.upload_expiry.count();
  auto list_expired = [meta, cutoff] { return meta->ListExpiredUploads(cutoff, 100); };
  auto stale = co_await Offload(list_expired);
  if (!stale) co_return;
  for (const auto& id : *stale) {
    auto drop = [meta, id] { return meta->DeleteUpload(id); };
    if ((co_await Offload(drop)).ok()) expired.Inc();
  }
}

awaitable<void> GarbageCollector::CollectGarbage() {
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
      deferred_.erase(ref.id);
    } else {
      if (deferred_.insert(ref.id).second) deferred.Inc();
      log_->debug("gc: chunk not deleted everywhere yet chunk={} err={}", ref.id, st);
    }
  }
  if (!gone.empty()) {
    auto forget = [meta, gone] { return meta->ForgetChunks(gone); };
    Status st = co_await Offload(forget);
    if (st.ok()) reclaimed.Inc(gone.size());
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
