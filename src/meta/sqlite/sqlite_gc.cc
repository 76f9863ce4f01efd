// SqliteMetaStore: the garbage collector's scans and collections (see "Garbage collection" in
// meta_store.h). Scans read a bounded page of rows in (repository name, digest) order and say
// for each whether it qualifies; collections re-check the same conditions in one write
// transaction (BEGIN IMMEDIATE, so no PutManifest can interleave).
#include "meta/sqlite/sqlite_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using sqlite::Stmt;
using sqlite::Txn;

// No manifest of the link's repository lists the blob (manifest_refs kind 0 = blob).
#define WHARF_LINK_UNREFERENCED(L)                                 \
  "NOT EXISTS (SELECT 1 FROM manifest_refs f WHERE f.repo_id = " L \
  ".repo_id AND "                                                  \
  "f.kind = 0 AND f.target = " L ".digest)"

// No tag points at the manifest, no index of its repository lists it (kind 1 = manifest), and
// its subject, if any, is not in the repository.
#define WHARF_MANIFEST_UNTAGGED(M)                                                     \
  "NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = " M ".repo_id AND t.digest = " M \
  ".digest) AND NOT EXISTS (SELECT 1 FROM manifest_refs f WHERE f.repo_id = " M        \
  ".repo_id AND "                                                                      \
  "f.kind = 1 AND f.target = " M ".digest) AND (" M                                    \
  ".subject IS NULL OR NOT EXISTS "                                                    \
  "(SELECT 1 FROM manifests s WHERE s.repo_id = " M ".repo_id AND s.digest = " M ".subject))"

Result<GcPage> SqliteMetaStore::ReadGcPage(Stmt& stmt, size_t limit) {
  GcPage page;
  size_t scanned = 0;
  GcCursor last;
  while (true) {
    WHARF_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ++scanned;
    last = GcCursor{stmt.Text(0), stmt.Text(1)};
    if (stmt.Int(4) == 0) continue;
    WHARF_ASSIGN_OR_RETURN(Digest d, sqlite::StoredDigest(last.digest));
    page.items.push_back(GcItem{last.repo, std::move(d), stmt.U64(2), stmt.U64(3)});
  }
  if (scanned == limit) page.next = std::move(last);  // a full page: the scan goes on
  return page;
}

Result<GcPage> SqliteMetaStore::ListUnreferencedBlobLinks(const GcCursor& after,
                                                          int64_t linked_before_unix,
                                                          size_t limit) {
  if (limit == 0) return Err(InvalidArgument("gc scan limit is 0"));
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q,
      db_.Prepare("WITH page AS (SELECT r.id AS repo_id, r.name AS repo, l.digest AS digest, "
                  "l.linked_unix AS linked_unix FROM repositories r JOIN repo_blobs l ON "
                  "l.repo_id = r.id WHERE r.name > ?1 OR (r.name = ?1 AND l.digest > ?2) "
                  "ORDER BY r.name, l.digest LIMIT ?3) "
                  "SELECT p.repo, p.digest, b.size, "
                  "(SELECT COUNT(*) FROM repo_blobs x WHERE x.digest = p.digest), "
                  "p.linked_unix < ?4 AND " WHARF_LINK_UNREFERENCED(
                      "p") " FROM page p "
                           "JOIN blobs b ON b.digest = p.digest ORDER BY p.repo, p.digest"));
  q.Bind(1, after.repo).Bind(2, after.digest).Bind(3, sqlite::SqlLimit(limit));
  q.Bind(4, linked_before_unix);
  return ReadGcPage(q, limit);
}

