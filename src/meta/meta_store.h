// MetaStore: wharf's metadata — the chunk ownership ledger, upload sessions, plain files,
// content-addressed blobs, and the OCI namespace (repositories, manifests, tags, referrers).
//
// One interface, several implementations (sqlite/ and postgres/), all held to one
// conformance suite: tests/conformance/meta_store_suite.h.
//
// Threading: every implementation is thread-safe. Every method BLOCKS on disk or network
// I/O; call them from a thread pool, never from an event loop.
//
// Errors common to every method (not repeated below):
//   kUnavailable  the database is busy or unreachable; retry later
//   kIOError      the local disk failed;  kNoSpace: the disk is full
//   kCorruption   stored data is unreadable (e.g. an unparsable digest)
//   kInternal     a bug in the store
//
// The chunk ownership ledger. Every chunk any gateway ever writes is a row with an owner, a
// ChunkOwner{kind, id}:
//   {kUpload, <id>}      an upload session (intent recorded BEFORE the chunk is written)
//   {kFile, <id>}        a plain file
//   {kBlob, <digest>}    a content-addressed blob
//   none                 garbage: nobody owns it; GC deletes it from every member, then Forgets it
// Ownership moves upload -> file/blob on commit, and to none on delete. Garbage never comes
// back to life, so a crash at any point leaves only collectable chunks: live rows are owned,
// garbage rows are listed by ListGarbageChunks, and chunks a chunkserver holds that the ledger
// does not know are orphans of a crash before RecordChunks (the sweep deletes those once
// they are older than any write in flight).
//
// Chunk ids are globally unique: a chunk retried on another group takes a new id (and the
// old id is released).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/chunk_ref.h"
#include "common/digest.h"
#include "common/limits.h"
#include "common/status.h"

