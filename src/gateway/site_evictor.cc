#include "gateway/site_evictor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/async.h"
#include "common/metrics.h"
#include "common/units.h"

namespace wharf {
namespace {

// Garbage rows read to count the bytes the collector has still to delete.
constexpr size_t kGarbageScan = 100000;

CounterMetric& EvictedBlobs() {
  static CounterMetric& c = Metrics().Counter(
      "wharf_site_evictions_total", "Blobs a site cache evicted (under its low watermark).");
  return c;
}
CounterMetric& EvictedBytes() {
  static CounterMetric& c = Metrics().Counter("wharf_site_evicted_bytes_total",
                                              "Bytes of the blobs a site cache evicted.");
  return c;
}
GaugeMetric& FreeRatio() {
  static GaugeMetric& g =
      Metrics().Gauge("wharf_site_cache_free_ratio",
                      "Free space of the site's cluster as its evictor last measured (0..1).");
  return g;
}
CounterMetric& Failures(std::string_view what) {
  return Metrics().Counter("wharf_site_eviction_failures_total",
                           "Metadata calls of a site cache's eviction that failed.",
                           {{"call", std::string(what)}});
}

}  // namespace

Result<double> ParseWatermark(std::string_view flag, std::string_view text) {
  auto r = ParseReserve(text);
  if (!r || !r->percent || !(r->value > 0) || !(r->value < 100)) {
    return Err(InvalidArgument(fmt::format(
        "{}: want a percentage of free space above 0% and under 100% (like 10%), got '{}'", flag,
        text)));
  }
  return r->value;
}

SiteEvictor::SiteEvictor(MapSource map, MetaStore* meta, BlobService* blobs,
                         SiteEvictionOptions options, Clock clock, Logger log)
    : map_(std::move(map)),
      meta_(meta),
      blobs_(blobs),
      options_(options),
      clock_(std::move(clock)),
      log_(log),
      throttle_(std::chrono::seconds(60)) {
  blobs_->RecordPulls(true);
}

std::optional<double> SiteEvictor::FreePercent(const ClusterMap& map, uint64_t* capacity,
                                               uint64_t* free) {
  uint64_t cap_sum = 0, free_sum = 0;
  for (const GroupInfo& g : map.groups) {
    if (g.members.empty()) continue;
    uint64_t cap = UINT64_MAX, fr = UINT64_MAX;
    for (const MemberInfo& m : g.members) {
      cap = std::min(cap, m.capacity);
      fr = std::min(fr, m.free);
    }
    cap_sum += cap;
    free_sum += std::min(fr, cap);
  }
  if (capacity) *capacity = cap_sum;
  if (free) *free = free_sum;
  if (cap_sum == 0) return std::nullopt;
  return 100.0 * static_cast<double>(free_sum) / static_cast<double>(cap_sum);
}

awaitable<void> SiteEvictor::FlushPulls() {
  std::vector<Digest> pulled = blobs_->TakePulls();
  if (pulled.empty()) co_return;
  MetaStore* meta = meta_;
  const int64_t now = clock_();
  auto touch = [meta, &pulled, now] { return meta->TouchBlobs(pulled, now); };
  Status st = co_await Offload(touch);
  if (!st.ok()) {
    Failures("touch_blobs").Inc();
    if (auto held = throttle_.Admit()) {
      log_->warn("site cache: recording pulls failed blobs={} err={} held={}", pulled.size(), st,
                 *held);
    }
  }
}

awaitable<Result<uint64_t>> SiteEvictor::Pending(int64_t now) {
  MetaStore* meta = meta_;
  auto list = [meta] { return meta->ListGarbageChunks(kGarbageScan); };
  Result<std::vector<ChunkRef>> garbage = co_await Offload(list);
  if (!garbage) co_return Err(garbage.error());
  uint64_t bytes = 0;
  for (const ChunkRef& c : *garbage) bytes += c.size;
  if (bytes > 0) {
    garbage_seen_unix_ = now;
  } else if (now - garbage_seen_unix_ >= options_.settle_seconds) {
    pending_ = 0;  // collected, and the map has had time to show it
  }
  co_return std::max(pending_, bytes);
}

awaitable<EvictionPass> SiteEvictor::RunOnce() {
  EvictionPass pass;
  std::optional<ClusterMap> map = map_();
  if (!map) co_return pass;
  uint64_t capacity = 0, free = 0;
  pass.free_percent = FreePercent(*map, &capacity, &free);
  if (!pass.free_percent) co_return pass;
  FreeRatio().Set(*pass.free_percent / 100.0);
  const int64_t now = clock_();
  const bool below = *pass.free_percent < options_.low_percent;
  if (!below && pending_ == 0) co_return pass;
  Result<uint64_t> pending = co_await Pending(now);
  if (!pending) {
    Failures("list_garbage_chunks").Inc();
    log_->warn("site cache eviction: counting garbage failed err={}", pending.error());
    co_return pass;
  }
  pass.pending_bytes = *pending;
  const double cap = static_cast<double>(capacity);
  const double expected = static_cast<double>(free) + static_cast<double>(*pending);
  if (!below || expected >= cap * options_.low_percent / 100.0) co_return pass;
  pass.below_low = true;
  // What is still missing to reach the high watermark once the pending bytes are freed.
  const double want = std::ceil(cap * options_.high_percent / 100.0 - expected);
  uint64_t need = want > 0 ? static_cast<uint64_t>(want) : 0;
  MetaStore* meta = meta_;
  Status failed;
  for (size_t round = 0; round < options_.max_batches && need > 0; ++round) {
    const size_t batch = options_.batch;
    auto list = [meta, batch] { return meta->ListEvictionCandidates(batch); };
    Result<std::vector<EvictionCandidate>> candidates = co_await Offload(list);
    if (!candidates) {
      Failures("list_eviction_candidates").Inc();
      failed = candidates.error();
      break;
    }
    if (candidates->empty()) break;
    // One hop to the pool per batch: each blob its own transaction, until enough went.
    auto evict = [meta, &candidates, need]() -> Result<GcFreed> {
      GcFreed total;
      for (const EvictionCandidate& c : *candidates) {
        if (total.blob_bytes >= need) break;
        Result<GcFreed> freed = meta->EvictBlob(c.digest, c.last_used_unix);
        if (!freed) {
          if (total.blobs > 0) break;  // report what went; the next pass goes on
          return freed;
        }
        total += *freed;
      }
      return total;
    };
    Result<GcFreed> freed = co_await Offload(evict);
    if (!freed) {
      Failures("evict_blob").Inc();
      failed = freed.error();
      break;
    }
    pass.blobs += freed->blobs;
    pass.bytes += freed->blob_bytes;
    pending_ += freed->blob_bytes;
    need = freed->blob_bytes >= need ? 0 : need - freed->blob_bytes;
    if (freed->blobs == 0) break;  // the batch was all pulled or queued since: next pass
  }
  if (pass.blobs > 0) garbage_seen_unix_ = now;
  EvictedBlobs().Inc(pass.blobs);
  EvictedBytes().Inc(pass.bytes);
  if (failed.ok()) {
    log_->info(
        "site cache eviction: free={:.1f}% low={}% high={}% pending={} evicted {} blobs {} bytes "
        "still_needed={}",
        *pass.free_percent, options_.low_percent, options_.high_percent, pass.pending_bytes,
        pass.blobs, pass.bytes, need);
  } else {
    log_->warn(
        "site cache eviction: free={:.1f}% evicted {} blobs {} bytes, then the store failed "
        "err={}",
        *pass.free_percent, pass.blobs, pass.bytes, failed);
  }
  co_return pass;
}

}  // namespace wharf
