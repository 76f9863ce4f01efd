// The anti-entropy inputs: a peer's range digests (GET /v1/inventory/digests, RangeDigests::Parse)
// and a record of the tombstone log read back from a disk that may be damaged
// (Tombstones::ParseRecord). Neither may throw or crash; what parses re-encodes to something
// that parses to the same value.
#include <cstdint>
#include <string>
#include <string_view>

#include "chunkserver/anti_entropy.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  auto digests = wharf::RangeDigests::Parse(in);
  if (digests) {
    auto again = wharf::RangeDigests::Parse(digests->ToJson().dump());
    FUZZ_CHECK(again && *again == *digests);
  } else {
    FUZZ_CHECK(digests.error().code() == wharf::Code::kInvalidArgument);
  }

  auto record = wharf::Tombstones::ParseRecord(in);
  if (record) {
    std::string line = wharf::Tombstones::Record(record->first, record->second);
    FUZZ_CHECK(!line.empty() && line.back() == '\n');
    line.pop_back();
    auto again = wharf::Tombstones::ParseRecord(line);
    FUZZ_CHECK(again && *again == *record);
  }
  return 0;
}