namespace wharf {

enum class ChunkState {
  kLive,     // owned by an upload, file or blob: keep it
  kGarbage,  // released: delete it from every member, then ForgetChunks
  kUnknown,  // not in the ledger (never recorded, or already forgotten)
};

// An upload in progress: a file API POST or an OCI (chunked or monolithic) blob upload.
// kInvalidArgument when `tail` is longer than an upload session keeps (kMaxUploadTailBytes):
// what both stores' CreateUpload and AppendUpload refuse.
Status CheckUploadTail(std::string_view tail);

struct UploadSession {
  std::string id;
  std::string repo;              // the OCI repository; empty for the file API
  uint64_t offset = 0;           // bytes received so far
  std::string hash_state;        // opaque, binary-safe (Hasher::SaveState())
  std::vector<ChunkRef> chunks;  // durable so far, in order
  int64_t created_unix = 0;      // set by the store's clock
  int64_t updated_unix = 0;      // set by the store's clock on create and every append
  // Bytes received past the last chunk (at most kMaxUploadTailBytes), kept here until more
  // bytes make a chunk of them or the commit writes them: small appends are coalesced, and
  // what a 202 acknowledged is durable whichever gateway resumes. Covered by hash_state and
  // offset (offset = the chunks' sizes + tail.size()).
  std::string tail;
  friend bool operator==(const UploadSession&, const UploadSession&) = default;
};

// A plain file of the FastDFS-style file API.
struct FileRecord {
  std::string id;
  Digest digest;  // of the whole content
  uint64_t size = 0;
  std::string content_type;
  std::vector<ChunkRef> chunks;  // sizes sum to `size`
  int64_t created_unix = 0;
  std::string name;  // the uploader's file name (a form's filename), "" when none was given
  friend bool operator==(const FileRecord&, const FileRecord&) = default;
};

// A content-addressed blob, stored once and linked into any number of repositories.
struct BlobRecord {
  Digest digest;
  uint64_t size = 0;
  std::vector<ChunkRef> chunks;  // sizes sum to `size`
  int64_t created_unix = 0;
  friend bool operator==(const BlobRecord&, const BlobRecord&) = default;
};

// A manifest (image manifest, index, artifact) as stored in one repository.
struct ManifestRecord {
  Digest digest;  // of `content`
  std::string media_type;
  std::string content;  // byte-exact, binary-safe, up to kMaxManifestBytes
  std::optional<Digest> subject;
  std::string artifact_type;
  std::string annotations_json = "{}";
  std::vector<Digest> blobs;      // config and layers it references
  std::vector<Digest> manifests;  // children of an index
  int64_t created_unix = 0;
  friend bool operator==(const ManifestRecord&, const ManifestRecord&) = default;
};

// A descriptor of a manifest whose subject is a given digest (OCI referrers API).
struct ReferrerRecord {
  std::string media_type;
  Digest digest;
  uint64_t size = 0;
  std::string artifact_type;
  std::string annotations_json;
  friend bool operator==(const ReferrerRecord&, const ReferrerRecord&) = default;
};

// One page of names in byte-wise lexical order.
struct Page {
  std::vector<std::string> items;
  bool more = false;  // true if names after the last item exist
};

// What the store holds, for metrics and the status page (MetaStore::GetStoredTotals).
struct StoredTotals {
  uint64_t blobs = 0;           // blob records (each stored once, however many repos link it)
  uint64_t blob_bytes = 0;      // the sum of their sizes
  uint64_t manifests = 0;       // manifests, counted once per repository holding them
  uint64_t manifest_bytes = 0;  // the sum of their content lengths
  uint64_t files = 0;           // plain files of the file API
  uint64_t file_bytes = 0;      // the sum of their sizes
  uint64_t repositories = 0;    // repositories holding a blob link or a manifest
  uint64_t tags = 0;            // tags over all repositories
  friend bool operator==(const StoredTotals&, const StoredTotals&) = default;
};

// ---- Garbage collection (see "Garbage collection" in MetaStore) ----

// A position in a collection scan. Items are scanned in byte-wise (repo, digest) order; the
// default cursor is the start.
struct GcCursor {
  std::string repo;
  std::string digest;  // as text, "sha256:<hex>"
  bool at_start() const { return repo.empty() && digest.empty(); }
  friend bool operator==(const GcCursor&, const GcCursor&) = default;
};

// A blob link or a manifest the collector may take: `digest` in repository `repo`.
struct GcItem {
  std::string repo;
  Digest digest;
  uint64_t size = 0;   // a blob's size, or a manifest's content bytes
  uint64_t links = 0;  // blobs: how many repositories link the blob now (this one included)
  friend bool operator==(const GcItem&, const GcItem&) = default;
};

// One bounded page of a scan.
struct GcPage {
  std::vector<GcItem> items;  // the scanned rows that qualified, in scan order
  GcCursor next;              // continue after this; at_start() when the scan reached the end
};

// What one Collect call removed, in its transaction.
struct GcFreed {
  uint64_t manifests = 0;   // manifests deleted (referrers that went with them included)
  uint64_t links = 0;       // blob links removed
  uint64_t blobs = 0;       // blob records deleted (their last link went)
  uint64_t blob_bytes = 0;  // the sizes of those blobs
  uint64_t chunks = 0;      // chunks that became garbage
  GcFreed& operator+=(const GcFreed& o) {
    manifests += o.manifests;
    links += o.links;
    blobs += o.blobs;
    blob_bytes += o.blob_bytes;
    chunks += o.chunks;
    return *this;
  }
  friend bool operator==(const GcFreed&, const GcFreed&) = default;
};

// A background-work lease (LeaseBackground in MetaStore) as it stands after a call.
struct LeaseInfo {
  std::string holder;        // who holds it; empty: nobody (never taken, or given up)
  int64_t expires_unix = 0;  // the store's clock: the holder's claim ends then unless renewed
  bool held = false;         // the caller holds it now
  friend bool operator==(const LeaseInfo&, const LeaseInfo&) = default;
};

// ---- Site cache eviction (see "Site cache eviction" in MetaStore) ----

// A blob a site cache may evict (MetaStore::ListEvictionCandidates).
struct EvictionCandidate {
  Digest digest;
  uint64_t size = 0;
  // max(last pull, created): the time EvictBlob's not_pulled_since is compared with.
  int64_t last_used_unix = 0;
  friend bool operator==(const EvictionCandidate&, const EvictionCandidate&) = default;
};

// ---- The work queue (see "Work queue" in MetaStore) ----

// What an item asks its consumer to copy. The number is stored and orders claims: at equal
// readiness, blobs are claimed before manifests and manifests before tags (append new kinds
// at the end; they sort after these).
enum class QueueKind { kBlob = 0, kManifest = 1, kTag = 2, kDelete = 3 };
enum class QueueState { kPending = 0, kRunning = 1, kDone = 2, kFailed = 3 };

// "blob", "manifest", "tag", "delete"; "pending", "running", "done", "failed": for logs,
// metrics, JSON.
std::string_view QueueKindName(QueueKind kind);
std::string_view QueueStateName(QueueState state);

// What identifies an item: enqueueing the same key again finds the existing row.
//   kBlob, kManifest: `digest` names the content, `tag` is empty;
//   kTag:             `tag` names the tag, `digest` is empty: a tag item carries no value, its
//                     consumer reads the tag's value at the time it ships it (so shipping an
//                     old item never moves the tag backwards).
//   kDelete:          a deletion here to repeat at the target: of manifest `digest` (tag
//                     empty), or of tag `tag` (digest empty).
// `target` names the consumer and where it copies to (the site's upstream URL; a replication
// target's URL).
struct QueueKey {
  QueueKind kind = QueueKind::kBlob;
  std::string target;
  std::string repo;
  std::string digest;  // "sha256:<hex>" or ""
  std::string tag;
  friend bool operator==(const QueueKey&, const QueueKey&) = default;
};

// One row of the queue as it stands.
struct QueueItem {
  int64_t id = 0;  // unique, assigned by the store, increasing in enqueue order
  QueueKey key;
  QueueState state = QueueState::kPending;
  int64_t attempts = 0;           // claims so far (a claim counts as an attempt)
  int64_t next_attempt_unix = 0;  // pending: not claimed before this
  std::string last_error;         // of the last failed attempt ("" after a success)
  int64_t created_unix = 0;       // first enqueue
  int64_t updated_unix = 0;       // last change of state
  std::string holder;             // running: who claimed it
  int64_t lease_until_unix = 0;   // running: the claim ends then unless renewed
  // Bumped by every enqueue of the key: a completion whose claim saw an older version leaves
  // the item pending (it was enqueued again while being shipped; ship it again).
  int64_t version = 0;
  friend bool operator==(const QueueItem&, const QueueItem&) = default;
};

// Counts of a target's items (MetaStore::GetQueueStats).
struct QueueStats {
  uint64_t pending = 0;
  uint64_t running = 0;
  uint64_t failed = 0;
  uint64_t done = 0;        // kept until PruneQueue deletes them
  int64_t oldest_unix = 0;  // created_unix of the oldest pending or running item; 0: none
  friend bool operator==(const QueueStats&, const QueueStats&) = default;
};

// kInvalidArgument unless `key` is well formed (see QueueKey and EnqueueItem): what both stores
// check.
Status CheckQueueKey(const QueueKey& key);
// kInvalidArgument unless the arguments of ClaimQueueItems / RenewQueueClaims /
// RecoverQueueItems are sane: what both stores check.
Status CheckQueueClaimArgs(std::string_view target, std::string_view holder, int64_t lease_seconds,
                           size_t limit);
Status CheckQueueRenewArgs(std::string_view holder, int64_t lease_seconds);
Status CheckQueueRecoverArgs(std::string_view holder);
// Adds one row of "SELECT state, COUNT(*), MIN(created_unix) ... GROUP BY state" to `stats`
// (both stores' GetQueueStats).
void AddQueueStateCount(QueueStats& stats, int64_t state, uint64_t count, int64_t oldest_unix);

// Retry delay after `attempts` failed attempts: initial * 2^(attempts-1), at most max_seconds
// (attempts <= 1: initial). For consumers of the queue.
int64_t QueueBackoffSeconds(int64_t attempts, int64_t initial_seconds, int64_t max_seconds);

// Who owns a chunk in the ledger (see the top of this file).
enum class ChunkOwnerKind { kUpload, kFile, kBlob };

struct ChunkOwner {
  ChunkOwnerKind kind = ChunkOwnerKind::kUpload;
  std::string id;  // the upload id, file id, or the blob's digest as text

