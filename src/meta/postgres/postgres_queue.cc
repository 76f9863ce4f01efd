// PostgresMetaStore: the work queue ("Work queue" in meta_store.h; the table is drawn in
// sqlite_queue.cc). A claim is one UPDATE over a sub-select FOR UPDATE SKIP LOCKED: gateways
// claiming at once take disjoint items instead of queueing behind each other's row locks, and
// the SERIALIZABLE runner retries the rare serialization failure between them.
#include <algorithm>

#include "meta/postgres/postgres_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using pg::Conn;
using pg::Params;
using pg::Rows;

namespace {

#define WHARF_PG_QUEUE_COLUMNS                                                      \
  "id, kind, target, repository, digest, tag, state, attempts, next_attempt_unix, " \
  "last_error, created_unix, updated_unix, holder, lease_until_unix, version"

Result<QueueItem> ReadItem(const Rows& r, int row) {
  QueueItem it;
  it.id = r.Int(row, 0);
  const int64_t kind = r.Int(row, 1);
  const int64_t state = r.Int(row, 6);
  if (kind < 0 || kind > static_cast<int64_t>(QueueKind::kDelete) || state < 0 ||
      state > static_cast<int64_t>(QueueState::kFailed)) {
    return Err(Corruption("queue item " + std::to_string(it.id) + ": unknown kind or state"));
  }
  it.key.kind = static_cast<QueueKind>(kind);
  it.key.target = r.Text(row, 2);
  it.key.repo = r.Text(row, 3);
  it.key.digest = r.Text(row, 4);
  it.key.tag = r.Text(row, 5);
  it.state = static_cast<QueueState>(state);
  it.attempts = r.Int(row, 7);
  it.next_attempt_unix = r.Int(row, 8);
  it.last_error = r.Text(row, 9);
  it.created_unix = r.Int(row, 10);
  it.updated_unix = r.Int(row, 11);
  it.holder = r.Text(row, 12);
  it.lease_until_unix = r.Int(row, 13);
  it.version = r.Int(row, 14);
  return it;
}

Result<std::vector<QueueItem>> ReadItems(const Rows& r) {
  std::vector<QueueItem> out;
  for (int i = 0; i < r.size(); ++i) {
    WHARF_ASSIGN_OR_RETURN(QueueItem it, ReadItem(r, i));
    out.push_back(std::move(it));
  }
  return out;
}

Params KeyParams(const QueueKey& key) {
  Params p;
  p.Text(key.target)
      .Int(static_cast<int64_t>(key.kind))
      .Text(key.repo)
      .Text(key.digest)
      .Text(key.tag);
  return p;
}

}  // namespace

Result<QueueItem> PostgresMetaStore::EnqueueItem(const QueueKey& key) {
  WHARF_META_RETURN_IF_ERROR(CheckQueueKey(key));
  return RunFor<QueueItem>(Mode::kWrite, [&](Conn& c) -> Result<QueueItem> {
    Params p = KeyParams(key);
    p.Int(Now());
    // SET expressions read the row as it was: a done (2) or failed (3) item starts over.
    WHARF_ASSIGN_OR_RETURN(
        Rows r,
        c.Exec("INSERT INTO work_queue AS w (target, kind, repository, digest, tag, state, "
               "attempts, next_attempt_unix, last_error, created_unix, updated_unix, holder, "
               "lease_until_unix, version) VALUES ($1, $2, $3, $4, $5, 0, 0, $6, '', $6, $6, '', "
               "0, 1) ON CONFLICT (target, kind, repository, digest, tag) DO UPDATE SET "
               "version = w.version + 1, "
               "attempts = CASE WHEN w.state >= 2 THEN 0 ELSE w.attempts END, "
               "next_attempt_unix = CASE WHEN w.state >= 2 THEN $6 ELSE w.next_attempt_unix END, "
               "created_unix = CASE WHEN w.state >= 2 THEN $6 ELSE w.created_unix END, "
               "updated_unix = CASE WHEN w.state >= 2 THEN $6 ELSE w.updated_unix END, "
               "state = CASE WHEN w.state >= 2 THEN 0 ELSE w.state END "
               "RETURNING " WHARF_PG_QUEUE_COLUMNS,
               p));
    if (r.empty()) return Err(Internal("queue upsert returned no row"));
    return ReadItem(r, 0);
  });
}