Result<GcFreed> SqliteMetaStore::CollectBlobLinks(const std::vector<GcItem>& links,
                                                  int64_t linked_before_unix) {
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_META_RETURN_IF_ERROR(txn.Begin());
  GcFreed freed;
  for (const GcItem& item : links) {
    WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(item.repo, /*create=*/false));
    if (repo_id == 0) continue;
    const std::string d = item.digest.ToString();
    // The decision, re-made inside the transaction: the listing may be stale.
    WHARF_ASSIGN_OR_RETURN(
        Stmt del, db_.Prepare("DELETE FROM repo_blobs AS l WHERE l.repo_id = ? AND l.digest = ? "
                              "AND l.linked_unix < ? AND " WHARF_LINK_UNREFERENCED("l")));
    WHARF_META_RETURN_IF_ERROR(del.Bind(1, repo_id).Bind(2, d).Bind(3, linked_before_unix).Run());
    if (del.Changes() == 0) continue;
    freed.links += 1;
    WHARF_ASSIGN_OR_RETURN(bool dropped, DropBlobIfUnlinkedLocked(d, &freed));
    (void)dropped;  // counted in `freed`
  }
  WHARF_META_RETURN_IF_ERROR(txn.Commit());
  return freed;
}

Result<GcPage> SqliteMetaStore::ListUntaggedManifests(const GcCursor& after,
                                                      int64_t created_before_unix, size_t limit) {
  if (limit == 0) return Err(InvalidArgument("gc scan limit is 0"));
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q,
      db_.Prepare(
          "WITH page AS (SELECT r.id AS repo_id, r.name AS repo, m.digest AS digest, "
          "m.subject AS subject, m.created_unix AS created_unix, length(m.content) AS "
          "size FROM repositories r JOIN manifests m ON m.repo_id = r.id WHERE "
          "r.name > ?1 OR (r.name = ?1 AND m.digest > ?2) ORDER BY r.name, m.digest "
          "LIMIT ?3) "
          "SELECT p.repo, p.digest, p.size, 0, p.created_unix < ?4 AND " WHARF_MANIFEST_UNTAGGED(
              "p") " FROM page p ORDER BY p.repo, p.digest"));
  q.Bind(1, after.repo).Bind(2, after.digest).Bind(3, sqlite::SqlLimit(limit));
  q.Bind(4, created_before_unix);
  return ReadGcPage(q, limit);
}

Result<GcFreed> SqliteMetaStore::CollectManifests(const std::vector<GcItem>& manifests,
                                                  int64_t created_before_unix) {
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_META_RETURN_IF_ERROR(txn.Begin());
  GcFreed freed;
  for (const GcItem& item : manifests) {
    WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(item.repo, /*create=*/false));
    if (repo_id == 0) continue;
    const std::string d = item.digest.ToString();
    {
      WHARF_ASSIGN_OR_RETURN(
          Stmt q, db_.Prepare("SELECT 1 FROM manifests m WHERE m.repo_id = ? AND m.digest = ? "
                              "AND m.created_unix < ? AND " WHARF_MANIFEST_UNTAGGED("m")));
      WHARF_ASSIGN_OR_RETURN(bool still,
                             q.Bind(1, repo_id).Bind(2, d).Bind(3, created_before_unix).Step());
      if (!still) continue;
    }
    // The manifest and, transitively, its referrers that nothing else keeps. Tags and
    // manifest_refs rows go by ON DELETE CASCADE; Changes() counts manifests only.
    WHARF_ASSIGN_OR_RETURN(
        Stmt del,
        db_.Prepare("WITH RECURSIVE doomed(digest) AS (SELECT ?2 UNION SELECT m.digest FROM "
                    "manifests m JOIN doomed x ON m.subject = x.digest WHERE m.repo_id = ?1 AND "
                    "NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND "
                    "t.digest = m.digest) AND NOT EXISTS (SELECT 1 FROM manifest_refs f WHERE "
                    "f.repo_id = m.repo_id AND f.kind = 1 AND f.target = m.digest)) "
                    "DELETE FROM manifests WHERE repo_id = ?1 AND digest IN "
                    "(SELECT digest FROM doomed)"));
    WHARF_META_RETURN_IF_ERROR(del.Bind(1, repo_id).Bind(2, d).Run());
    freed.manifests += static_cast<uint64_t>(del.Changes());
  }
  WHARF_META_RETURN_IF_ERROR(txn.Commit());
  return freed;
}

}  // namespace wharf
