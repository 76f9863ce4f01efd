#include "cli/common_flags.h"

#include <iostream>

#include "cli/flag_checks.h"
#include "common/log.h"
#include "http/cluster_auth.h"

namespace wharf::cli {

void AddCommonFlags(CLI::App& app, CommonFlags* f) {
  app.add_option("--config", f->config, "YAML file of flag values (flags on the command line win)");
  app.add_option("--log-level", f->log_level, "least severe log lines written")
      ->capture_default_str()
      ->check(OneOf({"trace", "debug", "info", "warn", "error"}));
  app.add_flag("--check-config", f->check_config,
               "validate the flags and the files they name, print 'configuration ok' and exit "
               "0 without starting (non-zero and one line on the first problem)");
}

std::optional<int> ApplyLogLevel(const std::string& role, const std::string& level) {
  if (!SetLogLevel(level)) return ConfigError(role, "unknown --log-level " + level);
  return std::nullopt;
}

std::optional<int> CheckConfigDone(const std::string& role, const CommonFlags& f) {
  if (!f.check_config) return std::nullopt;
  std::cout << "wharf " << role << ": configuration ok" << std::endl;
  return 0;
}

void AddClusterKeyFlag(CLI::App& app, std::string* path, const std::string& description) {
  app.add_option("--cluster-key", *path, description);
}

std::optional<int> LoadClusterKeyFlag(const std::string& role, const std::string& path,
                                      std::shared_ptr<const ClusterKey>* key) {
  if (path.empty()) return std::nullopt;
  auto loaded = ClusterKey::Load(path);
  if (!loaded) return ConfigError(role, loaded.error().message());
  *key = std::move(*loaded);
  return std::nullopt;
}

}  // namespace wharf::cli
