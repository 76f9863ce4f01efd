// The cheap chunk checksum: XXH3-64, written as "xxh3:<16 lowercase hex>".
// Used for chunk integrity on disk and on the wire; SHA-256 is for content digests only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wharf {

// Streaming XXH3-64. Not thread-safe; one per stream.
class Checksummer {
 public:
  Checksummer();
  ~Checksummer();
  Checksummer(const Checksummer&) = delete;
  Checksummer& operator=(const Checksummer&) = delete;
  void Update(const void* data, size_t n);
  uint64_t Value() const;
  void Reset();

 private:
  void* state_;  // XXH3_state_t*
};

uint64_t ChecksumOf(const void* data, size_t n);
inline uint64_t ChecksumOf(std::string_view s) { return ChecksumOf(s.data(), s.size()); }

// "xxh3:00112233aabbccdd"
std::string FormatChecksum(uint64_t v);
// Accepts exactly "xxh3:" + 16 lowercase or uppercase hex digits.
std::optional<uint64_t> ParseChecksum(std::string_view s);

}  // namespace wharf
