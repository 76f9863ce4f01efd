#include "meta/meta_store.h"

#include <fmt/format.h>

#include <algorithm>

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

std::string_view QueueKindName(QueueKind kind) {
  switch (kind) {
    case QueueKind::kBlob:
      return "blob";
    case QueueKind::kManifest:
      return "manifest";
    case QueueKind::kTag:
      return "tag";
    case QueueKind::kDelete:
      return "delete";
  }
  return "unknown";
}

std::string_view QueueStateName(QueueState state) {
  switch (state) {
    case QueueState::kPending:
      return "pending";
    case QueueState::kRunning:
      return "running";
    case QueueState::kDone:
      return "done";
    case QueueState::kFailed:
      return "failed";
  }
  return "unknown";
}

Status CheckQueueKey(const QueueKey& key) {
  if (key.target.empty()) return InvalidArgument("queue item: empty target");
  if (key.repo.empty()) return InvalidArgument("queue item: empty repository");
  switch (key.kind) {
    case QueueKind::kBlob:
    case QueueKind::kManifest:
      if (!key.tag.empty()) return InvalidArgument("queue item: a blob or manifest has no tag");
      if (!Digest::Parse(key.digest)) {
        return InvalidArgument("queue item: bad digest '" + key.digest + "'");
      }
      return Status::Ok();
    case QueueKind::kTag:
      if (key.tag.empty()) return InvalidArgument("queue item: a tag item without a tag");
      if (!key.digest.empty()) return InvalidArgument("queue item: a tag item names no digest");
      return Status::Ok();
    case QueueKind::kDelete:
      if (key.digest.empty() == key.tag.empty()) {
        return InvalidArgument("queue item: a delete names a digest or a tag");
      }
      if (!key.digest.empty() && !Digest::Parse(key.digest)) {
        return InvalidArgument("queue item: bad digest '" + key.digest + "'");
      }
      return Status::Ok();
  }
  return InvalidArgument(fmt::format("queue item: unknown kind {}", static_cast<int>(key.kind)));
}

Status CheckQueueClaimArgs(std::string_view target, std::string_view holder, int64_t lease_seconds,
                           size_t limit) {
  if (target.empty() || holder.empty()) return InvalidArgument("claim: empty target/holder");
  if (lease_seconds <= 0) return InvalidArgument("claim: lease must be positive");
  if (limit == 0) return InvalidArgument("claim: limit is 0");
  return Status::Ok();
}

Status CheckQueueRenewArgs(std::string_view holder, int64_t lease_seconds) {
  if (holder.empty()) return InvalidArgument("renew: empty holder");
  if (lease_seconds <= 0) return InvalidArgument("renew: lease must be positive");
  return Status::Ok();
}

Status CheckQueueRecoverArgs(std::string_view holder) {
  if (holder.empty()) return InvalidArgument("recover: empty holder");
  return Status::Ok();
}

void AddQueueStateCount(QueueStats& stats, int64_t state, uint64_t count, int64_t oldest_unix) {
  switch (static_cast<QueueState>(state)) {
    case QueueState::kPending:
      stats.pending = count;
      break;
    case QueueState::kRunning:
      stats.running = count;
      break;
    case QueueState::kDone:
      stats.done = count;
      return;
    case QueueState::kFailed:
      stats.failed = count;
      return;
    default:
      return;
  }
  if (stats.oldest_unix == 0 || oldest_unix < stats.oldest_unix) stats.oldest_unix = oldest_unix;
}

int64_t QueueBackoffSeconds(int64_t attempts, int64_t initial_seconds, int64_t max_seconds) {
  int64_t delay = std::max<int64_t>(initial_seconds, 0);
  if (delay == 0) return 0;
  for (int64_t i = 1; i < attempts && delay < max_seconds; ++i) delay *= 2;
  return std::min(delay, max_seconds);
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
