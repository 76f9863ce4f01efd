// The on-disk format of one chunk file written by LocalChunkStore.
//
//   offset  size  field
//   0       4     magic "WHCK"
//   4       4     format version, little-endian u32 (1)
//   8       8     data size in bytes, little-endian u64
//   16      8     XXH3-64 of the data, little-endian u64
//   24      4     header check: low 32 bits of XXH3-64 of bytes [0, 24), little-endian u32
//   28      4     reserved, zero
//   32      size  the chunk's data
//
// The header makes a chunk file self-describing: the in-memory index is rebuilt from headers
// at startup, and a damaged header is detected instead of trusted.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace wharf {

inline constexpr size_t kChunkHeaderSize = 32;
inline constexpr uint32_t kChunkFormatVersion = 1;

struct ChunkHeader {
  uint64_t size = 0;
  uint64_t checksum = 0;
};

std::array<char, kChunkHeaderSize> EncodeChunkHeader(const ChunkHeader& h);

// kCorruption if the magic, version, header check or reserved bytes are wrong.
Result<ChunkHeader> DecodeChunkHeader(const char* buf, size_t n);

}  // namespace wharf
