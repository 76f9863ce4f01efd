// SqliteMetaStore: the store's identity and the background-work leases.
//
//   store_identity(one = 1, id)            one row, written by the migration that made the table
//   leases(name, holder, expires_unix)     holder '' = given up
#include "meta/sqlite/sqlite_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using sqlite::Stmt;
using sqlite::Txn;

Status SqliteMetaStore::EnsureStoreIdLocked() {
  WHARF_ASSIGN_OR_RETURN(
      Stmt ins, db_.Prepare("INSERT INTO store_identity(one, id) VALUES (1, ?) ON CONFLICT DO "
                            "NOTHING"));
  return ins.Bind(1, NewMetaStoreId()).Run();
}

Result<std::string> SqliteMetaStore::StoreId() {
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT id FROM store_identity WHERE one = 1"));
  WHARF_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Err(Corruption("the store has no identity row"));
  return q.Text(0);
}

Result<LeaseInfo> SqliteMetaStore::AcquireLease(std::string_view name, std::string_view holder,
                                                int64_t ttl_seconds) {
  if (name.empty() || holder.empty()) return Err(InvalidArgument("lease: empty name or holder"));
  if (ttl_seconds <= 0) return Err(InvalidArgument("lease: ttl must be positive"));
  std::lock_guard lock(mu_);
  Txn txn(&db_);
  WHARF_META_RETURN_IF_ERROR(txn.Begin());
  const int64_t now = Now();
  {
    WHARF_ASSIGN_OR_RETURN(
        Stmt up,
        db_.Prepare("INSERT INTO leases(name, holder, expires_unix) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, "
                    "expires_unix = excluded.expires_unix WHERE leases.holder = excluded.holder "
                    "OR leases.holder = '' OR leases.expires_unix <= ?4"));
    WHARF_META_RETURN_IF_ERROR(
        up.Bind(1, name).Bind(2, holder).Bind(3, now + ttl_seconds).Bind(4, now).Run());
  }
  LeaseInfo info;
  {
    WHARF_ASSIGN_OR_RETURN(Stmt q,
                           db_.Prepare("SELECT holder, expires_unix FROM leases WHERE name = ?"));
    WHARF_ASSIGN_OR_RETURN(bool row, q.Bind(1, name).Step());
    if (!row) return Err(Internal("lease row missing after its upsert"));
    info.holder = q.Text(0);
    info.expires_unix = q.Int(1);
  }
  info.held = info.holder == holder;
  WHARF_META_RETURN_IF_ERROR(txn.Commit());
  return info;
}

Status SqliteMetaStore::ReleaseLease(std::string_view name, std::string_view holder) {
  if (name.empty() || holder.empty()) return InvalidArgument("lease: empty name or holder");
  std::lock_guard lock(mu_);
  WHARF_ASSIGN_OR_RETURN(Stmt up, db_.Prepare("UPDATE leases SET holder = '', expires_unix = 0 "
                                              "WHERE name = ? AND holder = ?"));
  return up.Bind(1, name).Bind(2, holder).Run();
}

}  // namespace wharf
