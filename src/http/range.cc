#include "http/range.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace wharf {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// A run of ASCII digits. `value` saturates at 2^64-1 (`overflow` says so); `digits` has its
// leading zeros stripped, so two overflowed numbers can still be compared exactly.
struct Number {
  uint64_t value = 0;
  bool overflow = false;
  std::string_view digits;
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// Consumes one or more digits from the front of `s`; nullopt (and `s` untouched) if none.
std::optional<Number> ConsumeNumber(std::string_view& s) {
  size_t n = 0;
  while (n < s.size() && IsDigit(s[n])) ++n;
  if (n == 0) return std::nullopt;
  Number num;
  std::string_view all = s.substr(0, n);
  size_t zeros = 0;
  while (zeros + 1 < all.size() && all[zeros] == '0') ++zeros;
  num.digits = all.substr(zeros);
  for (char c : num.digits) {
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (num.value > (kMax - d) / 10) {
      num.value = kMax;
      num.overflow = true;
      break;
    }
    num.value = num.value * 10 + d;
  }
  s.remove_prefix(n);
  return num;
}

// a < b, exact even when both overflowed.
bool Less(const Number& a, const Number& b) {
  if (a.digits.size() != b.digits.size()) return a.digits.size() < b.digits.size();
  return a.digits < b.digits;
}

// "<first>-<last>" and nothing else (the spec's upload form). Rejects overflow and last < first.
Result<ByteRange> ParseClosedRange(std::string_view s) {
  auto first = ConsumeNumber(s);
  if (!first || s.empty() || s.front() != '-') return Err(RangeInvalid("expected <start>-<end>"));
  s.remove_prefix(1);
  auto last = ConsumeNumber(s);
  if (!last || !s.empty()) return Err(RangeInvalid("expected <start>-<end>"));
  if (first->overflow || last->overflow) return Err(RangeInvalid("range offset too large"));
  if (last->value < first->value) return Err(RangeInvalid("range end before its start"));
  return ByteRange{first->value, last->value};
}

Result<std::optional<ByteRange>> ParseSuffixRange(std::string_view spec, uint64_t size) {
  auto n = ConsumeNumber(spec);
  if (!n || !spec.empty()) return std::optional<ByteRange>();
  if (n->value == 0) return Err(RangeInvalid("suffix range of zero bytes"));
  if (size == 0) return Err(RangeInvalid("range of an empty representation"));
  uint64_t len = std::min(n->value, size);
  return std::optional<ByteRange>(ByteRange{size - len, size - 1});
}

}  // namespace

Result<std::optional<ByteRange>> ParseRangeHeader(std::string_view header, uint64_t size) {
  const std::optional<ByteRange> ignore;
  std::string_view s = TrimOws(header);
  size_t eq = s.find('=');
  if (eq == std::string_view::npos || eq != 5 || !StartsWithIgnoreCase(s, "bytes")) {
    return ignore;  // another unit, or no unit at all
  }
  std::string_view spec = TrimOws(s.substr(eq + 1));
  if (spec.empty() || spec.find(',') != std::string_view::npos) return ignore;
  if (spec.front() == '-') return ParseSuffixRange(spec.substr(1), size);

  auto first = ConsumeNumber(spec);
  if (!first || spec.empty() || spec.front() != '-') return ignore;
  spec.remove_prefix(1);
  std::optional<Number> last;
  if (!spec.empty()) {
    last = ConsumeNumber(spec);
    if (!last || !spec.empty() || Less(*last, *first)) return ignore;
  }
  // An overflowed first saturates at 2^64-1, which is >= any size.
  if (size == 0 || first->value >= size) {
    return Err(RangeInvalid(fmt::format("range starts beyond the {} bytes available", size)));
  }
  uint64_t last_value = last ? std::min(last->value, size - 1) : size - 1;
  return std::optional<ByteRange>(ByteRange{first->value, last_value});
}

std::string FormatContentRange(ByteRange range, uint64_t size) {
  return fmt::format("bytes {}-{}/{}", range.first, range.last, size);
}

std::string FormatUnsatisfiedRange(uint64_t size) { return fmt::format("bytes */{}", size); }

Result<ByteRange> ParseUploadContentRange(std::string_view header) {
  std::string_view s = TrimOws(header);
  if (StartsWithIgnoreCase(s, "bytes=")) return ParseClosedRange(s.substr(6));
  if (!StartsWithIgnoreCase(s, "bytes ")) return ParseClosedRange(s);

  // RFC 9110 Content-Range: "bytes" SP <first>-<last> "/" (<complete-length> | "*").
  s.remove_prefix(6);
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return Err(RangeInvalid("Content-Range without a length"));
  WHARF_ASSIGN_OR_RETURN(ByteRange range, ParseClosedRange(s.substr(0, slash)));
  std::string_view total = s.substr(slash + 1);
  if (total == "*") return range;
  auto n = ConsumeNumber(total);
  if (!n || !total.empty()) return Err(RangeInvalid("invalid Content-Range length"));
  if (!n->overflow && n->value <= range.last) {
    return Err(RangeInvalid("Content-Range end beyond its complete length"));
  }
  return range;
}

}  // namespace wharf
