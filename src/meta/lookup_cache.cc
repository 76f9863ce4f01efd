#include "meta/lookup_cache.h"

#include <utility>

#include "common/metrics.h"

namespace wharf {
namespace {

// Per entry beyond its payload: the key, the list node, the index slot.
constexpr uint64_t kEntryOverhead = 160;

CounterMetric& Lookups(const char* kind, const char* outcome) {
  return Metrics().Counter(
      "wharf_gateway_lookup_cache_total",
      "Metadata lookups the gateway's lookup cache answered (hit) or passed to the store (miss).",
      {{"kind", kind}, {"outcome", outcome}});
}

// The counters of one kind, looked up once (a registry lookup per request would cost more than
// the hit saves).
struct KindCounters {
  CounterMetric& hit;
  CounterMetric& miss;
  explicit KindCounters(const char* kind)
      : hit(Lookups(kind, "hit")), miss(Lookups(kind, "miss")) {}
};

KindCounters& CountersOf(char kind) {
  static KindCounters blob("blob"), manifest("manifest"), tag("tag");
  return kind == 'b' ? blob : kind == 'm' ? manifest : tag;
}

std::string Key(char kind, const std::string& repo, std::string_view what) {
  std::string k;
  k.reserve(repo.size() + what.size() + 2);
  k += kind;
  k += repo;
  k += '\0';
  k += what;
  return k;
}

uint64_t SizeOf(const BlobRecord& b) { return sizeof(BlobRecord) + b.chunks.size() * 96; }
uint64_t SizeOf(const ManifestRecord& m) {
  return sizeof(ManifestRecord) + m.content.size() + m.media_type.size() + m.artifact_type.size() +
         m.annotations_json.size() + (m.blobs.size() + m.manifests.size()) * 80;
}

}  // namespace

LookupCache::LookupCache(LookupCacheOptions options) : options_(options) {}

template <typename T>
std::optional<T> LookupCache::Find(const std::string& key) {
  KindCounters& counters = CountersOf(key[0]);
  if (!enabled()) return std::nullopt;
  {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      auto node = it->second;
      if (Clock::now() < node->expires) {
        lru_.splice(lru_.begin(), lru_, node);
        std::optional<T> value(std::get<T>(node->value));
        counters.hit.Inc();
        return value;
      }
      EraseLocked(node);
    }
  }
  counters.miss.Inc();
  return std::nullopt;
}

std::optional<BlobRecord> LookupCache::FindLinkedBlob(const std::string& repo,
                                                      const Digest& digest) {
  return Find<BlobRecord>(Key('b', repo, digest.ToString()));
}

std::optional<ManifestRecord> LookupCache::FindManifest(const std::string& repo,
                                                        const Digest& digest) {
  return Find<ManifestRecord>(Key('m', repo, digest.ToString()));
}

std::optional<Digest> LookupCache::FindTag(const std::string& repo, const std::string& tag) {
  if (!caches_tags()) return std::nullopt;
  return Find<Digest>(Key('t', repo, tag));
}

void LookupCache::Put(uint64_t generation, std::string key, Value value, uint64_t bytes) {
  bytes += key.size() + kEntryOverhead;
  if (!enabled() || bytes > options_.max_bytes / 4) return;
  std::lock_guard lock(mu_);
  // Compared under the lock: Clear() bumps the generation under it too, so an answer read
  // before an invalidation can never land after it.
  if (generation != generation_.load(std::memory_order_relaxed)) return;
  if (auto it = index_.find(key); it != index_.end()) EraseLocked(it->second);
  while (!lru_.empty() &&
         (index_.size() >= options_.max_entries || bytes_ + bytes > options_.max_bytes)) {
    EraseLocked(std::prev(lru_.end()));
  }
  lru_.push_front(Entry{key, std::move(value), bytes, Clock::now() + options_.ttl});
  index_.emplace(std::move(key), lru_.begin());
  bytes_ += bytes;
}

void LookupCache::PutLinkedBlob(uint64_t generation, const std::string& repo,
                                const BlobRecord& blob) {
  Put(generation, Key('b', repo, blob.digest.ToString()), blob, SizeOf(blob));
}

void LookupCache::PutManifest(uint64_t generation, const std::string& repo,
                              const ManifestRecord& manifest) {
  Put(generation, Key('m', repo, manifest.digest.ToString()), manifest, SizeOf(manifest));
}

