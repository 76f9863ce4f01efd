// A private PostgreSQL server for tests: initdb into a fresh temp dir, the postmaster on a free
// port listening only on a Unix socket in that dir, stopped and removed at the end.
//
//   auto& pg = PgServer::Shared();            // one per test binary, started on first use
//   if (!pg.ok()) FAIL() << pg.error();       // no binaries, initdb failed, ...
//   std::string url = pg.FreshDatabase();     // postgres://wharf@/wharf?host=...&options=...
//
// Binaries: $WHARF_PG_BINDIR, else `pg_config --bindir`, else the newest
// /usr/lib/postgresql/*/bin (Debian's postgresql package keeps them off PATH). Missing binaries
// are an error with that reason, never a quiet skip.
//
// As root the server runs as `nobody` (setpriv), which owns the temp dir: PostgreSQL refuses
// to run as root. A watchdog process (sh, reading a pipe the test process holds) stops the
// server and removes the dir when the test process dies in any way, even by a signal.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace wharf::testing {

class PgServer {
 public:
  // The server of this test binary, started on first call; stopped at exit.
  static PgServer& Shared();

  // Starts a new server (Shared() is what tests want; this is for tests of the harness).
  static Result<std::unique_ptr<PgServer>> Start();
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // For Shared(): whether it started, and why not.
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Creates what the store sees as an empty database (a fresh schema of database "wharf",
  // named by search_path in the url) and returns its url; "" (reason in error()) on failure.
  std::string FreshDatabase();
  // The url of database `db` on this server.
  std::string UrlFor(const std::string& db) const;
  // The superuser connection string (key=value) of database `db`, for raw libpq in tests.
  std::string ConnInfoFor(const std::string& db) const;
  int port() const { return port_; }
  const std::string& socket_dir() const { return sock_dir_; }

  // Stops the server now (the destructor does too); later connections fail.
  void Stop();

 private:
  PgServer() = default;
  Status Launch();
  // Runs bindir/`tool` with `args` (as the server's user when root), output appended to
  // the log; kInternal with the log's tail when it fails.
  Status RunTool(const std::string& tool, const std::string& args);

  std::string error_;
  std::string bin_dir_;
  std::string root_;  // the temp dir: data/, sock/, log
  std::string data_dir_;
  std::string sock_dir_;
  std::string log_;
  std::string run_as_;  // "setpriv ... --" prefix when root, else ""
  int port_ = 0;
  int watchdog_fd_ = -1;  // write end of the watchdog's pipe
  int watchdog_pid_ = -1;
  bool running_ = false;
  std::mutex mu_;
  int next_db_ = 0;
};

}  // namespace wharf::testing
