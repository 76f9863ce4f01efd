#include "chunkserver/validating_chunk_store.h"

#include <fmt/format.h>

#include <chrono>

#include "chunkserver/chunk_id.h"

namespace wharf {
namespace {

Status BadId(std::string_view id) {
  return InvalidArgument(fmt::format("invalid chunk id ({} bytes)", id.size()));
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// Refuses appends beyond the announced size before the inner writer sees them, and times
// appends and the commit.
class ValidatingChunkWriter : public ChunkWriter {
 public:
  ValidatingChunkWriter(ValidatingChunkStore* store, std::unique_ptr<ChunkWriter> inner,
                        uint64_t size)
      : store_(store), inner_(std::move(inner)), remaining_(size) {}

  Status Append(const void* data, size_t n) override {
    if (n > remaining_) {
      inner_.reset();  // aborts the write, as the contract says
      return InvalidArgument(
          fmt::format("chunk data exceeds the announced size by {} bytes", n - remaining_));
    }
    if (!inner_) return InvalidArgument("chunk writer already aborted");
    remaining_ -= n;
    return store_->Timed("append", [&] { return inner_->Append(data, n); });
  }

  Status Commit() override {
    if (!inner_) return InvalidArgument("chunk writer was aborted: data exceeded its size");
    return store_->Timed("commit", [&] { return inner_->Commit(); });
  }

 private:
  ValidatingChunkStore* store_;
  std::unique_ptr<ChunkWriter> inner_;
  uint64_t remaining_;
};

ValidatingChunkStore::ValidatingChunkStore(std::unique_ptr<ChunkStore> inner, Labels labels,
                                           MetricsRegistry& metrics)
    : inner_(std::move(inner)), labels_(std::move(labels)), metrics_(metrics) {}

HistogramMetric& ValidatingChunkStore::OpSeconds(std::string_view op) {
  Labels labels = labels_;
  labels.emplace_back("op", std::string(op));
  return metrics_.Histogram("wharf_chunkserver_store_op_seconds",
                            "Chunk store calls, by operation.", labels);
}

template <typename F>
auto ValidatingChunkStore::Timed(std::string_view op, F call) -> decltype(call()) {
  const auto start = std::chrono::steady_clock::now();
  auto result = call();
  OpSeconds(op).Observe(SecondsSince(start));
  return result;
}

Result<std::unique_ptr<ChunkWriter>> ValidatingChunkStore::BeginWrite(const std::string& id,
                                                                      uint64_t size,
                                                                      uint64_t checksum) {
  if (!ValidChunkId(id)) return Err(BadId(id));
  auto w = Timed("begin_write", [&] { return inner_->BeginWrite(id, size, checksum); });
  if (!w) return w;
  return std::unique_ptr<ChunkWriter>(
      std::make_unique<ValidatingChunkWriter>(this, std::move(*w), size));
}

Result<ChunkInfo> ValidatingChunkStore::Stat(const std::string& id) {
  if (!ValidChunkId(id)) return Err(BadId(id));
  return Timed("stat", [&] { return inner_->Stat(id); });
}

Result<OpenChunk> ValidatingChunkStore::Open(const std::string& id) {
  if (!ValidChunkId(id)) return Err(BadId(id));
  return Timed("open", [&] { return inner_->Open(id); });
}

Result<std::string> ValidatingChunkStore::ReadRange(const std::string& id, uint64_t offset,
                                                    uint64_t len) {
  if (!ValidChunkId(id)) return Err(BadId(id));
  return Timed("read_range", [&]() -> Result<std::string> {
    WHARF_ASSIGN_OR_RETURN(ChunkInfo info, inner_->Stat(id));  // from memory
    if (offset > info.size || len > info.size - offset) {
      return Err(RangeInvalid(
          fmt::format("range [{}, +{}) outside chunk of {} bytes", offset, len, info.size)));
    }
    return inner_->ReadRange(id, offset, len);
  });
}

Status ValidatingChunkStore::Delete(const std::string& id) {
  if (!ValidChunkId(id)) return BadId(id);
  return Timed("delete", [&] { return inner_->Delete(id); });
}

Result<std::vector<ChunkInfo>> ValidatingChunkStore::List(std::string_view after, size_t limit) {
  return Timed("list", [&] { return inner_->List(after, limit); });
}

Result<ChunkInfo> ValidatingChunkStore::Verify(const std::string& id) {
  if (!ValidChunkId(id)) return Err(BadId(id));
  return Timed("verify", [&] { return inner_->Verify(id); });
}

Status ValidatingChunkStore::Quarantine(const std::string& id) {
  if (!ValidChunkId(id)) return BadId(id);
  return Timed("quarantine", [&] { return inner_->Quarantine(id); });
}

uint64_t ValidatingChunkStore::Count() { return inner_->Count(); }

Result<RangeDigests> ValidatingChunkStore::Digests() { return inner_->Digests(); }

Result<SpaceInfo> ValidatingChunkStore::Space() {
  return Timed("space", [&] { return inner_->Space(); });
}

Status ValidatingChunkStore::Health() { return inner_->Health(); }

Status ValidatingChunkStore::ProbeWrite() { return inner_->ProbeWrite(); }

}  // namespace wharf
