// Logging: one spdlog logger per component, messages as an event plus key=value pairs:
//   log->warn("replica write failed chunk={} peer={} err={}", id, peer, st);
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace wharf {

using Logger = std::shared_ptr<spdlog::logger>;

// Returns the logger for `component` (created on first use; thread-safe).
Logger GetLogger(const std::string& component);

// Sets the level of every logger ("trace".."off"). Returns false for an unknown name.
bool SetLogLevel(const std::string& level);

}  // namespace wharf
