// BlobService: every write and read of registry content and plain files, without HTTP. The
// registry and file handlers parse a request, call one method and answer; this class alone
// owns the ledger rule:
//
//   1. an upload's chunks are recorded in the metadata store (owned by the upload) BEFORE
//      they are written to the cluster (BlobWriter);
//   2. chunks of a write that fails, or that is refused after it streamed (a body longer or
//      shorter than its Content-Range, a racing append), are released at once;
//   3. a blob or file is committed only after every chunk is durable on every member of its
//      group; committing moves the chunks from the upload to the blob or file.
//
// So a crash at any point leaves at worst orphan chunks for garbage collection. Events
// (blob/events.h) fire after a commit or delete succeeded, from here only. A blob or
// manifest missing locally is looked up in the ReadThroughSource.
//
// Threading: one executor (BlobContext::ex); every method is a coroutine on it.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "blob/blob_reader.h"
#include "blob/blob_writer.h"
#include "blob/byte_source.h"
#include "blob/events.h"
#include "blob/read_through.h"
#include "common/digest.h"
#include "common/status.h"
#include "meta/meta_store.h"
#include "registry/manifest.h"
#include "registry/names.h"

namespace wharf {

// What a request says about the body it carries (a PATCH's or PUT's Content-Range and
// Content-Length), checked against the upload before and after the body is read.
struct BodyClaim {
  struct Range {
    uint64_t first = 0;   // offset of the body's first byte in the upload
    uint64_t length = 0;  // bytes the body claims to carry
  };
  std::optional<Range> range;
  std::optional<uint64_t> length;  // the announced length (Content-Length)
};

// An upload session resumed for one request: the session as stored, and its SHA-256 state.
struct Upload {
  UploadSession session;
  Hasher hasher;
  const std::string& id() const { return session.id; }
  const std::string& repo() const { return session.repo; }
  uint64_t offset() const { return session.offset; }
};

// A committed blob.
struct BlobInfo {
  Digest digest;
  uint64_t size = 0;
  bool created = false;  // false: the content was stored already (deduplicated)
};

// A stored plain file and a reader of its bytes.
struct OpenedFile {
  FileRecord record;
  std::unique_ptr<BlobReader> reader;
};

// The record a manifest is stored as: `content` (whose digest is `digest`) and what parsing it
// found. Its foreign (non-distributable) layers are references to check only when
// !allow_foreign (GatewayOptions::allow_foreign_layers); created now.
ManifestRecord ManifestRecordOf(Digest digest, std::string content, ManifestInfo info,
                                bool allow_foreign);

class BlobService {
 public:
  // `read_through` (not owned; may be null for "none") outlives the service.
  explicit BlobService(BlobContext ctx, ReadThroughSource* read_through = nullptr);
  BlobService(const BlobService&) = delete;
  BlobService& operator=(const BlobService&) = delete;

  // Pushes are written through `write_through` (not owned; outlives the service; null: none)
  // before they are acknowledged. Call before serving.
  void SetWriteThrough(WriteThrough* write_through) { write_through_ = write_through; }
  // Adds a subscriber; call before serving.
  void Subscribe(EventSubscriber subscriber) { events_.Subscribe(std::move(subscriber)); }
  const BlobContext& context() const { return ctx_; }

  // `request_id` (every method that moves chunk bytes takes one; may be empty) names the
  // client request the chunk calls are for: it travels to the chunkservers as X-Request-Id.

  // ---- Blob uploads (OCI) ----

  // A new, empty session in `repo`; returns its id.
  awaitable<Result<std::string>> StartUpload(std::string repo);

  // Session `upload_id` of `repo` with its hash state: what every append, commit, status and
  // cancel starts from. kNotFound (the message says why: a malformed id, a session of another
  // repository, or none at all); kInternal for an unrestorable hash state.
  awaitable<Result<Upload>> ResumeUpload(std::string repo, std::string upload_id);

  // Streams `body` into the upload at its offset and returns the new offset; `upload` moves
  // on with it. Small appends are coalesced: the bytes past the last whole chunk (up to
  // kMaxUploadTailBytes) are not written as a chunk but kept in the session (durably, in the
  // metadata store: UploadSession::tail) until more bytes make a chunk of them or the commit
  // writes them, so 2,000 one-byte PATCHes make one chunk, not 2,000. kRangeInvalid: the claim's
  // range does not start at the offset or disagrees with the announced length (before anything is
  // read), or a concurrent append moved the offset first (what was written is released). kConflict:
  // the body's length differs from the claimed range (released). kNotFound: the session vanished.
  // Errors of `body` (kCancelled, kInvalidArgument) and of the cluster (kUnavailable) as they come.
  awaitable<Result<uint64_t>> Append(Upload& upload, BodyClaim claim, ByteSource& body,
                                     std::string request_id = {});

  // Appends `body` when given (the same checks as Append; a refused body leaves the session
  // as it was), verifies `want` over every byte and commits the blob. kDigestMismatch: the
  // content hashes otherwise; the session is deleted. kNotFound: the session vanished.
  awaitable<Result<BlobInfo>> Commit(Upload upload, Digest want, BodyClaim claim, ByteSource* body,
                                     std::string request_id = {});

