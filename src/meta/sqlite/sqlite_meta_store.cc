// SqliteMetaStore: opening, schema migrations, the chunk ledger and its helpers.
// Uploads and files: sqlite_uploads.cc; blobs: sqlite_blobs.cc; OCI: sqlite_manifests.cc.
#include "meta/sqlite/sqlite_meta_store.h"

#include <sqlite3.h>

#include <chrono>

#include "common/log.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using sqlite::Stmt;
using sqlite::Txn;

namespace {

// kMigrations[i] upgrades a database at version i to version i + 1. Append only: never
// edit a released step.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE chunks (
  id TEXT PRIMARY KEY NOT NULL,
  grp TEXT NOT NULL,
  size INTEGER NOT NULL,
  checksum INTEGER NOT NULL,
  owner TEXT NOT NULL,
  updated_unix INTEGER NOT NULL
);
CREATE INDEX chunks_by_owner ON chunks(owner, updated_unix);
CREATE TABLE chunk_lists (
  owner TEXT NOT NULL,
  seq INTEGER NOT NULL,
  chunk_id TEXT NOT NULL REFERENCES chunks(id),
  PRIMARY KEY (owner, seq)
) WITHOUT ROWID;
CREATE INDEX chunk_lists_by_chunk ON chunk_lists(chunk_id);
CREATE TABLE uploads (
  id TEXT PRIMARY KEY NOT NULL,
  repo TEXT NOT NULL,
  offset INTEGER NOT NULL,
  hash_state BLOB NOT NULL,
  created_unix INTEGER NOT NULL,
  updated_unix INTEGER NOT NULL
);
CREATE INDEX uploads_by_updated ON uploads(updated_unix);
CREATE TABLE files (
  id TEXT PRIMARY KEY NOT NULL,
  digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  created_unix INTEGER NOT NULL
);
CREATE TABLE blobs (
  digest TEXT PRIMARY KEY NOT NULL,
  size INTEGER NOT NULL,
  created_unix INTEGER NOT NULL
);
CREATE TABLE repositories (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE repo_blobs (
  repo_id INTEGER NOT NULL REFERENCES repositories(id),
  digest TEXT NOT NULL REFERENCES blobs(digest),
  PRIMARY KEY (repo_id, digest)
) WITHOUT ROWID;
CREATE INDEX repo_blobs_by_digest ON repo_blobs(digest);
CREATE TABLE manifests (
  repo_id INTEGER NOT NULL REFERENCES repositories(id),
  digest TEXT NOT NULL,
  media_type TEXT NOT NULL,
  content BLOB NOT NULL,
  subject TEXT,
  artifact_type TEXT NOT NULL,
  annotations_json TEXT NOT NULL,
  created_unix INTEGER NOT NULL,
  PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;
CREATE TABLE manifest_refs (
  repo_id INTEGER NOT NULL,
  manifest TEXT NOT NULL,
  kind INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  target TEXT NOT NULL,
  PRIMARY KEY (repo_id, manifest, kind, seq),
  FOREIGN KEY (repo_id, manifest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX manifest_refs_by_target ON manifest_refs(target);
CREATE TABLE tags (
  repo_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  digest TEXT NOT NULL,
  PRIMARY KEY (repo_id, name),
  FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX tags_by_digest ON tags(repo_id, digest);
)sql",
    // 2: blob links carry the time they were last made, for the collector's grace period.
    // Links that exist at the upgrade count as made then.
    R"sql(
ALTER TABLE repo_blobs ADD COLUMN linked_unix INTEGER NOT NULL DEFAULT 0;
UPDATE repo_blobs SET linked_unix = CAST(strftime('%s', 'now') AS INTEGER);
)sql",
    // 3: files keep the name they were uploaded under (multipart/form-data uploads).
    R"sql(
ALTER TABLE files ADD COLUMN name TEXT NOT NULL DEFAULT '';
)sql",
    // 4: the store's identity (its one row is written by Migrate, in the same transaction) and
    // the background-work leases.
    R"sql(
CREATE TABLE store_identity (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  id TEXT NOT NULL
);
CREATE TABLE leases (
  name TEXT PRIMARY KEY NOT NULL,
  holder TEXT NOT NULL,
  expires_unix INTEGER NOT NULL
);
)sql",
    // 5: an upload session keeps the bytes past its last chunk (small appends coalesced).
    R"sql(
ALTER TABLE uploads ADD COLUMN tail BLOB NOT NULL DEFAULT x'';
)sql",
    // 6: the work queue (sqlite_queue.cc): the site's asynchronous write-through, and later
    // replication jobs.
    R"sql(
