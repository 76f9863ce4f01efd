// PostgresMetaStore: opening, schema migrations, the transaction runner, the chunk ledger and
// its helpers. Uploads and files: postgres_uploads.cc; blobs and the OCI namespace:
// postgres_oci.cc; the garbage collector's scans and collections: postgres_gc.cc.
#include "meta/postgres/postgres_meta_store.h"

#include <chrono>
#include <random>
#include <thread>

#include "common/log.h"
#include "common/metrics.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using pg::Conn;
using pg::Params;
using pg::Rows;

namespace {

// kMigrations[i] upgrades a database at version i to version i + 1. Append only: never edit a
// released step. Names are COLLATE "C" so that ORDER BY and > compare bytes, as the
// interface's pagination wants, whatever the database's default collation.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE chunks (
  id text COLLATE "C" PRIMARY KEY,
  grp text NOT NULL,
  size bigint NOT NULL,
  checksum bigint NOT NULL,
  owner text COLLATE "C" NOT NULL,
  updated_unix bigint NOT NULL
);
CREATE INDEX chunks_by_owner ON chunks(owner, updated_unix);
CREATE TABLE chunk_lists (
  owner text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  chunk_id text COLLATE "C" NOT NULL REFERENCES chunks(id),
  PRIMARY KEY (owner, seq)
);
CREATE INDEX chunk_lists_by_chunk ON chunk_lists(chunk_id);
CREATE TABLE uploads (
  id text COLLATE "C" PRIMARY KEY,
  repo text NOT NULL,
  byte_offset bigint NOT NULL,
  hash_state bytea NOT NULL,
  created_unix bigint NOT NULL,
  updated_unix bigint NOT NULL
);
CREATE INDEX uploads_by_updated ON uploads(updated_unix);
CREATE TABLE files (
  id text COLLATE "C" PRIMARY KEY,
  digest text NOT NULL,
  size bigint NOT NULL,
  content_type text NOT NULL,
  created_unix bigint NOT NULL
);
CREATE TABLE blobs (
  digest text COLLATE "C" PRIMARY KEY,
  size bigint NOT NULL,
  created_unix bigint NOT NULL
);
CREATE TABLE repositories (
  id bigserial PRIMARY KEY,
  name text COLLATE "C" NOT NULL UNIQUE
);
CREATE TABLE repo_blobs (
  repo_id bigint NOT NULL REFERENCES repositories(id),
  digest text COLLATE "C" NOT NULL REFERENCES blobs(digest),
  PRIMARY KEY (repo_id, digest)
);
CREATE INDEX repo_blobs_by_digest ON repo_blobs(digest);
CREATE TABLE manifests (
  repo_id bigint NOT NULL REFERENCES repositories(id),
  digest text COLLATE "C" NOT NULL,
  media_type text NOT NULL,
  content bytea NOT NULL,
  subject text COLLATE "C",
  artifact_type text NOT NULL,
  annotations_json text NOT NULL,
  created_unix bigint NOT NULL,
  PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;
CREATE TABLE manifest_refs (
  repo_id bigint NOT NULL,
  manifest text COLLATE "C" NOT NULL,
  kind bigint NOT NULL,
  seq bigint NOT NULL,
  target text COLLATE "C" NOT NULL,
  PRIMARY KEY (repo_id, manifest, kind, seq),
  FOREIGN KEY (repo_id, manifest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_refs_by_target ON manifest_refs(target);
CREATE TABLE tags (
  repo_id bigint NOT NULL,
  name text COLLATE "C" NOT NULL,
  digest text COLLATE "C" NOT NULL,
  PRIMARY KEY (repo_id, name),
  FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);
CREATE INDEX tags_by_digest ON tags(repo_id, digest);
)sql",
    // 2: blob links carry the time they were last made, for the collector's grace period.
    // Links that exist at the upgrade count as made then.
    R"sql(
ALTER TABLE repo_blobs ADD COLUMN linked_unix bigint NOT NULL DEFAULT 0;
UPDATE repo_blobs SET linked_unix = extract(epoch FROM now())::bigint;
)sql",
    // 3: files keep the name they were uploaded under (multipart/form-data uploads).
    R"sql(
ALTER TABLE files ADD COLUMN name text NOT NULL DEFAULT '';
)sql",
    // 4: the store's identity (its one row is written by Migrate, in the same transaction) and
    // the background-work leases.
    R"sql(
