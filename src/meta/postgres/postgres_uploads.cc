// PostgresMetaStore: upload sessions and plain files.
#include "meta/postgres/postgres_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using pg::Conn;
using pg::Params;
using pg::Rows;

// ---- Upload sessions ----

Status PostgresMetaStore::CreateUpload(const UploadSession& s) {
  if (s.id.empty()) return InvalidArgument("upload id is empty");
  WHARF_RETURN_IF_ERROR(CheckUploadTail(s.tail));
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    int64_t now = Now();
    WHARF_ASSIGN_OR_RETURN(
        Rows ins,
        c.Exec("INSERT INTO uploads(id, repo, byte_offset, hash_state, created_unix, "
               "updated_unix, tail) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
               Params()
                   .Text(s.id)
                   .Text(s.repo)
                   .U64(s.offset)
                   .Bytes(s.hash_state)
                   .Int(now)
                   .Int(now)
                   .Bytes(s.tail)));
    if (ins.affected() == 0) return Conflict(fmt::format("upload {} exists", s.id));
    std::string owner = ChunkOwner::Upload(s.id).ToString();
    WHARF_RETURN_IF_ERROR(AdoptChunks(c, owner, "", s.chunks));
    return AppendChunkList(c, owner, 0, s.chunks);
  });
}

Result<UploadSession> PostgresMetaStore::GetUpload(std::string_view id) {
  // One statement (one snapshot): the session row, repeated beside each of its chunks.
  return RunFor<UploadSession>(Mode::kAlone, [&](Conn& c) -> Result<UploadSession> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT u.id, u.repo, u.byte_offset, u.hash_state, u.created_unix, "
                       "u.updated_unix, c.grp, c.id, c.size, c.checksum, u.tail FROM uploads u "
                       "LEFT JOIN chunk_lists l ON l.owner = 'upload:' || u.id "
                       "LEFT JOIN chunks c ON c.id = l.chunk_id WHERE u.id = $1 ORDER BY l.seq",
                       Params().Text(id)));
    if (q.empty()) return Err(NotFound(fmt::format("upload {}", id)));
    UploadSession s{q.Text(0, 0), q.Text(0, 1), q.U64(0, 2), q.Text(0, 3),
                    {},           q.Int(0, 4),  q.Int(0, 5), q.Text(0, 10)};
    for (int i = 0; i < q.size(); ++i) {
      if (q.IsNull(i, 7)) continue;  // no chunks
      s.chunks.push_back(ChunkRef{q.Text(i, 6), q.Text(i, 7), q.U64(i, 8), q.U64(i, 9)});
    }
    return s;
  });
}

Status PostgresMetaStore::AppendUpload(std::string_view id, uint64_t expected_offset,
                                       uint64_t new_offset, std::string hash_state,
                                       std::vector<ChunkRef> new_chunks, std::string tail) {
  if (new_offset < expected_offset) {
    return InvalidArgument(
        fmt::format("upload offset would go back from {} to {}", expected_offset, new_offset));
  }
  WHARF_RETURN_IF_ERROR(CheckUploadTail(tail));
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    {
      WHARF_ASSIGN_OR_RETURN(Rows q, c.Exec("SELECT byte_offset FROM uploads WHERE id = $1 "
                                            "FOR UPDATE",
                                            Params().Text(id)));
      if (q.empty()) return NotFound(fmt::format("upload {}", id));
      if (q.U64(0, 0) != expected_offset) {
        return Conflict(
            fmt::format("upload {} is at offset {}, not {}", id, q.U64(0, 0), expected_offset));
      }
    }
    WHARF_RETURN_IF_ERROR(
        c.Do("UPDATE uploads SET byte_offset = $1, hash_state = $2, updated_unix = $3, "
             "tail = $5 WHERE id = $4",
             Params().U64(new_offset).Bytes(hash_state).Int(Now()).Text(id).Bytes(tail)));
    std::string owner = ChunkOwner::Upload(id).ToString();
    WHARF_ASSIGN_OR_RETURN(
        Rows next, c.Exec("SELECT COALESCE(MAX(seq) + 1, 0) FROM chunk_lists WHERE owner = $1",
                          Params().Text(owner)));
    WHARF_RETURN_IF_ERROR(AdoptChunks(c, owner, "", new_chunks));
    return AppendChunkList(c, owner, next.Int(0, 0), new_chunks);
  });
}

Status PostgresMetaStore::DeleteUpload(std::string_view id) {
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    WHARF_ASSIGN_OR_RETURN(Rows del,
                           c.Exec("DELETE FROM uploads WHERE id = $1", Params().Text(id)));
    if (del.affected() == 0) return NotFound(fmt::format("upload {}", id));
    std::string owner = ChunkOwner::Upload(id).ToString();
    WHARF_RETURN_IF_ERROR(DeleteChunkList(c, owner));
    return ReleaseOwner(c, owner);
  });
}

Result<std::vector<std::string>> PostgresMetaStore::ListExpiredUploads(int64_t updated_before_unix,
                                                                       size_t limit) {
  using Ids = std::vector<std::string>;
  return RunFor<Ids>(Mode::kAlone, [&](Conn& c) -> Result<Ids> {
    WHARF_ASSIGN_OR_RETURN(Rows q,
                           c.Exec("SELECT id FROM uploads WHERE updated_unix < $1 "
                                  "ORDER BY updated_unix, id LIMIT $2",
                                  Params().Int(updated_before_unix).Int(sqlite::SqlLimit(limit))));
    Ids out;
    for (int i = 0; i < q.size(); ++i) out.push_back(q.Text(i, 0));
    return out;
  });
}

