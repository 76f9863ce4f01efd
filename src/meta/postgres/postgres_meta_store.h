// MetaStore on a PostgreSQL database: the store several gateways share (one namespace, any
// number of stateless gateways behind a load balancer).
//
// Concurrency: a bounded pool of connections (pg_conn.h), each with its own prepared
// statements. Every write runs in a SERIALIZABLE transaction, so two gateways racing on the
// same upload, blob, tag or manifest behave as if one ran after the other; a transaction the
// server aborts with a serialization failure (40001) or a deadlock (40P01) is run again from
// its start, up to kMaxAttempts times with a short randomized backoff (its body touches only
// the database, so running it again is safe). Reads of several rows that must agree run in a
// REPEATABLE READ READ ONLY transaction; single-statement reads run alone.
//
// Schema (version 6): the tables of sqlite_meta_store.h with PostgreSQL types (bigint for 64-bit
// values, bytea for byte payloads, text COLLATE "C" for names so that order is byte-wise), plus
//   wharf_schema(version)   one row: the applied version; kMigrations upgrades in order.
// Migrations run at Open in one transaction holding pg_advisory_xact_lock(kMigrationLock), so
// gateways starting at once migrate one at a time and the later ones find the work done.
//
// Errors: as meta_store.h. kUnavailable also when the server is unreachable, every pooled
// connection stays busy for kAcquireWait, or a transaction kept failing to serialize.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "meta/meta_store.h"
#include "meta/postgres/pg_conn.h"

namespace wharf {

class PostgresMetaStore final : public MetaStore {
 public:
  static constexpr size_t kPoolSize = 8;
  static constexpr int kMaxAttempts = 30;
  static constexpr std::chrono::milliseconds kAcquireWait{10'000};

  // Connects to `url` (postgres://USER@HOST:PORT/DB?PARAMS, anything libpq accepts) and
  // migrates the schema. kUnavailable: the server cannot be reached (libpq's reason in the
  // message). kUnsupported: the database's schema is newer than this binary.
  static Result<std::unique_ptr<PostgresMetaStore>> Open(const std::string& url,
                                                         MetaStoreOptions options = {});

  // Transactions run again after a serialization failure or deadlock, since Open.
  uint64_t retries() const { return retries_.load(); }

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
  enum class Mode {
    kWrite,  // BEGIN ISOLATION LEVEL SERIALIZABLE ... COMMIT, retried
    kRead,   // BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY ... COMMIT, retried
    kAlone,  // one statement, no transaction block
  };

  PostgresMetaStore(std::string url, MetaStoreOptions options);
  Status Migrate();
  int64_t Now() const;

  // Runs body(conn) as one transaction of `mode` on a pooled connection, again from the start
  // after a serialization failure or deadlock. Status Body(pg::Conn&).
  Status Run(Mode mode, const std::function<Status(pg::Conn&)>& body);
  // Run for bodies that produce a value.
  template <typename T, typename F>
  Result<T> RunFor(Mode mode, F&& body) {
    T out{};
    Status st = Run(mode, [&](pg::Conn& c) -> Status {
      Result<T> r = body(c);
      if (!r) return r.error();
      out = std::move(*r);
      return Status::Ok();
    });
    if (!st.ok()) return Err(std::move(st));
    return out;
  }

  // ---- Helpers; all run inside a transaction on `c` (see sqlite_meta_store.h for each). ----
  Status AdoptChunks(pg::Conn& c, std::string_view owner, std::string_view from,
                     const std::vector<ChunkRef>& chunks);
  Status ReleaseOwner(pg::Conn& c, std::string_view owner);
  Status DiscardChunks(pg::Conn& c, std::string_view from, const std::vector<ChunkRef>& chunks);
  Status AppendChunkList(pg::Conn& c, std::string_view owner, int64_t first_seq,
                         const std::vector<ChunkRef>& chunks);
  Result<std::vector<ChunkRef>> ReadChunkList(pg::Conn& c, std::string_view owner);
  Status DeleteChunkList(pg::Conn& c, std::string_view owner);
  Result<bool> OwnerExists(pg::Conn& c, const ChunkOwner& owner);
  Result<std::optional<Digest>> FirstMissingRef(pg::Conn& c, int64_t repo_id,
                                                const ManifestRecord& m);
  Result<int64_t> RepoId(pg::Conn& c, const std::string& name, bool create);
  // Links (or re-links) the blob, stamping the link with Now().
  Status LinkBlobIn(pg::Conn& c, int64_t repo_id, const Digest& digest);
  // Deletes blob `digest` if no repository links it any more; its chunks become garbage.
  // Adds what went to `*freed` when given. Returns whether it was deleted.
  Result<bool> DropBlobIfUnlinked(pg::Conn& c, const std::string& digest, GcFreed* freed);
  Result<bool> StoreBlob(pg::Conn& c, std::string_view from, const std::string& repo,
                         const BlobRecord& blob);
  Status InsertManifest(pg::Conn& c, int64_t repo_id, const ManifestRecord& m);
  Result<FileRecord> ReadFile(pg::Conn& c, std::string_view id);
  Result<BlobRecord> ReadBlob(pg::Conn& c, const std::string& repo, const Digest& digest);

  const std::string url_;
  const MetaStoreOptions options_;
  pg::Pool pool_;
  std::atomic<uint64_t> retries_{0};
};

}  // namespace wharf
