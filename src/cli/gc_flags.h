// The garbage collector's flags, shared by `wharf gateway`, `wharf up` and `wharf gc`.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/status.h"

namespace wharf::cli {

struct GcFlags {
  std::chrono::seconds grace{3600};
  std::optional<std::chrono::seconds> untagged_after;  // nullopt: untagged manifests are kept
};

// --gc-grace: a duration ("1h", "90s", "0"), whole seconds, 0 allowed. --gc-untagged-after: a
// duration, or "" / "off" for never. kInvalidArgument naming the flag otherwise (negative,
// fractional seconds below one, garbage, more than ten years).
Result<GcFlags> ParseGcFlags(const std::string& grace, const std::string& untagged_after);

}  // namespace wharf::cli
