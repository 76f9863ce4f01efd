// SqliteMetaStore: the work queue ("Work queue" in meta_store.h).
//
//   work_queue(id, kind, target, repository, digest, tag, state, attempts, next_attempt_unix,
//              last_error, created_unix, updated_unix, holder, lease_until_unix, version)
//     kind: QueueKind as a number (claims are ordered by it); state: QueueState as a number
//     unique (target, kind, repository, digest, tag): one row per item, enqueued again in place
//
// One connection behind mu_ and BEGIN IMMEDIATE: a claim's select and update cannot interleave
// with another claim of this process, and other processes on the file wait for the write lock.
#include "meta/sqlite/sqlite_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using sqlite::Stmt;
using sqlite::Txn;

namespace {

#define WHARF_QUEUE_COLUMNS                                                         \
  "id, kind, target, repository, digest, tag, state, attempts, next_attempt_unix, " \
  "last_error, created_unix, updated_unix, holder, lease_until_unix, version"

Result<QueueItem> ReadItem(const Stmt& q) {
  QueueItem it;
  it.id = q.Int(0);
  const int64_t kind = q.Int(1);
  const int64_t state = q.Int(6);
  if (kind < 0 || kind > static_cast<int64_t>(QueueKind::kDelete) || state < 0 ||
      state > static_cast<int64_t>(QueueState::kFailed)) {
    return Err(Corruption("queue item " + std::to_string(it.id) + ": unknown kind or state"));
  }
  it.key.kind = static_cast<QueueKind>(kind);
  it.key.target = q.Text(2);
  it.key.repo = q.Text(3);
  it.key.digest = q.Text(4);
  it.key.tag = q.Text(5);
  it.state = static_cast<QueueState>(state);
  it.attempts = q.Int(7);
  it.next_attempt_unix = q.Int(8);
  it.last_error = q.Text(9);
  it.created_unix = q.Int(10);
  it.updated_unix = q.Int(11);
  it.holder = q.Text(12);
  it.lease_until_unix = q.Int(13);
  it.version = q.Int(14);
  return it;
}

Result<std::vector<QueueItem>> ReadItems(Stmt& q) {
  std::vector<QueueItem> out;
  while (true) {
    WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    WHARF_ASSIGN_OR_RETURN(QueueItem it, ReadItem(q));
    out.push_back(std::move(it));
  }
  return out;
}

}  // namespace

Result<QueueItem> SqliteMetaStore::ReadQueueItemLocked(const QueueKey& key) {
  WHARF_ASSIGN_OR_RETURN(
      Stmt q, db_.Prepare("SELECT " WHARF_QUEUE_COLUMNS " FROM work_queue WHERE target = ?1 AND "
                          "kind = ?2 AND repository = ?3 AND digest = ?4 AND tag = ?5"));
  q.Bind(1, key.target)
      .Bind(2, static_cast<int64_t>(key.kind))
      .Bind(3, key.repo)
      .Bind(4, key.digest)
      .Bind(5, key.tag);
  WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Err(NotFound("no such queue item"));
  return ReadItem(q);
}

Result<QueueItem> SqliteMetaStore::EnqueueItem(const QueueKey& key) {
  WHARF_META_RETURN_IF_ERROR(CheckQueueKey(key));
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_META_RETURN_IF_ERROR(txn.Begin());
  {
    // SET expressions read the row as it was: a done (2) or failed (3) item starts over.
    WHARF_ASSIGN_OR_RETURN(
        Stmt up,
        db_.Prepare("INSERT INTO work_queue(kind, target, repository, digest, tag, state, "
                    "attempts, next_attempt_unix, last_error, created_unix, updated_unix, holder, "
                    "lease_until_unix, version) VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, ?6, '', ?6, ?6, "
                    "'', 0, 1) ON CONFLICT(target, kind, repository, digest, tag) DO UPDATE SET "
                    "version = version + 1, "
                    "attempts = CASE WHEN state >= 2 THEN 0 ELSE attempts END, "
                    "next_attempt_unix = CASE WHEN state >= 2 THEN ?6 ELSE next_attempt_unix END, "
                    "created_unix = CASE WHEN state >= 2 THEN ?6 ELSE created_unix END, "
                    "updated_unix = CASE WHEN state >= 2 THEN ?6 ELSE updated_unix END, "
                    "state = CASE WHEN state >= 2 THEN 0 ELSE state END"));
    WHARF_META_RETURN_IF_ERROR(up.Bind(1, static_cast<int64_t>(key.kind))
                                   .Bind(2, key.target)
                                   .Bind(3, key.repo)
                                   .Bind(4, key.digest)
                                   .Bind(5, key.tag)
                                   .Bind(6, Now())
                                   .Run());
  }
  WHARF_ASSIGN_OR_RETURN(QueueItem it, ReadQueueItemLocked(key));
  WHARF_META_RETURN_IF_ERROR(txn.Commit());
  return it;
}