CREATE TABLE work_queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind INTEGER NOT NULL,
  target TEXT NOT NULL,
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  tag TEXT NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_unix INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  created_unix INTEGER NOT NULL,
  updated_unix INTEGER NOT NULL,
  holder TEXT NOT NULL,
  lease_until_unix INTEGER NOT NULL,
  version INTEGER NOT NULL
);
CREATE UNIQUE INDEX work_queue_by_key ON work_queue(target, kind, repository, digest, tag);
CREATE INDEX work_queue_ready ON work_queue(target, state, next_attempt_unix);
CREATE INDEX work_queue_by_digest ON work_queue(digest) WHERE digest <> '';
CREATE INDEX work_queue_by_holder ON work_queue(holder, state);
)sql",
    // 7: blobs keep the time of their last pull, for a site cache's eviction (sqlite_evict.cc).
    // Blobs that exist at the upgrade count as never pulled (their creation is their last use).
    R"sql(
ALTER TABLE blobs ADD COLUMN last_pull_unix INTEGER NOT NULL DEFAULT 0;
)sql",
};
constexpr int64_t kSchemaVersion = std::size(kMigrations);

}  // namespace

SqliteMetaStore::SqliteMetaStore(MetaStoreOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<SqliteMetaStore>> SqliteMetaStore::Open(const std::string& path,
                                                               MetaStoreOptions options) {
  if (path.empty()) return Err(InvalidArgument("sqlite meta store: empty path"));
  std::unique_ptr<SqliteMetaStore> store(new SqliteMetaStore(std::move(options)));
  std::lock_guard lock(store->mu_);
  WHARF_META_RETURN_IF_ERROR(store->db_.Open(path));
  WHARF_META_RETURN_IF_ERROR(store->ProbeWritable());
  WHARF_META_RETURN_IF_ERROR(store->Migrate());
  return store;
}

// SQLite opens a file it may not write (chattr +i, a read-only mount, no permission) read-only
// without a word, and only the first write would fail. One write transaction at start finds
// out. The message leaves the SQL out: "not writable (...): attempt to write a readonly
// database".
Status SqliteMetaStore::ProbeWritable() {
  // sqlite3_exec on the raw handle: a read-only store is an expected start-up error here, not
  // a degraded mode to log and count as SqliteError does.
  sqlite3* db = db_.raw();
  // Changed and changed back: SQLite skips writing a row rewritten with the same bytes.
  constexpr const char* kProbe =
      "BEGIN IMMEDIATE;"
      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
      "UPDATE schema_version SET version = -version;"
      "UPDATE schema_version SET version = -version;"
      "COMMIT";
  int rc = sqlite3_exec(db, kProbe, nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string reason = sqlite3_errmsg(db);
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  const int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return Unavailable("busy (another process holds its write lock): " + reason);
  }
  return IOError("not writable (a read-only file, directory or file system?): " + reason);
}

Status SqliteMetaStore::Migrate() {
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  WHARF_RETURN_IF_ERROR(
      db_.Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  int64_t version = 0;
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT version FROM schema_version"));
    WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) version = q.Int(0);
  }
  if (version > kSchemaVersion) {
    return Unsupported(fmt::format("meta store schema version {} is newer than this binary's {}",
                                   version, kSchemaVersion));
  }
  if (version == kSchemaVersion) return txn.Commit();
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    WHARF_RETURN_IF_ERROR(db_.Exec(kMigrations[v]));
  }
  WHARF_RETURN_IF_ERROR(EnsureStoreIdLocked());
  WHARF_RETURN_IF_ERROR(db_.Exec("DELETE FROM schema_version"));
  WHARF_ASSIGN_OR_RETURN(Stmt ins, db_.Prepare("INSERT INTO schema_version(version) VALUES (?)"));
  WHARF_RETURN_IF_ERROR(ins.Bind(1, kSchemaVersion).Run());
  GetLogger("meta")->info("sqlite schema migrated from={} to={}", version, kSchemaVersion);
  return txn.Commit();
}

