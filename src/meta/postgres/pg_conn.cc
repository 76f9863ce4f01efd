#include "meta/postgres/pg_conn.h"

#include <fmt/format.h>

#include <cstring>

namespace wharf::pg {

namespace {

// Type oids of the built-in types we bind (pg_type.h; stable across releases).
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;

std::string BigEndian64(int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(u & 0xff);
    u >>= 8;
  }
  return out;
}

std::string Trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  // libpq messages may span lines ("DETAIL: ..."): keep one line for logs and CLI errors.
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\t') c = ' ';
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

}  // namespace

// ---- Params ----

void Params::Add(Oid type, std::string bytes, bool null) {
  storage_.push_back(std::move(bytes));
  null_.push_back(null);
  types_.push_back(type);
  lengths_.push_back(static_cast<int>(storage_.back().size()));
  formats_.push_back(1);
}

Params& Params::Text(std::string_view s) {
  Add(kTextOid, std::string(s), false);
  return *this;
}
Params& Params::Bytes(std::string_view b) {
  Add(kByteaOid, std::string(b), false);
  return *this;
}
Params& Params::Int(int64_t v) {
  Add(kInt8Oid, BigEndian64(v), false);
  return *this;
}
Params& Params::NullText() {
  Add(kTextOid, "", true);
  return *this;
}

const char* const* Params::values() const {
  ptrs_.clear();
  for (size_t i = 0; i < storage_.size(); ++i) {
    ptrs_.push_back(null_[i] ? nullptr : storage_[i].data());
  }
  return ptrs_.data();
}

// ---- Rows ----

Rows& Rows::operator=(Rows&& o) noexcept {
  if (this != &o) {
    PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}

int64_t Rows::affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  return *n ? std::strtoll(n, nullptr, 10) : 0;
}

std::string Rows::Text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), PQgetlength(r_, row, col));
}

int64_t Rows::Int(int row, int col) const {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col));
  int len = PQgetlength(r_, row, col);
  uint64_t u = 0;
  for (int i = 0; i < len; ++i) u = (u << 8) | p[i];
  // Sign-extend int2/int4 (bool, length 1, is 0 or 1).
  if (len > 1 && len < 8 && (p[0] & 0x80)) u |= ~uint64_t{0} << (8 * len);
  return static_cast<int64_t>(u);
}

// ---- Conn ----

Conn::~Conn() { PQfinish(conn_); }

Result<std::unique_ptr<Conn>> Conn::Connect(const std::string& conninfo) {
  // connect_timeout first: a value in the url itself, expanded later, wins.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"5", "wharf", conninfo.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return Err(Unavailable("postgres: out of memory connecting"));
  if (PQstatus(c) != CONNECTION_OK) {
    std::string why = Trimmed(PQerrorMessage(c));
    PQfinish(c);
    return Err(Unavailable("postgres: cannot connect: " + why));
  }
  // Server notices ("relation ... already exists, skipping") are not errors: keep them off
  // stderr.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Conn>(new Conn(c));
}

Status Conn::ErrorOf(PGresult* r, std::string_view what) {
  std::string msg = Trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string sqlstate = state ? state : "";
  std::string text = fmt::format("postgres {}: {}{}", what, msg,
                                 sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")");
  if (sqlstate == "40001" || sqlstate == "40P01") {
    retryable_ = true;
    return Unavailable(std::move(text));
  }
  // No SQLSTATE: libpq lost the connection. Class 08: connection exception; 57P0x: the
  // server is shutting down or starting; 53300: too many connections.
  if (sqlstate.empty() || sqlstate.starts_with("08") || sqlstate.starts_with("57P") ||
      sqlstate == "53300") {
    return Unavailable(std::move(text));
  }
  if (sqlstate == "23505") return Conflict(std::move(text));
  if (sqlstate == "53100") return NoSpace(std::move(text));
  // Class 22: data exceptions (an invalid byte sequence for the encoding, a NUL in text).
  if (sqlstate.starts_with("22")) return InvalidArgument(std::move(text));
  return Internal(std::move(text));
}

Result<Rows> Conn::Exec(const char* sql, const Params& params) {
  retryable_ = false;
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = fmt::format("w{}", prepared_.size());
    Rows prep(PQprepare(conn_, name.c_str(), sql, params.size(), params.types()));
    if (PQresultStatus(prep.raw()) != PGRES_COMMAND_OK) return Err(ErrorOf(prep.raw(), "prepare"));
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  Rows rows(PQexecPrepared(conn_, it->second.c_str(), params.size(), params.values(),
                           params.lengths(), params.formats(), /*resultFormat=*/1));
  ExecStatusType st = PQresultStatus(rows.raw());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Err(ErrorOf(rows.raw(), "query"));
  return rows;
}

Status Conn::Simple(const char* sql) {
  retryable_ = false;
  Rows rows(PQexec(conn_, sql));
  ExecStatusType st = PQresultStatus(rows.raw());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorOf(rows.raw(), "statement");
  return Status::Ok();
}

// ---- Pool ----

Pool::Pool(std::string conninfo, size_t max, std::chrono::milliseconds wait)
    : conninfo_(std::move(conninfo)), max_(max == 0 ? 1 : max), wait_(wait) {}

Pool::Lease::~Lease() {
  if (pool_) pool_->Return(std::move(conn_));  // null after Discard(): the slot is freed
}

Result<Pool::Lease> Pool::Acquire() {
  {
    std::unique_lock lock(mu_);
    bool ready = cv_.wait_for(lock, wait_, [&] { return !idle_.empty() || open_ < max_; });
    if (!ready) {
      return Err(Unavailable(
          fmt::format("postgres: all {} connections busy for {}ms", max_, wait_.count())));
    }
    if (!idle_.empty()) {
      std::unique_ptr<Conn> c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(c));
    }
    ++open_;  // reserved; connect outside the lock
  }
  Result<std::unique_ptr<Conn>> c = Conn::Connect(conninfo_);
  if (!c) {
    Return(nullptr);
    return Err(c.error());
  }
  return Lease(this, std::move(*c));
}

void Pool::Return(std::unique_ptr<Conn> c) {
  {
    std::lock_guard lock(mu_);
    if (c && !c->broken() && !c->in_transaction()) {
      idle_.push_back(std::move(c));
    } else {
      --open_;
    }
  }
  cv_.notify_one();
}

size_t Pool::open_count() {
  std::lock_guard lock(mu_);
  return open_;
}

}  // namespace wharf::pg
