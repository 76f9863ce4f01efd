// ValidatingChunkStore: wraps any ChunkStore once (as distribution's base.go wraps every storage
// driver): it checks the arguments every implementation must refuse before the inner store
// sees them, and times every call.
//
//   - chunk ids that fail ValidChunkId()                       -> kInvalidArgument
//   - ReadRange past the chunk's end (offset or offset + len)  -> kRangeInvalid
//   - Append beyond the size announced to BeginWrite           -> kInvalidArgument
//   - wharf_chunkserver_store_op_seconds{op, <labels>}         latency of every call
//
// Otherwise every call forwards unchanged; the contracts are ChunkStore's (chunk_store.h).
// Thread-safe if the inner store is.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chunkserver/chunk_store.h"
#include "common/metrics.h"

namespace wharf {

class ValidatingChunkStore : public ChunkStore {
 public:
  // `labels` are added to the metrics (e.g. {{"member", id}}: several chunkservers may share
  // one process). `metrics` must outlive the store.
  explicit ValidatingChunkStore(std::unique_ptr<ChunkStore> inner, Labels labels = {},
                                MetricsRegistry& metrics = Metrics());

  ChunkStore& inner() { return *inner_; }

  Result<std::unique_ptr<ChunkWriter>> BeginWrite(const std::string& id, uint64_t size,
                                                  uint64_t checksum) override;
  Result<ChunkInfo> Stat(const std::string& id) override;
  Result<OpenChunk> Open(const std::string& id) override;
  Result<std::string> ReadRange(const std::string& id, uint64_t offset, uint64_t len) override;
  Status Delete(const std::string& id) override;
  Result<std::vector<ChunkInfo>> List(std::string_view after, size_t limit) override;
  Result<ChunkInfo> Verify(const std::string& id) override;
  Status Quarantine(const std::string& id) override;
  uint64_t Count() override;
  Result<RangeDigests> Digests() override;
  Result<SpaceInfo> Space() override;
  Status Health() override;
  Status ProbeWrite() override;

 private:
  friend class ValidatingChunkWriter;
  // The latency histogram of `op` (created once per op).
  HistogramMetric& OpSeconds(std::string_view op);
  template <typename F>
  auto Timed(std::string_view op, F call) -> decltype(call());

  std::unique_ptr<ChunkStore> inner_;
  const Labels labels_;
  MetricsRegistry& metrics_;
};

}  // namespace wharf