  static ChunkOwner Upload(std::string_view upload_id) {
    return {ChunkOwnerKind::kUpload, std::string(upload_id)};
  }
  static ChunkOwner File(std::string_view file_id) {
    return {ChunkOwnerKind::kFile, std::string(file_id)};
  }
  static ChunkOwner Blob(const Digest& digest) {
    return {ChunkOwnerKind::kBlob, digest.ToString()};
  }

  // A known kind and a non-empty id.
  bool valid() const;
  // "upload:<id>", "file:<id>", "blob:<digest>": for logs, and the text a store may keep.
  std::string ToString() const;
  friend bool operator==(const ChunkOwner&, const ChunkOwner&) = default;
};

class MetaStore {
 public:
  virtual ~MetaStore() = default;

  // ---- Chunk ledger ----

  // Records that `owner` is about to write `chunks` (call BEFORE writing them to the
  // cluster). Idempotent: a chunk already owned by `owner` has its group/size/checksum
  // updated. kInvalidArgument: owner not valid(), or an empty chunk id.
  // kNotFound: the owner (upload, file or blob) does not exist. kConflict: a chunk is owned
  // by someone else or is garbage (nothing is recorded then).
  virtual Status RecordChunks(const ChunkOwner& owner, const std::vector<ChunkRef>& chunks) = 0;

