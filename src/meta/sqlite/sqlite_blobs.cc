// SqliteMetaStore: content-addressed blobs and their links into repositories.
#include "meta/sqlite/sqlite_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using sqlite::Stmt;
using sqlite::Txn;

Result<int64_t> SqliteMetaStore::RepoId(const std::string& name, bool create) {
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT id FROM repositories WHERE name = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, name).Step());
    if (found) return q.Int(0);
  }
  if (!create) return 0;
  WHARF_ASSIGN_OR_RETURN(Stmt ins, db_.Prepare("INSERT INTO repositories(name) VALUES (?)"));
  WHARF_META_RETURN_IF_ERROR(ins.Bind(1, name).Run());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_.raw()));
}

Status SqliteMetaStore::LinkBlobLocked(int64_t repo_id, const Digest& digest) {
  WHARF_ASSIGN_OR_RETURN(Stmt ins,
                         db_.Prepare("INSERT INTO repo_blobs(repo_id, digest, linked_unix) "
                                     "VALUES (?1, ?2, ?3) ON CONFLICT(repo_id, digest) "
                                     "DO UPDATE SET linked_unix = ?3"));
  return ins.Bind(1, repo_id).Bind(2, digest.ToString()).Bind(3, Now()).Run();
}

Result<bool> SqliteMetaStore::DropBlobIfUnlinkedLocked(const std::string& digest, GcFreed* freed) {
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT 1 FROM repo_blobs WHERE digest = ?"));
    WHARF_ASSIGN_OR_RETURN(bool still_linked, q.Bind(1, digest).Step());
    if (still_linked) return false;
  }
  uint64_t size = 0;
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT size FROM blobs WHERE digest = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, digest).Step());
    if (!found) return false;
    size = q.U64(0);
  }
  WHARF_ASSIGN_OR_RETURN(Stmt rm, db_.Prepare("DELETE FROM blobs WHERE digest = ?"));
  WHARF_META_RETURN_IF_ERROR(rm.Bind(1, digest).Run());
  const std::string owner = "blob:" + digest;  // ChunkOwner::Blob(digest).ToString()
  WHARF_META_RETURN_IF_ERROR(DeleteChunkList(owner));
  WHARF_META_RETURN_IF_ERROR(ReleaseOwner(owner));
  if (freed) {
    freed->blobs += 1;
    freed->blob_bytes += size;
    freed->chunks += static_cast<uint64_t>(sqlite3_changes(db_.raw()));  // of ReleaseOwner
  }
  return true;
}

Result<bool> SqliteMetaStore::StoreBlobLocked(std::string_view from, const std::string& repo,
                                              const BlobRecord& blob) {
  std::string digest = blob.digest.ToString();
  bool exists = false;
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT 1 FROM blobs WHERE digest = ?"));
    WHARF_ASSIGN_OR_RETURN(exists, q.Bind(1, digest).Step());
  }
  if (exists) {
    // Dedup: the stored copy wins; what this upload wrote is garbage. Chunks that already
    // belong to the stored blob (a retried PutBlob) are left alone.
    WHARF_META_RETURN_IF_ERROR(DiscardChunks(from, blob.chunks));
  } else {
    WHARF_ASSIGN_OR_RETURN(
        Stmt ins, db_.Prepare("INSERT INTO blobs(digest, size, created_unix) VALUES (?, ?, ?)"));
    WHARF_META_RETURN_IF_ERROR(
        ins.Bind(1, digest).BindU64(2, blob.size).Bind(3, blob.created_unix).Run());
    std::string owner = ChunkOwner::Blob(blob.digest).ToString();
    WHARF_META_RETURN_IF_ERROR(AdoptChunks(owner, from, blob.chunks));
    WHARF_META_RETURN_IF_ERROR(AppendChunkList(owner, 0, blob.chunks));
    if (!from.empty()) WHARF_META_RETURN_IF_ERROR(ReleaseOwner(from));  // unused chunks
  }
  WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(repo, /*create=*/true));
  WHARF_META_RETURN_IF_ERROR(LinkBlobLocked(repo_id, blob.digest));
  return !exists;
}

