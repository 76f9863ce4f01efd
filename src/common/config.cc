#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <iostream>

namespace wharf {

Status ApplyYamlConfig(CLI::App& app, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("config " + path + ": " + e.what());
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return InvalidArgument("config " + path + ": top level must be a mapping");
  for (const auto& kv : root) {
    // YAML allows any node as a key ("? [a, b]", "{[a]: b}"); as<std::string>() would throw.
    if (!kv.first.IsScalar()) {
      return InvalidArgument("config " + path + ": keys must be flag names");
    }
    std::string key = kv.first.Scalar();
    std::string flag = key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    CLI::Option* opt = nullptr;
    try {
      opt = app.get_option("--" + flag);
    } catch (const CLI::OptionNotFound&) {
      return InvalidArgument("config " + path + ": unknown key '" + key + "'");
    }
    if (opt->count() > 0) continue;  // the command line wins
    std::vector<std::string> values;
    try {
      if (kv.second.IsSequence()) {
        for (const auto& v : kv.second) values.push_back(v.as<std::string>());
      } else if (kv.second.IsScalar()) {
        values.push_back(kv.second.as<std::string>());
      } else {
        return InvalidArgument("config " + path + ": key '" + key + "' must be a value or a list");
      }
    } catch (const YAML::Exception& e) {
      return InvalidArgument("config " + path + ": key '" + key + "': " + e.what());
    }
    try {
      for (auto& v : values) opt->add_result(v);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      return InvalidArgument("config " + path + ": key '" + key + "': " + e.what());
    }
  }
  return Status::Ok();
}

std::vector<std::string> SplitCommas(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& s : in) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      std::string part =
          s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!part.empty()) out.push_back(part);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

int ConfigError(const std::string& role, const std::string& message) {
  std::cerr << "wharf " << role << ": " << message << std::endl;
  return 2;
}

std::optional<int> ParseCommandLine(CLI::App& app, const std::string& role,
                                    std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 takes the vector reversed
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    return ConfigError(role, e.what());
  }
  CLI::Option* config = nullptr;
  try {
    config = app.get_option("--config");
  } catch (const CLI::OptionNotFound&) {
  }
  if (config && config->count() > 0) {
    Status st = ApplyYamlConfig(app, config->as<std::string>());
    if (!st.ok()) return ConfigError(role, st.message());
  }
  return std::nullopt;
}

}  // namespace wharf