int64_t SqliteMetaStore::Now() const {
  if (options_.now_unix) return options_.now_unix();
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

// ---- Helpers ----

Status SqliteMetaStore::AdoptChunks(std::string_view owner, std::string_view from,
                                    const std::vector<ChunkRef>& chunks) {
  int64_t now = Now();
  for (const ChunkRef& c : chunks) {
    if (c.id.empty()) return InvalidArgument("chunk with an empty id");
    WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT owner FROM chunks WHERE id = ?"));
    WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, c.id).Step());
    if (found) {
      std::string current = q.Text(0);
      if (current != owner && (from.empty() || current != from)) {
        return Conflict(fmt::format("chunk {} is owned by \"{}\", not \"{}\"", c.id, current,
                                    from.empty() ? owner : from));
      }
    }
    WHARF_ASSIGN_OR_RETURN(
        Stmt up, db_.Prepare("INSERT INTO chunks(id, grp, size, checksum, owner, updated_unix) "
                             "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET "
                             "grp = ?2, size = ?3, checksum = ?4, owner = ?5, updated_unix = ?6"));
    up.Bind(1, c.id).Bind(2, c.group).BindU64(3, c.size).BindU64(4, c.checksum);
    WHARF_RETURN_IF_ERROR(up.Bind(5, owner).Bind(6, now).Run());
  }
  return Status::Ok();
}

Status SqliteMetaStore::ReleaseOwner(std::string_view owner) {
  WHARF_ASSIGN_OR_RETURN(
      Stmt st, db_.Prepare("UPDATE chunks SET owner = '', updated_unix = ? WHERE owner = ?"));
  return st.Bind(1, Now()).Bind(2, owner).Run();
}

Status SqliteMetaStore::DiscardChunks(std::string_view from, const std::vector<ChunkRef>& chunks) {
  if (!from.empty()) WHARF_RETURN_IF_ERROR(ReleaseOwner(from));
  for (const ChunkRef& c : chunks) {
    WHARF_ASSIGN_OR_RETURN(
        Stmt ins, db_.Prepare("INSERT INTO chunks(id, grp, size, checksum, owner, updated_unix) "
                              "VALUES (?, ?, ?, ?, '', ?) ON CONFLICT(id) DO NOTHING"));
    ins.Bind(1, c.id).Bind(2, c.group).BindU64(3, c.size).BindU64(4, c.checksum);
    WHARF_RETURN_IF_ERROR(ins.Bind(5, Now()).Run());
  }
  return Status::Ok();
}

Status SqliteMetaStore::AppendChunkList(std::string_view owner, int64_t first_seq,
                                        const std::vector<ChunkRef>& chunks) {
  int64_t seq = first_seq;
  for (const ChunkRef& c : chunks) {
    WHARF_ASSIGN_OR_RETURN(
        Stmt ins, db_.Prepare("INSERT INTO chunk_lists(owner, seq, chunk_id) VALUES (?, ?, ?)"));
    WHARF_RETURN_IF_ERROR(ins.Bind(1, owner).Bind(2, seq++).Bind(3, c.id).Run());
  }
  return Status::Ok();
}