Result<QueueItem> PostgresMetaStore::GetQueueItem(const QueueKey& key) {
  return RunFor<QueueItem>(Mode::kAlone, [&](Conn& c) -> Result<QueueItem> {
    WHARF_ASSIGN_OR_RETURN(
        Rows r, c.Exec("SELECT " WHARF_PG_QUEUE_COLUMNS " FROM work_queue WHERE target = $1 AND "
                       "kind = $2 AND repository = $3 AND digest = $4 AND tag = $5",
                       KeyParams(key)));
    if (r.empty()) return Err(NotFound("no such queue item"));
    return ReadItem(r, 0);
  });
}

Result<std::vector<QueueItem>> PostgresMetaStore::ClaimQueueItems(std::string_view target,
                                                                  std::string_view holder,
                                                                  int64_t lease_seconds,
                                                                  size_t limit) {
  WHARF_RETURN_IF_ERROR(CheckQueueClaimArgs(target, holder, lease_seconds, limit));
  auto out =
      RunFor<std::vector<QueueItem>>(Mode::kWrite, [&](Conn& c) -> Result<std::vector<QueueItem>> {
        const int64_t now = Now();
        WHARF_ASSIGN_OR_RETURN(
            Rows r,
            c.Exec("UPDATE work_queue SET state = 1, holder = $2, lease_until_unix = $3, "
                   "attempts = attempts + 1, updated_unix = $4 WHERE id IN (SELECT id FROM "
                   "work_queue WHERE target = $1 AND ((state = 0 AND next_attempt_unix <= $4) OR "
                   "(state = 1 AND lease_until_unix <= $4)) ORDER BY kind, id LIMIT $5 FOR UPDATE "
                   "SKIP LOCKED) RETURNING " WHARF_PG_QUEUE_COLUMNS,
                   Params()
                       .Text(target)
                       .Text(holder)
                       .Int(now + lease_seconds)
                       .Int(now)
                       .Int(sqlite::SqlLimit(limit))));
        return ReadItems(r);
      });
  if (out) {
    std::sort(out->begin(), out->end(), [](const QueueItem& a, const QueueItem& b) {
      if (a.key.kind != b.key.kind) return a.key.kind < b.key.kind;
      return a.id < b.id;
    });
  }
  return out;
}

Status PostgresMetaStore::CompleteQueueItem(const QueueItem& claimed) {
  return Run(Mode::kAlone, [&](Conn& c) -> Status {
    WHARF_ASSIGN_OR_RETURN(
        Rows r, c.Exec("UPDATE work_queue SET state = CASE WHEN version = $4 THEN 2 ELSE 0 END, "
                       "next_attempt_unix = $5, last_error = '', updated_unix = $5, holder = '', "
                       "lease_until_unix = 0 WHERE id = $1 AND state = 1 AND holder = $2 AND "
                       "attempts = $3",
                       Params()
                           .Int(claimed.id)
                           .Text(claimed.holder)
                           .Int(claimed.attempts)
                           .Int(claimed.version)
                           .Int(Now())));
    if (r.affected() == 0) return Conflict("queue item's claim is no longer held");
    return Status::Ok();
  });
}

Status PostgresMetaStore::FailQueueItem(const QueueItem& claimed, std::string_view error,
                                        std::optional<int64_t> retry_after_seconds) {
  if (retry_after_seconds && *retry_after_seconds < 0) {
    return InvalidArgument("queue retry delay is negative");
  }
  return Run(Mode::kAlone, [&](Conn& c) -> Status {
    const int64_t now = Now();
    const int64_t next = retry_after_seconds ? now + *retry_after_seconds : now;
    WHARF_ASSIGN_OR_RETURN(
        Rows r,
        c.Exec("UPDATE work_queue SET state = CASE WHEN $5 = 1 OR version <> $4 THEN 0 ELSE 3 "
               "END, next_attempt_unix = $6, last_error = $7, updated_unix = $8, holder = '', "
               "lease_until_unix = 0 WHERE id = $1 AND state = 1 AND holder = $2 AND "
               "attempts = $3",
               Params()
                   .Int(claimed.id)
                   .Text(claimed.holder)
                   .Int(claimed.attempts)
                   .Int(claimed.version)
                   .Int(retry_after_seconds ? 1 : 0)
                   .Int(next)
                   .Text(error)
                   .Int(now)));
    if (r.affected() == 0) return Conflict("queue item's claim is no longer held");
    return Status::Ok();
  });
}