  // Marks chunks garbage, whoever owns them; meant for chunks whose write failed. Unknown
  // ids are ignored. Chunks that a session, file or blob lists stay live (releasing them
  // would let GC delete bytes a record needs): delete the record instead.
  virtual Status ReleaseChunks(const std::vector<std::string>& ids) = 0;

  // Up to `limit` garbage chunks, oldest release first.
  virtual Result<std::vector<ChunkRef>> ListGarbageChunks(size_t limit) = 0;

  // Deletes ledger rows of garbage chunks (after they were removed from every member).
  // Ids that are unknown or still live are left untouched.
  virtual Status ForgetChunks(const std::vector<std::string>& ids) = 0;

  // kUnknown for ids the ledger never saw or forgot (the sweep deletes those, once older
  // than any write in flight); no error of its own.
  virtual Result<ChunkState> GetChunkState(std::string_view id) = 0;

  // ---- Upload sessions ----

  // Creates a session with session.{id, repo, offset, hash_state, chunks}; timestamps come
  // from the store's clock; its chunks are recorded as owned by it. kInvalidArgument: empty
  // id. kConflict: the id exists, or a chunk belongs to someone else.
  virtual Status CreateUpload(const UploadSession& session) = 0;

  // kNotFound.
  virtual Result<UploadSession> GetUpload(std::string_view id) = 0;

  // Atomically: if the stored offset equals `expected_offset`, sets it to `new_offset`,
  // replaces hash_state and the tail (with `tail`), appends `new_chunks` (owned by the session
  // from now on) and updates updated_unix. kNotFound: no such session. kConflict: the stored
  // offset differs (a concurrent PATCH won), or a chunk belongs to someone else; nothing
  // changes then. kInvalidArgument: new_offset < expected_offset, or a tail over
  // kMaxUploadTailBytes.
  virtual Status AppendUpload(std::string_view id, uint64_t expected_offset, uint64_t new_offset,
                              std::string hash_state, std::vector<ChunkRef> new_chunks,
                              std::string tail) = 0;

  // Deletes the session; every chunk it owns becomes garbage. kNotFound.
  virtual Status DeleteUpload(std::string_view id) = 0;

  // Ids of up to `limit` sessions last updated before `updated_before_unix`, oldest first
  // (for the janitor, which then calls DeleteUpload on each).
  virtual Result<std::vector<std::string>> ListExpiredUploads(int64_t updated_before_unix,
                                                              size_t limit) = 0;

  // Progress on a session whose request is streaming: sets updated_unix to now, so that
  // expiry counts from the last bytes received, not from the request's start. kNotFound.
  virtual Status TouchUpload(std::string_view id) = 0;

  // The leftovers of requests that died mid-body (their gateway crashed or was cut off). In
  // one transaction, for sessions last updated before `idle_before_unix`:
  //   - a file-API session (repo "": it lives for one request only) is deleted (up to `limit`
  //     of them), every chunk it owns becoming garbage;
  //   - of any session, chunks recorded for it (RecordChunks) before the cutoff but listed by
  //     no record (never appended) become garbage (up to `limit`). An OCI session itself stays
  //     at its offset, resumable, until ListExpiredUploads finds it.
  // A live request touches its session (TouchUpload) as bytes arrive, so the cutoff must be
  // older than the longest pause a live request may take between bytes.
  struct StaleUploads {
    uint64_t sessions = 0;  // file-API sessions deleted
    uint64_t chunks = 0;    // unlisted chunks released
  };
  virtual Result<StaleUploads> ReleaseStaleUploads(int64_t idle_before_unix, size_t limit) = 0;

