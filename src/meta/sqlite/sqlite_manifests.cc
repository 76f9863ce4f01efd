// SqliteMetaStore: repositories, manifests, tags and referrers (the OCI namespace).
#include "meta/sqlite/sqlite_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using sqlite::Stmt;
using sqlite::Txn;

namespace {

constexpr int64_t kRefBlob = 0;
constexpr int64_t kRefManifest = 1;

}  // namespace

// A repository "exists" while it holds a blob link or a manifest; rows of emptied
// repositories stay behind harmlessly and are skipped here.
#define WHARF_REPO_NONEMPTY                                         \
  "(EXISTS (SELECT 1 FROM repo_blobs b WHERE b.repo_id = r.id) OR " \
  "EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id))"

Status SqliteMetaStore::InsertManifestLocked(int64_t repo_id, const ManifestRecord& m) {
  std::string digest = m.digest.ToString();
  WHARF_ASSIGN_OR_RETURN(Stmt ins,
                         db_.Prepare("INSERT INTO manifests(repo_id, digest, media_type, content, "
                                     "subject, artifact_type, annotations_json, created_unix) "
                                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  ins.Bind(1, repo_id).Bind(2, digest).Bind(3, m.media_type).BindBlob(4, m.content);
  if (m.subject) {
    ins.Bind(5, m.subject->ToString());
  } else {
    ins.BindNull(5);
  }
  ins.Bind(6, m.artifact_type).Bind(7, m.annotations_json).Bind(8, m.created_unix);
  WHARF_RETURN_IF_ERROR(ins.Run());
  for (int64_t kind : {kRefBlob, kRefManifest}) {
    const std::vector<Digest>& refs = kind == kRefBlob ? m.blobs : m.manifests;
    for (size_t i = 0; i < refs.size(); ++i) {
      WHARF_ASSIGN_OR_RETURN(
          Stmt ref, db_.Prepare("INSERT INTO manifest_refs(repo_id, manifest, kind, seq, target) "
                                "VALUES (?, ?, ?, ?, ?)"));
      ref.Bind(1, repo_id).Bind(2, digest).Bind(3, kind).Bind(4, static_cast<int64_t>(i));
      WHARF_RETURN_IF_ERROR(ref.Bind(5, refs[i].ToString()).Run());
    }
  }
  return Status::Ok();
}

Result<std::optional<Digest>> SqliteMetaStore::FirstMissingRef(int64_t repo_id,
                                                               const ManifestRecord& m) {
  for (const Digest& d : m.blobs) {
    WHARF_ASSIGN_OR_RETURN(
        Stmt q, db_.Prepare("SELECT 1 FROM repo_blobs WHERE repo_id = ? AND digest = ?"));
    WHARF_ASSIGN_OR_RETURN(bool linked, q.Bind(1, repo_id).Bind(2, d.ToString()).Step());
    if (!linked) return std::optional<Digest>(d);
  }
  for (const Digest& d : m.manifests) {
    WHARF_ASSIGN_OR_RETURN(Stmt q,
                           db_.Prepare("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?"));
    WHARF_ASSIGN_OR_RETURN(bool exists, q.Bind(1, repo_id).Bind(2, d.ToString()).Step());
    if (!exists) return std::optional<Digest>(d);
  }
  return std::optional<Digest>();
}

Status SqliteMetaStore::PutManifest(const std::string& repo, const ManifestRecord& m,
                                    std::optional<std::string> tag, Digest* missing) {
  if (repo.empty()) return InvalidArgument("repository name is empty");
  if (tag && tag->empty()) return InvalidArgument("tag is empty");
  if (m.content.size() > kMaxManifestBytes) {
    return InvalidArgument(
        fmt::format("manifest of {} bytes exceeds {}", m.content.size(), kMaxManifestBytes));
  }
  if (DigestOf(m.content, m.digest.algorithm()) != m.digest) {
    return DigestMismatch(fmt::format("manifest content does not hash to {}", m.digest.ToString()));
  }
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(repo, /*create=*/true));
  // In the write transaction: nothing can unlink a reference between this check and the
  // insert (the transaction is rolled back when a reference is missing).
  WHARF_ASSIGN_OR_RETURN(std::optional<Digest> absent, FirstMissingRef(repo_id, m));
  if (absent) {
    if (missing) *missing = *absent;
    return NotFound("manifest references unknown content " + absent->ToString());
  }
  bool exists = false;
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q,
                           db_.Prepare("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?"));
    WHARF_ASSIGN_OR_RETURN(exists, q.Bind(1, repo_id).Bind(2, m.digest.ToString()).Step());
  }
  if (!exists) WHARF_RETURN_IF_ERROR(InsertManifestLocked(repo_id, m));
  if (tag) {
    WHARF_ASSIGN_OR_RETURN(
        Stmt up, db_.Prepare("INSERT INTO tags(repo_id, name, digest) VALUES (?1, ?2, ?3) "
                             "ON CONFLICT(repo_id, name) DO UPDATE SET digest = ?3"));
    WHARF_RETURN_IF_ERROR(up.Bind(1, repo_id).Bind(2, *tag).Bind(3, m.digest.ToString()).Run());
  }
  return txn.Commit();
}