Result<uint64_t> PostgresMetaStore::RenewQueueClaims(std::string_view holder,
                                                     int64_t lease_seconds) {
  WHARF_RETURN_IF_ERROR(CheckQueueRenewArgs(holder, lease_seconds));
  return RunFor<uint64_t>(Mode::kAlone, [&](Conn& c) -> Result<uint64_t> {
    WHARF_ASSIGN_OR_RETURN(Rows r, c.Exec("UPDATE work_queue SET lease_until_unix = $2 WHERE "
                                          "holder = $1 AND state = 1",
                                          Params().Text(holder).Int(Now() + lease_seconds)));
    return static_cast<uint64_t>(r.affected());
  });
}

Result<uint64_t> PostgresMetaStore::RecoverQueueItems(std::string_view holder) {
  WHARF_RETURN_IF_ERROR(CheckQueueRecoverArgs(holder));
  return RunFor<uint64_t>(Mode::kAlone, [&](Conn& c) -> Result<uint64_t> {
    WHARF_ASSIGN_OR_RETURN(
        Rows r, c.Exec("UPDATE work_queue SET state = 0, next_attempt_unix = $2, holder = '', "
                       "lease_until_unix = 0, updated_unix = $2 WHERE holder = $1 AND state = 1",
                       Params().Text(holder).Int(Now())));
    return static_cast<uint64_t>(r.affected());
  });
}

Result<QueueStats> PostgresMetaStore::GetQueueStats(std::string_view target) {
  return RunFor<QueueStats>(Mode::kAlone, [&](Conn& c) -> Result<QueueStats> {
    WHARF_ASSIGN_OR_RETURN(Rows r,
                           c.Exec("SELECT state, COUNT(*), MIN(created_unix) FROM work_queue WHERE "
                                  "$1 = '' OR target = $1 GROUP BY state",
                                  Params().Text(target)));
    QueueStats stats;
    for (int i = 0; i < r.size(); ++i) {
      AddQueueStateCount(stats, r.Int(i, 0), r.U64(i, 1), r.Int(i, 2));
    }
    return stats;
  });
}

Result<std::vector<QueueItem>> PostgresMetaStore::ListQueueItems(std::string_view target,
                                                                 std::optional<QueueState> state,
                                                                 int64_t after_id, size_t limit) {
  return RunFor<std::vector<QueueItem>>(
      Mode::kAlone, [&](Conn& c) -> Result<std::vector<QueueItem>> {
        WHARF_ASSIGN_OR_RETURN(
            Rows r, c.Exec("SELECT " WHARF_PG_QUEUE_COLUMNS " FROM work_queue WHERE ($1 = '' OR "
                           "target = $1) AND ($2 < 0 OR state = $2) AND id > $3 ORDER BY id "
                           "LIMIT $4",
                           Params()
                               .Text(target)
                               .Int(state ? static_cast<int64_t>(*state) : -1)
                               .Int(after_id)
                               .Int(sqlite::SqlLimit(limit))));
        return ReadItems(r);
      });
}

Result<bool> PostgresMetaStore::DigestQueued(const Digest& digest) {
  return RunFor<bool>(Mode::kAlone, [&](Conn& c) -> Result<bool> {
    WHARF_ASSIGN_OR_RETURN(
        Rows r,
        c.Exec("SELECT (EXISTS (SELECT 1 FROM work_queue WHERE digest = $1 AND state <> 2 AND "
               "kind IN (0, 1)) OR EXISTS (SELECT 1 FROM work_queue w JOIN repositories r ON "
               "r.name = w.repository JOIN manifest_refs f ON f.repo_id = r.id AND "
               "f.manifest = w.digest WHERE w.kind = 1 AND w.state <> 2 AND f.target = $1))::int",
               Params().Text(digest.ToString())));
    if (r.empty()) return Err(Internal("EXISTS returned no row"));
    return r.Int(0, 0) != 0;
  });
}

Result<uint64_t> PostgresMetaStore::PruneQueue(int64_t updated_before_unix, size_t limit) {
  return RunFor<uint64_t>(Mode::kAlone, [&](Conn& c) -> Result<uint64_t> {
    WHARF_ASSIGN_OR_RETURN(
        Rows r, c.Exec("DELETE FROM work_queue WHERE id IN (SELECT id FROM work_queue WHERE "
                       "state = 2 AND updated_unix < $1 ORDER BY id LIMIT $2)",
                       Params().Int(updated_before_unix).Int(sqlite::SqlLimit(limit))));
    return static_cast<uint64_t>(r.affected());
  });
}

}  // namespace wharf