CREATE TABLE store_identity (
  one bigint PRIMARY KEY CHECK (one = 1),
  id text NOT NULL
);
CREATE TABLE leases (
  name text COLLATE "C" PRIMARY KEY,
  holder text NOT NULL,
  expires_unix bigint NOT NULL
);
)sql",
    // 5: an upload session keeps the bytes past its last chunk (small appends coalesced).
    R"sql(
ALTER TABLE uploads ADD COLUMN tail bytea NOT NULL DEFAULT '\x';
)sql",
    // 6: the work queue (postgres_queue.cc): the site's asynchronous write-through, and later
    // replication jobs.
    R"sql(
CREATE TABLE work_queue (
  id bigserial PRIMARY KEY,
  kind bigint NOT NULL,
  target text COLLATE "C" NOT NULL,
  repository text COLLATE "C" NOT NULL,
  digest text COLLATE "C" NOT NULL,
  tag text COLLATE "C" NOT NULL,
  state bigint NOT NULL,
  attempts bigint NOT NULL,
  next_attempt_unix bigint NOT NULL,
  last_error text NOT NULL,
  created_unix bigint NOT NULL,
  updated_unix bigint NOT NULL,
  holder text COLLATE "C" NOT NULL,
  lease_until_unix bigint NOT NULL,
  version bigint NOT NULL
);
CREATE UNIQUE INDEX work_queue_by_key ON work_queue(target, kind, repository, digest, tag);
CREATE INDEX work_queue_ready ON work_queue(target, state, next_attempt_unix);
CREATE INDEX work_queue_by_digest ON work_queue(digest) WHERE digest <> '';
CREATE INDEX work_queue_by_holder ON work_queue(holder, state);
)sql",
    // 7: blobs keep the time of their last pull, for a site cache's eviction
    // (postgres_evict.cc). Blobs that exist at the upgrade count as never pulled.
    R"sql(
ALTER TABLE blobs ADD COLUMN last_pull_unix bigint NOT NULL DEFAULT 0;
)sql",
};
constexpr int64_t kSchemaVersion = std::size(kMigrations);

// The advisory lock key every wharf migration takes ("wharf" in ASCII).
constexpr int64_t kMigrationLock = 0x7768617266;

CounterMetric& RetriesMetric() {
  static CounterMetric& c = Metrics().Counter(
      "wharf_meta_pg_retries_total",
      "PostgreSQL transactions run again after a serialization failure or deadlock.");
  return c;
}

}  // namespace

PostgresMetaStore::PostgresMetaStore(std::string url, MetaStoreOptions options)
    : url_(std::move(url)), options_(std::move(options)), pool_(url_, kPoolSize, kAcquireWait) {}

Result<std::unique_ptr<PostgresMetaStore>> PostgresMetaStore::Open(const std::string& url,
                                                                   MetaStoreOptions options) {
  std::unique_ptr<PostgresMetaStore> store(new PostgresMetaStore(url, std::move(options)));
  WHARF_META_RETURN_IF_ERROR(store->Migrate());
  return store;
}

