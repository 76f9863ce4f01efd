// SqliteMetaStore: upload sessions and plain files.
#include "meta/sqlite/sqlite_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using sqlite::Stmt;
using sqlite::Txn;

// ---- Upload sessions ----

Status SqliteMetaStore::CreateUpload(const UploadSession& s) {
  if (s.id.empty()) return InvalidArgument("upload id is empty");
  WHARF_RETURN_IF_ERROR(CheckUploadTail(s.tail));
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT 1 FROM uploads WHERE id = ?"));
    WHARF_ASSIGN_OR_RETURN(bool exists, q.Bind(1, s.id).Step());
    if (exists) return Conflict(fmt::format("upload {} exists", s.id));
  }
  int64_t now = Now();
  WHARF_ASSIGN_OR_RETURN(
      Stmt ins, db_.Prepare("INSERT INTO uploads(id, repo, offset, hash_state, created_unix, "
                            "updated_unix, tail) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  ins.Bind(1, s.id).Bind(2, s.repo).BindU64(3, s.offset).BindBlob(4, s.hash_state);
  WHARF_RETURN_IF_ERROR(ins.Bind(5, now).Bind(6, now).BindBlob(7, s.tail).Run());
  std::string owner = ChunkOwner::Upload(s.id).ToString();
  WHARF_RETURN_IF_ERROR(AdoptChunks(owner, "", s.chunks));
  WHARF_RETURN_IF_ERROR(AppendChunkList(owner, 0, s.chunks));
  return txn.Commit();
}

Result<UploadSession> SqliteMetaStore::GetUpload(std::string_view id) {
  std::lock_guard lock(mu_);
  UploadSession s;
  {
    WHARF_ASSIGN_OR_RETURN(
        Stmt q, db_.Prepare("SELECT id, repo, offset, hash_state, created_unix, updated_unix, "
                            "tail FROM uploads WHERE id = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, id).Step());
    if (!found) return Err(NotFound(fmt::format("upload {}", id)));
    s = UploadSession{q.Text(0), q.Text(1), q.U64(2), q.Text(3), {}, q.Int(4), q.Int(5), q.Text(6)};
  }
  WHARF_ASSIGN_OR_RETURN(s.chunks, ReadChunkList(ChunkOwner::Upload(id).ToString()));
  return s;
}

Status SqliteMetaStore::AppendUpload(std::string_view id, uint64_t expected_offset,
                                     uint64_t new_offset, std::string hash_state,
                                     std::vector<ChunkRef> new_chunks, std::string tail) {
  if (new_offset < expected_offset) {
    return InvalidArgument(
        fmt::format("upload offset would go back from {} to {}", expected_offset, new_offset));
  }
  WHARF_RETURN_IF_ERROR(CheckUploadTail(tail));
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT offset FROM uploads WHERE id = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, id).Step());
    if (!found) return NotFound(fmt::format("upload {}", id));
    if (q.U64(0) != expected_offset) {
      return Conflict(
          fmt::format("upload {} is at offset {}, not {}", id, q.U64(0), expected_offset));
    }
  }
  WHARF_ASSIGN_OR_RETURN(
      Stmt up, db_.Prepare("UPDATE uploads SET offset = ?, hash_state = ?, updated_unix = ?, "
                           "tail = ? WHERE id = ?"));
  up.BindU64(1, new_offset).BindBlob(2, hash_state).Bind(3, Now()).BindBlob(4, tail).Bind(5, id);
  WHARF_RETURN_IF_ERROR(up.Run());
  std::string owner = ChunkOwner::Upload(id).ToString();
  int64_t next_seq = 0;
  {
    WHARF_ASSIGN_OR_RETURN(
        Stmt q, db_.Prepare("SELECT COALESCE(MAX(seq) + 1, 0) FROM chunk_lists WHERE owner = ?"));
    WHARF_ASSIGN_OR_RETURN(bool row, q.Bind(1, owner).Step());
    if (row) next_seq = q.Int(0);
  }
  WHARF_RETURN_IF_ERROR(AdoptChunks(owner, "", new_chunks));
  WHARF_RETURN_IF_ERROR(AppendChunkList(owner, next_seq, new_chunks));
  return txn.Commit();
}

Status SqliteMetaStore::DeleteUpload(std::string_view id) {
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  WHARF_ASSIGN_OR_RETURN(Stmt del, db_.Prepare("DELETE FROM uploads WHERE id = ?"));
  WHARF_RETURN_IF_ERROR(del.Bind(1, id).Run());
  if (del.Changes() == 0) return NotFound(fmt::format("upload {}", id));
  std::string owner = ChunkOwner::Upload(id).ToString();
  WHARF_RETURN_IF_ERROR(DeleteChunkList(owner));
  WHARF_RETURN_IF_ERROR(ReleaseOwner(owner));
  return txn.Commit();
}

Result<std::vector<std::string>> SqliteMetaStore::ListExpiredUploads(int64_t updated_before_unix,
                                                                     size_t limit) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT id FROM uploads WHERE updated_unix < ? "
                                             "ORDER BY updated_unix, id LIMIT ?"));
  q.Bind(1, updated_before_unix).Bind(2, sqlite::SqlLimit(limit));
  std::vector<std::string> out;
  while (true) {
    WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(q.Text(0));
  }
  return out;
}

Status SqliteMetaStore::TouchUpload(std::string_view id) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(Stmt up, db_.Prepare("UPDATE uploads SET updated_unix = ? WHERE id = ?"));
  WHARF_RETURN_IF_ERROR(up.Bind(1, Now()).Bind(2, id).Run());
  if (up.Changes() == 0) return NotFound(fmt::format("upload {}", id));
  return Status::Ok();
}