Result<QueueItem> SqliteMetaStore::GetQueueItem(const QueueKey& key) {
  std::lock_guard lock(mu_);
  return ReadQueueItemLocked(key);
}

Result<std::vector<QueueItem>> SqliteMetaStore::ClaimQueueItems(std::string_view target,
                                                                std::string_view holder,
                                                                int64_t lease_seconds,
                                                                size_t limit) {
  WHARF_RETURN_IF_ERROR(CheckQueueClaimArgs(target, holder, lease_seconds, limit));
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_META_RETURN_IF_ERROR(txn.Begin());
  const int64_t now = Now();
  std::vector<int64_t> ids;
  {
    WHARF_ASSIGN_OR_RETURN(
        Stmt q, db_.Prepare("SELECT id FROM work_queue WHERE target = ?1 AND ((state = 0 AND "
                            "next_attempt_unix <= ?2) OR (state = 1 AND lease_until_unix <= ?2)) "
                            "ORDER BY kind, id LIMIT ?3"));
    q.Bind(1, target).Bind(2, now).Bind(3, sqlite::SqlLimit(limit));
    while (true) {
      WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      ids.push_back(q.Int(0));
    }
  }
  std::vector<QueueItem> out;
  for (int64_t id : ids) {
    {
      WHARF_ASSIGN_OR_RETURN(
          Stmt up, db_.Prepare("UPDATE work_queue SET state = 1, holder = ?2, lease_until_unix = "
                               "?3, attempts = attempts + 1, updated_unix = ?4 WHERE id = ?1"));
      WHARF_META_RETURN_IF_ERROR(
          up.Bind(1, id).Bind(2, holder).Bind(3, now + lease_seconds).Bind(4, now).Run());
    }
    WHARF_ASSIGN_OR_RETURN(
        Stmt q, db_.Prepare("SELECT " WHARF_QUEUE_COLUMNS " FROM work_queue WHERE id = ?1"));
    WHARF_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (!row) return Err(Internal("claimed queue item vanished in its transaction"));
    WHARF_ASSIGN_OR_RETURN(QueueItem it, ReadItem(q));
    out.push_back(std::move(it));
  }
  WHARF_META_RETURN_IF_ERROR(txn.Commit());
  return out;
}

Status SqliteMetaStore::CompleteQueueItem(const QueueItem& claimed) {
  std::lock_guard lock(mu_);
  const int64_t now = Now();
  WHARF_ASSIGN_OR_RETURN(
      Stmt up,
      db_.Prepare("UPDATE work_queue SET state = CASE WHEN version = ?4 THEN 2 ELSE 0 END, "
                  "next_attempt_unix = ?5, last_error = '', updated_unix = ?5, holder = '', "
                  "lease_until_unix = 0 WHERE id = ?1 AND state = 1 AND holder = ?2 AND "
                  "attempts = ?3"));
  WHARF_RETURN_IF_ERROR(up.Bind(1, claimed.id)
                            .Bind(2, claimed.holder)
                            .Bind(3, claimed.attempts)
                            .Bind(4, claimed.version)
                            .Bind(5, now)
                            .Run());
  if (up.Changes() == 0) return Conflict("queue item's claim is no longer held");
  return Status::Ok();
}

Status SqliteMetaStore::FailQueueItem(const QueueItem& claimed, std::string_view error,
                                      std::optional<int64_t> retry_after_seconds) {
  if (retry_after_seconds && *retry_after_seconds < 0) {
    return InvalidArgument("queue retry delay is negative");
  }
  std::lock_guard lock(mu_);
  const int64_t now = Now();
  const int64_t next = retry_after_seconds ? now + *retry_after_seconds : now;
  WHARF_ASSIGN_OR_RETURN(
      Stmt up,
      db_.Prepare("UPDATE work_queue SET state = CASE WHEN ?5 = 1 OR version <> ?4 THEN 0 ELSE 3 "
                  "END, next_attempt_unix = ?6, last_error = ?7, updated_unix = ?8, holder = '', "
                  "lease_until_unix = 0 WHERE id = ?1 AND state = 1 AND holder = ?2 AND "
                  "attempts = ?3"));
  WHARF_RETURN_IF_ERROR(up.Bind(1, claimed.id)
                            .Bind(2, claimed.holder)
                            .Bind(3, claimed.attempts)
                            .Bind(4, claimed.version)
                            .Bind(5, int64_t{retry_after_seconds ? 1 : 0})
                            .Bind(6, next)
                            .Bind(7, error)
                            .Bind(8, now)
                            .Run());
  if (up.Changes() == 0) return Conflict("queue item's claim is no longer held");
  return Status::Ok();
}