Result<ManifestRecord> SqliteMetaStore::GetManifest(const std::string& repo, const Digest& digest) {
  std::lock_guard lock(mu_);
  std::string d = digest.ToString();
  ManifestRecord m;
  {
    WHARF_ASSIGN_OR_RETURN(
        Stmt q,
        db_.Prepare("SELECT m.media_type, m.content, m.subject, m.artifact_type, "
                    "m.annotations_json, m.created_unix FROM manifests m JOIN "
                    "repositories r ON r.id = m.repo_id WHERE r.name = ? AND m.digest = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, repo).Bind(2, d).Step());
    if (!found) return Err(NotFound(fmt::format("manifest {} in {}", d, repo)));
    m.digest = digest;
    m.media_type = q.Text(0);
    m.content = q.Text(1);
    if (!q.IsNull(2)) {
      WHARF_ASSIGN_OR_RETURN(m.subject, sqlite::StoredDigest(q.Text(2)));
    }
    m.artifact_type = q.Text(3);
    m.annotations_json = q.Text(4);
    m.created_unix = q.Int(5);
  }
  WHARF_ASSIGN_OR_RETURN(
      Stmt refs, db_.Prepare("SELECT f.kind, f.target FROM manifest_refs f JOIN repositories r "
                             "ON r.id = f.repo_id WHERE r.name = ? AND f.manifest = ? "
                             "ORDER BY f.kind, f.seq"));
  refs.Bind(1, repo).Bind(2, d);
  while (true) {
    WHARF_ASSIGN_OR_RETURN(bool row, refs.Step());
    if (!row) break;
    WHARF_ASSIGN_OR_RETURN(Digest target, sqlite::StoredDigest(refs.Text(1)));
    (refs.Int(0) == kRefBlob ? m.blobs : m.manifests).push_back(std::move(target));
  }
  return m;
}

Result<Digest> SqliteMetaStore::ResolveTag(const std::string& repo, const std::string& tag) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q, db_.Prepare("SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id "
                          "WHERE r.name = ? AND t.name = ?"));
  WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, repo).Bind(2, tag).Step());
  if (!found) return Err(NotFound(fmt::format("tag {} in {}", tag, repo)));
  return sqlite::StoredDigest(q.Text(0));
}

Result<bool> SqliteMetaStore::ManifestExists(const std::string& repo, const Digest& digest) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q, db_.Prepare("SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repo_id "
                          "WHERE r.name = ? AND m.digest = ?"));
  return q.Bind(1, repo).Bind(2, digest.ToString()).Step();
}

Status SqliteMetaStore::DeleteTag(const std::string& repo, const std::string& tag) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(Stmt del, db_.Prepare("DELETE FROM tags WHERE name = ? AND repo_id = "
                                               "(SELECT id FROM repositories WHERE name = ?)"));
  WHARF_RETURN_IF_ERROR(del.Bind(1, tag).Bind(2, repo).Run());
  if (del.Changes() == 0) return NotFound(fmt::format("tag {} in {}", tag, repo));
  return Status::Ok();
}

