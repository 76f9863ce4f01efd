// Parsing of sizes and durations given by operators (flags and YAML).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf {

// A whole number of bytes with an optional binary unit: "4096", "4096B", "512K" / "512KiB",
// "16M" / "16MiB", "1G" / "1GiB", "2T" / "2TiB" (powers of 1024). Fractions ("1.5MiB") and
// decimal-looking units ("16mb", "4KB") are refused rather than guessed. kInvalidArgument,
// with a message that lists the accepted forms, otherwise or on overflow.
Result<uint64_t> ParseBytes(std::string_view s);

// Limits of a chunk: chunkservers refuse chunks over kMaxChunkBytes by default (--max-chunk),
// and chunks under kMinChunkBytes would make a file per few pages.
inline constexpr uint64_t kMinChunkBytes = 4u << 10;
inline constexpr uint64_t kMaxChunkBytes = 1u << 30;
// kInvalidArgument naming the limits when `bytes` is outside kMinChunkBytes..kMaxChunkBytes.
Status CheckChunkSize(uint64_t bytes);

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
