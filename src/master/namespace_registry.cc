#include "master/namespace_registry.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"

namespace wharf {
namespace {

using json = nlohmann::json;
constexpr const char* kNamespaceFile = "namespace.json";

}  // namespace

bool ValidStoreId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::string> ParseNamespaceFile(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Err(InvalidArgument("not a JSON object"));
  auto format = j.find("format");
  if (format == j.end() || !format->is_number_integer() || format->get<int64_t>() != 1) {
    return Err(InvalidArgument("\"format\" must be 1"));
  }
  auto id = j.find("store_id");
  if (id == j.end() || !id->is_string() || !ValidStoreId(id->get<std::string>())) {
    return Err(InvalidArgument("\"store_id\" must be a store id"));
  }
  return id->get<std::string>();
}

NamespaceRegistry::NamespaceRegistry(std::string data_dir)
    : data_dir_(std::move(data_dir)), log_(GetLogger("master")) {}

Status NamespaceRegistry::Load() {
  if (data_dir_.empty()) return Status::Ok();
  const std::string path = data_dir_ + "/" + kNamespaceFile;
  auto text = ReadFile(path);
  if (!text) {
    if (text.error().code() == Code::kNotFound) return Status::Ok();
    return text.error();
  }
  auto id = ParseNamespaceFile(*text);
  if (!id) return Corruption(fmt::format("{}: {}", path, id.error().message()));
  std::lock_guard lock(mutex_);
  store_id_ = *id;
  log_->info("loaded namespace path={} store_id={}", path, *id);
  return Status::Ok();
}

std::optional<std::string> NamespaceRegistry::store_id() const {
  std::lock_guard lock(mutex_);
  return store_id_;
}

Result<bool> NamespaceRegistry::Claim(const std::string& id) {
  if (!ValidStoreId(id)) return Err(InvalidArgument("store_id: not a store id"));
  std::lock_guard lock(mutex_);
  if (store_id_) {
    if (*store_id_ == id) return false;
    return Err(
        Conflict(fmt::format("this cluster serves metadata store {}, not {}", *store_id_, id)));
  }
  if (!data_dir_.empty()) {
    json j = {{"format", 1}, {"store_id", id}};
    WHARF_RETURN_IF_ERROR(WriteFileAtomic(data_dir_ + "/" + kNamespaceFile, j.dump() + "\n"));
  }
  store_id_ = id;
  log_->info("namespace set store_id={}", id);
  return true;
}

}  // namespace wharf