  // ---- Plain files ----

  // Atomically: inserts `file`, moves its chunks to "file:<id>", deletes the session;
  // session chunks the file does not list become garbage. kNotFound: no session.
  // kConflict: a file with that id exists, or a chunk is garbage or owned by someone other
  // than the session (nothing changes then). kInvalidArgument: empty id, or sizes not summing to
  // size.
  virtual Status CommitFile(std::string_view upload_id, const FileRecord& file) = 0;

  // kNotFound.
  virtual Result<FileRecord> GetFile(std::string_view id) = 0;

  // Deletes the file and returns its record; its chunks become garbage. kNotFound.
  virtual Result<FileRecord> DeleteFile(std::string_view id) = 0;

  // ---- Blobs ----

  // Atomically: if blob.digest is new, inserts it and moves its chunks to "blob:<digest>"
  // (returns true); if it exists, the upload's chunks become garbage (dedup; returns
  // false). Either way links the blob into `repo` (creating the repository) and deletes the
  // session. kNotFound: no session. kInvalidArgument: empty repo, repo differs from the
  // session's, sizes not summing to size. kConflict: a chunk belongs to someone else.
  virtual Result<bool> CommitBlob(std::string_view upload_id, const std::string& repo,
                                  const BlobRecord& blob) = 0;

  // CommitBlob without a session (cross-registry mounts, tests): the blob's chunks must be
  // unknown to the ledger (they are recorded now; the caller accepts that a crash before this
  // call leaves them unknown to the sweep) or already owned by this blob. If the blob exists,
  // unknown chunks are recorded as garbage. Returns true if newly stored. kInvalidArgument,
  // kConflict: as CommitBlob.
  virtual Result<bool> PutBlob(const std::string& repo, const BlobRecord& blob) = 0;

  // kNotFound.
  virtual Result<BlobRecord> GetBlob(const Digest& digest) = 0;

  // Links an existing blob into `repo` (cross-repository mount); idempotent.
  // kNotFound: unknown blob. kInvalidArgument: empty repo.
  virtual Status LinkBlob(const std::string& repo, const Digest& digest) = 0;

  // The blob, if `repo` links it: the pull path's one round trip. kNotFound: unknown blob, or
  // not linked into `repo`.
  virtual Result<BlobRecord> GetLinkedBlob(const std::string& repo, const Digest& digest) = 0;

  // Whether `repo` links the blob; false for unknown repos and blobs.
  virtual Result<bool> BlobLinked(const std::string& repo, const Digest& digest) = 0;

  // Removes the link; when it was the blob's last link, deletes the blob record and its
  // chunks become garbage, in the same transaction. Returns whether the blob was deleted.
  // kNotFound: not linked.
  virtual Result<bool> UnlinkBlob(const std::string& repo, const Digest& digest) = 0;

  // ---- Repositories, manifests, tags, referrers ----

  // Atomically: checks that every blob in manifest.blobs is linked in `repo` and every
  // manifest in manifest.manifests is in `repo`, then stores the manifest in `repo` unless
  // that repo already holds this digest (insert-or-keep), creating the repository, and, if
  // `tag` is set, points the tag at it (moving it from any other manifest). The check and
  // the write are one transaction, so a reference cannot vanish between them (another
  // gateway unlinking the blob waits or fails). kNotFound: a reference is missing (nothing
  // changes; `*missing`, when given, receives the first missing digest). kInvalidArgument:
  // empty repo or tag, content over kMaxManifestBytes. kDigestMismatch: content does not
  // hash to manifest.digest.
  virtual Status PutManifest(const std::string& repo, const ManifestRecord& manifest,
                             std::optional<std::string> tag, Digest* missing) = 0;
  Status PutManifest(const std::string& repo, const ManifestRecord& manifest,
                     std::optional<std::string> tag) {
    return PutManifest(repo, manifest, std::move(tag), nullptr);
  }

  // kNotFound.
  virtual Result<ManifestRecord> GetManifest(const std::string& repo, const Digest& digest) = 0;

