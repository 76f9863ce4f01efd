// Parsing of sizes and durations given by operators (flags and YAML).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf {

// "16MiB", "16M", "1GiB", "512k", "1073741824", "4KB" (K/M/G/T are powers of 1024;
// a trailing "B"/"iB" is optional). kInvalidArgument otherwise, or on overflow.
Result<uint64_t> ParseBytes(std::string_view s);

// A reserve: either a percentage of capacity ("10%") or a byte count ("2GiB").
struct Reserve {
  bool percent = true;
  double value = 10;   // the percentage (0..100) when `percent`
  uint64_t bytes = 0;  // the byte count otherwise (exact: a double is not, above 2^53)
  // At most `capacity` for a percentage.
  uint64_t BytesOf(uint64_t capacity) const;
};
Result<Reserve> ParseReserve(std::string_view s);

// "2s", "500ms", "1m", "24h", or a bare number of seconds ("2", "0.5").
Result<std::chrono::milliseconds> ParseDuration(std::string_view s);

// 1536 -> "1.5 KiB"
std::string FormatBytes(uint64_t n);

}  // namespace wharf
