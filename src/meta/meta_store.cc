#include "meta/meta_store.h"

#include <fmt/format.h>

#include "common/fs.h"
#include "common/limits.h"
#include "meta/postgres/postgres_meta_store.h"
#include "meta/sqlite/sqlite_meta_store.h"

namespace wharf {

std::string NewMetaStoreId() { return "ms-" + RandomHex(16); }

Status CheckUploadTail(std::string_view tail) {
  if (tail.size() <= kMaxUploadTailBytes) return Status::Ok();
  return InvalidArgument(
      fmt::format("upload tail of {} bytes is over the {} kept", tail.size(), kMaxUploadTailBytes));
}

bool ChunkOwner::valid() const {
  switch (kind) {
    case ChunkOwnerKind::kUpload:
    case ChunkOwnerKind::kFile:
    case ChunkOwnerKind::kBlob:
      return !id.empty();
  }
  return false;
}

std::string ChunkOwner::ToString() const {
  switch (kind) {
    case ChunkOwnerKind::kUpload:
      return "upload:" + id;
    case ChunkOwnerKind::kFile:
      return "file:" + id;
    case ChunkOwnerKind::kBlob:
      return "blob:" + id;
  }
  return fmt::format("invalid-kind-{}:{}", static_cast<int>(kind), id);
}

Result<std::unique_ptr<MetaStore>> OpenMetaStore(std::string_view url, MetaStoreOptions options) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.starts_with(kSqlite)) {
    std::string path(url.substr(kSqlite.size()));
    if (path.empty()) return Err(InvalidArgument("meta store url \"sqlite:\" names no file"));
    WHARF_ASSIGN_OR_RETURN(auto store, SqliteMetaStore::Open(path, std::move(options)));
    return std::unique_ptr<MetaStore>(std::move(store));
  }
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    WHARF_ASSIGN_OR_RETURN(auto store,
                           PostgresMetaStore::Open(std::string(url), std::move(options)));
    return std::unique_ptr<MetaStore>(std::move(store));
  }
  // Only the scheme is echoed: a url may carry a password.
  std::string_view scheme = url.substr(0, url.find(':'));
  return Err(InvalidArgument(fmt::format(
      "unknown meta store url scheme \"{}\" (want sqlite:PATH or postgres://...)", scheme)));
}

}  // namespace wharf
