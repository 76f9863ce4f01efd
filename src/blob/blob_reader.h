// BlobReader: the bytes of a stored blob or file, read by range. The chunk implementation reads
// from the cluster (each chunk verified, from any active member with failover, the next ones
// fetched while one is handed on); read-through sources give their own.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "blob/blob_writer.h"
#include "common/asio.h"
#include "common/status.h"
#include "meta/meta_store.h"

namespace wharf {

class BlobReader {
 public:
  virtual ~BlobReader() = default;
  virtual uint64_t size() const = 0;
  // Calls `sink` for the bytes [offset, offset+len) in order (the caller keeps the range
  // inside size()). kUnavailable / kCorruption when the storage could not serve a piece; a
  // sink error stops the read and is returned.
  virtual awaitable<Status> Read(uint64_t offset, uint64_t len, ByteSink sink) = 0;
};

// A blob or file stored as chunks in the cluster.
class ChunkReader final : public BlobReader {
 public:
  ChunkReader(BlobContext ctx, std::vector<ChunkRef> chunks, uint64_t size)
      : ctx_(std::move(ctx)), chunks_(std::move(chunks)), size_(size) {}
  uint64_t size() const override { return size_; }
  awaitable<Status> Read(uint64_t offset, uint64_t len, ByteSink sink) override;

 private:
  BlobContext ctx_;
  std::vector<ChunkRef> chunks_;
  uint64_t size_;
};

}  // namespace wharf
