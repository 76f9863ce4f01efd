// PostgresMetaStore: the garbage collector's scans and collections (see "Garbage collection" in
// meta_store.h). Scans read a bounded page of rows in (repository name, digest) order and say
// for each whether it qualifies; collections re-check the same conditions in one SERIALIZABLE
// transaction, so a manifest committing a reference meanwhile either waits for the collection
// or makes one of the two fail to serialize (and be run again, re-deciding).
#include "meta/postgres/postgres_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using pg::Conn;
using pg::Params;
using pg::Rows;

namespace {

// No manifest of the link's repository lists the blob (manifest_refs kind 0 = blob).
#define WHARF_PG_LINK_UNREFERENCED(L)                              \
  "NOT EXISTS (SELECT 1 FROM manifest_refs f WHERE f.repo_id = " L \
  ".repo_id AND "                                                  \
  "f.kind = 0 AND f.target = " L ".digest)"

// No tag points at the manifest, no index of its repository lists it (kind 1 = manifest), and
// its subject, if any, is not in the repository.
#define WHARF_PG_MANIFEST_UNTAGGED(M)                                                   \
  "NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = " M ".repo_id AND t.digest = " M  \
  ".digest) AND NOT EXISTS (SELECT 1 FROM manifest_refs f WHERE f.repo_id = " M         \
  ".repo_id AND f.kind = 1 AND f.target = " M ".digest) AND (" M                        \
  ".subject IS NULL OR NOT "                                                            \
  "EXISTS (SELECT 1 FROM manifests s WHERE s.repo_id = " M ".repo_id AND s.digest = " M \
  ".subject))"

// Rows (repo, digest, size, links, qualifies) of a scan of at most `limit` rows.
Result<GcPage> GcPageOf(const Rows& q, size_t limit) {
  GcPage page;
  GcCursor last;
  for (int i = 0; i < q.size(); ++i) {
    last = GcCursor{q.Text(i, 0), q.Text(i, 1)};
    if (q.Int(i, 4) == 0) continue;
    WHARF_ASSIGN_OR_RETURN(Digest d, sqlite::StoredDigest(last.digest));
    page.items.push_back(GcItem{last.repo, std::move(d), q.U64(i, 2), q.U64(i, 3)});
  }
  if (static_cast<size_t>(q.size()) == limit) page.next = std::move(last);  // the scan goes on
  return page;
}

}  // namespace

Result<GcPage> PostgresMetaStore::ListUnreferencedBlobLinks(const GcCursor& after,
                                                            int64_t linked_before_unix,
                                                            size_t limit) {
  if (limit == 0) return Err(InvalidArgument("gc scan limit is 0"));
  return RunFor<GcPage>(Mode::kAlone, [&](Conn& c) -> Result<GcPage> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("WITH page AS (SELECT r.id AS repo_id, r.name AS repo, l.digest AS digest, "
                       "l.linked_unix AS linked_unix FROM repositories r JOIN repo_blobs l ON "
                       "l.repo_id = r.id WHERE r.name > $1 OR (r.name = $1 AND l.digest > $2) "
                       "ORDER BY r.name, l.digest LIMIT $3) "
                       "SELECT p.repo, p.digest, b.size, "
                       "(SELECT count(*) FROM repo_blobs x WHERE x.digest = p.digest), "
                       "p.linked_unix < $4 AND " WHARF_PG_LINK_UNREFERENCED(
                           "p") " FROM page p JOIN blobs b ON b.digest = p.digest ORDER BY p.repo, "
                                "p.digest",
                       Params()
                           .Text(after.repo)
                           .Text(after.digest)
                           .Int(sqlite::SqlLimit(limit))
                           .Int(linked_before_unix)));
    return GcPageOf(q, limit);
  });
}

