// Sizes, reserves and durations as operators write them (common/units.h), over any text: an
// accepted value means what its text says.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/units.h"
#include "fuzz_check.h"

namespace {

// True when `s` is a run of decimal digits.
bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// |got - want| within rounding of a double product.
bool Near(double got, double want) { return std::fabs(got - want) <= std::fmax(1, want * 1e-12); }

// What "<number><unit>" says, computed independently: the number times the unit's power of
// 1024 (units.h), or -1 when `s` is not of that form.
double SizeSays(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  size_t n = 0;
  while (n < s.size() && ((s[n] >= '0' && s[n] <= '9') || s[n] == '.')) ++n;
  std::string number(s.substr(0, n)), unit;
  for (char c : s.substr(n)) unit += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (unit.size() > 1 && unit.back() == 'b') unit.pop_back();
  if (unit.size() > 1 && unit.back() == 'i') unit.pop_back();
  static const std::string kUnits = "kmgt";
  double mult = 1;
  if (unit == "b" || unit.empty()) {
    mult = 1;
  } else if (unit.size() == 1 && kUnits.find(unit[0]) != std::string::npos) {
    mult = std::pow(1024.0, static_cast<double>(kUnits.find(unit[0]) + 1));
  } else {
    return -1;
  }
  char* end = nullptr;
  double v = std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size()) return -1;
  return v * mult;
}

void CheckBytes(std::string_view in) {
  auto bytes = wharf::ParseBytes(in);
  if (!bytes) {
    FUZZ_CHECK(bytes.error().code() == wharf::Code::kInvalidArgument);
    return;
  }
  double says = SizeSays(in);
  FUZZ_CHECK(says >= 0 && Near(static_cast<double>(*bytes), says));
  // Its plain decimal form is the same size, with or without a "B".
  const std::string plain = std::to_string(*bytes);
  auto again = wharf::ParseBytes(plain);
  FUZZ_CHECK(again && *again == *bytes);
  auto with_b = wharf::ParseBytes(plain + "B");
  FUZZ_CHECK(with_b && *with_b == *bytes);
  // A bare number with a unit is that multiple of it (when it fits).
  if (AllDigits(in) && in.size() <= 37) {  // ParseBytes takes at most 40 characters
    for (auto [unit, mult] : {std::pair{"k", 1024.0}, {"MiB", 1048576.0}, {"g", 1073741824.0}}) {
      const double want = static_cast<double>(*bytes) * mult;
      if (!(want < 1.8e19)) continue;  // out of range, rightly refused
      auto scaled = wharf::ParseBytes(std::string(in) + unit);
      FUZZ_CHECK(scaled && Near(static_cast<double>(*scaled), want));
    }
  }
  FUZZ_CHECK(!wharf::FormatBytes(*bytes).empty());
}

void CheckReserve(std::string_view in) {
  auto reserve = wharf::ParseReserve(in);
  if (!reserve) return;
  if (reserve->percent) {
    FUZZ_CHECK(reserve->value >= 0 && reserve->value <= 100);
    FUZZ_CHECK(reserve->BytesOf(1000) <= 1000);
  } else {
    auto bytes = wharf::ParseBytes(in);
    FUZZ_CHECK(bytes && reserve->BytesOf(0) == *bytes);
  }
}

void CheckDuration(std::string_view in) {
  auto duration = wharf::ParseDuration(in);
  if (!duration) {
    FUZZ_CHECK(duration.error().code() == wharf::Code::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(duration->count() >= 0);
  auto again = wharf::ParseDuration(std::to_string(duration->count()) + "ms");
  FUZZ_CHECK(again && *again == *duration);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = wharf::fuzz::AsText(data, size);
  CheckBytes(in);
  CheckReserve(in);
  CheckDuration(in);
  return 0;
}
