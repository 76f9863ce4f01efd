// MetaStore on one SQLite database file: the embedded default.
//
// Concurrency: ONE connection guarded by `mu_`. SQLite admits one writer at a time anyway,
// and nearly every call is a few indexed point reads or writes (microseconds), so a pool of
// connections would buy little and cost SQLITE_BUSY retries and lock-upgrade deadlocks
// between our own threads. One connection also keeps the prepared-statement cache simple.
// WAL mode still lets other processes (and a future pool of read-only connections, if
// profiling asks for one) read while we write. busy_timeout covers other processes.
//
// Schema (version 6; `schema_version` holds the applied version, kMigrations in
// sqlite_meta_store.cc upgrades older files in order):
//
//   schema_version(version)                    one row
//   chunks ─────────── the ownership ledger ───────────────────────────────────────────────
//     id TEXT PK, grp, size, checksum, owner (ChunkOwner::ToString(); "" = garbage),
//     updated_unix
//     index (owner, updated_unix): release by owner; garbage oldest first
//   chunk_lists ────── the ordered chunk list of an owner ─────────────────────────────────
//     owner TEXT, seq INTEGER, chunk_id → chunks(id)        PK (owner, seq)
//     index (chunk_id): a listed chunk is never released nor forgotten
//   uploads(id PK, repo, offset, hash_state BLOB, created_unix, updated_unix)
//     index (updated_unix)                      chunks: chunk_lists owner "upload:<id>"
//   files(id PK, digest, size, content_type, created_unix)   chunks: owner "file:<id>"
//   blobs(digest PK, size, created_unix)                     chunks: owner "blob:<digest>"
//   repositories(id INTEGER PK, name UNIQUE)
//     ├── repo_blobs(repo_id, digest → blobs, linked_unix)   PK (repo_id, digest)
//     ├── manifests(repo_id, digest, media_type, content BLOB, subject NULL,
//     │             artifact_type, annotations_json, created_unix)  PK (repo_id, digest)
//     │     index (repo_id, subject): referrers
//     │     ├── manifest_refs(repo_id, manifest, kind 0=blob 1=manifest, seq, target)
//     │     └── tags(repo_id, name, digest)      PK (repo_id, name); cascade on delete
//   work_queue(id INTEGER PK AUTOINCREMENT, kind, target, repository, digest, tag, state,
//              attempts, next_attempt_unix, last_error, created_unix, updated_unix, holder,
//              lease_until_unix, version)             (version 6; sqlite_queue.cc)
//     unique (target, kind, repository, digest, tag); index (target, state, next_attempt_unix)
//
// Digests are stored as text "sha256:<hex>"; byte payloads (content, hash_state) as BLOBs;
// names as TEXT bound with explicit lengths, compared byte-wise (BINARY collation).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "meta/meta_store.h"
#include "meta/sqlite/sqlite_db.h"

namespace wharf {

class SqliteMetaStore final : public MetaStore {
 public:
  // Opens or creates the database at `path` and migrates its schema. kUnsupported: the
  // file's schema is newer than this binary. kIOError/kCorruption: unusable file.
  static Result<std::unique_ptr<SqliteMetaStore>> Open(const std::string& path,
                                                       MetaStoreOptions options = {});

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
  Status LinkBlob(const std::string& repo, const Digest& digest) override;
  Result<BlobRecord> GetLinkedBlob(const std::string& repo, const Digest& digest) override;
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
  explicit SqliteMetaStore(MetaStoreOptions options);
  Status Migrate();
  // One write transaction: kIOError "not writable ..." when the file cannot be written.
  Status ProbeWritable();
  // Writes the identity row if the database has none (in Migrate's transaction).
  Status EnsureStoreIdLocked();
  int64_t Now() const;

  // ---- Helpers; all expect mu_ held (and a transaction open when they write). ----

  // Moves `chunks` to `owner`: each must be unknown (inserted), owned by `owner`, or owned
  // by `from` (when `from` is not empty); else kConflict. Updates group/size/checksum.
  Status AdoptChunks(std::string_view owner, std::string_view from,
                     const std::vector<ChunkRef>& chunks);
  // Every chunk owned by `owner` becomes garbage.
  Status ReleaseOwner(std::string_view owner);
  // Like AdoptChunks, but to garbage: unknown chunks are inserted as garbage, chunks of
  // `from` (when not empty) released, others left alone (they belong to someone).
  Status DiscardChunks(std::string_view from, const std::vector<ChunkRef>& chunks);
  Status AppendChunkList(std::string_view owner, int64_t first_seq,
                         const std::vector<ChunkRef>& chunks);
  Result<std::vector<ChunkRef>> ReadChunkList(std::string_view owner);
  Status DeleteChunkList(std::string_view owner);
  Result<bool> OwnerExists(const ChunkOwner& owner);
  // The first of `m`'s references not in `repo_id` (blobs linked, child manifests present).
  Result<std::optional<Digest>> FirstMissingRef(int64_t repo_id, const ManifestRecord& m);

  // The repository's id, or 0 if absent (created first when `create`).
  Result<int64_t> RepoId(const std::string& name, bool create);
  // Links (or re-links) the blob, stamping the link with Now().
  Status LinkBlobLocked(int64_t repo_id, const Digest& digest);
  // Deletes blob `digest` if no repository links it any more; its chunks become garbage.
  // Adds what went to `*freed` when given. Returns whether it was deleted.
  Result<bool> DropBlobIfUnlinkedLocked(const std::string& digest, GcFreed* freed);
  // Reads a GC scan whose rows are (repo, digest, size, links, qualifies).
  Result<GcPage> ReadGcPage(sqlite::Stmt& stmt, size_t limit);
  // Inserts the blob if new (true) or discards `from`'s chunks (false), then links it.
  Result<bool> StoreBlobLocked(std::string_view from, const std::string& repo,
                               const BlobRecord& blob);
  Status InsertManifestLocked(int64_t repo_id, const ManifestRecord& m);
  Result<FileRecord> ReadFileLocked(std::string_view id);
  // The queue item of `key`, or kNotFound.
  Result<QueueItem> ReadQueueItemLocked(const QueueKey& key);
  Result<Page> ReadPage(sqlite::Stmt& stmt, size_t n);

  MetaStoreOptions options_;
  std::mutex mu_;
  sqlite::Db db_;  // guarded by mu_
};

}  // namespace wharf
