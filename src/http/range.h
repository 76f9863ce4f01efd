// Byte ranges in HTTP headers: the Range request header (RFC 9110 section 14), the
// Content-Range response header, and the Content-Range header of an OCI chunked-upload PATCH.
//
// Pure functions over untrusted header text: no allocation beyond the result, no exceptions,
// overflow-safe for any number of digits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf {

// An inclusive byte range [first, last]; always first <= last.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
  uint64_t length() const { return last - first + 1; }
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

// Parses a Range request header against a representation of `size` bytes. Only a single range
// of unit "bytes" (case-insensitive) is served:
//   "bytes=a-b"  -> [a, min(b, size-1)]
//   "bytes=a-"   -> [a, size-1]
//   "bytes=-n"   -> the last min(n, size) bytes
// Returns nullopt when the header should be ignored and the whole body served with 200: it is
// syntactically invalid (including "bytes=5-3", signs, inner spaces), names another unit, or
// asks for several ranges (wharf does not do multipart/byteranges).
// Returns kRangeInvalid when the range is well-formed but unsatisfiable (first >= size, a
// suffix of 0, or any range of an empty representation): the caller answers 416 with
// FormatUnsatisfiedRange(size).
Result<std::optional<ByteRange>> ParseRangeHeader(std::string_view header, uint64_t size);

// "bytes <first>-<last>/<size>" for a 206 response.
std::string FormatContentRange(ByteRange range, uint64_t size);
// "bytes */<size>" for a 416 response.
std::string FormatUnsatisfiedRange(uint64_t size);

// Parses the Content-Range header of an OCI upload PATCH. The spec's form is
// "<start>-<end>" (inclusive, end >= start, regexp ^[0-9]+-[0-9]+$); the forms some clients
// send are accepted too: "bytes <start>-<end>/<total>", "bytes <start>-<end>/*" (RFC 9110
// Content-Range; a numeric total must exceed end) and "bytes=<start>-<end>".
// kRangeInvalid for anything else, including numbers that overflow 64 bits.
Result<ByteRange> ParseUploadContentRange(std::string_view header);

}  // namespace wharf
