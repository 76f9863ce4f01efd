// Chunk ids (chunkserver/chunk_id.h) and chunk checksums (common/checksum.h) as they arrive in
// request paths and headers: exactly the documented alphabets are accepted.
#include <cstdint>
#include <string>

#include "chunkserver/chunk_id.h"
#include "common/checksum.h"
#include "fuzz_check.h"

namespace {

bool LowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool AnyHex(char c) { return LowerHex(c) || (c >= 'A' && c <= 'F'); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = wharf::fuzz::AsText(data, size);

  bool want_id = in.size() == wharf::kChunkIdLength;
  for (char c : in) want_id = want_id && LowerHex(c);
  FUZZ_CHECK(wharf::ValidChunkId(in) == want_id);

  bool want_checksum = in.size() == 21 && in.substr(0, 5) == "xxh3:";
  for (size_t i = 5; want_checksum && i < in.size(); ++i) want_checksum = AnyHex(in[i]);
  auto checksum = wharf::ParseChecksum(in);
  FUZZ_CHECK(checksum.has_value() == want_checksum);
  if (checksum) {
    std::string lower(in);
    for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    FUZZ_CHECK(wharf::FormatChecksum(*checksum) == lower);
  }
  return 0;
}
