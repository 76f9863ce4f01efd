// HTTP/1.1 server on Boost.Beast with C++20 coroutines.
//
// One coroutine per connection; keep-alive; request bodies and response bodies stream (a
// handler reads the body piecewise with ReadSome and writes the response piecewise with
// WriteBody or SendFile), so memory stays bounded whatever the body size. Timeouts apply
// to every read and write; the number of concurrent connections is bounded.
//
// Threading: a Server runs on the executor it is given. Handlers run on that executor and
// must not block it: disk and database work go through Offload() (common/async.h).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/log.h"
#include "common/memory_budget.h"
#include "common/metrics.h"
#include "common/status.h"
#include "http/request_context.h"

namespace wharf {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class TlsContext;  // http/tls.h

struct ServerOptions {
  std::string component = "http";  // for logs and metric names: wharf_<component>_http_...
  size_t max_connections = 4096;
  // Connections past max_connections that only routes marked `ops` (/healthz, /metrics) may
  // use (the head is read, then the Router decides): probes answer while a flood holds every
  // ordinary slot.
  size_t reserved_connections = 64;
  // Connections one remote IP address may hold at once (0: no limit); more are refused with
  // 503. Raise it behind a proxy, whose address every client shares.
  size_t max_connections_per_address = 1024;
  // Time to send a whole request head: from accept for the first request of a connection,
  // from its first byte for the next ones (which may first idle for idle_timeout).
  std::chrono::milliseconds head_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(75)};  // keep-alive, between requests
  std::chrono::milliseconds io_timeout{std::chrono::seconds(120)};
  // A request body must arrive at min_body_rate bytes/s at least (0: no minimum), over windows
  // of min_body_rate_window: a body starts with one window of waiting time, each byte buys
  // 1/min_body_rate s more (at most one window banked), and only time spent waiting for its
  // bytes counts (not the handler's own waits, e.g. for memory or a chunk write). A body that
  // runs out (slowloris) closes the connection, logged and counted (..._http_slow_bodies_total).
  uint64_t min_body_rate = 0;
  std::chrono::milliseconds min_body_rate_window{std::chrono::seconds(10)};
  // Set (not owned; outlives the server): a connection's large body read buffer (256 KiB) is
  // taken from this budget, from its first half only (a connection may hold it while its
  // handler waits for the budget); while that is spent, bodies are read through a small buffer.
  MemoryBudget* memory_budget = nullptr;
  size_t max_header_bytes = 64 * 1024;
  // Added to this server's metric series, e.g. {{"member", "g1-a"}}: several daemons of one
  // component may share a process (`wharf up`), and each keeps its own series.
  Labels metric_labels;
  // Set: every connection speaks TLS (1.2 or 1.3) with the context's current certificate; a
  // client that speaks plain HTTP gets a 400 naming the problem and the connection closes.
  std::shared_ptr<TlsContext> tls;
};

class Connection;
class Checksummer;

// One request and its response. Owned by the connection; valid during the handler call.
class Exchange {
 public:
  http::verb method() const { return head_.method(); }
  std::string_view method_string() const { return head_.method_string(); }
  std::string_view target() const { return head_.target(); }
  std::string_view path() const { return path_; }
  // The raw (still percent-encoded) query string, without '?'.
  std::string_view query_string() const { return query_; }
  // The first value of a query parameter, percent-decoded.
  std::optional<std::string> query(std::string_view key) const;
  const http::fields& headers() const { return head_; }
  // The header's value (the first, when it is repeated), or "" if absent.
  std::string_view header(http::field f) const;
  std::string_view header(std::string_view name) const;
  // Content-Length of the request, if it was given.
  std::optional<uint64_t> content_length() const;
  bool chunked() const;
  const std::string& request_id() const { return context_.request_id; }
  const std::string& remote() const { return context_.remote; }
  // The request's context (id, remote, route, principal, byte counts): filters and handlers
  // read it and may fill what is theirs (the router the route, authentication the principal).
  RequestContext& context() { return context_; }
  const RequestContext& context() const { return context_; }
  // Registers `fn` to run when the exchange ends: after the response was written (or the
  // handler failed and the server answered for it), before the next request of the connection.
  // Observers such as the access log and per-route metrics use it. Runs on the connection's
  // executor; must not block.
  void AtEnd(std::function<void(const Exchange&)> fn) { at_end_.push_back(std::move(fn)); }