Result<std::vector<ChunkRef>> SqliteMetaStore::ReadChunkList(std::string_view owner) {
  WHARF_ASSIGN_OR_RETURN(
      Stmt q, db_.Prepare("SELECT c.grp, c.id, c.size, c.checksum FROM chunk_lists l "
                          "JOIN chunks c ON c.id = l.chunk_id WHERE l.owner = ? ORDER BY l.seq"));
  q.Bind(1, owner);
  std::vector<ChunkRef> out;
  while (true) {
    WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(ChunkRef{q.Text(0), q.Text(1), q.U64(2), q.U64(3)});
  }
  return out;
}

Status SqliteMetaStore::DeleteChunkList(std::string_view owner) {
  WHARF_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("DELETE FROM chunk_lists WHERE owner = ?"));
  return st.Bind(1, owner).Run();
}

Result<bool> SqliteMetaStore::OwnerExists(const ChunkOwner& owner) {
  const char* sql = "SELECT 1 FROM blobs WHERE digest = ?";
  if (owner.kind == ChunkOwnerKind::kUpload) sql = "SELECT 1 FROM uploads WHERE id = ?";
  if (owner.kind == ChunkOwnerKind::kFile) sql = "SELECT 1 FROM files WHERE id = ?";
  WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare(sql));
  return q.Bind(1, owner.id).Step();
}

// ---- Chunk ledger ----

Status SqliteMetaStore::RecordChunks(const ChunkOwner& owner, const std::vector<ChunkRef>& chunks) {
  const std::string text = owner.ToString();  // the stored form (unchanged on disk)
  if (!owner.valid()) return InvalidArgument(fmt::format("invalid chunk owner \"{}\"", text));
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  WHARF_ASSIGN_OR_RETURN(bool exists, OwnerExists(owner));
  if (!exists) return NotFound(fmt::format("chunk owner \"{}\" does not exist", text));
  WHARF_RETURN_IF_ERROR(AdoptChunks(text, "", chunks));
  return txn.Commit();
}

Status SqliteMetaStore::ReleaseChunks(const std::vector<std::string>& ids) {
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  for (const std::string& id : ids) {
    // A chunk some record still lists stays live: releasing it would let GC delete bytes
    // that record needs. Release the record instead.
    WHARF_ASSIGN_OR_RETURN(
        Stmt st, db_.Prepare("UPDATE chunks SET owner = '', updated_unix = ? WHERE id = ? AND "
                             "owner <> '' AND NOT EXISTS "
                             "(SELECT 1 FROM chunk_lists WHERE chunk_id = chunks.id)"));
    WHARF_RETURN_IF_ERROR(st.Bind(1, Now()).Bind(2, id).Run());
  }
  return txn.Commit();
}

Result<std::vector<ChunkRef>> SqliteMetaStore::ListGarbageChunks(size_t limit) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(Stmt q,
                         db_.Prepare("SELECT grp, id, size, checksum FROM chunks WHERE owner = '' "
                                     "ORDER BY updated_unix, id LIMIT ?"));
  q.Bind(1, sqlite::SqlLimit(limit));
  std::vector<ChunkRef> out;
  while (true) {
    WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(ChunkRef{q.Text(0), q.Text(1), q.U64(2), q.U64(3)});
  }
  return out;
}

Status SqliteMetaStore::ForgetChunks(const std::vector<std::string>& ids) {
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_RETURN_IF_ERROR(txn.Begin());
  for (const std::string& id : ids) {
    WHARF_ASSIGN_OR_RETURN(Stmt st, db_.Prepare("DELETE FROM chunks WHERE id = ? AND owner = '' "
                                                "AND NOT EXISTS (SELECT 1 FROM chunk_lists "
                                                "WHERE chunk_id = chunks.id)"));
    WHARF_RETURN_IF_ERROR(st.Bind(1, id).Run());
  }
  return txn.Commit();
}

Result<ChunkState> SqliteMetaStore::GetChunkState(std::string_view id) {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT owner FROM chunks WHERE id = ?"));
  WHARF_ASSIGN_OR_RETURN(bool found, q.Bind(1, id).Step());
  if (!found) return ChunkState::kUnknown;
  return q.Text(0).empty() ? ChunkState::kGarbage : ChunkState::kLive;
}

}  // namespace wharf
