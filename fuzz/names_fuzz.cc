// Repository names, tags and manifest references (registry/names.h) over any text, checked
// against the spec's regular expressions (OCI Distribution Specification v1.1, "Pulling
// manifests") as an independent oracle for inputs short enough for std::regex.
#include <cstdint>
#include <regex>
#include <string>

#include "fuzz_check.h"
#include "registry/names.h"

namespace {

using wharf::Code;

// std::regex recurses per character and backtracks: keep the oracle to short inputs.
constexpr size_t kOracleMaxLength = 96;

bool SpecName(const std::string& s) {
  static const std::regex re(
      "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*");
  return std::regex_match(s, re);
}

bool SpecTag(const std::string& s) {
  static const std::regex re("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");
  return std::regex_match(s, re);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = wharf::fuzz::AsText(data, size);

  bool name = wharf::ValidRepositoryName(in);
  if (name) FUZZ_CHECK(in.size() <= wharf::kMaxRepositoryNameLength);
  bool tag = wharf::ValidTag(in);
  if (tag) FUZZ_CHECK(in.size() <= 128);
  if (in.size() <= kOracleMaxLength) {
    std::string s(in);
    FUZZ_CHECK(name == SpecName(s));
    FUZZ_CHECK(tag == SpecTag(s));
  }

  auto ref = wharf::ParseReference(in);
  if (ref) {
    FUZZ_CHECK(ref->ToString() == in);
    FUZZ_CHECK(ref->is_digest() == (in.find(':') != std::string_view::npos));
    FUZZ_CHECK(ref->is_digest() || tag);
    FUZZ_CHECK(ref->is_digest() != !ref->tag.empty());
  } else {
    FUZZ_CHECK(!tag);
    FUZZ_CHECK(ref.error().code() == Code::kInvalidArgument ||
               ref.error().code() == Code::kUnsupported);
  }
  return 0;
}