Status PostgresMetaStore::Migrate() {
  WHARF_ASSIGN_OR_RETURN(pg::Pool::Lease c, pool_.Acquire());
  // READ COMMITTED on purpose: each statement sees what a migrator that held the lock before
  // us committed (a serializable snapshot would be taken before the lock was granted).
  WHARF_RETURN_IF_ERROR(c->Simple("BEGIN"));
  auto migrate = [&]() -> Status {
    WHARF_RETURN_IF_ERROR(c->Do("SELECT pg_advisory_xact_lock($1)", Params().Int(kMigrationLock)));
    WHARF_RETURN_IF_ERROR(
        c->Simple("CREATE TABLE IF NOT EXISTS wharf_schema (version bigint NOT NULL)"));
    WHARF_ASSIGN_OR_RETURN(Rows v, c->Exec("SELECT version FROM wharf_schema"));
    int64_t version = v.empty() ? 0 : v.Int(0, 0);
    if (version > kSchemaVersion) {
      return Unsupported(fmt::format("meta store schema version {} is newer than this binary's {}",
                                     version, kSchemaVersion));
    }
    // A write at start: a role that may only read (or a read-only server) is refused now
    // rather than at the first push.
    if (Status st = c->Simple("UPDATE wharf_schema SET version = version"); !st.ok()) {
      return Status(st.code(), "not writable: " + st.message());
    }
    if (version == kSchemaVersion) return Status::Ok();
    for (int64_t i = version; i < kSchemaVersion; ++i) {
      WHARF_RETURN_IF_ERROR(c->Simple(kMigrations[i]));
    }
    WHARF_RETURN_IF_ERROR(
        c->Do("INSERT INTO store_identity(one, id) VALUES (1, $1) ON CONFLICT DO NOTHING",
              Params().Text(NewMetaStoreId())));
    WHARF_RETURN_IF_ERROR(c->Simple("DELETE FROM wharf_schema"));
    WHARF_RETURN_IF_ERROR(
        c->Do("INSERT INTO wharf_schema(version) VALUES ($1)", Params().Int(kSchemaVersion)));
    GetLogger("meta")->info("postgres schema migrated from={} to={}", version, kSchemaVersion);
    return Status::Ok();
  };
  Status st = migrate();
  if (!st.ok()) {
    (void)c->Simple("ROLLBACK");
    return st;
  }
  return c->Simple("COMMIT");
}

int64_t PostgresMetaStore::Now() const {
  if (options_.now_unix) return options_.now_unix();
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

Status PostgresMetaStore::Run(Mode mode, const std::function<Status(Conn&)>& body) {
  const char* begin = mode == Mode::kWrite  ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
                      : mode == Mode::kRead ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                            : nullptr;
  thread_local std::minstd_rand rng(std::random_device{}());
  bool fresh_retry_used = false;
  Status last;
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    WHARF_ASSIGN_OR_RETURN(pg::Pool::Lease c, pool_.Acquire());
    if (begin) {
      if (Status st = c->Simple(begin); !st.ok()) {
        c.Discard();
        // A pooled connection the server closed (a restart): try once more on a fresh one.
        if (!fresh_retry_used) {
          fresh_retry_used = true;
          --attempt;
          continue;
        }
        return st;
      }
    }
    Status st = body(*c);
    if (st.ok() && begin) st = c->Simple("COMMIT");
    if (st.ok()) return st;
    bool retry = c->retryable();
    if (c->broken()) {
      c.Discard();
      // A failure in a single statement before anything changed may also be a stale pooled
      // connection; a broken transaction is unknown (its COMMIT may have landed): report it.
      if (!begin && !fresh_retry_used) {
        fresh_retry_used = true;
        --attempt;
        continue;
      }
      return st;
    }
    if (c->in_transaction()) (void)c->Simple("ROLLBACK");
    if (!retry) return st;
    last = std::move(st);
    retries_++;
    RetriesMetric().Inc();
    // Randomized backoff, growing to ~50ms, so racing transactions stop meeting each other.
    int cap_ms = std::min(50, 1 << std::min(attempt, 6));
    std::this_thread::sleep_for(
        std::chrono::microseconds(std::uniform_int_distribution<int>(100, cap_ms * 1000)(rng)));
  }
  return Unavailable(
      fmt::format("gave up after {} serialization failures: {}", kMaxAttempts, last.message()));
}

