// A thin layer over libpq for PostgresMetaStore: connections with a prepared-statement cache,
// a bounded pool of them, typed parameters and result columns (binary format both ways, so
// byte payloads need no escaping), and SQLSTATEs mapped to wharf Status codes. Internal.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace wharf::pg {

// Parameters of one statement, all sent in binary format with their type named, so the
// server never guesses (and bytes are bytes: no escaping, NULs allowed in bytea).
class Params {
 public:
  Params& Text(std::string_view s);   // text (must be valid in the database encoding)
  Params& Bytes(std::string_view b);  // bytea
  Params& Int(int64_t v);             // int8
  Params& U64(uint64_t v) { return Int(static_cast<int64_t>(v)); }  // the same 64 bits
  Params& NullText();

  int size() const { return static_cast<int>(types_.size()); }
  const Oid* types() const { return types_.data(); }
  // Pointers into the stored bytes; valid until the next Add.
  const char* const* values() const;
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  void Add(Oid type, std::string bytes, bool null);
  std::vector<std::string> storage_;  // owns the bytes
  std::vector<bool> null_;
  std::vector<Oid> types_;
  mutable std::vector<const char*> ptrs_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// A result in binary format. Rows and columns are 0-based.
class Rows {
 public:
  explicit Rows(PGresult* r = nullptr) : r_(r) {}
  ~Rows() { PQclear(r_); }
  Rows(Rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Rows& operator=(Rows&& o) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;

  int size() const { return r_ ? PQntuples(r_) : 0; }
  bool empty() const { return size() == 0; }
  // Rows changed by an INSERT/UPDATE/DELETE.
  int64_t affected() const;
  std::string Text(int row, int col) const;  // text or bytea as bytes
  int64_t Int(int row, int col) const;       // int2/int4/int8
  uint64_t U64(int row, int col) const { return static_cast<uint64_t>(Int(row, col)); }
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  PGresult* raw() const { return r_; }

 private:
  PGresult* r_;
};

// One connection. Not thread-safe: a connection is used by one thread at a time (the pool
// hands it out exclusively).
class Conn {
 public:
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Connects to `conninfo` (a postgres:// url or key=value string). kUnavailable when the
  // server cannot be reached or refuses us, with libpq's reason.
  static Result<std::unique_ptr<Conn>> Connect(const std::string& conninfo);

  // Runs `sql` (a string literal: statements are prepared once per connection and cached by
  // the literal's address) with `params`. Errors: kUnavailable (connection lost, server
  // shutting down, too many connections, or a serialization failure: see retryable()),
  // kConflict (a unique key), kInvalidArgument (text the database cannot hold), kNoSpace,
  // kInternal (anything else: a bug).
  Result<Rows> Exec(const char* sql, const Params& params = {});
  // Exec for statements whose rows (if any) nobody reads.
  Status Do(const char* sql, const Params& params = {}) {
    Result<Rows> r = Exec(sql, params);
    return r ? Status::Ok() : r.error();
  }
  // Runs one or more statements without parameters (BEGIN, COMMIT, DDL).
  Status Simple(const char* sql);

  // Whether the last failure was a serialization failure (40001) or a deadlock (40P01): the
  // transaction may be run again from its start. Reset by every call.
  bool retryable() const { return retryable_; }
  // The connection is unusable (drop it, never reuse).
  bool broken() const { return PQstatus(conn_) != CONNECTION_OK; }
  // Whether the server side has a transaction block open (or failed).
  bool in_transaction() const { return PQtransactionStatus(conn_) != PQTRANS_IDLE; }

 private:
  explicit Conn(PGconn* c) : conn_(c) {}
  // Maps a failed result (or a null one) to a Status; sets retryable_.
  Status ErrorOf(PGresult* r, std::string_view what);

  PGconn* conn_;
  bool retryable_ = false;
  std::unordered_map<const char*, std::string> prepared_;  // sql literal -> statement name
};

// A bounded pool. Acquire() hands out an idle connection, opens a new one while fewer than
// `max` exist, or waits up to `wait` for one to come back. Connections that broke are not
// returned (the next Acquire opens a fresh one), so a database restart heals by itself.
class Pool {
 public:
  Pool(std::string conninfo, size_t max, std::chrono::milliseconds wait);

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Conn> c) : pool_(pool), conn_(std::move(c)) {}
    ~Lease();
    Lease(Lease&& o) noexcept : pool_(o.pool_), conn_(std::move(o.conn_)) { o.pool_ = nullptr; }
    Lease& operator=(Lease&&) = delete;
    Conn* operator->() { return conn_.get(); }
    Conn& operator*() { return *conn_; }
    // Drops the connection instead of returning it (it broke, or its state is unknown).
    void Discard() { conn_.reset(); }

   private:
    Pool* pool_;
    std::unique_ptr<Conn> conn_;
  };

  // kUnavailable: no connection could be opened, or none came back in time.
  Result<Lease> Acquire();
  size_t open_count();

 private:
  void Return(std::unique_ptr<Conn> c);

  const std::string conninfo_;
  const size_t max_;
  const std::chrono::milliseconds wait_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;  // guarded by mu_
  size_t open_ = 0;                          // handed out + idle; guarded by mu_
};

}  // namespace wharf::pg
