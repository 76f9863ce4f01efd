// Flags every daemon takes (--config, --log-level, --check-config) and the cluster key flag
// of the daemons and the tools, with the one loader of its file.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/config.h"

namespace wharf {
class ClusterKey;
}

namespace wharf::cli {

struct CommonFlags {
  std::string config;
  std::string log_level = "info";
  bool check_config = false;
};
// Adds --config, --log-level and --check-config.
void AddCommonFlags(CLI::App& app, CommonFlags* f);
// Applies --log-level; the exit code (2, one line) when it is unknown.
std::optional<int> ApplyLogLevel(const std::string& role, const std::string& level);
// With --check-config: prints "wharf <role>: configuration ok" and returns 0 (the caller
// exits); without: nullopt.
std::optional<int> CheckConfigDone(const std::string& role, const CommonFlags& f);

// Adds --cluster-key FILE with `description`.
void AddClusterKeyFlag(CLI::App& app, std::string* path, const std::string& description);
// Loads the cluster key file `path` ("" = none) into *key. The exit code (2, one line
// "wharf <role>: ...") when the file is refused (missing, too short, mode too open).
std::optional<int> LoadClusterKeyFlag(const std::string& role, const std::string& path,
                                      std::shared_ptr<const ClusterKey>* key);

}  // namespace wharf::cli
