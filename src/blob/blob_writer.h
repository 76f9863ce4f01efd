// Moving blob bytes between a byte stream and the chunk cluster, with bounded memory. No HTTP
// here: the gateway adapts a request body to a ByteSource and serves reads (gateway/blob_serve.h).
//
// Write path: BlobWriter cuts the incoming stream into chunk_size pieces. Each full piece is
// hashed (SHA-256 of the whole stream, in order, exactly once; XXH3 of the piece) on the I/O
// pool, recorded in the metadata store's chunk ledger under the upload's owner (before any
// byte reaches a chunkserver, so a crash leaves only collectable chunks), and written to every
// member of a writable group in parallel. A group whose member fails is excluded and the
// piece goes to another group. Up to max_inflight pieces are in flight (pipelined).
//
// Read path: ReadChunks reads a byte range of a chunk list, fetching each chunk from any
// active member (verified, with failover) while the previous one is handed to the sink.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blob/byte_source.h"
#include "cluster/chunk_cluster.h"
#include "common/asio.h"
#include "common/buffer_pool.h"
#include "common/digest.h"
#include "common/log.h"
#include "meta/meta_store.h"

namespace wharf {

class LookupCache;

// What the blob code needs of its surroundings. The pointers outlive every writer and reader
// made with it; everything runs on `ex` (single-threaded), MetaStore calls through Offload().
struct BlobContext {
  asio::any_io_executor ex;
  ChunkCluster* cluster = nullptr;
  MetaStore* meta = nullptr;
  // Set: reads of linked blobs and manifests are first looked up here, on the loop, and reach
  // `meta` (which fills it) only on a miss (meta/lookup_cache.h).
  LookupCache* lookup = nullptr;
  uint64_t chunk_size = 16u << 20;
  size_t max_inflight_chunks = 4;  // per writer: chunks being hashed/written at once
  // Where the chunk_size buffers of large pieces come from: the gateway's pool, bounded by its
  // memory budget (common/memory_budget.h). Null: the process-wide SharedBufferPool.
  BufferPool* chunk_buffers = nullptr;
  // Set: the small buffers of a request body read through WriteFrom (up to 2 x 64 KiB) are
  // taken from this budget too, from its first half (they are held while a chunk buffer may
  // be waited for).
  MemoryBudget* memory = nullptr;
  // How long a chunk write waits for a writable group when there is none (e.g. members
  // still starting) before it fails with kUnavailable.
  std::chrono::milliseconds writable_wait{5000};
  // While bytes arrive, the upload session is touched (MetaStore::TouchUpload) at most this
  // often, so that its expiry counts from the last bytes received; 0: never.
  std::chrono::milliseconds touch_every{30000};
  Logger log;
  // The id of the client request this work is for, sent with every chunk call (X-Request-Id)
  // so that a chunkserver's log lines join the gateway's; empty: none.
  std::string request_id;
};

class BlobWriter {
 public:
  // `upload_id` names an upload session that already exists in the metadata store (chunks are
  // recorded under ChunkOwner::Upload(upload_id)). `hasher` carries the SHA-256 state of the bytes
  // before this writer's (a fresh Hasher for a new upload; a restored one when resuming).
  BlobWriter(const BlobContext& ctx, std::string upload_id, Hasher hasher);
  // Never waits. Pieces still in flight finish on their own; unless Finish handed the chunks
  // to the caller, every chunk this writer wrote is then released (nobody will list it), and
  // pieces not yet written are not written at all.
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Appends bytes. May wait for an in-flight chunk to finish (back-pressure). An error is
  // sticky: every later call returns it. kUnavailable when no group could take a chunk.
  awaitable<Status> Write(const void* data, size_t n);
  // Starts the stream with bytes that the hasher already covers (an upload's pending tail,
  // UploadSession::tail): they go into the first chunk(s) but are not hashed again, and
  // bytes() does not count them. Call before any Write.
  awaitable<Status> Prefill(std::string_view prehashed);
  // Sends the last partial chunk and waits for every chunk. Returns the chunks this writer
  // wrote, in order (their sizes add up to the prefill plus bytes()). After Finish, hasher()
  // covers every byte.
  awaitable<Result<std::vector<ChunkRef>>> Finish();
  // As Finish, except that a last partial chunk of at most `max_tail` bytes is not written:
  // its bytes land in *tail instead (hashed: hasher() covers them too), for the caller to keep
  // until more bytes come (small appends are coalesced instead of making tiny chunks).
  awaitable<Result<std::vector<ChunkRef>>> FinishKeepingTail(size_t max_tail, std::string* tail);
  // Reads `source` to its end into this writer (Write for each piece). On an error of the
  // source (kCancelled if the client went away), waits for the chunks in flight.
  awaitable<Status> WriteFrom(ByteSource& source);

  uint64_t bytes() const { return bytes_; }
  Hasher& hasher();

 private:
  struct Piece;
  // The state the pieces share with the writer. A piece holds it (and its Piece), never the
  // writer, so a writer destroyed with pieces in flight (a caller's early return) is never
  // touched by them; see ~BlobWriter.
  struct Shared;
  awaitable<Status> Dispatch();
  static awaitable<void> RunPiece(std::shared_ptr<Shared> shared, std::shared_ptr<Piece> piece);
  // After the writer is gone: waits for its pieces and releases the chunks they wrote.
  static awaitable<void> ReleaseAbandoned(std::shared_ptr<Shared> shared,
                                          std::vector<std::shared_ptr<Piece>> pieces);
  awaitable<Status> WaitForSlot(size_t max_pending);
  // Whether the piece being filled should move to a pooled chunk buffer before `more` bytes.
  bool WantsPool(size_t more) const;
  // Moves the piece being filled into a pooled chunk buffer (waits while the pool is drained).
  awaitable<Status> Promote();
  // Touches the upload session when touch_every passed since the last touch. kNotFound (the
  // session was collected: the upload cannot commit) is an error.
  awaitable<Status> MarkProgress();

  // Pieces up to this size stay in a small string; larger ones use a pooled chunk buffer.
  static constexpr size_t kSmallPieceBytes = 64u << 10;

  std::shared_ptr<Shared> shared_;
  std::string current_;  // the piece being filled, while small
  PooledBuffer big_;     // ... or once large (filled_ bytes of it)
  size_t filled_ = 0;
  uint64_t bytes_ = 0;
  uint64_t prehashed_left_ = 0;  // Prefill bytes not yet handed to a piece
  std::vector<std::shared_ptr<Piece>> pieces_;
  bool handed_over_ = false;  // Finish returned the chunks: the caller owns them now
  std::chrono::steady_clock::time_point last_touch_ = std::chrono::steady_clock::now();
};

// Reads bytes [offset, offset+len) of a chunk list, calling `sink` for each piece in order.
// `sink` returning an error stops the read with that error.
// (A ChunkSink: ServeBlob's takes file ranges too, for reads of local chunk files.)
using ByteSink = ChunkSink;
awaitable<Status> ReadChunks(const BlobContext& ctx, const std::vector<ChunkRef>& chunks,
                             uint64_t offset, uint64_t len, const ByteSink& sink);

}  // namespace wharf
