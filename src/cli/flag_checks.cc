#include "cli/flag_checks.h"

#include <fmt/format.h>

#include <charconv>

#include "common/units.h"
#include "http/server.h"

namespace wharf::cli {

std::string SizeText(uint64_t n) {
  static constexpr const char* kUnits[] = {"TiB", "GiB", "MiB", "KiB"};
  for (int i = 0; i < 4; ++i) {
    const uint64_t unit = 1ull << (10 * (4 - i));
    if (n != 0 && n % unit == 0) return fmt::format("{}{}", n / unit, kUnits[i]);
  }
  return std::to_string(n);
}

std::string DurationText(std::chrono::milliseconds d) {
  const long long ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

CLI::Validator SizeIn(uint64_t min, uint64_t max) {
  std::string desc = fmt::format("SIZE {}..{}", SizeText(min), SizeText(max));
  return CLI::Validator(
      [min, max](std::string& s) -> std::string {
        auto b = ParseBytes(s);
        if (!b) return b.error().message();
        if (*b < min || *b > max) {
          return fmt::format("{} is outside {}..{}", s, SizeText(min), SizeText(max));
        }
        return "";
      },
      desc, "size");
}

CLI::Validator DurationIn(std::chrono::milliseconds min, std::chrono::milliseconds max) {
  std::string desc = fmt::format("DURATION {}..{}", DurationText(min), DurationText(max));
  return CLI::Validator(
      [min, max](std::string& s) -> std::string {
        auto d = ParseDuration(s);
        if (!d) return d.error().message();
        if (*d < min || *d > max) {
          return fmt::format("{} is outside {}..{}", s, DurationText(min), DurationText(max));
        }
        return "";
      },
      desc, "duration");
}

CLI::Validator IntIn(long long min, long long max) {
  return CLI::Validator(
      [min, max](std::string& s) -> std::string {
        long long v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || end != s.data() + s.size()) return "not a whole number: " + s;
        if (v < min || v > max) return fmt::format("{} is outside {}..{}", s, min, max);
        return "";
      },
      fmt::format("INT {}..{}", min, max), "int");
}

CLI::Validator NumberAbove(double above) {
  return CLI::Validator(
      [above](std::string& s) -> std::string {
        double v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || end != s.data() + s.size()) return "not a number: " + s;
        if (!(v > above)) return fmt::format("{} is not more than {}", s, above);
        return "";
      },
      fmt::format("NUMBER >{}", above), "number");
}

CLI::Validator OneOf(std::vector<std::string> names) {
  std::string desc;
  for (const auto& n : names) desc += (desc.empty() ? "" : "|") + n;
  return CLI::Validator(
      [names, desc](std::string& s) -> std::string {
        for (const auto& n : names) {
          if (s == n) return "";
        }
        return fmt::format("'{}' is not one of {}", s, desc);
      },
      desc, "one_of");
}

CLI::Validator ReserveValue() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        auto r = ParseReserve(s);
        if (!r) return r.error().message();
        if (r->percent && (r->value < 0 || r->value > 100)) return "a percentage is 0%..100%";
        return "";
      },
      "PERCENT%|SIZE", "reserve");
}

CLI::Validator HostPort() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        auto hp = SplitHostPort(s);
        return hp ? "" : hp.error().message();
      },
      "HOST:PORT", "host_port");
}

}  // namespace wharf::cli