Result<uint64_t> SqliteMetaStore::RenewQueueClaims(std::string_view holder, int64_t lease_seconds) {
  WHARF_RETURN_IF_ERROR(CheckQueueRenewArgs(holder, lease_seconds));
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(Stmt up, db_.Prepare("UPDATE work_queue SET lease_until_unix = ?2 "
                                              "WHERE holder = ?1 AND state = 1"));
  WHARF_META_RETURN_IF_ERROR(up.Bind(1, holder).Bind(2, Now() + lease_seconds).Run());
  return static_cast<uint64_t>(up.Changes());
}

Result<uint64_t> SqliteMetaStore::RecoverQueueItems(std::string_view holder) {
  WHARF_RETURN_IF_ERROR(CheckQueueRecoverArgs(holder));
  std::lock_guard lock(mu_);
  const int64_t now = Now();
  WHARF_ASSIGN_OR_RETURN(
      Stmt up, db_.Prepare("UPDATE work_queue SET state = 0, next_attempt_unix = ?2, holder = '', "
                           "lease_until_unix = 0, updated_unix = ?2 WHERE holder = ?1 AND "
                           "state = 1"));
  WHARF_META_RETURN_IF_ERROR(up.Bind(1, holder).Bind(2, now).Run());
  return static_cast<uint64_t>(up.Changes());
}

Result<QueueStats> SqliteMetaStore::GetQueueStats(std::string_view target) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q, db_.Prepare("SELECT state, COUNT(*), MIN(created_unix) FROM work_queue WHERE "
                          "?1 = '' OR target = ?1 GROUP BY state"));
  q.Bind(1, target);
  QueueStats stats;
  while (true) {
    WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    AddQueueStateCount(stats, q.Int(0), q.U64(1), q.Int(2));
  }
  return stats;
}

Result<std::vector<QueueItem>> SqliteMetaStore::ListQueueItems(std::string_view target,
                                                               std::optional<QueueState> state,
                                                               int64_t after_id, size_t limit) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q, db_.Prepare("SELECT " WHARF_QUEUE_COLUMNS " FROM work_queue WHERE (?1 = '' OR "
                          "target = ?1) AND (?2 < 0 OR state = ?2) AND id > ?3 ORDER BY id "
                          "LIMIT ?4"));
  q.Bind(1, target)
      .Bind(2, state ? static_cast<int64_t>(*state) : int64_t{-1})
      .Bind(3, after_id)
      .Bind(4, sqlite::SqlLimit(limit));
  return ReadItems(q);
}

Result<bool> SqliteMetaStore::DigestQueued(const Digest& digest) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q,
      db_.Prepare("SELECT EXISTS (SELECT 1 FROM work_queue WHERE digest = ?1 AND state <> 2 AND "
                  "kind IN (0, 1)) OR EXISTS (SELECT 1 FROM work_queue w JOIN repositories r ON "
                  "r.name = w.repository JOIN manifest_refs f ON f.repo_id = r.id AND "
                  "f.manifest = w.digest WHERE w.kind = 1 AND w.state <> 2 AND f.target = ?1)"));
  WHARF_ASSIGN_OR_RETURN(bool row, q.Bind(1, digest.ToString()).Step());
  if (!row) return Err(Internal("EXISTS returned no row"));
  return q.Int(0) != 0;
}

Result<uint64_t> SqliteMetaStore::PruneQueue(int64_t updated_before_unix, size_t limit) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt del, db_.Prepare("DELETE FROM work_queue WHERE id IN (SELECT id FROM work_queue WHERE "
                            "state = 2 AND updated_unix < ?1 ORDER BY id LIMIT ?2)"));
  WHARF_META_RETURN_IF_ERROR(
      del.Bind(1, updated_before_unix).Bind(2, sqlite::SqlLimit(limit)).Run());
  return static_cast<uint64_t>(del.Changes());
}

}  // namespace wharf
