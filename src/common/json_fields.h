// Hostile-input-safe field readers over nlohmann::json objects, for every wire format wharf
// parses (the cluster map, heartbeats, chunkserver inventories). They never throw: a missing field,
// a wrong type, a negative or fractional number all come back as kInvalidArgument naming the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf::json_fields {

// `obj[key]` as a string. kInvalidArgument if `obj` is not an object, or the field is missing
// (unless `fallback` is given) or not a string.
Result<std::string> GetString(const nlohmann::json& obj, std::string_view key,
                              std::optional<std::string> fallback = std::nullopt);

// `obj[key]` as a non-negative integer that fits in uint64_t. Floats (including integers too
// large for uint64_t, which nlohmann parses as floats), negatives, strings: kInvalidArgument.
Result<uint64_t> GetUint(const nlohmann::json& obj, std::string_view key,
                         std::optional<uint64_t> fallback = std::nullopt);

// `obj[key]` as an integer that fits in int64_t (negative allowed). Floats, integers past
// INT64_MAX, strings: kInvalidArgument.
Result<int64_t> GetInt(const nlohmann::json& obj, std::string_view key,
                       std::optional<int64_t> fallback = std::nullopt);

// `obj[key]` as a bool.
Result<bool> GetBool(const nlohmann::json& obj, std::string_view key,
                     std::optional<bool> fallback = std::nullopt);

// `obj[key]` as an array; the returned pointer points into `obj`.
Result<const nlohmann::json*> GetArray(const nlohmann::json& obj, std::string_view key);

}  // namespace wharf::json_fields
