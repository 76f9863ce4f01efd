// ChunkRef: where one stored chunk lives. Shared by the metadata store (the ledger and every
// chunk list), the cluster client (which writes and reads chunks) and the gateway.
#pragma once

#include <cstdint>
#include <string>

namespace wharf {

// One stored chunk. A blob or file is an ordered list of chunks of any sizes; the offset of
// chunk i is the sum of the sizes of chunks 0..i-1.
struct ChunkRef {
  std::string group;  // the storage group holding every replica
  std::string id;     // globally unique chunk id (common/chunk_id.h)
  uint64_t size = 0;
  uint64_t checksum = 0;  // cheap integrity checksum (CRC32C/XXH3) of the chunk's bytes
  friend bool operator==(const ChunkRef&, const ChunkRef&) = default;
};

}  // namespace wharf
