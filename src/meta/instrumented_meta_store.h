// InstrumentedMetaStore: wraps any MetaStore once (as distribution's base.go wraps every storage
// driver) and times every call, whatever the implementation:
//
//   wharf_meta_op_seconds{op="get_blob"}                       histogram of call latencies
//   wharf_meta_op_errors_total{op="get_blob",code="not_found"}  calls that returned an error
//
// Every method forwards to the inner store unchanged (same results, same errors); the
// contracts are MetaStore's (meta_store.h). Thread-safe if the inner store is.
#pragma once

#include <memory>
#include <string_view>

#include "common/metrics.h"
#include "meta/meta_store.h"

namespace wharf {

class InstrumentedMetaStore : public MetaStore {
 public:
  // Records into `metrics` (the process-wide registry by default; it must outlive the store).
  explicit InstrumentedMetaStore(std::unique_ptr<MetaStore> inner,
                                 MetricsRegistry& metrics = Metrics());

  MetaStore& inner() { return *inner_; }

  Status RecordChunks(const ChunkOwner& owner, const std::vector<ChunkRef>& chunks) override;
  Status ReleaseChunks(const std::vector<std::string>& ids) override;
  Result<std::vector<ChunkRef>> ListGarbageChunks(size_t limit) override;
  Status ForgetChunks(const std::vector<std::string>& ids) override;
  Result<ChunkState> GetChunkState(std::string_view id) override;
  Status CreateUpload(const UploadSession& session) override;
  Result<UploadSession> GetUpload(std::string_view id) override;
  Status AppendUpload(std::string_view id, uint64_t expected_offset, uint64_t new_offset,
                      std::string hash_state, std::vector<ChunkRef> new_chunks,
                      std::string tail) override;
  Status DeleteUpload(std::string_view id) override;
  Result<std::vector<std::string>> ListExpiredUploads(int64_t updated_before_unix,
                                                      size_t limit) override;
  Status TouchUpload(std::string_view id) override;
  Result<StaleUploads> ReleaseStaleUploads(int64_t idle_before_unix, size_t limit) override;
  Status CommitFile(std::string_view upload_id, const FileRecord& file) override;
  Result<FileRecord> GetFile(std::string_view id) override;
  Result<FileRecord> DeleteFile(std::string_view id) override;
  Result<bool> CommitBlob(std::string_view upload_id, const std::string& repo,
                          const BlobRecord& blob) override;
  Result<bool> PutBlob(const std::string& repo, const BlobRecord& blob) override;
  Result<BlobRecord> GetBlob(const Digest& digest) override;
  Result<BlobRecord> GetLinkedBlob(const std::string& repo, const Digest& digest) override;
  Status LinkBlob(const std::string& repo, const Digest& digest) override;
  Result<bool> BlobLinked(const std::string& repo, const Digest& digest) override;
  Result<bool> UnlinkBlob(const std::string& repo, const Digest& digest) override;
  using MetaStore::PutManifest;
  Status PutManifest(const std::string& repo, const ManifestRecord& manifest,
                     std::optional<std::string> tag, Digest* missing) override;
  Result<ManifestRecord> GetManifest(const std::string& repo, const Digest& digest) override;
  Result<Digest> ResolveTag(const std::string& repo, const std::string& tag) override;
  Result<bool> ManifestExists(const std::string& repo, const Digest& digest) override;
  Status DeleteTag(const std::string& repo, const std::string& tag) override;
  Status DeleteManifest(const std::string& repo, const Digest& digest) override;
  Result<Page> ListTags(const std::string& repo, const std::string& last, size_t n) override;
  Result<Page> ListRepositories(const std::string& last, size_t n) override;
  Result<bool> RepositoryExists(const std::string& repo) override;
  Result<std::vector<ReferrerRecord>> ListReferrers(const std::string& repo,
                                                    const Digest& subject) override;
  Result<StoredTotals> GetStoredTotals() override;

  Result<GcPage> ListUnreferencedBlobLinks(const GcCursor& after, int64_t linked_before_unix,
                                           size_t limit) override;
  Result<GcFreed> CollectBlobLinks(const std::vector<GcItem>& links,
                                   int64_t linked_before_unix) override;
  Result<GcPage> ListUntaggedManifests(const GcCursor& after, int64_t created_before_unix,
                                       size_t limit) override;
  Result<GcFreed> CollectManifests(const std::vector<GcItem>& manifests,
                                   int64_t created_before_unix) override;

  Result<std::string> StoreId() override;
  Result<LeaseInfo> AcquireLease(std::string_view name, std::string_view holder,
                                 int64_t ttl_seconds) override;
  Status ReleaseLease(std::string_view name, std::string_view holder) override;

  Result<QueueItem> EnqueueItem(const QueueKey& key) override;
  Result<QueueItem> GetQueueItem(const QueueKey& key) override;
  Result<std::vector<QueueItem>> ClaimQueueItems(std::string_view target, std::string_view holder,
                                                 int64_t lease_seconds, size_t limit) override;
  Status CompleteQueueItem(const QueueItem& claimed) override;
  Status FailQueueItem(const QueueItem& claimed, std::string_view error,
                       std::optional<int64_t> retry_after_seconds) override;
  Result<uint64_t> RenewQueueClaims(std::string_view holder, int64_t lease_seconds) override;
  Result<uint64_t> RecoverQueueItems(std::string_view holder) override;
  Result<QueueStats> GetQueueStats(std::string_view target) override;
  Result<std::vector<QueueItem>> ListQueueItems(std::string_view target,
                                                std::optional<QueueState> state, int64_t after_id,
                                                size_t limit) override;
  Result<bool> DigestQueued(const Digest& digest) override;
  Result<uint64_t> PruneQueue(int64_t updated_before_unix, size_t limit) override;
  Status TouchBlobs(const std::vector<Digest>& digests, int64_t pulled_unix) override;
  Result<std::vector<EvictionCandidate>> ListEvictionCandidates(size_t limit) override;
  Result<GcFreed> EvictBlob(const Digest& digest, int64_t not_pulled_since) override;

 private:
  // Runs `call`, observes its latency under `op` and counts its error, if any.
  template <typename F>
  auto Timed(std::string_view op, F call) -> decltype(call());
  void Record(std::string_view op, double seconds, const Status& st);

  std::unique_ptr<MetaStore> inner_;
  MetricsRegistry& metrics_;
};

}  // namespace wharf