  // kNotFound.
  virtual Result<Digest> ResolveTag(const std::string& repo, const std::string& tag) = 0;

  // Whether `repo` holds the manifest; false for unknown repos.
  virtual Result<bool> ManifestExists(const std::string& repo, const Digest& digest) = 0;

  // kNotFound.
  virtual Status DeleteTag(const std::string& repo, const std::string& tag) = 0;

  // Removes the manifest from `repo` with every tag pointing at it. Copies in other
  // repositories stay. kNotFound.
  virtual Status DeleteManifest(const std::string& repo, const Digest& digest) = 0;

  // Up to `n` tags of `repo` that sort after `last` (all when `last` is empty), byte-wise
  // lexical order. An unknown repo gives an empty page.
  virtual Result<Page> ListTags(const std::string& repo, const std::string& last, size_t n) = 0;

  // Up to `n` repositories after `last` holding at least one blob link or manifest.
  virtual Result<Page> ListRepositories(const std::string& last, size_t n) = 0;

  // True if the repository holds at least one blob link or manifest.
  virtual Result<bool> RepositoryExists(const std::string& repo) = 0;

  // Descriptors of the manifests in `repo` whose subject is `subject`, ordered by digest.
  virtual Result<std::vector<ReferrerRecord>> ListReferrers(const std::string& repo,
                                                            const Digest& subject) = 0;

  // ---- Totals ----

  // Counts and bytes of everything stored (StoredTotals), as of one consistent read. Scans
  // whole tables: callers run it every few seconds at most, not per request.
  virtual Result<StoredTotals> GetStoredTotals() = 0;

  // ---- Garbage collection ----
  //
  // Reachability: tags -> manifests -> (index children, referrers) -> blob links -> blobs ->
  // chunks, within each repository. A blob LINK (the blob in one repository) is unreferenced
  // when no manifest of that repository lists the blob; the blob record goes with its last
  // link, and its chunks become garbage for the ledger's collection (ListGarbageChunks, then
  // ForgetChunks once every member deleted them).
  //
  // The collector works in bounded pages: List* scans up to `limit` rows after a cursor and
  // only reads; Collect* re-checks every condition inside ONE write transaction and skips the
  // items that no longer qualify. So a manifest commit and the deletion of a blob it references
  // cannot both succeed: PutManifest checks its references in its own transaction, and once a
  // Collect has committed, the blob is gone for every reader (GetBlob, GetLinkedBlob,
  // BlobLinked, LinkBlob: kNotFound; PutManifest: kNotFound naming it), while its chunks are
  // deleted from the cluster only after that commit. Linking a blob (CommitBlob, PutBlob,
  // LinkBlob) stamps the link with the store's clock, which is what the grace period counts.
  //
  // For implementers with several connections (PostgreSQL): "re-checks in one transaction" must
  // hold against a concurrent PutManifest on another connection, whatever the isolation level.
  // Under READ COMMITTED a NOT EXISTS in the DELETE's own WHERE does not see a manifest that
  // commits while the DELETE waits; take conflicting row locks instead (PutManifest locks the
  // links it checks FOR SHARE, Collect* locks the link or manifest FOR UPDATE and checks the
  // references in a later statement), or run both SERIALIZABLE and retry serialization
  // failures. The suite's GcTwoStores* cases race two store objects on one database.

  // Scans up to `limit` blob links after `after` in (repo, digest) order and returns those
  // that no manifest of their repository references and that were last linked before
  // `linked_before_unix` (the store's clock). Items carry the blob's size and link count.
  // kInvalidArgument: limit == 0.
  virtual Result<GcPage> ListUnreferencedBlobLinks(const GcCursor& after,
                                                   int64_t linked_before_unix, size_t limit) = 0;

  // In one transaction: removes each listed link that is still unreferenced and still last
  // linked before `linked_before_unix` (others are skipped, e.g. a manifest that committed
  // since the listing keeps its blobs); a blob whose last link goes is deleted and its chunks
  // become garbage. Unknown links are skipped. Only repo and digest of the items are read.
  virtual Result<GcFreed> CollectBlobLinks(const std::vector<GcItem>& links,
                                           int64_t linked_before_unix) = 0;

