// The address clients reach the gateway by, for the absolute URLs it sends (Location headers).
// Some clients cannot follow relative Locations (Charliecloud's ch-image); the reference
// registry sends absolute ones. The base is, in order:
//   1. --public-url when set (a proxy or load balancer in front: the operator knows best);
//   2. X-Forwarded-Proto / X-Forwarded-Host, only when the peer is a --trusted-proxy;
//   3. the request's own Host header, with the scheme the gateway serves.
// A missing or malformed Host gives no base: the Location stays relative, as the spec allows.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
#include "http/server.h"

namespace wharf {

class PublicUrl {
 public:
  PublicUrl() = default;
  // `public_url`: "" or "http(s)://HOST[:PORT]" (a trailing '/' is dropped; no path, query or
  // credentials). `trusted_proxies`: IP addresses or CIDR networks ("10.0.0.0/8", "::1").
  // kInvalidArgument names the bad value.
  static Result<PublicUrl> Make(std::string public_url,
                                const std::vector<std::string>& trusted_proxies, bool tls = false);

  // "scheme://host[:port]" for this request, or "" (relative URLs).
  std::string BaseFor(const Exchange& ex) const;
  // BaseFor(ex) + path.
  std::string Absolute(const Exchange& ex, std::string_view path) const;

  // True when `remote` ("IP:PORT" or "[IPv6]:PORT") is one of the trusted proxies.
  bool Trusted(std::string_view remote) const;

 private:
  struct Network {
    asio::ip::address base;
    unsigned prefix = 0;
  };
  std::string fixed_;  // from --public-url
  std::vector<Network> proxies_;
  bool tls_ = false;
};

// True for a syntactically valid HTTP Host value: a DNS name, IPv4 address or bracketed IPv6
// address, with an optional port.
bool ValidHost(std::string_view host);

}  // namespace wharf
