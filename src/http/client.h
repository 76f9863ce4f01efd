// HTTP/1.1 client on Boost.Beast with C++20 coroutines: a pool of keep-alive connections
// per "host:port", timeouts on connect and on every read/write, streaming both ways.
//
// Threading: one HttpClient per executor (io_context thread); not for concurrent use from
// several threads. Many coroutines on the same executor may use it at once.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
#include "http/server.h"

namespace wharf {

class ClusterKey;  // http/cluster_auth.h

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  // A progress deadline: each socket read and write (a request body goes in 1 MiB pieces) must
  // complete within it, so the first byte of a response and every later one must come in time.
  std::chrono::milliseconds io_timeout{std::chrono::seconds(60)};
  size_t max_idle_per_host = 32;
  // Set: every request carries the cluster-key proof (http/cluster_auth.h). A request with a
  // body then needs an X-Wharf-Checksum header: Request() adds it, Open() refuses without it.
  std::shared_ptr<const ClusterKey> cluster_key;
};

struct ClientResponse {
  unsigned status = 0;
  http::fields headers;
  std::string body;
  std::string_view header(std::string_view name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string_view() : it->value();
  }
};

class HttpClient;

// A request in flight whose bodies stream. Obtained from HttpClient::Open.
//   auto call = co_await client.Open("10.0.0.1:7001", http::verb::put, "/chunks/ab…", hdrs, n);
//   co_await (*call)->WriteBody(p, k) ...;  co_await (*call)->FinishRequest();
//   while ((n = co_await (*call)->ReadSome(buf, size)) > 0) ...
// The connection returns to the pool when the response body was read to its end.
class ClientCall {
 public:
  ~ClientCall();
  // Sends request body bytes (exactly the announced Content-Length in total).
  awaitable<Status> WriteBody(const void* data, size_t n);
  // Ends the request and reads the response head. kUnavailable on connection errors.
  awaitable<Status> FinishRequest();
  unsigned status() const { return status_; }
  const http::fields& headers() const;
  std::string_view header(std::string_view name) const;
  std::optional<uint64_t> content_length() const;
  // Response body: up to n bytes, 0 at the end. kUnavailable if the server went away.
  awaitable<Result<size_t>> ReadSome(void* buf, size_t n);
  awaitable<Result<std::string>> ReadAll(size_t limit);

 private:
  friend class HttpClient;
  struct Conn;
  ClientCall(HttpClient* client, std::string host_port, std::unique_ptr<Conn> conn, bool head);
  awaitable<Result<size_t>> ReadDirect(void* buf, size_t n);
  HttpClient* client_;
  std::string host_port_;
  std::unique_ptr<Conn> conn_;
  bool head_request_;
  unsigned status_ = 0;
  bool body_done_ = false;
};

// The head of an HTTP/1.1 request, as both of wharf's clients send it: request line, Host,
// User-Agent, `headers`, Content-Length when there is a body. kInvalidArgument for a target that
// is not an origin form ("/...") or a target, name or value holding CR or LF (header injection).
Result<std::string> FormatRequestHead(http::verb method, std::string_view target,
                                      std::string_view host, const HeaderList& headers,
                                      std::optional<uint64_t> content_length);

class HttpClient {
 public:
  HttpClient(asio::any_io_executor ex, ClientOptions options = {});
  ~HttpClient();

  // Starts a request: connects (or reuses a pooled connection) and sends the head.
  // content_length nullopt = no body. kUnavailable when the peer cannot be reached;
  // kInvalidArgument for a signed request with a body but no X-Wharf-Checksum.
  awaitable<Result<std::unique_ptr<ClientCall>>> Open(std::string host_port, http::verb method,
                                                      std::string target, HeaderList headers,
                                                      std::optional<uint64_t> content_length);

  // A whole request with an in-memory body; reads the whole response (up to max_body).
  // Retries once on a fresh connection when a pooled one turns out to be closed.
  // `body` must stay alive until the returned awaitable completes.
  awaitable<Result<ClientResponse>> Request(std::string host_port, http::verb method,
                                            std::string target, std::string_view body = {},
                                            HeaderList headers = {}, size_t max_body = 256u << 20);

  const ClientOptions& options() const { return options_; }
  asio::any_io_executor executor() const { return ex_; }

 private:
  friend class ClientCall;
  awaitable<Result<std::unique_ptr<ClientCall::Conn>>> Connect(const std::string& host_port);
  void ReturnToPool(const std::string& host_port, std::unique_ptr<ClientCall::Conn> conn);
  awaitable<Result<ClientResponse>> RequestOnce(std::string host_port, http::verb method,
                                                std::string target, std::string_view body,
                                                HeaderList headers, size_t max_body,
                                                bool* reused_failed);
  asio::any_io_executor ex_;
  ClientOptions options_;
  std::map<std::string, std::vector<std::unique_ptr<ClientCall::Conn>>> idle_;
};

}  // namespace wharf