  // Deletes the session; its chunks become garbage. kNotFound.
  awaitable<Status> Cancel(const Upload& upload);

  // A monolithic upload: a session of its own, `body`, and Commit. kDigestMismatch as Commit;
  // on any failure nothing stays.
  awaitable<Result<BlobInfo>> PutBlob(std::string repo, Digest want, ByteSource& body,
                                      std::string request_id = {});

  // Links blob `digest` into `repo`: from repository `from` when given (it must link the
  // blob), else any stored blob of that digest. false: nothing to mount (the caller falls back
  // to an ordinary upload).
  awaitable<Result<bool>> Mount(std::string repo, Digest digest, std::optional<std::string> from);

  // ---- Blob reads and deletes ----

  // Pulls (OpenBlob: GET and HEAD, lookup-cache hits and read-through fills included) are
  // remembered by digest until TakePulls, for a site cache's eviction (MetaStore::TouchBlobs).
  // Off by default. At most kMaxPendingPulls digests wait; more are dropped until the next take.
  static constexpr size_t kMaxPendingPulls = 1u << 20;
  void RecordPulls(bool on) { record_pulls_ = on; }
  // The digests pulled since the last call, each once, in digest order.
  std::vector<Digest> TakePulls();

  // The blob as linked in `repo`, else from the read-through source. kNotFound.
  awaitable<Result<std::unique_ptr<BlobReader>>> OpenBlob(std::string repo, Digest digest,
                                                          std::string request_id = {});

  // Removes the blob's link from `repo` (the blob goes with its last link). kNotFound: not
  // linked.
  awaitable<Status> DeleteBlob(std::string repo, Digest digest);

  // ---- Plain files ----

  // Stores `body` as a new file under `name` (may be empty: no name). Errors of the body and
  // the cluster as Append; nothing stays.
  awaitable<Result<FileRecord>> PutFile(std::string content_type, ByteSource& body,
                                        std::string request_id = {}, std::string name = {});
  // kNotFound.
  awaitable<Result<OpenedFile>> OpenFile(std::string id, std::string request_id = {});
  // kNotFound.
  awaitable<Status> DeleteFile(std::string id);

  // ---- Manifests and tags ----

  // Stores `manifest` in `repo` (and points `tag` at it) once the store has checked, in the
  // same transaction, that every blob it references is linked in `repo` and every child
  // manifest is in `repo`. A referenced blob missing here is first fetched from the
  // read-through source, when it has it. kNotFound: one is not, and `*missing` (when given) names
  // it; kInvalidArgument, kDigestMismatch: as MetaStore::PutManifest.
  awaitable<Status> PutManifest(std::string repo, std::optional<std::string> tag,
                                ManifestRecord manifest, Digest* missing);

  // The manifest `ref` names in `repo`, else from the read-through source. kNotFound.
  awaitable<Result<ManifestRecord>> GetManifest(std::string repo, Reference ref);

  // By digest: the manifest and its tags; by tag: the tag only. kNotFound.
  awaitable<Status> DeleteManifest(std::string repo, Reference ref);

 private:
  struct Written;
  // The service's context for one client request: chunk calls carry its id.
  BlobContext ContextFor(std::string request_id) const;
  // `prefix`: bytes already hashed that start the stream (an upload's pending tail). With
  // max_tail > 0 a last partial chunk of up to max_tail bytes is kept in Written::tail.
  awaitable<Result<Written>> WriteBody(std::string upload_id, Hasher hasher, ByteSource* body,
                                       std::string request_id, std::string_view prefix = {},
                                       size_t max_tail = 0);
  // Streams `body` under the upload and checks its length against the claim; on a refusal
  // or failure nothing of it stays live.
  // Its hasher moves into the writer: on success the caller takes Written::hasher back.
  // The upload's pending tail starts the stream; `keep_tail`: a short last piece becomes the
  // new tail (Written::tail) instead of a chunk.
  awaitable<Result<Written>> AppendBody(Upload& upload, const BodyClaim& claim, ByteSource* body,
                                        std::string request_id, bool keep_tail);
  awaitable<void> ReleaseWritten(const std::vector<ChunkRef>& chunks);
  awaitable<void> DropSession(std::string id);
  awaitable<Result<BlobInfo>> CommitSession(std::string repo, std::string upload_id, Digest want,
                                            Digest actual, uint64_t size,
                                            std::vector<ChunkRef> chunks);
  // Reads blob `digest` of `repo` whole from the read-through source, which stores it here.
  awaitable<Status> FetchBlob(std::string repo, Digest digest);
  awaitable<Result<Digest>> HashChunks(std::vector<ChunkRef> chunks, uint64_t size,
                                       DigestAlgorithm algorithm, std::string request_id);

  BlobContext ctx_;
  NoReadThrough none_;
  ReadThroughSource* read_through_;
  WriteThrough* write_through_ = nullptr;
  EventBus events_;
  bool record_pulls_ = false;
  std::set<Digest> pulls_;  // since the last TakePulls
};

}  // namespace wharf
