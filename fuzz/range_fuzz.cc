// Range and Content-Range headers (http/range.h) over any text.
//
// Input: "<representation size>\n<header>". The size is decimal; when the first line is not a
// number, its length is the size (so every input names one).
#include <charconv>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "http/range.h"

namespace {

using wharf::ByteRange;
using wharf::Code;

uint64_t SizeOf(std::string_view line) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
  if (ec != std::errc() || p != line.data() + line.size()) return line.size();
  return v;
}

void CheckRange(std::string_view header, uint64_t size) {
  auto r = wharf::ParseRangeHeader(header, size);
  if (!r) {
    FUZZ_CHECK(r.error().code() == Code::kRangeInvalid);
    return;
  }
  if (!r->has_value()) return;  // ignored: the whole body with 200
  const ByteRange range = **r;
  FUZZ_CHECK(size > 0);
  FUZZ_CHECK(range.first <= range.last && range.last < size);
  FUZZ_CHECK(range.length() >= 1 && range.length() <= size);
  // The range, asked for again in its plain form, is the same range...
  std::string plain = "bytes=" + std::to_string(range.first) + "-" + std::to_string(range.last);
  auto again = wharf::ParseRangeHeader(plain, size);
  FUZZ_CHECK(again && again->has_value() && **again == range);
  // ...and the Content-Range of the 206 reads back as it.
  auto content_range = wharf::ParseUploadContentRange(wharf::FormatContentRange(range, size));
  FUZZ_CHECK(content_range && *content_range == range);
}

void CheckUploadContentRange(std::string_view header) {
  auto r = wharf::ParseUploadContentRange(header);
  if (!r) {
    FUZZ_CHECK(r.error().code() == Code::kRangeInvalid);
    return;
  }
  FUZZ_CHECK(r->first <= r->last);
  // Each accepted form says the same as the spec's "<start>-<end>".
  std::string spec_form = std::to_string(r->first) + "-" + std::to_string(r->last);
  for (const std::string& form : {spec_form, "bytes=" + spec_form, "bytes " + spec_form + "/*"}) {
    auto again = wharf::ParseUploadContentRange(form);
    FUZZ_CHECK(again && *again == *r);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = wharf::fuzz::AsText(data, size), first, header;
  wharf::fuzz::SplitFirstLine(in, &first, &header);
  uint64_t representation = SizeOf(first);
  CheckRange(header, representation);
  CheckRange(header, 0);
  CheckRange(header, UINT64_MAX);
  CheckUploadContentRange(header);
  FUZZ_CHECK(wharf::FormatUnsatisfiedRange(representation) ==
             "bytes */" + std::to_string(representation));
  return 0;
}