Status SqliteMetaStore::DeleteManifest(const std::string& repo, const Digest& digest) {
  std::lock_guard lock(mu_);
  // One statement, so no explicit transaction: tags and manifest_refs go by ON DELETE CASCADE.
  WHARF_ASSIGN_OR_RETURN(Stmt del,
                         db_.Prepare("DELETE FROM manifests WHERE digest = ? AND repo_id = "
                                     "(SELECT id FROM repositories WHERE name = ?)"));
  WHARF_RETURN_IF_ERROR(del.Bind(1, digest.ToString()).Bind(2, repo).Run());
  if (del.Changes() == 0) {
    return NotFound(fmt::format("manifest {} in {}", digest.ToString(), repo));
  }
  return Status::Ok();
}

Result<Page> SqliteMetaStore::ReadPage(Stmt& stmt, size_t n) {
  Page page;
  while (true) {
    WHARF_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if (page.items.size() == n) {  // the query asked for n + 1 rows to learn about more
      page.more = true;
      break;
    }
    page.items.push_back(stmt.Text(0));
  }
  return page;
}

Result<Page> SqliteMetaStore::ListTags(const std::string& repo, const std::string& last, size_t n) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q, db_.Prepare("SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repo_id "
                          "WHERE r.name = ? AND t.name > ? ORDER BY t.name LIMIT ?"));
  q.Bind(1, repo).Bind(2, last).Bind(3, sqlite::SqlLimit(n) + 1);
  return ReadPage(q, n);
}

Result<Page> SqliteMetaStore::ListRepositories(const std::string& last, size_t n) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(Stmt q,
                         db_.Prepare("SELECT r.name FROM repositories r WHERE r.name > ? "
                                     "AND " WHARF_REPO_NONEMPTY " ORDER BY r.name LIMIT ?"));
  q.Bind(1, last).Bind(2, sqlite::SqlLimit(n) + 1);
  return ReadPage(q, n);
}

Result<bool> SqliteMetaStore::RepositoryExists(const std::string& repo) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q,
      db_.Prepare("SELECT 1 FROM repositories r WHERE r.name = ? AND " WHARF_REPO_NONEMPTY));
  return q.Bind(1, repo).Step();
}

Result<std::vector<ReferrerRecord>> SqliteMetaStore::ListReferrers(const std::string& repo,
                                                                   const Digest& subject) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q, db_.Prepare("SELECT m.media_type, m.digest, length(m.content), m.artifact_type, "
                          "m.annotations_json FROM manifests m JOIN repositories r "
                          "ON r.id = m.repo_id WHERE r.name = ? AND m.subject = ? "
                          "ORDER BY m.digest"));
  q.Bind(1, repo).Bind(2, subject.ToString());
  std::vector<ReferrerRecord> out;
  while (true) {
    WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    WHARF_ASSIGN_OR_RETURN(Digest d, sqlite::StoredDigest(q.Text(1)));
    out.push_back(ReferrerRecord{q.Text(0), std::move(d), q.U64(2), q.Text(3), q.Text(4)});
  }
  return out;
}

Result<StoredTotals> SqliteMetaStore::GetStoredTotals() {
  std::lock_guard lock(mu_);  // one connection, one statement: one consistent read
  WHARF_ASSIGN_OR_RETURN(
      Stmt q,
      db_.Prepare("SELECT (SELECT count(*) FROM blobs), "
                  "(SELECT coalesce(sum(size), 0) FROM blobs), "
                  "(SELECT count(*) FROM manifests), "
                  "(SELECT coalesce(sum(length(CAST(content AS BLOB))), 0) FROM manifests), "
                  "(SELECT count(*) FROM files), "
                  "(SELECT coalesce(sum(size), 0) FROM files), "
                  "(SELECT count(*) FROM repositories r WHERE " WHARF_REPO_NONEMPTY "), "
                  "(SELECT count(*) FROM tags)"));
  WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Err(Internal("stored totals: no row"));
  StoredTotals t;
  t.blobs = q.U64(0);
  t.blob_bytes = q.U64(1);
  t.manifests = q.U64(2);
  t.manifest_bytes = q.U64(3);
  t.files = q.U64(4);
  t.file_bytes = q.U64(5);
  t.repositories = q.U64(6);
  t.tags = q.U64(7);
  return t;
}

}  // namespace wharf
