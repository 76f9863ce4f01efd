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
  double num;
  std::string_view suffix;
  bool integral;
  if (s.size() > 40 || !SplitNumber(s, &num, &suffix, &integral)) {
    return Err(InvalidArgument(fmt::format("not a size: '{}'", in)));
  }
  std::string suf;
  for (char c : suffix) suf += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double mult;
  if (suf.empty() || suf == "b")
    mult = 1;
  else if (suf == "k" || suf == "kb" || suf == "kib")
    mult = 1024.0;
  else if (suf == "m" || suf == "mb" || suf == "mib")
    mult = 1024.0 * 1024;
  else if (suf == "g" || suf == "gb" || suf == "gib")
    mult = 1024.0 * 1024 * 1024;
  else if (suf == "t" || suf == "tb" || suf == "tib")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else
    return Err(InvalidArgument(fmt::format("unknown size unit in '{}'", in)));
  if (mult == 1 && integral) {
    // Exact for every uint64_t, which a double is not: the digits alone, without any "B".
    std::string_view digits = s.substr(0, s.size() - suffix.size());
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || p != digits.data() + digits.size()) {
      return Err(InvalidArgument(fmt::format("size out of range: '{}'", in)));
    }
    return v;
  }
  double bytes = num * mult;
  // Below 2^64 a double converts to uint64_t exactly (doubles that large are integers);
  // llround would not do: its long long ends at 2^63.
  if (!(bytes < 18446744073709551616.0)) {
    return Err(InvalidArgument(fmt::format("size out of range: '{}'", in)));
  }
  return static_cast<uint64_t>(std::round(bytes));
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
