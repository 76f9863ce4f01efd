#include "support/pg_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace wharf::testing {

namespace fs = std::filesystem;

namespace {

constexpr const char* kUser = "wharf";  // the server's superuser (initdb -U)

bool HasServerTools(const fs::path& dir) {
  return fs::exists(dir / "initdb") && fs::exists(dir / "pg_ctl") && fs::exists(dir / "postgres");
}

// Where initdb/pg_ctl/postgres are, or "" when they are nowhere we look.
std::string FindBinDir() {
  if (const char* env = std::getenv("WHARF_PG_BINDIR"); env && *env) {
    return HasServerTools(env) ? env : "";
  }
  if (FILE* p = popen("pg_config --bindir 2>/dev/null", "r")) {
    char buf[4096] = {};
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    pclose(p);
    std::string dir(buf, n);
    while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) dir.pop_back();
    if (!dir.empty() && HasServerTools(dir)) return dir;
  }
  std::vector<std::pair<int, std::string>> found;  // (major version, dir)
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path bin = e.path() / "bin";
    if (HasServerTools(bin)) found.emplace_back(std::atoi(e.path().filename().c_str()), bin);
  }
  if (found.empty()) return "";
  return std::max_element(found.begin(), found.end())->second;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

std::string Tail(const std::string& path, size_t max = 1500) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max ? s.substr(s.size() - max) : s;
}

}  // namespace

PgServer& PgServer::Shared() {
  static PgServer* shared = [] {
    Result<std::unique_ptr<PgServer>> r = Start();
    if (r) return r->release();
    auto* failed = new PgServer();
    failed->error_ = r.error().message();
    return failed;
  }();
  static bool registered = [] {
    std::atexit([] { shared->Stop(); });
    return true;
  }();
  (void)registered;
  return *shared;
}

Result<std::unique_ptr<PgServer>> PgServer::Start() {
  std::unique_ptr<PgServer> s(new PgServer());
  if (Status st = s->Launch(); !st.ok()) {
    s->Stop();
    return Err(st);
  }
  return s;
}

PgServer::~PgServer() { Stop(); }

Status PgServer::RunTool(const std::string& tool, const std::string& args) {
  std::string cmd =
      fmt::format("{}'{}/{}' {} >>'{}' 2>&1 </dev/null", run_as_, bin_dir_, tool, args, log_);
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    return Internal(fmt::format("{} failed (status {}); its log ends: {}", tool, rc, Tail(log_)));
  }
  return Status::Ok();
}

Status PgServer::Launch() {
  bin_dir_ = FindBinDir();
  if (bin_dir_.empty()) {
    return Unavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: not in "
        "$WHARF_PG_BINDIR, `pg_config --bindir` nor /usr/lib/postgresql/*/bin; install "
        "Debian's postgresql package (scripts/install-deps.sh)");
  }
  std::string tmpl = (fs::temp_directory_path() / "wharf-pg-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return ErrnoError("mkdtemp", errno);
  root_ = tmpl;
  data_dir_ = root_ + "/data";
  sock_dir_ = root_ + "/sock";
  log_ = root_ + "/server.log";
  fs::create_directories(sock_dir_);
  std::ofstream(log_).close();
  if (geteuid() == 0) {
    // PostgreSQL refuses to run as root: run it as nobody, who owns the dir.
    struct passwd* pw = getpwnam("nobody");
    if (pw == nullptr) return Internal("running as root and there is no user `nobody`");
    for (const std::string& p : {root_, sock_dir_, log_}) {
      if (chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0) return ErrnoError("chown " + p, errno);
    }
    run_as_ =
        fmt::format("setpriv --reuid={} --regid={} --clear-groups -- ", pw->pw_uid, pw->pw_gid);
  }
  // The watchdog: stops the server and removes the dir once our end of the pipe closes,
  // which happens however this process ends (close-on-exec keeps the server from holding it).
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  std::string script =
      fmt::format("read _; {}'{}/pg_ctl' -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
                  run_as_, bin_dir_, data_dir_, root_);
  pid_t pid = fork();
  if (pid < 0) return ErrnoError("fork", errno);
  if (pid == 0) {
    dup2(fds[0], 0);
    setsid();  // outlives a kill of our process group
    execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[0]);
  watchdog_fd_ = fds[1];
  watchdog_pid_ = pid;

  WHARF_RETURN_IF_ERROR(RunTool(
      "initdb",
      fmt::format("-D '{}' -U {} -A trust -E UTF8 --no-locale --no-sync", data_dir_, kUser)));
  // Durability off (a test server), a socket in our dir only, room for many pools.
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    std::string opts = fmt::format(
        "-p {} -k {} -c listen_addresses= -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB",
        port_, sock_dir_);
    Status st = RunTool("pg_ctl", fmt::format("-D '{}' -l '{}/postgres.log' -w -t 60 -o '{}' start",
                                              data_dir_, root_, opts));
    if (st.ok()) {
      running_ = true;
      return Status::Ok();
    }
    if (attempt == 2) {
      return Internal(st.message() + " / postgres.log: " + Tail(root_ + "/postgres.log"));
    }
  }
  return Status::Ok();
}

void PgServer::Stop() {
  if (running_) {
    (void)RunTool("pg_ctl", fmt::format("-D '{}' -m fast -w stop", data_dir_));
    running_ = false;
  }
  if (watchdog_fd_ >= 0) {
    close(watchdog_fd_);  // the watchdog finds the server stopped and removes the dir
    watchdog_fd_ = -1;
    int status = 0;
    waitpid(watchdog_pid_, &status, 0);
  } else if (!root_.empty()) {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
}

std::string PgServer::UrlFor(const std::string& db) const {
  return fmt::format("postgres://{}@/{}?host={}&port={}", kUser, db, sock_dir_, port_);
}

std::string PgServer::ConnInfoFor(const std::string& db) const {
  return fmt::format("host={} port={} user={} dbname={}", sock_dir_, port_, kUser, db);
}

namespace {

// Runs `sql` on `conninfo`; "" or the error.
std::string RunSql(const std::string& conninfo, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  std::string err;
  if (PQstatus(c) != CONNECTION_OK) {
    err = PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) err = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(c);
  return err;
}

}  // namespace

std::string PgServer::FreshDatabase() {
  std::lock_guard lock(mu_);
  if (!ok()) return "";
  // A schema per test in one database is what the store sees as a fresh database (every
  // name it uses is unqualified, found through search_path), and costs a millisecond where
  // CREATE DATABASE costs hundreds.
  if (next_db_ == 0) {
    if (std::string err = RunSql(ConnInfoFor("postgres"), "CREATE DATABASE wharf"); !err.empty()) {
      error_ = "CREATE DATABASE wharf: " + err;
      return "";
    }
  }
  std::string schema = fmt::format("t{}", next_db_++);
  if (std::string err = RunSql(ConnInfoFor("wharf"), "CREATE SCHEMA " + schema); !err.empty()) {
    error_ = "CREATE SCHEMA " + schema + ": " + err;
    return "";
  }
  return UrlFor("wharf") + "&options=-csearch_path%3D" + schema;
}

}  // namespace wharf::testing
