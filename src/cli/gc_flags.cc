#include "cli/gc_flags.h"

#include <fmt/format.h>

#include "common/units.h"

namespace wharf::cli {
namespace {

constexpr std::chrono::seconds kMax{10LL * 366 * 24 * 3600};

Result<std::chrono::seconds> Seconds(const char* flag, const std::string& text) {
  auto d = ParseDuration(text);
  if (!d) return Err(InvalidArgument(fmt::format("{}: {}", flag, d.error().message())));
  if (d->count() < 0) return Err(InvalidArgument(fmt::format("{}: negative duration", flag)));
  if (d->count() % 1000 != 0) {
    return Err(InvalidArgument(fmt::format("{}: whole seconds only, got \"{}\"", flag, text)));
  }
  auto s = std::chrono::duration_cast<std::chrono::seconds>(*d);
  if (s > kMax) return Err(InvalidArgument(fmt::format("{}: more than ten years", flag)));
  return s;
}

}  // namespace

Result<GcFlags> ParseGcFlags(const std::string& grace, const std::string& untagged_after) {
  GcFlags f;
  WHARF_ASSIGN_OR_RETURN(f.grace, Seconds("--gc-grace", grace));
  if (!untagged_after.empty() && untagged_after != "off") {
    WHARF_ASSIGN_OR_RETURN(f.untagged_after, Seconds("--gc-untagged-after", untagged_after));
  }
  return f;
}

}  // namespace wharf::cli
