// What the request pipeline knows about one request besides its bytes: who sent it, under
// which id it is logged, which route took it, and (once an authentication filter ran) on whose
// behalf it acts. Owned by the Exchange; filled by the server (id, remote, timing, byte
// counts) and the router (route); read by filters, handlers and end-of-request observers.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf {

// The authenticated identity of a request (the access log's user).
struct Principal {
  std::string subject;  // user or service name
};

struct RequestContext {
  // The client's X-Request-Id when it is sane (see SaneRequestId), else a generated one.
  // Echoed in the response's X-Request-Id; sent on to chunkservers; on every log line.
  std::string request_id;
  std::string remote;  // "ip:port" of the peer
  // Name of the route that matched (used in logs and metrics); "" when none did.
  std::string route;
  std::optional<Principal> principal;
  // What the authentication filter knows of the caller beyond its name (the gateway keeps an
  // auth::Caller here: its token's grants), for handlers that filter what they show. Opaque to
  // the HTTP layer; null when no such filter ran.
  std::shared_ptr<const void> auth_caller;
  // Over TLS with client certificates (--tls-client-ca): the verified certificate's subject,
  // RFC 2253 ("CN=ci-bot,O=team"), an identity the access policy can name. "" otherwise.
  std::string tls_client_subject;
  std::chrono::steady_clock::time_point started;  // when the request head was read
  uint64_t bytes_in = 0;                          // request body bytes read
  uint64_t bytes_out = 0;                         // response body bytes written
};

// Longest client-given request id kept; a longer one is replaced by a generated id.
inline constexpr size_t kMaxRequestIdBytes = 128;

// True for an id of 1..kMaxRequestIdBytes token characters (RFC 9110 tchar: letters, digits
// and !#$%&'*+-.^_`|~): safe on a log line and in a header.
bool SaneRequestId(std::string_view id);

}  // namespace wharf