  // Request body: reads up to n bytes into buf; 0 means the body has ended.
  // kCancelled when the client goes away or times out; kInvalidArgument for a malformed body.
  // A body slower than ServerOptions::min_body_rate is kCancelled too, and the error answer
  // to it (any status >= 400) goes out as 408 Request Timeout with Connection: close.
  awaitable<Result<size_t>> ReadSome(void* buf, size_t n);
  // Reads the whole body; kTooLarge past `limit` bytes.
  awaitable<Result<std::string>> ReadAll(size_t limit);
  bool body_done() const;
  // The body must hash to `xxh3` (common/checksum.h): once it has been read to its end,
  // ReadSome answers kDigestMismatch instead of 0 when it does not. Set by the cluster-auth
  // filter, whose signature covers the checksum, not the bytes (http/cluster_auth.h).
  void ExpectBodyChecksum(uint64_t xxh3);

  // Response. Exactly one Respond or BeginResponse per exchange.
  // Headers added here go out with the response (Content-Length is set by wharf).
  void AddHeader(std::string name, std::string value);
  // Forgets the added headers of that name (before responding: an error replacing the answer
  // they were meant for).
  void RemoveHeader(std::string_view name);
  awaitable<Status> Respond(http::status status, std::string body = {},
                            std::string_view content_type = "application/json");
  // Sends the status line and headers of a response whose body is `content_length` bytes,
  // followed by WriteBody / SendFile calls that add up to exactly that many bytes. For HEAD
  // requests the body calls are ignored.
  awaitable<Status> BeginResponse(http::status status, uint64_t content_length,
                                  std::string_view content_type = "application/octet-stream");
  awaitable<Status> WriteBody(const void* data, size_t n);
  // Sends len bytes of fd from offset with sendfile(2) (fd stays owned by the caller).
  awaitable<Status> SendFile(int fd, uint64_t offset, uint64_t len);
  bool responded() const { return responded_; }
  unsigned status_code() const { return status_; }
  // Forces the connection to close after this exchange.
  void CloseAfter() { close_after_ = true; }
  // True when the connection holds one of the ServerOptions::reserved_connections.
  bool on_reserved_slot() const;

 private:
  friend class Connection;
  explicit Exchange(Connection* conn) : conn_(conn) {}
  awaitable<Status> WriteHead(http::status status, uint64_t content_length,
                              std::string_view content_type);
  // SendFile over TLS: pread and write.
  awaitable<Status> CopyFile(int fd, uint64_t offset, uint64_t len);
  Connection* conn_;
  http::request_header<> head_;
  std::string path_, query_;
  RequestContext context_;
  std::vector<std::function<void(const Exchange&)>> at_end_;
  HeaderList extra_headers_;
  bool responded_ = false;
  bool close_after_ = false;
  bool keep_alive_ = true;
  bool continue_sent_ = false;  // "100 Continue" answered to Expect
  bool body_too_slow_ = false;  // the body was cut for its rate: an error answer is a 408
  unsigned status_ = 0;
  uint64_t body_remaining_ = 0;  // response bytes still owed
  uint64_t expected_body_checksum_ = 0;
  std::shared_ptr<Checksummer> body_checksum_;  // set by ExpectBodyChecksum
  std::string head_bytes_;                      // status line + headers not yet written
};

using Handler = std::function<awaitable<void>(Exchange&)>;

class Server {
 public:
  Server(asio::any_io_executor ex, ServerOptions options, Handler handler);
  ~Server();
  // Binds "HOST:PORT" (port 0 = any free port). kInvalidArgument for a malformed address,
  // kUnavailable when the address cannot be bound.
  Status Listen(const std::string& host_port);
  // The bound address, e.g. "127.0.0.1:40123".
  std::string local_address() const;
  uint16_t port() const;
  // Starts accepting (spawns the accept loop on the executor).
  void Start();
  // Stops accepting and closes idle connections.
  void Stop();
  size_t active_connections() const;

  struct State;  // shared with the connections; defined in server.cc

 private:
  awaitable<void> AcceptLoop();
  std::shared_ptr<State> state_;
};

// Splits "host:port" ("[::1]:80" too). kInvalidArgument when malformed.
Result<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view host_port);
std::string PercentDecode(std::string_view s);
std::string PercentEncode(std::string_view s);

// Answers GET /healthz and GET /metrics (Prometheus). Returns true if it handled the request.
// `healthy` decides /healthz: 200 "ok" or 503 with the reason.
awaitable<bool> ServeOps(Exchange& ex, std::function<Status()> healthy);
// The two answers of ServeOps, for route tables (http/router.h: AddOpsRoutes).
awaitable<void> ServeHealthz(Exchange& ex, std::function<Status()> healthy);
awaitable<void> ServeMetrics(Exchange& ex);

}  // namespace wharf
