// The HTTP/1.1 transport of the upstream client: plain or TLS (verified against the system's
// CAs or a given CA file, with SNI and host name checks), keep-alive connections pooled per
// endpoint, timeouts on connect and on every read and write, bodies streamed both ways.
//
// It is separate from http/client.h, which speaks only plain HTTP to the cluster's own members
// (signed with the cluster key); an upstream is any registry on the internet.
//
// Threading: one Transport per executor; many coroutines on it may use it at once.
#pragma once

#include <boost/asio/ssl.hpp>
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

namespace wharf::upstream {

// Where a request goes: scheme, host and port of a URL.
struct Endpoint {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string Key() const;         // "https://host:443"
  std::string HostHeader() const;  // "host:port" (the default port left out)
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// "http(s)://host[:port][/path][?query]" -> the endpoint and the rest ("/path?query", "" when
// absent). kInvalidArgument for another scheme, user info, a missing host or a bad port.
Result<Endpoint> ParseUrl(std::string_view url, std::string* rest);

struct TransportOptions {
  std::string ca_file;  // PEM; "" = the system's default CAs
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds io_timeout{std::chrono::seconds(60)};  // per read or write
  size_t max_idle_per_endpoint = 8;
};

class Transport;

// One request in flight. The connection goes back to the pool when the response body was read
// to its end and the server keeps it alive; otherwise it closes with the call.
class Call {
 public:
  ~Call();
  // Request body bytes (exactly the announced Content-Length in total). kUnavailable.
  awaitable<Status> WriteBody(const void* data, size_t n);
  // Ends the request and reads the response head. kUnavailable.
  awaitable<Status> FinishRequest();
  unsigned status() const { return status_; }
  std::string_view header(std::string_view name) const;
  std::optional<uint64_t> content_length() const;
  bool reused() const;
  // Response body: up to n bytes, 0 at its end. kUnavailable when the connection broke.
  awaitable<Result<size_t>> ReadSome(void* buf, size_t n);
  // The whole body; kTooLarge past `limit`.
  awaitable<Result<std::string>> ReadAll(size_t limit);
  // Reads and drops up to `limit` bytes of body so the connection can be reused.
  awaitable<void> Drain(size_t limit = 1u << 20);

  struct Conn;

 private:
  friend class Transport;
  Call(Transport* t, Endpoint ep, std::unique_ptr<Conn> conn, bool head);
  Transport* transport_;
  Endpoint endpoint_;
  std::unique_ptr<Conn> conn_;
  bool head_;
  unsigned status_ = 0;
  bool body_done_ = false;
};

class Transport {
 public:
  // kInvalidArgument when the CA file cannot be loaded.
  static Result<std::unique_ptr<Transport>> Create(asio::any_io_executor ex,
                                                   TransportOptions options);
  ~Transport();

  // Connects (or takes a pooled connection) and sends the request head. content_length
  // nullopt: no body. kUnavailable when the endpoint cannot be reached (resolve, connect, TLS
  // handshake, certificate verification); kInvalidArgument for a header with CR/LF.
  awaitable<Result<std::unique_ptr<Call>>> Open(Endpoint ep, http::verb method, std::string target,
                                                HeaderList headers,
                                                std::optional<uint64_t> content_length);
  asio::any_io_executor executor() const { return ex_; }
  const TransportOptions& options() const { return options_; }
  // Connections opened so far (not taken from the pool): for tests of keep-alive.
  uint64_t connections_opened() const { return opened_; }

 private:
  friend class Call;
  Transport(asio::any_io_executor ex, TransportOptions options);
  awaitable<Result<std::unique_ptr<Call::Conn>>> Connect(const Endpoint& ep);
  void ReturnToPool(const Endpoint& ep, std::unique_ptr<Call::Conn> conn);
  asio::any_io_executor ex_;
  TransportOptions options_;
  std::unique_ptr<asio::ssl::context> ssl_;
  std::map<std::string, std::vector<std::unique_ptr<Call::Conn>>> idle_;
  uint64_t opened_ = 0;
};

}  // namespace wharf::upstream
