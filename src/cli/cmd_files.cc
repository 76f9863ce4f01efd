// `wharf put FILE`, `wharf get ID [-o FILE]`, `wharf rm ID`: the file API of a gateway
// (POST /files, GET /files/{id}, DELETE /files/{id}) from the command line.
//
// Bodies stream both ways in 1 MiB pieces: memory stays flat whatever the file size. The
// gateway is --gateway URL, else $WHARF_GATEWAY, else http://127.0.0.1:5000. Errors are one
// line "wharf <cmd>: <message>" on stderr and a non-zero exit code (1; 2 for bad usage).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/progress.h"
#include "common/config.h"
#include "common/digest.h"
#include "http/client.h"

namespace wharf::cli {
namespace {

constexpr size_t kPiece = 1u << 20;
constexpr const char* kDefaultGateway = "http://127.0.0.1:5000";

struct Gateway {
  std::string url;        // as given, for messages
  std::string host_port;  // for HttpClient
  std::string prefix;     // path prefix without a trailing slash ("" mostly)
};

// "http://host[:port][/prefix]" or "host[:port]".
Result<Gateway> ParseGateway(std::string url) {
  Gateway g;
  g.url = url;
  std::string rest = url;
  if (auto p = rest.find("://"); p != std::string::npos) {
    std::string scheme = rest.substr(0, p);
    if (scheme != "http") {
      return Err(InvalidArgument("gateway URL " + url + ": only http:// is supported"));
    }
    rest = rest.substr(p + 3);
  }
  auto slash = rest.find('/');
  g.host_port = rest.substr(0, slash);
  if (slash != std::string::npos) g.prefix = rest.substr(slash);
  while (!g.prefix.empty() && g.prefix.back() == '/') g.prefix.pop_back();
  if (g.host_port.empty()) return Err(InvalidArgument("gateway URL " + url + ": no host"));
  // a port is needed by the client; http's default otherwise ("[v6]" or "host" alone)
  auto colon = g.host_port.rfind(':');
  auto bracket = g.host_port.rfind(']');
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) {
    g.host_port += ":80";
  }
  return g;
}

std::string ChooseGatewayUrl(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("WHARF_GATEWAY"); env && *env) return env;
  return kDefaultGateway;
}

bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 256) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return id != "." && id != "..";
}

// The message of a JSON error body {"error": {"code", "message"}}, else a short excerpt.
std::string ServerMessage(unsigned status, std::string_view body) {
  std::string msg;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) {
      msg = e["message"].get<std::string>();
    } else if (e.is_string()) {
      msg = e.get<std::string>();
    }
  }
  if (msg.empty()) {
    for (char c : body.substr(0, 200)) msg += (c == '\n' || c == '\r') ? ' ' : c;
  }
  while (!msg.empty() && msg.back() == ' ') msg.pop_back();
  return msg.empty() ? fmt::format("HTTP {}", status) : fmt::format("{} (HTTP {})", msg, status);
}

std::string Unreachable(const Gateway& g, const Status& st) {
  return fmt::format("cannot reach the gateway at {}: {}", g.url, st.message());
}

ClientOptions CliClientOptions() {
  ClientOptions o;
  o.connect_timeout = std::chrono::seconds(5);
  o.io_timeout = std::chrono::seconds(300);
  o.max_idle_per_host = 1;
  return o;
}

// Runs `body` (a coroutine returning the exit code) on a fresh io_context. An exception is a
// bug: it is reported on one line like any other failure.
template <typename F>
int RunClient(const std::string& role, F&& body) {
  asio::io_context io;
  int rc = 1;
  auto done = [&rc, &role](std::exception_ptr e) {
    if (!e) return;
    rc = 70;  // EX_SOFTWARE
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "wharf " << role << ": internal error: " << ex.what() << std::endl;
    } catch (...) {
      std::cerr << "wharf " << role << ": internal error" << std::endl;
    }
  };
  asio::co_spawn(
      io, [&]() -> awaitable<void> { rc = co_await body(io.get_executor()); }, done);
  io.run();
  return rc;
}

