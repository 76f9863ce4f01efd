// PostgresMetaStore: a site cache's eviction (see "Site cache eviction" in meta_store.h), as
// sqlite_evict.cc. EvictBlob locks the blob row FOR UPDATE and deletes its links, so a
// concurrent TouchBlobs or PutManifest (which locks the links it checks FOR SHARE) either
// commits first, and the re-check here sees it, or waits and then fails to find the blob.
#include "meta/postgres/postgres_meta_store.h"
#include "meta/queue_sql.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using pg::Conn;
using pg::Params;
using pg::Rows;

Status PostgresMetaStore::TouchBlobs(const std::vector<Digest>& digests, int64_t pulled_unix) {
  if (digests.empty()) return Status::Ok();
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    for (const Digest& d : digests) {
      WHARF_RETURN_IF_ERROR(
          c.Do("UPDATE blobs SET last_pull_unix = $1 WHERE digest = $2 AND last_pull_unix < $1",
               Params().Int(pulled_unix).Text(d.ToString())));
    }
    return Status::Ok();
  });
}

Result<std::vector<EvictionCandidate>> PostgresMetaStore::ListEvictionCandidates(size_t limit) {
  if (limit == 0) return Err(InvalidArgument("eviction candidate limit is 0"));
  using Out = std::vector<EvictionCandidate>;
  return RunFor<Out>(Mode::kAlone, [&](Conn& c) -> Result<Out> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT b.digest, b.size, GREATEST(b.last_pull_unix, b.created_unix) AS "
                       "used FROM blobs b WHERE " WHARF_SQL_NOT_QUEUED(
                           "b.digest") " ORDER BY used, b.digest LIMIT $1",
                       Params().Int(sqlite::SqlLimit(limit))));
    Out out;
    for (int i = 0; i < q.size(); ++i) {
      WHARF_ASSIGN_OR_RETURN(Digest d, sqlite::StoredDigest(q.Text(i, 0)));
      out.push_back(EvictionCandidate{std::move(d), q.U64(i, 1), q.Int(i, 2)});
    }
    return out;
  });
}

Result<GcFreed> PostgresMetaStore::EvictBlob(const Digest& digest, int64_t not_pulled_since) {
  const std::string d = digest.ToString();
  return RunFor<GcFreed>(Mode::kWrite, [&](Conn& c) -> Result<GcFreed> {
    GcFreed freed;  // per attempt: a rerun starts from nothing
    // The decision, re-made inside the transaction: pulled or queued since the listing keeps it.
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT 1 FROM blobs b WHERE b.digest = $1 AND GREATEST(b.last_pull_unix, "
                       "b.created_unix) <= $2 AND " WHARF_SQL_NOT_QUEUED("b.digest") " FOR UPDATE",
                       Params().Text(d).Int(not_pulled_since)));
    if (q.empty()) return freed;
    WHARF_ASSIGN_OR_RETURN(Rows del,
                           c.Exec("DELETE FROM repo_blobs WHERE digest = $1", Params().Text(d)));
    freed.links = static_cast<uint64_t>(del.affected());
    WHARF_ASSIGN_OR_RETURN(bool dropped, DropBlobIfUnlinked(c, d, &freed));
    (void)dropped;  // counted in `freed`
    return freed;
  });
}

}  // namespace wharf