Result<MetaStore::StaleUploads> SqliteMetaStore::ReleaseStaleUploads(int64_t idle_before_unix,
                                                                     size_t limit) {
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  StaleUploads out;
  std::vector<std::string> files;
  {
    WHARF_ASSIGN_OR_RETURN(
        Stmt q, db_.Prepare("SELECT id FROM uploads WHERE repo = '' AND updated_unix < ? "
                            "ORDER BY updated_unix, id LIMIT ?"));
    q.Bind(1, idle_before_unix).Bind(2, sqlite::SqlLimit(limit));
    while (true) {
      WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      files.push_back(q.Text(0));
    }
  }
  for (const std::string& id : files) {
    WHARF_ASSIGN_OR_RETURN(Stmt del, db_.Prepare("DELETE FROM uploads WHERE id = ?"));
    WHARF_RETURN_IF_ERROR(del.Bind(1, id).Run());
    const std::string owner = ChunkOwner::Upload(id).ToString();
    WHARF_RETURN_IF_ERROR(DeleteChunkList(owner));
    WHARF_RETURN_IF_ERROR(ReleaseOwner(owner));
    ++out.sessions;
  }
  WHARF_ASSIGN_OR_RETURN(
      Stmt rel, db_.Prepare("UPDATE chunks SET owner = '', updated_unix = ?1 WHERE id IN "
                            "(SELECT c.id FROM uploads u JOIN chunks c ON c.owner = 'upload:' || "
                            "u.id WHERE u.updated_unix < ?2 AND c.updated_unix < ?2 AND NOT "
                            "EXISTS (SELECT 1 FROM chunk_lists l WHERE l.chunk_id = c.id) "
                            "LIMIT ?3)"));
  rel.Bind(1, Now()).Bind(2, idle_before_unix).Bind(3, sqlite::SqlLimit(limit));
  WHARF_RETURN_IF_ERROR(rel.Run());
  out.chunks = rel.Changes();
  WHARF_RETURN_IF_ERROR(txn.Commit());
  return out;
}

// ---- Plain files ----

Status SqliteMetaStore::CommitFile(std::string_view upload_id, const FileRecord& f) {
  if (f.id.empty()) return InvalidArgument("file id is empty");
  WHARF_RETURN_IF_ERROR(sqlite::CheckChunks(f.chunks, f.size));
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  WHARF_ASSIGN_OR_RETURN(Stmt del, db_.Prepare("DELETE FROM uploads WHERE id = ?"));
  WHARF_RETURN_IF_ERROR(del.Bind(1, upload_id).Run());
  if (del.Changes() == 0) return NotFound(fmt::format("upload {}", upload_id));
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT 1 FROM files WHERE id = ?"));
    WHARF_ASSIGN_OR_RETURN(bool exists, q.Bind(1, f.id).Step());
    if (exists) return Conflict(fmt::format("file {} exists", f.id));
  }
  WHARF_ASSIGN_OR_RETURN(Stmt ins, db_.Prepare("INSERT INTO files(id, digest, size, content_type, "
                                               "created_unix, name) VALUES (?, ?, ?, ?, ?, ?)"));
  ins.Bind(1, f.id).Bind(2, f.digest.ToString()).BindU64(3, f.size).Bind(4, f.content_type);
  WHARF_RETURN_IF_ERROR(ins.Bind(5, f.created_unix).Bind(6, f.name).Run());
  std::string from = ChunkOwner::Upload(upload_id).ToString();
  std::string owner = ChunkOwner::File(f.id).ToString();
  WHARF_RETURN_IF_ERROR(DeleteChunkList(from));
  WHARF_RETURN_IF_ERROR(AdoptChunks(owner, from, f.chunks));
  WHARF_RETURN_IF_ERROR(AppendChunkList(owner, 0, f.chunks));
  WHARF_RETURN_IF_ERROR(ReleaseOwner(from));  // session chunks the file does not use
  return txn.Commit();
}

Result<FileRecord> SqliteMetaStore::ReadFileLocked(std::string_view id) {
  FileRecord f;
  {
    WHARF_ASSIGN_OR_RETURN(
        Stmt q, db_.Prepare("SELECT id, digest, size, content_type, created_unix, name FROM "
                            "files WHERE id = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, id).Step());
    if (!found) return Err(NotFound(fmt::format("file {}", id)));
    WHARF_ASSIGN_OR_RETURN(Digest d, sqlite::StoredDigest(q.Text(1)));
    f = FileRecord{q.Text(0), std::move(d), q.U64(2), q.Text(3), {}, q.Int(4), q.Text(5)};
  }
  WHARF_ASSIGN_OR_RETURN(f.chunks, ReadChunkList(ChunkOwner::File(id).ToString()));
  return f;
}

Result<FileRecord> SqliteMetaStore::GetFile(std::string_view id) {
  std::lock_guard lock(mu_);
  return ReadFileLocked(id);
}

Result<FileRecord> SqliteMetaStore::DeleteFile(std::string_view id) {
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_META_RETURN_IF_ERROR(txn.Begin());
  WHARF_ASSIGN_OR_RETURN(FileRecord f, ReadFileLocked(id));
  WHARF_ASSIGN_OR_RETURN(Stmt del, db_.Prepare("DELETE FROM files WHERE id = ?"));
  WHARF_META_RETURN_IF_ERROR(del.Bind(1, id).Run());
  std::string owner = ChunkOwner::File(id).ToString();
  WHARF_META_RETURN_IF_ERROR(DeleteChunkList(owner));
  WHARF_META_RETURN_IF_ERROR(ReleaseOwner(owner));
  WHARF_META_RETURN_IF_ERROR(txn.Commit());
  return f;
}

}  // namespace wharf
