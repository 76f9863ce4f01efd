// A thin RAII layer over one sqlite3 connection: prepared-statement cache, typed binds and
// columns, transactions, and SQLite result codes mapped to wharf Status codes.
// Not thread-safe: SqliteMetaStore serializes all use behind its mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace wharf::sqlite {

// Maps an SQLite result code to a Status with `what` and the connection's message.
Status SqliteError(sqlite3* db, int rc, std::string_view what);

// A cached prepared statement in use. Resets and clears its bindings when it goes out of
// scope, so the next user starts clean. Bind indexes are 1-based, column indexes 0-based.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Stmt();
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_), bind_rc_(o.bind_rc_) { o.stmt_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& operator=(Stmt&&) = delete;

  Stmt& Bind(int i, std::string_view text);  // TEXT, byte-exact (may hold any bytes)
  Stmt& BindBlob(int i, std::string_view bytes);
  Stmt& Bind(int i, int64_t v);
  Stmt& BindU64(int i, uint64_t v);  // stored as the same 64 bits, signed
  Stmt& BindNull(int i);

  // Advances: true if a row is available, false when done.
  Result<bool> Step();
  // Runs a statement that returns no rows (INSERT/UPDATE/DELETE).
  Status Run();
  // Rows changed by the last Run().
  int Changes() const;

  std::string Text(int col) const;  // TEXT or BLOB column as bytes
  int64_t Int(int col) const;
  uint64_t U64(int col) const;
  bool IsNull(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;  // first bind failure, reported by Step()
};

class Db {
 public:
  Db() = default;
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Opens (creating) the file and applies the connection pragmas.
  Status Open(const std::string& path);
  // Runs one or more statements without parameters.
  Status Exec(const char* sql);
  // Returns the cached prepared statement for `sql`, which must be a string literal (the
  // cache is keyed by its address).
  Result<Stmt> Prepare(const char* sql);

  sqlite3* raw() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless Commit() succeeded.
class Txn {
 public:
  explicit Txn(Db* db) : db_(db) {}
  ~Txn();
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  Status Begin();
  Status Commit();

 private:
  Db* db_;
  bool open_ = false;
};

}  // namespace wharf::sqlite