int Fail(const std::string& role, const std::string& message) {
  std::cout.flush();
  std::cerr << "wharf " << role << ": " << message << std::endl;
  return 1;
}

std::string GuessContentType(const std::string& path) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".png", "image/png"},         {".jpg", "image/jpeg"},        {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},         {".webp", "image/webp"},       {".svg", "image/svg+xml"},
      {".txt", "text/plain"},        {".html", "text/html"},        {".css", "text/css"},
      {".js", "text/javascript"},    {".json", "application/json"}, {".pdf", "application/pdf"},
      {".tar", "application/x-tar"}, {".gz", "application/gzip"},   {".tgz", "application/gzip"},
      {".zip", "application/zip"},   {".zst", "application/zstd"},  {".xz", "application/x-xz"},
  };
  std::string lower;
  for (char c : path) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [ext, type] : kTypes) {
    std::string_view e(ext);
    if (lower.size() > e.size() && lower.compare(lower.size() - e.size(), e.size(), e) == 0) {
      return type;
    }
  }
  return "application/octet-stream";
}

std::string BaseName(const std::string& path) {
  auto p = path.find_last_of('/');
  return p == std::string::npos ? path : path.substr(p + 1);
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// ---------------------------------------------------------------------------------- put

awaitable<int> Put(asio::any_io_executor ex, const Gateway& g, const std::string& path, int fd,
                   uint64_t size, const std::string& content_type) {
  const std::string role = "put";
  HttpClient client(ex, CliClientOptions());
  HeaderList headers;
  headers.emplace_back("Content-Type", content_type);
  std::string target = g.prefix + "/files";
  std::optional<uint64_t> length = size;
  auto opened =
      co_await client.Open(g.host_port, http::verb::post, target, std::move(headers), length);
  if (!opened) co_return Fail(role, Unreachable(g, opened.error()));
  auto call = std::move(*opened);

  std::vector<char> buf(kPiece);
  uint64_t sent = 0;
  Status write_error;
  Progress progress("put " + BaseName(path), size);
  while (sent < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - sent));
    ssize_t n = ::read(fd, buf.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      // dropping the connection mid-body makes the gateway discard the upload
      co_return Fail(role, fmt::format("read {}: {}", path, std::strerror(errno)));
    }
    if (n == 0) co_return Fail(role, fmt::format("{} shrank while it was being sent", path));
    write_error = co_await call->WriteBody(buf.data(), static_cast<size_t>(n));
    if (!write_error.ok()) break;  // the gateway may have answered early: read its answer
    sent += static_cast<uint64_t>(n);
    progress.Add(static_cast<uint64_t>(n));
  }
  Status st = co_await call->FinishRequest();
  if (!st.ok()) {
    progress.Finish(false);
    const Status& why = write_error.ok() ? st : write_error;
    co_return Fail(
        role, fmt::format("the gateway at {} dropped the upload after {} of {} bytes: {}", g.url,
                          sent, size, why.message()));
  }
  auto body = co_await call->ReadAll(1u << 20);
  progress.Finish(call->status() == 201 || call->status() == 200);
  if (!body)
    co_return Fail(role, fmt::format("reading the gateway's answer: {}", body.error().message()));
  if (call->status() != 201 && call->status() != 200) {
    co_return Fail(role, ServerMessage(call->status(), *body));
  }
  if (!write_error.ok()) {
    co_return Fail(role, "upload interrupted: " + write_error.message());
  }
  auto j = nlohmann::json::parse(*body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string()) {
    co_return Fail(role, "unexpected answer from the gateway: " + body->substr(0, 200));
  }
  if (j.contains("size") && j["size"].is_number_unsigned() && j["size"].get<uint64_t>() != size) {
    co_return Fail(role, fmt::format("the gateway stored {} bytes, {} were sent",
                                     j["size"].get<uint64_t>(), size));
  }
  std::cout << j["id"].get<std::string>() << std::endl;
  co_return 0;
}