Result<bool> SqliteMetaStore::CommitBlob(std::string_view upload_id, const std::string& repo,
                                         const BlobRecord& blob) {
  if (repo.empty()) return Err(InvalidArgument("repository name is empty"));
  WHARF_META_RETURN_IF_ERROR(sqlite::CheckChunks(blob.chunks, blob.size));
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_META_RETURN_IF_ERROR(txn.Begin());
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT repo FROM uploads WHERE id = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, upload_id).Step());
    if (!found) return Err(NotFound(fmt::format("upload {}", upload_id)));
    if (q.Text(0) != repo) {
      return Err(
          InvalidArgument(fmt::format("upload {} belongs to another repository", upload_id)));
    }
  }
  WHARF_ASSIGN_OR_RETURN(Stmt del, db_.Prepare("DELETE FROM uploads WHERE id = ?"));
  WHARF_META_RETURN_IF_ERROR(del.Bind(1, upload_id).Run());
  std::string from = ChunkOwner::Upload(upload_id).ToString();
  WHARF_META_RETURN_IF_ERROR(DeleteChunkList(from));
  WHARF_ASSIGN_OR_RETURN(bool stored, StoreBlobLocked(from, repo, blob));
  WHARF_META_RETURN_IF_ERROR(txn.Commit());
  return stored;
}

Result<bool> SqliteMetaStore::PutBlob(const std::string& repo, const BlobRecord& blob) {
  if (repo.empty()) return Err(InvalidArgument("repository name is empty"));
  WHARF_META_RETURN_IF_ERROR(sqlite::CheckChunks(blob.chunks, blob.size));
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_META_RETURN_IF_ERROR(txn.Begin());
  WHARF_ASSIGN_OR_RETURN(bool stored, StoreBlobLocked("", repo, blob));
  WHARF_META_RETURN_IF_ERROR(txn.Commit());
  return stored;
}

Result<BlobRecord> SqliteMetaStore::GetBlob(const Digest& digest) {
  std::lock_guard lock(mu_);
  BlobRecord b;
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q,
                           db_.Prepare("SELECT size, created_unix FROM blobs WHERE digest = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, digest.ToString()).Step());
    if (!found) return Err(NotFound(fmt::format("blob {}", digest.ToString())));
    b = BlobRecord{digest, q.U64(0), {}, q.Int(1)};
  }
  WHARF_ASSIGN_OR_RETURN(b.chunks, ReadChunkList(ChunkOwner::Blob(digest).ToString()));
  return b;
}

Result<BlobRecord> SqliteMetaStore::GetLinkedBlob(const std::string& repo, const Digest& digest) {
  std::lock_guard lock(mu_);
  std::string d = digest.ToString();
  BlobRecord b;
  {
    WHARF_ASSIGN_OR_RETURN(
        Stmt q, db_.Prepare("SELECT o.size, o.created_unix FROM blobs o JOIN repo_blobs l ON "
                            "l.digest = o.digest JOIN repositories r ON r.id = l.repo_id "
                            "WHERE r.name = ? AND o.digest = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, repo).Bind(2, d).Step());
    if (!found) return Err(NotFound(fmt::format("blob {} not linked in {}", d, repo)));
    b = BlobRecord{digest, q.U64(0), {}, q.Int(1)};
  }
  WHARF_ASSIGN_OR_RETURN(b.chunks, ReadChunkList(ChunkOwner::Blob(digest).ToString()));
  return b;
}

Status SqliteMetaStore::LinkBlob(const std::string& repo, const Digest& digest) {
  if (repo.empty()) return InvalidArgument("repository name is empty");
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT 1 FROM blobs WHERE digest = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, digest.ToString()).Step());
    if (!found) return NotFound(fmt::format("blob {}", digest.ToString()));
  }
  WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(repo, /*create=*/true));
  WHARF_RETURN_IF_ERROR(LinkBlobLocked(repo_id, digest));
  return txn.Commit();
}

Result<bool> SqliteMetaStore::BlobLinked(const std::string& repo, const Digest& digest) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(
      Stmt q, db_.Prepare("SELECT 1 FROM repo_blobs b JOIN repositories r ON r.id = b.repo_id "
                          "WHERE r.name = ? AND b.digest = ?"));
  return q.Bind(1, repo).Bind(2, digest.ToString()).Step();
}

Result<bool> SqliteMetaStore::UnlinkBlob(const std::string& repo, const Digest& digest) {
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_META_RETURN_IF_ERROR(txn.Begin());
  std::string d = digest.ToString();
  WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(repo, /*create=*/false));
  WHARF_ASSIGN_OR_RETURN(Stmt del,
                         db_.Prepare("DELETE FROM repo_blobs WHERE repo_id = ? AND digest = ?"));
  WHARF_META_RETURN_IF_ERROR(del.Bind(1, repo_id).Bind(2, d).Run());
  if (del.Changes() == 0) return Err(NotFound(fmt::format("blob {} not linked in {}", d, repo)));
  WHARF_ASSIGN_OR_RETURN(bool deleted, DropBlobIfUnlinkedLocked(d, nullptr));
  WHARF_META_RETURN_IF_ERROR(txn.Commit());
  return deleted;
}

}  // namespace wharf
