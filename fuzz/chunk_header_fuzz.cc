// The 32-byte chunk file header (chunkserver/chunk_file.h) over any bytes, as read back from a
// disk that may be damaged: a header that decodes is exactly the canonical encoding of what it
// decoded to, and anything encoded decodes back.
#include <cstdint>
#include <cstring>

#include "chunkserver/chunk_file.h"
#include "fuzz_check.h"

namespace {

uint64_t Load64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* bytes = reinterpret_cast<const char*>(data);
  auto header = wharf::DecodeChunkHeader(bytes, size);
  if (header) {
    FUZZ_CHECK(size >= wharf::kChunkHeaderSize);
    auto encoded = wharf::EncodeChunkHeader(*header);
    FUZZ_CHECK(std::memcmp(encoded.data(), bytes, wharf::kChunkHeaderSize) == 0);
  } else {
    FUZZ_CHECK(header.error().code() == wharf::Code::kCorruption);
  }

  // The first 16 bytes as a header's fields: the round trip holds for any values.
  if (size >= 16) {
    wharf::ChunkHeader h{Load64(data), Load64(data + 8)};
    auto encoded = wharf::EncodeChunkHeader(h);
    auto decoded = wharf::DecodeChunkHeader(encoded.data(), encoded.size());
    FUZZ_CHECK(decoded && decoded->size == h.size && decoded->checksum == h.checksum);
  }
  return 0;
}
