#include "common/json_fields.h"

#include <fmt/format.h>

namespace wharf::json_fields {
namespace {

using nlohmann::json;

// The field, or nullptr when absent. kInvalidArgument when `obj` is not an object.
Result<const json*> Find(const json& obj, std::string_view key) {
  if (!obj.is_object())
    return Err(InvalidArgument(fmt::format("expected an object around {}", key)));
  auto it = obj.find(key);
  if (it == obj.end()) return nullptr;
  return &*it;
}

Status Missing(std::string_view key) {
  return InvalidArgument(fmt::format("missing field {}", key));
}

}  // namespace

Result<std::string> GetString(const json& obj, std::string_view key,
                              std::optional<std::string> fallback) {
  WHARF_ASSIGN_OR_RETURN(const json* v, Find(obj, key));
  if (v == nullptr) {
    if (fallback) return *fallback;
    return Err(Missing(key));
  }
  if (!v->is_string()) return Err(InvalidArgument(fmt::format("field {} must be a string", key)));
  return v->get_ref<const std::string&>();
}

Result<uint64_t> GetUint(const json& obj, std::string_view key, std::optional<uint64_t> fallback) {
  WHARF_ASSIGN_OR_RETURN(const json* v, Find(obj, key));
  if (v == nullptr) {
    if (fallback) return *fallback;
    return Err(Missing(key));
  }
  if (v->is_number_unsigned()) return v->get<uint64_t>();
  // Values built in code (not parsed) may be signed integers.
  if (v->is_number_integer() && v->get<int64_t>() >= 0) {
    return static_cast<uint64_t>(v->get<int64_t>());
  }
  return Err(InvalidArgument(fmt::format("field {} must be a non-negative integer", key)));
}

Result<int64_t> GetInt(const json& obj, std::string_view key, std::optional<int64_t> fallback) {
  WHARF_ASSIGN_OR_RETURN(const json* v, Find(obj, key));
  if (v == nullptr) {
    if (fallback) return *fallback;
    return Err(Missing(key));
  }
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    return v->get<int64_t>();
  }
  return Err(InvalidArgument(fmt::format("field {} must be an integer", key)));
}

Result<bool> GetBool(const json& obj, std::string_view key, std::optional<bool> fallback) {
  WHARF_ASSIGN_OR_RETURN(const json* v, Find(obj, key));
  if (v == nullptr) {
    if (fallback) return *fallback;
    return Err(Missing(key));
  }
  if (!v->is_boolean()) return Err(InvalidArgument(fmt::format("field {} must be a bool", key)));
  return v->get<bool>();
}

Result<const json*> GetArray(const json& obj, std::string_view key) {
  WHARF_ASSIGN_OR_RETURN(const json* v, Find(obj, key));
  if (v == nullptr) return Err(Missing(key));
  if (!v->is_array()) return Err(InvalidArgument(fmt::format("field {} must be an array", key)));
  return v;
}

}  // namespace wharf::json_fields