// ---------------------------------------------------------------------------------- get

awaitable<int> Get(asio::any_io_executor ex, const Gateway& g, const std::string& id,
                   const std::string& out_path) {
  const std::string role = "get";
  HttpClient client(ex, CliClientOptions());
  HeaderList headers;
  std::string target = g.prefix + "/files/" + id;
  std::optional<uint64_t> no_body;
  auto opened =
      co_await client.Open(g.host_port, http::verb::get, target, std::move(headers), no_body);
  if (!opened) co_return Fail(role, Unreachable(g, opened.error()));
  auto call = std::move(*opened);
  Status st = co_await call->FinishRequest();
  if (!st.ok()) co_return Fail(role, Unreachable(g, st));
  if (call->status() != 200) {
    auto body = co_await call->ReadAll(1u << 20);
    if (call->status() == 404) co_return Fail(role, "no such file " + id);
    co_return Fail(role, ServerMessage(call->status(), body ? *body : std::string()));
  }
  std::optional<uint64_t> length = call->content_length();
  std::string etag(call->header("ETag"));
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  std::optional<Digest> expected;
  if (auto d = Digest::Parse(etag)) expected = *d;

  // the output is opened only now, so a failed lookup leaves an existing file alone
  bool to_stdout = out_path.empty() || out_path == "-";
  Fd out;
  bool created_regular = false;
  if (to_stdout) {
    out.fd = ::dup(STDOUT_FILENO);
  } else {
    out.fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    struct stat sb {};
    created_regular = out.fd >= 0 && ::fstat(out.fd, &sb) == 0 && S_ISREG(sb.st_mode);
  }
  if (out.fd < 0) co_return Fail(role, fmt::format("open {}: {}", out_path, std::strerror(errno)));
  auto fail_output = [&](const std::string& message) {
    if (created_regular) ::unlink(out_path.c_str());
    return Fail(role, message);
  };

  std::optional<Hasher> hasher;
  if (expected) hasher.emplace(expected->algorithm());
  Progress progress("get " + id.substr(0, 8), length.value_or(0));
  std::vector<char> buf(kPiece);
  uint64_t got = 0;
  for (;;) {
    auto n = co_await call->ReadSome(buf.data(), buf.size());
    if (!n) {
      progress.Finish(false);
      co_return fail_output(
          fmt::format("download of {} broke off after {} bytes: {}", id, got, n.error().message()));
    }
    if (*n == 0) break;
    if (!WriteAll(out.fd, buf.data(), *n)) {
      progress.Finish(false);
      co_return fail_output(
          fmt::format("write {}: {}", to_stdout ? "stdout" : out_path, std::strerror(errno)));
    }
    if (hasher) hasher->Update(buf.data(), *n);
    got += *n;
    progress.Add(*n);
  }
  if (length && got != *length) {
    progress.Finish(false);
    co_return fail_output(
        fmt::format("download of {} ended after {} of {} bytes", id, got, *length));
  }
  if (hasher) {
    Digest actual = hasher->Finish();
    if (actual != *expected) {
      progress.Finish(false);
      co_return fail_output(fmt::format("content of {} does not match its digest: got {}, want {}",
                                        id, actual.ToString(), expected->ToString()));
    }
  }
  if (!to_stdout && ::fsync(out.fd) != 0 && errno != EINVAL && errno != EROFS) {
    progress.Finish(false);
    co_return fail_output(fmt::format("fsync {}: {}", out_path, std::strerror(errno)));
  }
  if (::close(out.fd) != 0) {
    out.fd = -1;
    progress.Finish(false);
    co_return fail_output(
        fmt::format("close {}: {}", to_stdout ? "stdout" : out_path, std::strerror(errno)));
  }
  out.fd = -1;
  progress.Finish(true);
  co_return 0;
}

