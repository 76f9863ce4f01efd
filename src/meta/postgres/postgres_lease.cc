// PostgresMetaStore: the store's identity and the background-work leases.
//
// A lease is a row with an expiry, not an advisory lock: a session-level advisory lock belongs
// to one connection, and the pool hands a different connection to every call, so the lock would
// be held (or released) by whichever connection happened to run the call, and would die with a
// broken connection rather than with the gateway. The row's expiry counts on the store's clock
// (MetaStoreOptions::now_unix, the one that stamps uploads and links), so the gateways' clocks
// must agree to well within the lease's ttl.
#include "meta/postgres/postgres_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using pg::Conn;
using pg::Params;
using pg::Rows;

Result<std::string> PostgresMetaStore::StoreId() {
  return RunFor<std::string>(Mode::kAlone, [&](Conn& c) -> Result<std::string> {
    WHARF_ASSIGN_OR_RETURN(Rows q, c.Exec("SELECT id FROM store_identity WHERE one = 1"));
    if (q.empty()) return Err(Corruption("the store has no identity row"));
    return q.Text(0, 0);
  });
}

Result<LeaseInfo> PostgresMetaStore::AcquireLease(std::string_view name, std::string_view holder,
                                                  int64_t ttl_seconds) {
  if (name.empty() || holder.empty()) return Err(InvalidArgument("lease: empty name or holder"));
  if (ttl_seconds <= 0) return Err(InvalidArgument("lease: ttl must be positive"));
  return RunFor<LeaseInfo>(Mode::kWrite, [&](Conn& c) -> Result<LeaseInfo> {
    const int64_t now = Now();
    // One statement: the row is locked by the upsert, so of two racing callers one waits for
    // the other and then sees its claim (or, SERIALIZABLE, fails and is run again).
    WHARF_META_RETURN_IF_ERROR(
        c.Do("INSERT INTO leases AS l (name, holder, expires_unix) VALUES ($1, $2, $3) "
             "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, "
             "expires_unix = EXCLUDED.expires_unix WHERE l.holder = EXCLUDED.holder "
             "OR l.holder = '' OR l.expires_unix <= $4",
             Params().Text(name).Text(holder).Int(now + ttl_seconds).Int(now)));
    WHARF_ASSIGN_OR_RETURN(Rows r, c.Exec("SELECT holder, expires_unix FROM leases WHERE name = $1",
                                          Params().Text(name)));
    if (r.empty()) return Err(Internal("lease row missing after its upsert"));
    LeaseInfo info;
    info.holder = r.Text(0, 0);
    info.expires_unix = r.Int(0, 1);
    info.held = info.holder == holder;
    return info;
  });
}

Status PostgresMetaStore::ReleaseLease(std::string_view name, std::string_view holder) {
  if (name.empty() || holder.empty()) return InvalidArgument("lease: empty name or holder");
  return Run(Mode::kAlone, [&](Conn& c) -> Status {
    return c.Do("UPDATE leases SET holder = '', expires_unix = 0 WHERE name = $1 AND holder = $2",
                Params().Text(name).Text(holder));
  });
}

}  // namespace wharf
