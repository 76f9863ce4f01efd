#include "common/units.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace wharf {
namespace {

// Splits "12.5MiB" into number "12.5" and suffix "MiB".
bool SplitNumber(std::string_view s, double* num, std::string_view* suffix, bool* integral) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return false;
  std::string digits(s.substr(0, i));
  if (digits.find('.') != digits.rfind('.')) return false;
  if (digits == ".") return false;
  char* end = nullptr;
  *num = std::strtod(digits.c_str(), &end);
  if (end != digits.c_str() + digits.size()) return false;
  *suffix = s.substr(i);
  *integral = digits.find('.') == std::string::npos;
  return true;
}

}  // namespace

Result<uint64_t> ParseBytes(std::string_view s) {
  std::string_view in = s;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  // What the operator sees for every refusal, so the fix is in the message.
  auto refuse = [in](std::string_view why) {
    return Err(InvalidArgument(fmt::format(
        "{} size '{}' (a whole number of bytes, optionally with a binary unit: 4096, 512KiB, "
        "16MiB, 1GiB, 2TiB; K, M, G, T (or k, m, g, t) mean the same)",
        why, in.substr(0, std::min<size_t>(in.size(), 48)))));
  };
  double num;
  std::string_view suffix;
  bool integral;
  if (s.size() > 40 || !SplitNumber(s, &num, &suffix, &integral)) return refuse("not a");
  // Fractions ("1.5MiB") and decimal-looking units ("16mb", "4KB": megabytes or mebibytes?)
  // are refused rather than guessed.
  if (!integral) return refuse("a fraction is not a");
  uint64_t shift;
  if (suffix.empty() || suffix == "B" || suffix == "b")
    shift = 0;
  else if (suffix == "K" || suffix == "KiB" || suffix == "k")
    shift = 10;
  else if (suffix == "M" || suffix == "MiB" || suffix == "m")
    shift = 20;
  else if (suffix == "G" || suffix == "GiB" || suffix == "g")
    shift = 30;
  else if (suffix == "T" || suffix == "TiB" || suffix == "t")
    shift = 40;
  else
    return refuse("unknown unit in");
  uint64_t v = 0;
  const char* digits_end = s.data() + (s.size() - suffix.size());
  auto [p, ec] = std::from_chars(s.data(), digits_end, v);
  if (ec != std::errc() || p != digits_end) return refuse("out of range:");
  if (shift > 0 && v > (UINT64_MAX >> shift)) return refuse("out of range:");
  return v << shift;
}

Status CheckChunkSize(uint64_t bytes) {
  if (bytes < kMinChunkBytes || bytes > kMaxChunkBytes) {
    return InvalidArgument(fmt::format("chunk size {} is outside {}..{} ({} bytes)",
                                       FormatBytes(bytes), FormatBytes(kMinChunkBytes),
                                       FormatBytes(kMaxChunkBytes), bytes));
  }
  return Status::Ok();
}

uint64_t Reserve::BytesOf(uint64_t capacity) const {
  if (!percent) return bytes;
  // Near 2^64 the product rounds up past what a uint64_t holds (casting that is undefined).
  double b = static_cast<double>(capacity) * value / 100.0;
  return b < 18446744073709551616.0 ? std::min(capacity, static_cast<uint64_t>(b)) : capacity;
}

Result<Reserve> ParseReserve(std::string_view s) {
  Reserve r;
  if (!s.empty() && s.back() == '%') {
    double num;
    std::string_view suffix;
    bool integral;
    if (!SplitNumber(s.substr(0, s.size() - 1), &num, &suffix, &integral) || !suffix.empty() ||
        num > 100) {
      return Err(InvalidArgument(fmt::format("reserve must be 0%..100% or a size: '{}'", s)));
    }
    r.percent = true;
    r.value = num;
    return r;
  }
  WHARF_ASSIGN_OR_RETURN(uint64_t bytes, ParseBytes(s));
  r.percent = false;
  r.bytes = bytes;
  return r;
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view s) {
  double num;
  std::string_view suffix;
  bool integral;
  if (s.size() > 40 || !SplitNumber(s, &num, &suffix, &integral)) {
    return Err(InvalidArgument(fmt::format("not a duration: '{}'", s)));
  }
  double ms;
  if (suffix.empty() || suffix == "s")
    ms = num * 1000;
  else if (suffix == "ms")
    ms = num;
  else if (suffix == "m")
    ms = num * 60'000;
  else if (suffix == "h")
    ms = num * 3'600'000;
  else if (suffix == "d")
    ms = num * 86'400'000;
  else
    return Err(InvalidArgument(fmt::format("unknown duration unit in '{}'", s)));
  if (!(ms < 1e15)) return Err(InvalidArgument(fmt::format("duration out of range: '{}'", s)));
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

std::string FormatBytes(uint64_t n) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return fmt::format("{} B", n);
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

}  // namespace wharf
