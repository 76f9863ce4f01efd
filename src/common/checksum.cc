#include "common/checksum.h"

#include <fmt/format.h>
#include <xxhash.h>

namespace wharf {

Checksummer::Checksummer() : state_(XXH3_createState()) { Reset(); }
Checksummer::~Checksummer() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void Checksummer::Reset() { XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_)); }
void Checksummer::Update(const void* data, size_t n) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, n);
}
uint64_t Checksummer::Value() const {
  return XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_));
}

uint64_t ChecksumOf(const void* data, size_t n) { return XXH3_64bits(data, n); }

std::string FormatChecksum(uint64_t v) { return fmt::format("xxh3:{:016x}", v); }

std::optional<uint64_t> ParseChecksum(std::string_view s) {
  constexpr std::string_view kPrefix = "xxh3:";
  if (s.size() != kPrefix.size() + 16 || s.substr(0, kPrefix.size()) != kPrefix) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : s.substr(kPrefix.size())) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return std::nullopt;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace wharf