// ---- Helpers ----

Status PostgresMetaStore::AdoptChunks(Conn& c, std::string_view owner, std::string_view from,
                                      const std::vector<ChunkRef>& chunks) {
  int64_t now = Now();
  for (const ChunkRef& ch : chunks) {
    if (ch.id.empty()) return InvalidArgument("chunk with an empty id");
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT owner FROM chunks WHERE id = $1 FOR UPDATE", Params().Text(ch.id)));
    if (!q.empty()) {
      std::string current = q.Text(0, 0);
      if (current != owner && (from.empty() || current != from)) {
        return Conflict(fmt::format("chunk {} is owned by \"{}\", not \"{}\"", ch.id, current,
                                    from.empty() ? owner : from));
      }
    }
    WHARF_RETURN_IF_ERROR(c.Do(
        "INSERT INTO chunks(id, grp, size, checksum, owner, updated_unix) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT(id) DO UPDATE SET "
        "grp = EXCLUDED.grp, size = EXCLUDED.size, checksum = EXCLUDED.checksum, "
        "owner = EXCLUDED.owner, updated_unix = EXCLUDED.updated_unix",
        Params().Text(ch.id).Text(ch.group).U64(ch.size).U64(ch.checksum).Text(owner).Int(now)));
  }
  return Status::Ok();
}

Status PostgresMetaStore::ReleaseOwner(Conn& c, std::string_view owner) {
  return c.Do("UPDATE chunks SET owner = '', updated_unix = $1 WHERE owner = $2",
              Params().Int(Now()).Text(owner));
}

Status PostgresMetaStore::DiscardChunks(Conn& c, std::string_view from,
                                        const std::vector<ChunkRef>& chunks) {
  if (!from.empty()) WHARF_RETURN_IF_ERROR(ReleaseOwner(c, from));
  for (const ChunkRef& ch : chunks) {
    WHARF_RETURN_IF_ERROR(
        c.Do("INSERT INTO chunks(id, grp, size, checksum, owner, updated_unix) "
             "VALUES ($1, $2, $3, $4, '', $5) ON CONFLICT(id) DO NOTHING",
             Params().Text(ch.id).Text(ch.group).U64(ch.size).U64(ch.checksum).Int(Now())));
  }
  return Status::Ok();
}

Status PostgresMetaStore::AppendChunkList(Conn& c, std::string_view owner, int64_t first_seq,
                                          const std::vector<ChunkRef>& chunks) {
  int64_t seq = first_seq;
  for (const ChunkRef& ch : chunks) {
    WHARF_RETURN_IF_ERROR(c.Do("INSERT INTO chunk_lists(owner, seq, chunk_id) VALUES ($1, $2, $3)",
                               Params().Text(owner).Int(seq++).Text(ch.id)));
  }
  return Status::Ok();
}

Result<std::vector<ChunkRef>> PostgresMetaStore::ReadChunkList(Conn& c, std::string_view owner) {
  WHARF_ASSIGN_OR_RETURN(
      Rows q, c.Exec("SELECT c.grp, c.id, c.size, c.checksum FROM chunk_lists l "
                     "JOIN chunks c ON c.id = l.chunk_id WHERE l.owner = $1 ORDER BY l.seq",
                     Params().Text(owner)));
  std::vector<ChunkRef> out;
  for (int i = 0; i < q.size(); ++i) {
    out.push_back(ChunkRef{q.Text(i, 0), q.Text(i, 1), q.U64(i, 2), q.U64(i, 3)});
  }
  return out;
}

Status PostgresMetaStore::DeleteChunkList(Conn& c, std::string_view owner) {
  return c.Do("DELETE FROM chunk_lists WHERE owner = $1", Params().Text(owner));
}