// ----------------------------------------------------------------------------------- rm

awaitable<int> Rm(asio::any_io_executor ex, const Gateway& g, const std::string& id) {
  const std::string role = "rm";
  HttpClient client(ex, CliClientOptions());
  std::string target = g.prefix + "/files/" + id;
  auto r = co_await client.Request(g.host_port, http::verb::delete_, target);
  if (!r) co_return Fail(role, Unreachable(g, r.error()));
  if (r->status == 204 || r->status == 200 || r->status == 202) co_return 0;
  if (r->status == 404) co_return Fail(role, "no such file " + id);
  co_return Fail(role, ServerMessage(r->status, r->body));
}

void AddGatewayOption(CLI::App& app, std::string& gateway) {
  app.add_option("--gateway", gateway,
                 "gateway URL (default $WHARF_GATEWAY, else http://127.0.0.1:5000)");
}

}  // namespace

int RunPut(Args args) {
  const std::string role = "put";
  CLI::App app{"wharf put: store a file; prints its id (the last line)", "wharf put"};
  std::string path, gateway, content_type;
  app.add_option("file", path, "the file to store")->required();
  AddGatewayOption(app, gateway);
  app.add_option("--content-type", content_type,
                 "Content-Type to store (default: guessed from the extension)");
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  auto g = ParseGateway(ChooseGatewayUrl(gateway));
  if (!g) return ConfigError(role, g.error().message());
  if (content_type.empty()) content_type = GuessContentType(path);

  Fd in;
  in.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in.fd < 0) return Fail(role, fmt::format("open {}: {}", path, std::strerror(errno)));
  struct stat sb {};
  if (::fstat(in.fd, &sb) != 0)
    return Fail(role, fmt::format("stat {}: {}", path, std::strerror(errno)));
  if (!S_ISREG(sb.st_mode)) return Fail(role, path + " is not a regular file");
  ::posix_fadvise(in.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  uint64_t size = static_cast<uint64_t>(sb.st_size);
  int fd = in.fd;
  return RunClient(
      role, [&](asio::any_io_executor ex) { return Put(ex, *g, path, fd, size, content_type); });
}

int RunGet(Args args) {
  const std::string role = "get";
  CLI::App app{"wharf get: fetch a stored file (to stdout unless -o)", "wharf get"};
  std::string id, gateway, out;
  app.add_option("id", id, "the file's id (as printed by wharf put)")->required();
  app.add_option("-o,--output", out, "write to this file instead of stdout");
  AddGatewayOption(app, gateway);
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  auto g = ParseGateway(ChooseGatewayUrl(gateway));
  if (!g) return ConfigError(role, g.error().message());
  if (!ValidId(id)) return ConfigError(role, "invalid id '" + id + "'");
  // As curl does: binary bytes on a terminal garble it; ask for -o or a pipe instead.
  if ((out.empty() || out == "-") && isatty(STDOUT_FILENO)) {
    return ConfigError(role, "refusing to write the file to a terminal: use -o FILE or a pipe");
  }
  return RunClient(role, [&](asio::any_io_executor ex) { return Get(ex, *g, id, out); });
}

int RunRm(Args args) {
  const std::string role = "rm";
  CLI::App app{"wharf rm: delete a stored file", "wharf rm"};
  std::string id, gateway;
  app.add_option("id", id, "the file's id")->required();
  AddGatewayOption(app, gateway);
  if (auto rc = ParseCommandLine(app, role, std::move(args))) return *rc;
  auto g = ParseGateway(ChooseGatewayUrl(gateway));
  if (!g) return ConfigError(role, g.error().message());
  if (!ValidId(id)) return ConfigError(role, "invalid id '" + id + "'");
  return RunClient(role, [&](asio::any_io_executor ex) { return Rm(ex, *g, id); });
}

}  // namespace wharf::cli
