#include "chunkserver/chunk_file.h"

#include <cstring>

#include "common/checksum.h"

namespace wharf {
namespace {

constexpr char kMagic[4] = {'W', 'H', 'C', 'K'};

template <typename T>
void PutLE(char* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

template <typename T>
T GetLE(const char* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<T>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return v;
}

uint32_t HeaderCheck(const char* buf) { return static_cast<uint32_t>(ChecksumOf(buf, 24)); }

}  // namespace

std::array<char, kChunkHeaderSize> EncodeChunkHeader(const ChunkHeader& h) {
  std::array<char, kChunkHeaderSize> buf{};
  std::memcpy(buf.data(), kMagic, 4);
  PutLE<uint32_t>(buf.data() + 4, kChunkFormatVersion);
  PutLE<uint64_t>(buf.data() + 8, h.size);
  PutLE<uint64_t>(buf.data() + 16, h.checksum);
  PutLE<uint32_t>(buf.data() + 24, HeaderCheck(buf.data()));
  return buf;
}

Result<ChunkHeader> DecodeChunkHeader(const char* buf, size_t n) {
  if (n < kChunkHeaderSize) return Err(Corruption("chunk header truncated"));
  if (std::memcmp(buf, kMagic, 4) != 0) return Err(Corruption("chunk header: bad magic"));
  uint32_t version = GetLE<uint32_t>(buf + 4);
  if (version != kChunkFormatVersion) {
    return Err(Corruption(fmt::format("chunk header: unknown version {}", version)));
  }
  if (GetLE<uint32_t>(buf + 24) != HeaderCheck(buf)) {
    return Err(Corruption("chunk header: check mismatch"));
  }
  if (GetLE<uint32_t>(buf + 28) != 0) return Err(Corruption("chunk header: reserved not zero"));
  return ChunkHeader{GetLE<uint64_t>(buf + 8), GetLE<uint64_t>(buf + 16)};
}

}  // namespace wharf