Result<bool> PostgresMetaStore::OwnerExists(Conn& c, const ChunkOwner& owner) {
  // FOR SHARE: the owner cannot be deleted by another transaction until we commit.
  const char* sql = "SELECT 1 FROM blobs WHERE digest = $1 FOR SHARE";
  if (owner.kind == ChunkOwnerKind::kUpload) sql = "SELECT 1 FROM uploads WHERE id = $1 FOR SHARE";
  if (owner.kind == ChunkOwnerKind::kFile) sql = "SELECT 1 FROM files WHERE id = $1 FOR SHARE";
  WHARF_ASSIGN_OR_RETURN(Rows q, c.Exec(sql, Params().Text(owner.id)));
  return !q.empty();
}

// ---- Chunk ledger ----

Status PostgresMetaStore::RecordChunks(const ChunkOwner& owner,
                                       const std::vector<ChunkRef>& chunks) {
  const std::string text = owner.ToString();
  if (!owner.valid()) return InvalidArgument(fmt::format("invalid chunk owner \"{}\"", text));
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    WHARF_ASSIGN_OR_RETURN(bool exists, OwnerExists(c, owner));
    if (!exists) return NotFound(fmt::format("chunk owner \"{}\" does not exist", text));
    return AdoptChunks(c, text, "", chunks);
  });
}

Status PostgresMetaStore::ReleaseChunks(const std::vector<std::string>& ids) {
  if (ids.empty()) return Status::Ok();
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    for (const std::string& id : ids) {
      // A chunk some record still lists stays live (see meta_store.h).
      WHARF_RETURN_IF_ERROR(
          c.Do("UPDATE chunks SET owner = '', updated_unix = $1 WHERE id = $2 AND "
               "owner <> '' AND NOT EXISTS "
               "(SELECT 1 FROM chunk_lists WHERE chunk_id = chunks.id)",
               Params().Int(Now()).Text(id)));
    }
    return Status::Ok();
  });
}

Result<std::vector<ChunkRef>> PostgresMetaStore::ListGarbageChunks(size_t limit) {
  return RunFor<std::vector<ChunkRef>>(Mode::kAlone, [&](Conn& c) -> Result<std::vector<ChunkRef>> {
    WHARF_ASSIGN_OR_RETURN(Rows q, c.Exec("SELECT grp, id, size, checksum FROM chunks WHERE "
                                          "owner = '' ORDER BY updated_unix, id LIMIT $1",
                                          Params().Int(sqlite::SqlLimit(limit))));
    std::vector<ChunkRef> out;
    for (int i = 0; i < q.size(); ++i) {
      out.push_back(ChunkRef{q.Text(i, 0), q.Text(i, 1), q.U64(i, 2), q.U64(i, 3)});
    }
    return out;
  });
}

Status PostgresMetaStore::ForgetChunks(const std::vector<std::string>& ids) {
  if (ids.empty()) return Status::Ok();
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    for (const std::string& id : ids) {
      WHARF_RETURN_IF_ERROR(
          c.Do("DELETE FROM chunks WHERE id = $1 AND owner = '' AND NOT "
               "EXISTS (SELECT 1 FROM chunk_lists WHERE chunk_id = chunks.id)",
               Params().Text(id)));
    }
    return Status::Ok();
  });
}

Result<ChunkState> PostgresMetaStore::GetChunkState(std::string_view id) {
  return RunFor<ChunkState>(Mode::kAlone, [&](Conn& c) -> Result<ChunkState> {
    WHARF_ASSIGN_OR_RETURN(Rows q,
                           c.Exec("SELECT owner FROM chunks WHERE id = $1", Params().Text(id)));
    if (q.empty()) return ChunkState::kUnknown;
    return q.Text(0, 0).empty() ? ChunkState::kGarbage : ChunkState::kLive;
  });
}

}  // namespace wharf
