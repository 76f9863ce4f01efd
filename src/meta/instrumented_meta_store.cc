#include "meta/instrumented_meta_store.h"

#include <chrono>
#include <string>

namespace wharf {
namespace {

const Status& StatusOf(const Status& st) { return st; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r ? Status::Ok() : r.error();
}

}  // namespace

InstrumentedMetaStore::InstrumentedMetaStore(std::unique_ptr<MetaStore> inner,
                                             MetricsRegistry& metrics)
    : inner_(std::move(inner)), metrics_(metrics) {}

template <typename F>
auto InstrumentedMetaStore::Timed(std::string_view op, F call) -> decltype(call()) {
  const auto start = std::chrono::steady_clock::now();
  auto result = call();
  Record(op, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
         StatusOf(result));
  return result;
}

void InstrumentedMetaStore::Record(std::string_view op, double seconds, const Status& st) {
  const std::string name(op);
  metrics_.Histogram("wharf_meta_op_seconds", "Metadata store calls, by operation.", {{"op", name}})
      .Observe(seconds);
  if (!st.ok()) {
    metrics_
        .Counter("wharf_meta_op_errors_total",
                 "Metadata store calls that returned an error, by operation and code.",
                 {{"op", name}, {"code", std::string(CodeName(st.code()))}})
        .Inc();
  }
}

Status InstrumentedMetaStore::RecordChunks(const ChunkOwner& owner,
                                           const std::vector<ChunkRef>& chunks) {
  return Timed("record_chunks", [&] { return inner_->RecordChunks(owner, chunks); });
}

Status InstrumentedMetaStore::ReleaseChunks(const std::vector<std::string>& ids) {
  return Timed("release_chunks", [&] { return inner_->ReleaseChunks(ids); });
}

Result<std::vector<ChunkRef>> InstrumentedMetaStore::ListGarbageChunks(size_t limit) {
  return Timed("list_garbage_chunks", [&] { return inner_->ListGarbageChunks(limit); });
}

Status InstrumentedMetaStore::ForgetChunks(const std::vector<std::string>& ids) {
  return Timed("forget_chunks", [&] { return inner_->ForgetChunks(ids); });
}

Result<ChunkState> InstrumentedMetaStore::GetChunkState(std::string_view id) {
  return Timed("get_chunk_state", [&] { return inner_->GetChunkState(id); });
}

Status InstrumentedMetaStore::CreateUpload(const UploadSession& session) {
  return Timed("create_upload", [&] { return inner_->CreateUpload(session); });
}

Result<UploadSession> InstrumentedMetaStore::GetUpload(std::string_view id) {
  return Timed("get_upload", [&] { return inner_->GetUpload(id); });
}

Status InstrumentedMetaStore::AppendUpload(std::string_view id, uint64_t expected_offset,
                                           uint64_t new_offset, std::string hash_state,
                                           std::vector<ChunkRef> new_chunks, std::string tail) {
  return Timed("append_upload", [&] {
    return inner_->AppendUpload(id, expected_offset, new_offset, std::move(hash_state),
                                std::move(new_chunks), std::move(tail));
  });
}

Status InstrumentedMetaStore::DeleteUpload(std::string_view id) {
  return Timed("delete_upload", [&] { return inner_->DeleteUpload(id); });
}

Result<std::vector<std::string>> InstrumentedMetaStore::ListExpiredUploads(
    int64_t updated_before_unix, size_t limit) {
  return Timed("list_expired_uploads",
               [&] { return inner_->ListExpiredUploads(updated_before_unix, limit); });
}

Status InstrumentedMetaStore::TouchUpload(std::string_view id) {
  return Timed("touch_upload", [&] { return inner_->TouchUpload(id); });
}

Result<MetaStore::StaleUploads> InstrumentedMetaStore::ReleaseStaleUploads(int64_t idle_before_unix,
                                                                           size_t limit) {
  return Timed("release_stale_uploads",
               [&] { return inner_->ReleaseStaleUploads(idle_before_unix, limit); });
}

Status InstrumentedMetaStore::CommitFile(std::string_view upload_id, const FileRecord& file) {
  return Timed("commit_file", [&] { return inner_->CommitFile(upload_id, file); });
}

Result<FileRecord> InstrumentedMetaStore::GetFile(std::string_view id) {
  return Timed("get_file", [&] { return inner_->GetFile(id); });
}

Result<FileRecord> InstrumentedMetaStore::DeleteFile(std::string_view id) {
  return Timed("delete_file", [&] { return inner_->DeleteFile(id); });
}

Result<bool> InstrumentedMetaStore::CommitBlob(std::string_view upload_id, const std::string& repo,
                                               const BlobRecord& blob) {
  return Timed("commit_blob", [&] { return inner_->CommitBlob(upload_id, repo, blob); });
}

Result<bool> InstrumentedMetaStore::PutBlob(const std::string& repo, const BlobRecord& blob) {
  return Timed("put_blob", [&] { return inner_->PutBlob(repo, blob); });
}

Result<BlobRecord> InstrumentedMetaStore::GetBlob(const Digest& digest) {
  return Timed("get_blob", [&] { return inner_->GetBlob(digest); });
}

Status InstrumentedMetaStore::LinkBlob(const std::string& repo, const Digest& digest) {
  return Timed("link_blob", [&] { return inner_->LinkBlob(repo, digest); });
}

Result<BlobRecord> InstrumentedMetaStore::GetLinkedBlob(const std::string& repo,
                                                        const Digest& digest) {
  return Timed("get_linked_blob", [&] { return inner_->GetLinkedBlob(repo, digest); });
}

Result<bool> InstrumentedMetaStore::BlobLinked(const std::string& repo, const Digest& digest) {
  return Timed("blob_linked", [&] { return inner_->BlobLinked(repo, digest); });
}

Result<bool> InstrumentedMetaStore::UnlinkBlob(const std::string& repo, const Digest& digest) {
  return Timed("unlink_blob", [&] { return inner_->UnlinkBlob(repo, digest); });
}

Status InstrumentedMetaStore::PutManifest(const std::string& repo, const ManifestRecord& manifest,
                                          std::optional<std::string> tag, Digest* missing) {
  return Timed("put_manifest", [&] { return inner_->PutManifest(repo, manifest, tag, missing); });
}

Result<ManifestRecord> InstrumentedMetaStore::GetManifest(const std::string& repo,
                                                          const Digest& digest) {
  return Timed("get_manifest", [&] { return inner_->GetManifest(repo, digest); });
}

Result<Digest> InstrumentedMetaStore::ResolveTag(const std::string& repo, const std::string& tag) {
  return Timed("resolve_tag", [&] { return inner_->ResolveTag(repo, tag); });
}

Result<bool> InstrumentedMetaStore::ManifestExists(const std::string& repo, const Digest& digest) {
  return Timed("manifest_exists", [&] { return inner_->ManifestExists(repo, digest); });
}

Status InstrumentedMetaStore::DeleteTag(const std::string& repo, const std::string& tag) {
  return Timed("delete_tag", [&] { return inner_->DeleteTag(repo, tag); });
}

Status InstrumentedMetaStore::DeleteManifest(const std::string& repo, const Digest& digest) {
  return Timed("delete_manifest", [&] { return inner_->DeleteManifest(repo, digest); });
}

Result<Page> InstrumentedMetaStore::ListTags(const std::string& repo, const std::string& last,
                                             size_t n) {
  return Timed("list_tags", [&] { return inner_->ListTags(repo, last, n); });
}

Result<Page> InstrumentedMetaStore::ListRepositories(const std::string& last, size_t n) {
  return Timed("list_repositories", [&] { return inner_->ListRepositories(last, n); });
}

Result<bool> InstrumentedMetaStore::RepositoryExists(const std::string& repo) {
  return Timed("repository_exists", [&] { return inner_->RepositoryExists(repo); });
}

Result<std::vector<ReferrerRecord>> InstrumentedMetaStore::ListReferrers(const std::string& repo,
                                                                         const Digest& subject) {
  return Timed("list_referrers", [&] { return inner_->ListReferrers(repo, subject); });
}

Result<GcPage> InstrumentedMetaStore::ListUnreferencedBlobLinks(const GcCursor& after,
                                                                int64_t linked_before_unix,
                                                                size_t limit) {
  return Timed("list_unreferenced_blob_links",
               [&] { return inner_->ListUnreferencedBlobLinks(after, linked_before_unix, limit); });
}

Result<GcFreed> InstrumentedMetaStore::CollectBlobLinks(const std::vector<GcItem>& links,
                                                        int64_t linked_before_unix) {
  return Timed("collect_blob_links",
               [&] { return inner_->CollectBlobLinks(links, linked_before_unix); });
}

Result<GcPage> InstrumentedMetaStore::ListUntaggedManifests(const GcCursor& after,
                                                            int64_t created_before_unix,
                                                            size_t limit) {
  return Timed("list_untagged_manifests",
               [&] { return inner_->ListUntaggedManifests(after, created_before_unix, limit); });
}

Result<GcFreed> InstrumentedMetaStore::CollectManifests(const std::vector<GcItem>& manifests,
                                                        int64_t created_before_unix) {
  return Timed("collect_manifests",
               [&] { return inner_->CollectManifests(manifests, created_before_unix); });
}

Result<StoredTotals> InstrumentedMetaStore::GetStoredTotals() {
  return Timed("get_stored_totals", [&] { return inner_->GetStoredTotals(); });
}

Result<std::string> InstrumentedMetaStore::StoreId() {
  return Timed("store_id", [&] { return inner_->StoreId(); });
}

Result<LeaseInfo> InstrumentedMetaStore::AcquireLease(std::string_view name,
                                                      std::string_view holder,
                                                      int64_t ttl_seconds) {
  return Timed("acquire_lease", [&] { return inner_->AcquireLease(name, holder, ttl_seconds); });
}

Status InstrumentedMetaStore::ReleaseLease(std::string_view name, std::string_view holder) {
  return Timed("release_lease", [&] { return inner_->ReleaseLease(name, holder); });
}

Result<QueueItem> InstrumentedMetaStore::EnqueueItem(const QueueKey& key) {
  return Timed("enqueue_item", [&] { return inner_->EnqueueItem(key); });
}

Result<QueueItem> InstrumentedMetaStore::GetQueueItem(const QueueKey& key) {
  return Timed("get_queue_item", [&] { return inner_->GetQueueItem(key); });
}

Result<std::vector<QueueItem>> InstrumentedMetaStore::ClaimQueueItems(std::string_view target,
                                                                      std::string_view holder,
                                                                      int64_t lease_seconds,
                                                                      size_t limit) {
  return Timed("claim_queue_items",
               [&] { return inner_->ClaimQueueItems(target, holder, lease_seconds, limit); });
}

Status InstrumentedMetaStore::CompleteQueueItem(const QueueItem& claimed) {
  return Timed("complete_queue_item", [&] { return inner_->CompleteQueueItem(claimed); });
}

Status InstrumentedMetaStore::FailQueueItem(const QueueItem& claimed, std::string_view error,
                                            std::optional<int64_t> retry_after_seconds) {
  return Timed("fail_queue_item",
               [&] { return inner_->FailQueueItem(claimed, error, retry_after_seconds); });
}

Result<uint64_t> InstrumentedMetaStore::RenewQueueClaims(std::string_view holder,
                                                         int64_t lease_seconds) {
  return Timed("renew_queue_claims",
               [&] { return inner_->RenewQueueClaims(holder, lease_seconds); });
}

Result<uint64_t> InstrumentedMetaStore::RecoverQueueItems(std::string_view holder) {
  return Timed("recover_queue_items", [&] { return inner_->RecoverQueueItems(holder); });
}

Result<QueueStats> InstrumentedMetaStore::GetQueueStats(std::string_view target) {
  return Timed("get_queue_stats", [&] { return inner_->GetQueueStats(target); });
}

Result<std::vector<QueueItem>> InstrumentedMetaStore::ListQueueItems(
    std::string_view target, std::optional<QueueState> state, int64_t after_id, size_t limit) {
  return Timed("list_queue_items",
               [&] { return inner_->ListQueueItems(target, state, after_id, limit); });
}

Result<bool> InstrumentedMetaStore::DigestQueued(const Digest& digest) {
  return Timed("digest_queued", [&] { return inner_->DigestQueued(digest); });
}

Result<uint64_t> InstrumentedMetaStore::PruneQueue(int64_t updated_before_unix, size_t limit) {
  return Timed("prune_queue", [&] { return inner_->PruneQueue(updated_before_unix, limit); });
}

Status InstrumentedMetaStore::TouchBlobs(const std::vector<Digest>& digests, int64_t pulled_unix) {
  return Timed("touch_blobs", [&] { return inner_->TouchBlobs(digests, pulled_unix); });
}

Result<std::vector<EvictionCandidate>> InstrumentedMetaStore::ListEvictionCandidates(size_t limit) {
  return Timed("list_eviction_candidates", [&] { return inner_->ListEvictionCandidates(limit); });
}

Result<GcFreed> InstrumentedMetaStore::EvictBlob(const Digest& digest, int64_t not_pulled_since) {
  return Timed("evict_blob", [&] { return inner_->EvictBlob(digest, not_pulled_since); });
}

}  // namespace wharf
