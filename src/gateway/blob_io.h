// Moving blob bytes between HTTP bodies and the chunk cluster, with bounded memory.
//
// Write path: BlobWriter cuts the incoming stream into chunk_size pieces. Each full piece is
// hashed (SHA-256 of the whole stream, in order, exactly once; XXH3 of the piece) on the I/O
// pool, recorded in the metadata store's chunk ledger under the upload's owner (before any
// byte reaches a chunkserver, so a crash leaves only collectable chunks), and written to every
// member of a writable group in parallel. A group whose member fails is excluded and the
// piece goes to another group. Up to max_inflight pieces are in flight (pipelined).
//
// Read path: ServeBlob answers GET/HEAD for a chunk list with Range support, fetching each
// chunk from any active member (verified, with failover) while the previous one is sent.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "gateway/gateway.h"
#include "http/server.h"

namespace wharf {

class BlobWriter {
 public:
  // `upload_id` names an upload session that already exists in the metadata store (chunks are
  // recorded under "upload:<upload_id>"). `hasher` carries the SHA-256 state of the bytes
  // before this writer's (a fresh Hasher for a new upload; a restored one when resuming).
  BlobWriter(GatewayContext& ctx, std::string upload_id, Hasher hasher);
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Appends bytes. May wait for an in-flight chunk to finish (back-pressure). An error is
  // sticky: every later call returns it. kUnavailable when no group could take a chunk.
  awaitable<Status> Write(const void* data, size_t n);
  // Sends the last partial chunk and waits for every chunk. Returns the chunks this writer
  // wrote, in order (their sizes add up to bytes()). After Finish, hasher() covers every byte.
  awaitable<Result<std::vector<ChunkRef>>> Finish();
  // Reads the whole body of `ex` into this writer (Write for each piece).
  // kCancelled if the client went away.
  awaitable<Status> WriteBody(Exchange& ex);

  uint64_t bytes() const { return bytes_; }
  Hasher& hasher() { return hasher_; }

 private:
  struct Piece;
  awaitable<Status> Dispatch();
  awaitable<void> RunPiece(std::shared_ptr<Piece> piece);
  awaitable<Status> WaitForSlot(size_t max_pending);

  GatewayContext& ctx_;
  std::string upload_id_;
  Hasher hasher_;
  std::string current_;  // the piece being filled
  uint64_t bytes_ = 0;
  std::vector<std::shared_ptr<Piece>> pieces_;
  size_t pending_ = 0;
  Status error_;
  std::unique_ptr<asio::steady_timer> wake_;
};

// Answers GET or HEAD of a stored object made of `chunks` (sizes add up to `size`):
// Content-Length, Accept-Ranges, a single Range as 206 (416 past the end), and the body
// streamed chunk by chunk. Headers added to `ex` before the call go out with the response.
// Returns a non-ok Status only for failures after the head was sent (the connection is closed).
awaitable<Status> ServeBlob(GatewayContext& ctx, Exchange& ex, const std::vector<ChunkRef>& chunks,
                            uint64_t size, std::string_view content_type);

// Reads bytes [offset, offset+len) of a chunk list, calling `sink` for each piece in order.
awaitable<Status> ReadChunks(GatewayContext& ctx, const std::vector<ChunkRef>& chunks,
                             uint64_t offset, uint64_t len,
                             const std::function<awaitable<Status>(std::string_view)>& sink);

}  // namespace wharf
