// CLI11 validators for the daemons' flags. Each one both checks a value (on the command line
// and from a --config file) and describes what it accepts; that description is the "values"
// column of docs/configuration.md (wharf config-reference), so the limits documented are the
// limits enforced.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace wharf::cli {

// A size (common/units.h ParseBytes) in [min, max]: "SIZE 4KiB..1GiB".
CLI::Validator SizeIn(uint64_t min, uint64_t max);
// A duration (ParseDuration) in [min, max]: "DURATION 10ms..10m".
CLI::Validator DurationIn(std::chrono::milliseconds min, std::chrono::milliseconds max);
// A whole number in [min, max]: "INT 1..64".
CLI::Validator IntIn(long long min, long long max);
// A number in (above, max]: "NUMBER >1.5".
CLI::Validator NumberAbove(double above);
// One of `names`: "most_free|round_robin|named".
CLI::Validator OneOf(std::vector<std::string> names);
// A chunkserver reserve (ParseReserve): "PERCENT%|SIZE".
CLI::Validator ReserveValue();
// HOST:PORT.
CLI::Validator HostPort();

// "4KiB", "16MiB", "1000" (the largest binary unit that divides n).
std::string SizeText(uint64_t n);
// "10ms", "5s", "10m", "24h" (the largest unit that divides d).
std::string DurationText(std::chrono::milliseconds d);

}  // namespace wharf::cli
