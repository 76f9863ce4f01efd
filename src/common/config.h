// Configuration: a YAML file plus flags; flags win. Each top-level YAML key names a flag
// ("chunk_size: 16MiB" or "chunk-size: 16MiB" sets --chunk-size); a list sets a repeatable
// flag. An unknown key, or a bad value, stops the process at start with one clear line.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace wharf {

// Applies the YAML file at `path` to `app`'s options that were not given on the command line.
Status ApplyYamlConfig(CLI::App& app, const std::string& path);

// Parses args (without the program and role names) into `app`, applying the YAML file named
// by the option "--config" if the app has one and it was given. On --help prints help and
// returns 0; on an error prints "wharf <role>: <message>" on one line and returns 2;
// returns nullopt when the caller should go on.
std::optional<int> ParseCommandLine(CLI::App& app, const std::string& role,
                                    std::vector<std::string> args);

// Flattens repeated flags whose values may each be comma-separated ("a,b" "c" -> a, b, c),
// dropping empty items.
std::vector<std::string> SplitCommas(const std::vector<std::string>& in);

// Prints "wharf <role>: <message>" to stderr and returns 2 (for validation after parsing).
int ConfigError(const std::string& role, const std::string& message);

}  // namespace wharf