Result<GcFreed> PostgresMetaStore::CollectBlobLinks(const std::vector<GcItem>& links,
                                                    int64_t linked_before_unix) {
  return RunFor<GcFreed>(Mode::kWrite, [&](Conn& c) -> Result<GcFreed> {
    GcFreed freed;  // per attempt: a rerun starts from nothing
    for (const GcItem& item : links) {
      WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(c, item.repo, /*create=*/false));
      if (repo_id == 0) continue;
      const std::string d = item.digest.ToString();
      // The decision, re-made inside the transaction: the listing may be stale.
      WHARF_ASSIGN_OR_RETURN(
          Rows del, c.Exec("DELETE FROM repo_blobs AS l WHERE l.repo_id = $1 AND l.digest = $2 "
                           "AND l.linked_unix < $3 AND " WHARF_PG_LINK_UNREFERENCED("l"),
                           Params().Int(repo_id).Text(d).Int(linked_before_unix)));
      if (del.affected() == 0) continue;
      freed.links += 1;
      WHARF_ASSIGN_OR_RETURN(bool dropped, DropBlobIfUnlinked(c, d, &freed));
      (void)dropped;  // counted in `freed`
    }
    return freed;
  });
}

Result<GcPage> PostgresMetaStore::ListUntaggedManifests(const GcCursor& after,
                                                        int64_t created_before_unix, size_t limit) {
  if (limit == 0) return Err(InvalidArgument("gc scan limit is 0"));
  return RunFor<GcPage>(Mode::kAlone, [&](Conn& c) -> Result<GcPage> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q,
        c.Exec("WITH page AS (SELECT r.id AS repo_id, r.name AS repo, m.digest AS digest, "
               "m.subject AS subject, m.created_unix AS created_unix, "
               "octet_length(m.content)::bigint AS size FROM repositories r JOIN manifests m ON "
               "m.repo_id = r.id WHERE r.name > $1 OR (r.name = $1 AND m.digest > $2) "
               "ORDER BY r.name, m.digest LIMIT $3) "
               "SELECT p.repo, p.digest, p.size, 0::bigint, p.created_unix < $4 AND "
               "" WHARF_PG_MANIFEST_UNTAGGED("p") " FROM page p ORDER BY p.repo, p.digest",
               Params()
                   .Text(after.repo)
                   .Text(after.digest)
                   .Int(sqlite::SqlLimit(limit))
                   .Int(created_before_unix)));
    return GcPageOf(q, limit);
  });
}

Result<GcFreed> PostgresMetaStore::CollectManifests(const std::vector<GcItem>& manifests,
                                                    int64_t created_before_unix) {
  return RunFor<GcFreed>(Mode::kWrite, [&](Conn& c) -> Result<GcFreed> {
    GcFreed freed;
    for (const GcItem& item : manifests) {
      WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(c, item.repo, /*create=*/false));
      if (repo_id == 0) continue;
      const std::string d = item.digest.ToString();
      WHARF_ASSIGN_OR_RETURN(
          Rows q, c.Exec("SELECT 1 FROM manifests m WHERE m.repo_id = $1 AND m.digest = $2 AND "
                         "m.created_unix < $3 AND " WHARF_PG_MANIFEST_UNTAGGED("m"),
                         Params().Int(repo_id).Text(d).Int(created_before_unix)));
      if (q.empty()) continue;
      // The manifest and, transitively, its referrers that nothing else keeps. Tags and
      // manifest_refs rows go by ON DELETE CASCADE; the count is of manifests only.
      WHARF_ASSIGN_OR_RETURN(
          Rows del,
          c.Exec("WITH RECURSIVE doomed(digest) AS (SELECT $2::text COLLATE \"C\" UNION "
                 "SELECT m.digest FROM manifests m JOIN doomed x ON m.subject = x.digest WHERE "
                 "m.repo_id = $1 AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = "
                 "m.repo_id AND t.digest = m.digest) AND NOT EXISTS (SELECT 1 FROM "
                 "manifest_refs f WHERE f.repo_id = m.repo_id AND f.kind = 1 AND "
                 "f.target = m.digest)) "
                 "DELETE FROM manifests WHERE repo_id = $1 AND digest IN "
                 "(SELECT digest FROM doomed)",
                 Params().Int(repo_id).Text(d)));
      freed.manifests += static_cast<uint64_t>(del.affected());
    }
    return freed;
  });
}

}  // namespace wharf
