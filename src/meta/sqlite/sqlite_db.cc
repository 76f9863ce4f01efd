#include "meta/sqlite/sqlite_db.h"

#include <fmt/format.h>

#include "common/log.h"
#include "common/metrics.h"

namespace wharf::sqlite {

namespace {

Code CodeFor(int rc) {
  switch (rc & 0xff) {  // primary result code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Code::kUnavailable;
    case SQLITE_FULL:
      return Code::kNoSpace;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return Code::kIOError;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Code::kCorruption;
    case SQLITE_CONSTRAINT:
      return Code::kConflict;
    case SQLITE_TOOBIG:
      return Code::kTooLarge;
    default:
      return Code::kInternal;
  }
}

}  // namespace

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  Code code = CodeFor(rc);
  std::string msg =
      fmt::format("sqlite {}: {} ({})", what, db ? sqlite3_errmsg(db) : "", sqlite3_errstr(rc));
  // Every SQLite failure is a degraded mode: warn and count (constraint failures too, since
  // the store checks its invariants before writing and should never hit one).
  Metrics()
      .Counter("wharf_meta_sqlite_errors_total", "SQLite calls that failed, by wharf code.",
               {{"code", std::string(CodeName(code))}})
      .Inc();
  GetLogger("meta")->warn("sqlite call failed what={} rc={} err={}", what, rc, msg);
  return Status(code, std::move(msg));
}

Stmt::~Stmt() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Stmt& Stmt::Bind(int i, std::string_view text) {
  // SQLITE_TRANSIENT: SQLite copies the bytes, so temporaries are safe to bind.
  int rc = sqlite3_bind_text64(stmt_, i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindBlob(int i, std::string_view bytes) {
  int rc = sqlite3_bind_blob64(stmt_, i, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::Bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(stmt_, i, v);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::BindU64(int i, uint64_t v) { return Bind(i, static_cast<int64_t>(v)); }

Stmt& Stmt::BindNull(int i) {
  int rc = sqlite3_bind_null(stmt_, i);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Stmt::Step() {
  if (bind_rc_ != SQLITE_OK) return Err(SqliteError(db_, bind_rc_, "bind"));
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Err(SqliteError(db_, rc, sqlite3_sql(stmt_)));
}

Status Stmt::Run() {
  Result<bool> r = Step();
  if (!r) return r.error();
  if (*r) return Internal(fmt::format("statement returned rows: {}", sqlite3_sql(stmt_)));
  return Status::Ok();
}

int Stmt::Changes() const { return sqlite3_changes(db_); }

std::string Stmt::Text(int col) const {
  // Blob access keeps embedded NULs and does no encoding conversion.
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr || n <= 0) return std::string();
  return std::string(static_cast<const char*>(p), static_cast<size_t>(n));
}

int64_t Stmt::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

uint64_t Stmt::U64(int col) const { return static_cast<uint64_t>(Int(col)); }

bool Stmt::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

Db::~Db() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  if (db_ != nullptr) sqlite3_close(db_);
}

Status Db::Open(const std::string& path) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "open " + path);
  sqlite3_extended_result_codes(db_, 1);
  // busy_timeout: another process (a second `wharf` on the same file, the sqlite3 shell)
  // may hold the write lock briefly; wait instead of failing at once.
  rc = sqlite3_busy_timeout(db_, 5000);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "busy_timeout");
  // WAL: readers do not block the writer. synchronous=FULL: a commit the registry has
  // acknowledged survives power loss (NORMAL could lose the last transactions in WAL mode).
  return Exec(
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=FULL;"
      "PRAGMA foreign_keys=ON;");
}

Status Db::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, sql);
  return Status::Ok();
}

Result<Stmt> Db::Prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Stmt(db_, it->second);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return Err(SqliteError(db_, rc, sql));
  cache_.emplace(sql, stmt);
  return Stmt(db_, stmt);
}

Txn::~Txn() {
  if (open_) db_->Exec("ROLLBACK").IgnoreError();
}

Status Txn::Begin() {
  // IMMEDIATE takes the write lock up front, so a transaction never fails half way on a
  // read-to-write lock upgrade against another process.
  WHARF_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  open_ = true;
  return Status::Ok();
}

Status Txn::Commit() {
  WHARF_RETURN_IF_ERROR(db_->Exec("COMMIT"));
  open_ = false;
  return Status::Ok();
}

}  // namespace wharf::sqlite