  // Scans up to `limit` manifests after `after` in (repo, digest) order and returns the
  // untagged ones created before `created_before_unix`: no tag of the repository points at it,
  // no index of the repository lists it, and it has no subject present in the repository (a
  // referrer follows its subject). kInvalidArgument: limit == 0.
  virtual Result<GcPage> ListUntaggedManifests(const GcCursor& after, int64_t created_before_unix,
                                               size_t limit) = 0;

  // In one transaction: deletes each listed manifest that is still untagged (as above) and
  // created before the cutoff, and with it, recursively, its referrers in the repository that
  // no tag points at and no index lists (whatever their age). Others are skipped. Blob links
  // they referenced are left for CollectBlobLinks.
  virtual Result<GcFreed> CollectManifests(const std::vector<GcItem>& manifests,
                                           int64_t created_before_unix) = 0;

  // ---- Identity and background leases ----

  // The store's identity: a random id ("ms-" and 32 hex digits) created with the schema, in the
  // same transaction, so every store object that ever opens this database (every gateway on one
  // PostgreSQL, or on one SQLite file) reads the same id, and two databases never share one.
  // The master remembers the id of the store its cluster serves ("one namespace per cluster").
  virtual Result<std::string> StoreId() = 0;

  // Takes or renews lease `name` for `holder`: when nobody holds it, it has expired (by the
  // store's clock), or `holder` holds it already, sets holder and expires_unix = now +
  // ttl_seconds, in one transaction, so of several store objects racing for a free lease exactly
  // one gets it. Returns the lease as it stands after the call (held: the caller holds it).
  // Leases only spread work: nothing may depend on them for correctness, since a holder whose
  // clock or process stalls past its expiry keeps running until it notices.
  // kInvalidArgument: an empty name or holder, ttl_seconds <= 0.
  virtual Result<LeaseInfo> AcquireLease(std::string_view name, std::string_view holder,
                                         int64_t ttl_seconds) = 0;

  // Gives lease `name` up if `holder` holds it (a clean shutdown: another takes it over at once);
  // otherwise nothing changes. kInvalidArgument: an empty name or holder.
  virtual Status ReleaseLease(std::string_view name, std::string_view holder) = 0;

  // ---- Work queue ----
  //
  // A durable queue of copies to make elsewhere: a site's asynchronous write-through
  // (`--site-write async`: blobs, manifests and tags pushed here, shipped to the upstream), and
  // built to be shared by later consumers (replication jobs to other registries) that claim by
  // their own `target`. An item is pending (waiting for next_attempt_unix), running (claimed by
  // a holder until lease_until_unix), done, or failed (given up, with last_error). Items are
  // claimed in one transaction (PostgreSQL: FOR UPDATE SKIP LOCKED), so of several gateways
  // draining one store exactly one holds an item; a claim whose holder died runs out at its
  // lease and is claimed again, and a restarted holder takes its own claims back at once
  // (RecoverQueueItems). The consumer's copies must be idempotent: an item may be shipped twice.
  //
  // A claimed item is the token of its claim: Complete/Fail/Renew apply only while the row is
  // still running for the same holder and attempt (else kConflict: the claim ran out and was
  // taken over; the caller drops the item).

  // Adds the item of `key` as pending now, or, when the key exists, enqueues it again: a done
  // or failed item becomes pending now with attempts 0; a pending one stays as it is; a running
  // one stays running. Every call bumps the version. Returns the item after the call.
  // kInvalidArgument: an empty target or repo; kBlob/kManifest without a parsable digest or
  // with a tag; kTag without a tag or with a digest; kDelete without exactly one of them.
  virtual Result<QueueItem> EnqueueItem(const QueueKey& key) = 0;

  // The item of `key`. kNotFound.
  virtual Result<QueueItem> GetQueueItem(const QueueKey& key) = 0;

  // Claims up to `limit` items of `target` for `holder`: pending ones whose next attempt is due
  // and running ones whose lease ran out, ordered by kind (QueueKind), then id. Each becomes
  // running with holder, lease_until = now + lease_seconds and attempts + 1, in one
  // transaction. kInvalidArgument: an empty target or holder, lease_seconds <= 0, limit 0.
  virtual Result<std::vector<QueueItem>> ClaimQueueItems(std::string_view target,
                                                         std::string_view holder,
                                                         int64_t lease_seconds, size_t limit) = 0;

