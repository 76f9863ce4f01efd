// SqliteMetaStore: a site cache's eviction (see "Site cache eviction" in meta_store.h). The last
// pull is a column of blobs (migration 7); eviction removes a blob's links and record in one
// transaction and hands its chunks to the collector as the last UnlinkBlob does
// (DropBlobIfUnlinkedLocked).
#include "meta/queue_sql.h"
#include "meta/sqlite/sqlite_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using sqlite::Stmt;
using sqlite::Txn;

Status SqliteMetaStore::TouchBlobs(const std::vector<Digest>& digests, int64_t pulled_unix) {
  if (digests.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  for (const Digest& d : digests) {
    WHARF_ASSIGN_OR_RETURN(Stmt up, db_.Prepare("UPDATE blobs SET last_pull_unix = ?1 WHERE "
                                                "digest = ?2 AND last_pull_unix < ?1"));
    WHARF_RETURN_IF_ERROR(up.Bind(1, pulled_unix).Bind(2, d.ToString()).Run());
  }
  return txn.Commit();
}

Result<std::vector<EvictionCandidate>> SqliteMetaStore::ListEvictionCandidates(size_t limit) {
  if (limit == 0) return Err(InvalidArgument("eviction candidate limit is 0"));
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q, db_.Prepare("SELECT b.digest, b.size, max(b.last_pull_unix, b.created_unix) AS "
                          "used FROM blobs b WHERE " WHARF_SQL_NOT_QUEUED(
                              "b.digest") " ORDER BY used, b.digest LIMIT ?"));
  q.Bind(1, sqlite::SqlLimit(limit));
  std::vector<EvictionCandidate> out;
  while (true) {
    WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    WHARF_ASSIGN_OR_RETURN(Digest d, sqlite::StoredDigest(q.Text(0)));
    out.push_back(EvictionCandidate{std::move(d), q.U64(1), q.Int(2)});
  }
  return out;
}

Result<GcFreed> SqliteMetaStore::EvictBlob(const Digest& digest, int64_t not_pulled_since) {
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_META_RETURN_IF_ERROR(txn.Begin());
  const std::string d = digest.ToString();
  GcFreed freed;
  {
    // The decision, re-made inside the transaction: pulled or queued since the listing keeps it.
    WHARF_ASSIGN_OR_RETURN(
        Stmt q, db_.Prepare("SELECT 1 FROM blobs b WHERE b.digest = ?1 AND "
                            "max(b.last_pull_unix, b.created_unix) <= ?2 AND " WHARF_SQL_NOT_QUEUED(
                                "b.digest")));
    WHARF_ASSIGN_OR_RETURN(bool evictable, q.Bind(1, d).Bind(2, not_pulled_since).Step());
    if (!evictable) return freed;
  }
  WHARF_ASSIGN_OR_RETURN(Stmt del, db_.Prepare("DELETE FROM repo_blobs WHERE digest = ?"));
  WHARF_META_RETURN_IF_ERROR(del.Bind(1, d).Run());
  freed.links = static_cast<uint64_t>(del.Changes());
  WHARF_ASSIGN_OR_RETURN(bool dropped, DropBlobIfUnlinkedLocked(d, &freed));
  (void)dropped;  // counted in `freed`
  WHARF_META_RETURN_IF_ERROR(txn.Commit());
  return freed;
}

}  // namespace wharf