Status PostgresMetaStore::TouchUpload(std::string_view id) {
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    WHARF_ASSIGN_OR_RETURN(Rows up, c.Exec("UPDATE uploads SET updated_unix = $1 WHERE id = $2",
                                           Params().Int(Now()).Text(id)));
    if (up.affected() == 0) return NotFound(fmt::format("upload {}", id));
    return Status::Ok();
  });
}

Result<MetaStore::StaleUploads> PostgresMetaStore::ReleaseStaleUploads(int64_t idle_before_unix,
                                                                       size_t limit) {
  // SERIALIZABLE (Mode::kWrite): an AppendUpload listing one of these chunks meanwhile makes
  // one of the two transactions retry, so a listed chunk is never released.
  return RunFor<StaleUploads>(Mode::kWrite, [&](Conn& c) -> Result<StaleUploads> {
    StaleUploads out;
    WHARF_ASSIGN_OR_RETURN(Rows files,
                           c.Exec("SELECT id FROM uploads WHERE repo = '' AND updated_unix < $1 "
                                  "ORDER BY updated_unix, id LIMIT $2",
                                  Params().Int(idle_before_unix).Int(sqlite::SqlLimit(limit))));
    for (int i = 0; i < files.size(); ++i) {
      const std::string id = files.Text(i, 0);
      WHARF_RETURN_IF_ERROR(c.Do("DELETE FROM uploads WHERE id = $1", Params().Text(id)));
      const std::string owner = ChunkOwner::Upload(id).ToString();
      WHARF_RETURN_IF_ERROR(DeleteChunkList(c, owner));
      WHARF_RETURN_IF_ERROR(ReleaseOwner(c, owner));
      ++out.sessions;
    }
    WHARF_ASSIGN_OR_RETURN(
        Rows rel, c.Exec("UPDATE chunks SET owner = '', updated_unix = $1 WHERE id IN "
                         "(SELECT c.id FROM uploads u JOIN chunks c ON c.owner = 'upload:' || u.id "
                         "WHERE u.updated_unix < $2 AND c.updated_unix < $2 AND NOT EXISTS "
                         "(SELECT 1 FROM chunk_lists l WHERE l.chunk_id = c.id) LIMIT $3)",
                         Params().Int(Now()).Int(idle_before_unix).Int(sqlite::SqlLimit(limit))));
    out.chunks = rel.affected();
    return out;
  });
}

// ---- Plain files ----

Status PostgresMetaStore::CommitFile(std::string_view upload_id, const FileRecord& f) {
  if (f.id.empty()) return InvalidArgument("file id is empty");
  WHARF_RETURN_IF_ERROR(sqlite::CheckChunks(f.chunks, f.size));
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    WHARF_ASSIGN_OR_RETURN(Rows del,
                           c.Exec("DELETE FROM uploads WHERE id = $1", Params().Text(upload_id)));
    if (del.affected() == 0) return NotFound(fmt::format("upload {}", upload_id));
    WHARF_ASSIGN_OR_RETURN(Rows ins,
                           c.Exec("INSERT INTO files(id, digest, size, content_type, created_unix, "
                                  "name) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                                  Params()
                                      .Text(f.id)
                                      .Text(f.digest.ToString())
                                      .U64(f.size)
                                      .Text(f.content_type)
                                      .Int(f.created_unix)
                                      .Text(f.name)));
    if (ins.affected() == 0) return Conflict(fmt::format("file {} exists", f.id));
    std::string from = ChunkOwner::Upload(upload_id).ToString();
    std::string owner = ChunkOwner::File(f.id).ToString();
    WHARF_RETURN_IF_ERROR(DeleteChunkList(c, from));
    WHARF_RETURN_IF_ERROR(AdoptChunks(c, owner, from, f.chunks));
    WHARF_RETURN_IF_ERROR(AppendChunkList(c, owner, 0, f.chunks));
    return ReleaseOwner(c, from);  // session chunks the file does not use
  });
}

Result<FileRecord> PostgresMetaStore::ReadFile(Conn& c, std::string_view id) {
  WHARF_ASSIGN_OR_RETURN(Rows q,
                         c.Exec("SELECT id, digest, size, content_type, created_unix, name FROM "
                                "files WHERE id = $1",
                                Params().Text(id)));
  if (q.empty()) return Err(NotFound(fmt::format("file {}", id)));
  WHARF_ASSIGN_OR_RETURN(Digest d, sqlite::StoredDigest(q.Text(0, 1)));
  FileRecord f{q.Text(0, 0), std::move(d), q.U64(0, 2), q.Text(0, 3),
               {},           q.Int(0, 4),  q.Text(0, 5)};
  WHARF_ASSIGN_OR_RETURN(f.chunks, ReadChunkList(c, ChunkOwner::File(id).ToString()));
  return f;
}

Result<FileRecord> PostgresMetaStore::GetFile(std::string_view id) {
  return RunFor<FileRecord>(Mode::kRead, [&](Conn& c) { return ReadFile(c, id); });
}

Result<FileRecord> PostgresMetaStore::DeleteFile(std::string_view id) {
  return RunFor<FileRecord>(Mode::kWrite, [&](Conn& c) -> Result<FileRecord> {
    WHARF_ASSIGN_OR_RETURN(FileRecord f, ReadFile(c, id));
    WHARF_META_RETURN_IF_ERROR(c.Do("DELETE FROM files WHERE id = $1", Params().Text(id)));
    std::string owner = ChunkOwner::File(id).ToString();
    WHARF_META_RETURN_IF_ERROR(DeleteChunkList(c, owner));
    WHARF_META_RETURN_IF_ERROR(ReleaseOwner(c, owner));
    return f;
  });
}

}  // namespace wharf
