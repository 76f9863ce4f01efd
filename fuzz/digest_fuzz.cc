// Digest::Parse over any text, and Hasher::RestoreState over any stored hash state (an
// upload's midstate comes back from the metadata store, which may be damaged).
//
// Input: the text tried as a digest. The same bytes, less their first, are also tried as a
// stored state, of the algorithm the first byte's low bit names.
#include <cstdint>
#include <string>

#include "common/digest.h"
#include "fuzz_check.h"

namespace {

using wharf::Code;
using wharf::Digest;
using wharf::DigestAlgorithm;
using wharf::Hasher;

void CheckParse(std::string_view text) {
  auto parsed = Digest::Parse(text);
  if (!parsed) {
    FUZZ_CHECK(parsed.error().code() == Code::kInvalidArgument ||
               parsed.error().code() == Code::kUnsupported);
    return;
  }
  // Only canonical text is accepted, so it re-serialises byte for byte.
  FUZZ_CHECK(parsed->ToString() == text);
  FUZZ_CHECK(!parsed->empty());
  size_t want_hex = parsed->algorithm() == DigestAlgorithm::kSha256 ? 64 : 128;
  FUZZ_CHECK(parsed->hex().size() == want_hex);
  FUZZ_CHECK(text.substr(0, text.find(':')) == parsed->algorithm_name());
  auto again = Digest::Parse(parsed->ToString());
  FUZZ_CHECK(again && *again == *parsed);
}

void CheckRestore(DigestAlgorithm algorithm, std::string_view state) {
  auto restored = Hasher::RestoreState(algorithm, state);
  if (!restored) {
    FUZZ_CHECK(restored.error().code() == Code::kInvalidArgument);
    return;
  }
  // An accepted state is saved back unchanged, and hashing on from it is safe and behaves
  // like any hasher: the same bytes from the same state give the same digest.
  FUZZ_CHECK(restored->SaveState() == state);
  auto twin = Hasher::RestoreState(algorithm, state);
  FUZZ_CHECK(twin.has_value());
  const std::string more(200, 'x');  // crosses a block boundary from any offset
  restored->Update(more);
  twin->Update(more);
  Digest a = restored->Finish(), b = twin->Finish();
  FUZZ_CHECK(a == b);
  FUZZ_CHECK(a.algorithm() == algorithm);
  FUZZ_CHECK(Digest::Parse(a.ToString()).has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = wharf::fuzz::AsText(data, size);
  CheckParse(in);
  if (!in.empty()) {
    DigestAlgorithm a = (in[0] & 1) ? DigestAlgorithm::kSha512 : DigestAlgorithm::kSha256;
    CheckRestore(a, in.substr(1));
  }
  return 0;
}