  // The claimed item was shipped: done (last_error cleared), or pending now when it was
  // enqueued again since the claim (its version moved). kConflict: the claim is not held.
  virtual Status CompleteQueueItem(const QueueItem& claimed) = 0;

  // The claimed item failed with `error`: pending again at now + retry_after_seconds, or, with
  // nullopt, failed for good (pending now instead when it was enqueued again since the claim).
  // kConflict: the claim is not held. kInvalidArgument: a negative delay.
  virtual Status FailQueueItem(const QueueItem& claimed, std::string_view error,
                               std::optional<int64_t> retry_after_seconds) = 0;

  // Extends the lease of every item `holder` is running to now + lease_seconds (a long copy in
  // progress). Returns how many. kInvalidArgument: an empty holder, lease_seconds <= 0.
  virtual Result<uint64_t> RenewQueueClaims(std::string_view holder, int64_t lease_seconds) = 0;

  // A restarted holder's claims: every item `holder` left running becomes pending now (its
  // attempt ended with the process). Returns how many. kInvalidArgument: an empty holder.
  virtual Result<uint64_t> RecoverQueueItems(std::string_view holder) = 0;

  // Counts of `target`'s items ("" = every target), as of one read.
  virtual Result<QueueStats> GetQueueStats(std::string_view target) = 0;

  // Up to `limit` items of `target` ("" = every target) with id > `after_id`, by id; only those
  // in `state` when given.
  virtual Result<std::vector<QueueItem>> ListQueueItems(std::string_view target,
                                                        std::optional<QueueState> state,
                                                        int64_t after_id, size_t limit) = 0;

  // Whether content `digest` is not yet confirmed at some target: a blob or manifest item naming
  // it that is not done, or a manifest item not done whose manifest (in its repository here)
  // references it. What eviction asks before it drops cached content.
  virtual Result<bool> DigestQueued(const Digest& digest) = 0;

  // Deletes up to `limit` done items last updated before `updated_before_unix`. Returns how many.
  virtual Result<uint64_t> PruneQueue(int64_t updated_before_unix, size_t limit) = 0;

  // ---- Site cache eviction ----
  //
  // A site (upstream/site_cache.h) holds copies of what its upstream has; when its cluster runs
  // out of space it evicts the least recently pulled blobs (gateway/site_evictor.h). A blob's
  // last pull is kept with it (recorded in batches by the gateways, so it lags by seconds); its
  // "last use" is max(last pull, created). Eviction removes every link of the blob and its
  // record, so its chunks become garbage for the collector, as the last UnlinkBlob would; the
  // manifests that reference it stay (a later pull fetches the blob from the upstream again).

  // Sets the last pull of each blob in `digests` to `pulled_unix` unless it is later already.
  // Unknown digests are skipped. One transaction.
  virtual Status TouchBlobs(const std::vector<Digest>& digests, int64_t pulled_unix) = 0;

  // Up to `limit` blobs by last use, oldest first (ties by digest), leaving out those
  // DigestQueued names (not yet confirmed upstream). Scans the blobs: call it only when space
  // is short. kInvalidArgument: limit == 0.
  virtual Result<std::vector<EvictionCandidate>> ListEvictionCandidates(size_t limit) = 0;

  // In one transaction: if blob `digest` exists, was not used after `not_pulled_since` (its
  // last use as listed) and is not DigestQueued, removes all its links and the blob; its chunks
  // become garbage. Returns what went (links, blobs, blob_bytes, chunks; all 0 when the blob was
  // skipped or unknown), so of several gateways racing, one evicts and the others see 0.
  virtual Result<GcFreed> EvictBlob(const Digest& digest, int64_t not_pulled_since) = 0;
};

// A fresh store identity ("ms-" and 32 random hex digits), for implementations.
std::string NewMetaStoreId();

struct MetaStoreOptions {
  // Current time in unix seconds; tests inject a fake. Empty: the system clock.
  std::function<int64_t()> now_unix;
};

// Opens the store named by `url`:
//   sqlite:PATH        an SQLite database file (created with its schema if missing)
//   postgres://...     a PostgreSQL database (libpq url; its schema migrated at open)
// kInvalidArgument: an unknown scheme or an empty path.
Result<std::unique_ptr<MetaStore>> OpenMetaStore(std::string_view url,
                                                 MetaStoreOptions options = {});

}  // namespace wharf