void LookupCache::PutTag(uint64_t generation, const std::string& repo, const std::string& tag,
                         const Digest& digest) {
  if (!caches_tags()) return;
  Put(generation, Key('t', repo, tag), digest, sizeof(Digest));
}

void LookupCache::EraseLocked(std::list<Entry>::iterator it) {
  bytes_ -= it->bytes;
  index_.erase(it->key);
  lru_.erase(it);
}

void LookupCache::InvalidateTag(const std::string& repo, const std::string& tag) {
  if (!caches_tags()) return;
  std::lock_guard lock(mu_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  if (auto it = index_.find(Key('t', repo, tag)); it != index_.end()) EraseLocked(it->second);
}

bool LookupCache::InvalidateLinkedBlob(const std::string& repo, const Digest& digest) {
  if (!enabled()) return false;
  std::lock_guard lock(mu_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  auto it = index_.find(Key('b', repo, digest.ToString()));
  if (it == index_.end()) return false;
  EraseLocked(it->second);
  return true;
}

void LookupCache::InvalidateManifest(const std::string& repo, const Digest& digest) {
  if (!enabled()) return;
  std::lock_guard lock(mu_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  if (auto it = index_.find(Key('m', repo, digest.ToString())); it != index_.end()) {
    EraseLocked(it->second);
  }
}

void LookupCache::Clear() {
  std::lock_guard lock(mu_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  lru_.clear();
  index_.clear();
  bytes_ = 0;
}

size_t LookupCache::entries() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

uint64_t LookupCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

namespace {

class CachingMetaStore final : public MetaStore {
 public:
  CachingMetaStore(std::unique_ptr<MetaStore> inner, LookupCache& cache)
      : inner_(std::move(inner)), cache_(cache) {}

  // ---- Reads that fill the cache ----
  Result<BlobRecord> GetLinkedBlob(const std::string& repo, const Digest& digest) override {
    if (auto hit = cache_.FindLinkedBlob(repo, digest)) return std::move(*hit);
    const uint64_t gen = cache_.Generation();
    Result<BlobRecord> r = inner_->GetLinkedBlob(repo, digest);
    if (r) cache_.PutLinkedBlob(gen, repo, *r);
    return r;
  }
  Result<bool> BlobLinked(const std::string& repo, const Digest& digest) override {
    if (cache_.FindLinkedBlob(repo, digest)) return true;
    return inner_->BlobLinked(repo, digest);
  }
  Result<ManifestRecord> GetManifest(const std::string& repo, const Digest& digest) override {
    if (auto hit = cache_.FindManifest(repo, digest)) return std::move(*hit);
    const uint64_t gen = cache_.Generation();
    Result<ManifestRecord> r = inner_->GetManifest(repo, digest);
    if (r) cache_.PutManifest(gen, repo, *r);
    return r;
  }
  Result<bool> ManifestExists(const std::string& repo, const Digest& digest) override {
    if (cache_.FindManifest(repo, digest)) return true;
    return inner_->ManifestExists(repo, digest);
  }
  Result<Digest> ResolveTag(const std::string& repo, const std::string& tag) override {
    if (auto hit = cache_.FindTag(repo, tag)) return std::move(*hit);
    const uint64_t gen = cache_.Generation();
    Result<Digest> r = inner_->ResolveTag(repo, tag);
    if (r) cache_.PutTag(gen, repo, tag, *r);
    return r;
  }

  // ---- Writes that may make an entry wrong: invalidate once the write is done ----
  Result<bool> UnlinkBlob(const std::string& repo, const Digest& digest) override {
    auto r = inner_->UnlinkBlob(repo, digest);
    cache_.Clear();
    return r;
  }
  Status PutManifest(const std::string& repo, const ManifestRecord& manifest,
                     std::optional<std::string> tag, Digest* missing) override {
    std::optional<std::string> moved = tag;
    Status st = inner_->PutManifest(repo, manifest, std::move(tag), missing);
    if (moved) cache_.InvalidateTag(repo, *moved);
    if (st.code() == Code::kNotFound) {
      // Content it names is gone from the store (collected, maybe through another gateway,
      // after this one cached it): forget it here too, so that the client's next HEAD says 404
      // and it pushes the blob again instead of skipping it on a stale 200.
      for (const Digest& d : manifest.blobs) cache_.InvalidateLinkedBlob(repo, d);
      for (const Digest& d : manifest.manifests) cache_.InvalidateManifest(repo, d);
      if (missing) cache_.InvalidateLinkedBlob(repo, *missing);
    }
    return st;
  }
  Status DeleteTag(const std::string& repo, const std::string& tag) override {
    Status st = inner_->DeleteTag(repo, tag);
    cache_.Clear();
    return st;
  }
  Status DeleteManifest(const std::string& repo, const Digest& digest) override {
    Status st = inner_->DeleteManifest(repo, digest);
    cache_.Clear();  // its tags and referrers go with it
    return st;
  }
  Result<GcFreed> CollectBlobLinks(const std::vector<GcItem>& links,
                                   int64_t linked_before_unix) override {
    auto r = inner_->CollectBlobLinks(links, linked_before_unix);
    if (!r || r->links > 0 || r->blobs > 0) cache_.Clear();
    return r;
  }
  Result<GcFreed> EvictBlob(const Digest& digest, int64_t not_pulled_since) override {
    auto r = inner_->EvictBlob(digest, not_pulled_since);
    // Every repository's link went: forget them all (the keys are per repository).
    if (!r || r->links > 0 || r->blobs > 0) cache_.Clear();
    return r;
  }
  Result<GcFreed> CollectManifests(const std::vector<GcItem>& manifests,
                                   int64_t created_before_unix) override {
    auto r = inner_->CollectManifests(manifests, created_before_unix);
    if (!r || r->manifests > 0) cache_.Clear();
    return r;
  }

  // ---- Everything else forwards ----
  Status RecordChunks(const ChunkOwner& owner, const std::vector<ChunkRef>& chunks) override {
    return inner_->RecordChunks(owner, chunks);
  }
  Status ReleaseChunks(const std::vector<std::string>& ids) override {
    return inner_->ReleaseChunks(ids);
  }
  Result<std::vector<ChunkRef>> ListGarbageChunks(size_t limit) override {
    return inner_->ListGarbageChunks(limit);
  }
  Status ForgetChunks(const std::vector<std::string>& ids) override {
    return inner_->ForgetChunks(ids);
  }
  Result<ChunkState> GetChunkState(std::string_view id) override {
    return inner_->GetChunkState(id);
  }
  Status CreateUpload(const UploadSession& session) override {
    return inner_->CreateUpload(session);
  }
  Result<UploadSession> GetUpload(std::string_view id) override { return inner_->GetUpload(id); }
  Status AppendUpload(std::string_view id, uint64_t expected_offset, uint64_t new_offset,
                      std::string hash_state, std::vector<ChunkRef> new_chunks,
                      std::string tail) override {
    return inner_->AppendUpload(id, expected_offset, new_offset, std::move(hash_state),
                                std::move(new_chunks), std::move(tail));
  }
  Status DeleteUpload(std::string_view id) override { return inner_->DeleteUpload(id); }
  Result<std::vector<std::string>> ListExpiredUploads(int64_t updated_before_unix,
                                                      size_t limit) override {
    return inner_->ListExpiredUploads(updated_before_unix, limit);
  }
  Status TouchUpload(std::string_view id) override { return inner_->TouchUpload(id); }
  Result<StaleUploads> ReleaseStaleUploads(int64_t idle_before_unix, size_t limit) override {
    return inner_->ReleaseStaleUploads(idle_before_unix, limit);
  }
  Status CommitFile(std::string_view upload_id, const FileRecord& file) override {
    return inner_->CommitFile(upload_id, file);
  }
  Result<FileRecord> GetFile(std::string_view id) override { return inner_->GetFile(id); }
  Result<FileRecord> DeleteFile(std::string_view id) override { return inner_->DeleteFile(id); }
  Result<bool> CommitBlob(std::string_view upload_id, const std::string& repo,
                          const BlobRecord& blob) override {
    return inner_->CommitBlob(upload_id, repo, blob);
  }
  Result<bool> PutBlob(const std::string& repo, const BlobRecord& blob) override {
    return inner_->PutBlob(repo, blob);
  }
  Result<BlobRecord> GetBlob(const Digest& digest) override { return inner_->GetBlob(digest); }
  Status LinkBlob(const std::string& repo, const Digest& digest) override {
    return inner_->LinkBlob(repo, digest);
  }
  using MetaStore::PutManifest;
  Result<Page> ListTags(const std::string& repo, const std::string& last, size_t n) override {
    return inner_->ListTags(repo, last, n);
  }
  Result<Page> ListRepositories(const std::string& last, size_t n) override {
    return inner_->ListRepositories(last, n);
  }
  Result<bool> RepositoryExists(const std::string& repo) override {
    return inner_->RepositoryExists(repo);
  }
  Result<std::vector<ReferrerRecord>> ListReferrers(const std::string& repo,
                                                    const Digest& subject) override {
    return inner_->ListReferrers(repo, subject);
  }
  Result<StoredTotals> GetStoredTotals() override { return inner_->GetStoredTotals(); }
  Result<GcPage> ListUnreferencedBlobLinks(const GcCursor& after, int64_t linked_before_unix,
                                           size_t limit) override {
    return inner_->ListUnreferencedBlobLinks(after, linked_before_unix, limit);
  }
  Result<GcPage> ListUntaggedManifests(const GcCursor& after, int64_t created_before_unix,
                                       size_t limit) override {
    return inner_->ListUntaggedManifests(after, created_before_unix, limit);
  }
  Result<std::string> StoreId() override { return inner_->StoreId(); }
  Result<LeaseInfo> AcquireLease(std::string_view name, std::string_view holder,
                                 int64_t ttl_seconds) override {
    return inner_->AcquireLease(name, holder, ttl_seconds);
  }
  Status ReleaseLease(std::string_view name, std::string_view holder) override {
    return inner_->ReleaseLease(name, holder);
  }
  // The work queue holds nothing the cache keeps: every call forwards.
  Result<QueueItem> EnqueueItem(const QueueKey& key) override { return inner_->EnqueueItem(key); }
  Result<QueueItem> GetQueueItem(const QueueKey& key) override { return inner_->GetQueueItem(key); }
  Result<std::vector<QueueItem>> ClaimQueueItems(std::string_view target, std::string_view holder,
                                                 int64_t lease_seconds, size_t limit) override {
    return inner_->ClaimQueueItems(target, holder, lease_seconds, limit);
  }
  Status CompleteQueueItem(const QueueItem& claimed) override {
    return inner_->CompleteQueueItem(claimed);
  }
  Status FailQueueItem(const QueueItem& claimed, std::string_view error,
                       std::optional<int64_t> retry_after_seconds) override {
    return inner_->FailQueueItem(claimed, error, retry_after_seconds);
  }
  Result<uint64_t> RenewQueueClaims(std::string_view holder, int64_t lease_seconds) override {
    return inner_->RenewQueueClaims(holder, lease_seconds);
  }
  Result<uint64_t> RecoverQueueItems(std::string_view holder) override {
    return inner_->RecoverQueueItems(holder);
  }
  Result<QueueStats> GetQueueStats(std::string_view target) override {
    return inner_->GetQueueStats(target);
  }
  Result<std::vector<QueueItem>> ListQueueItems(std::string_view target,
                                                std::optional<QueueState> state, int64_t after_id,
                                                size_t limit) override {
    return inner_->ListQueueItems(target, state, after_id, limit);
  }
  Result<bool> DigestQueued(const Digest& digest) override { return inner_->DigestQueued(digest); }
  Result<uint64_t> PruneQueue(int64_t updated_before_unix, size_t limit) override {
    return inner_->PruneQueue(updated_before_unix, limit);
  }
  // The last pull is not cached: both forward.
  Status TouchBlobs(const std::vector<Digest>& digests, int64_t pulled_unix) override {
    return inner_->TouchBlobs(digests, pulled_unix);
  }
  Result<std::vector<EvictionCandidate>> ListEvictionCandidates(size_t limit) override {
    return inner_->ListEvictionCandidates(limit);
  }

 private:
  std::unique_ptr<MetaStore> inner_;
  LookupCache& cache_;
};

}  // namespace

std::unique_ptr<MetaStore> MakeCachingMetaStore(std::unique_ptr<MetaStore> inner,
                                                LookupCache& cache) {
  return std::make_unique<CachingMetaStore>(std::move(inner), cache);
}

}  // namespace wharf
