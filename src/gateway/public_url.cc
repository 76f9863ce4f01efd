#include "gateway/public_url.h"

#include <array>
#include <charconv>
#include <cstring>

namespace wharf {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The first element of a comma-separated header value (proxies chain them; the first is the
// one the client spoke to).
std::string_view FirstOf(std::string_view v) {
  const size_t comma = v.find(',');
  return Trim(comma == std::string_view::npos ? v : v.substr(0, comma));
}

bool ValidPort(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  return ec == std::errc() && end == p.data() + p.size() && v >= 1 && v <= 65535;
}

std::optional<asio::ip::address> ParseAddress(std::string_view s) {
  boost::system::error_code ec;
  auto a = asio::ip::make_address(std::string(s), ec);
  if (ec) return std::nullopt;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

// The IP address of a peer "IP:PORT" / "[IPv6]:PORT".
std::optional<asio::ip::address> PeerAddress(std::string_view remote) {
  if (remote.empty()) return std::nullopt;
  if (remote.front() == '[') {
    const size_t close = remote.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    return ParseAddress(remote.substr(1, close - 1));
  }
  const size_t colon = remote.rfind(':');
  if (colon != std::string_view::npos && remote.find(':') == colon)
    remote = remote.substr(0, colon);
  return ParseAddress(remote);
}

bool InNetwork(const asio::ip::address& a, const asio::ip::address& base, unsigned prefix) {
  if (a.is_v4() != base.is_v4()) return false;
  std::array<unsigned char, 16> x{}, y{};
  size_t n = 0;
  if (a.is_v4()) {
    auto ab = a.to_v4().to_bytes(), bb = base.to_v4().to_bytes();
    std::memcpy(x.data(), ab.data(), 4);
    std::memcpy(y.data(), bb.data(), 4);
    n = 4;
  } else {
    auto ab = a.to_v6().to_bytes(), bb = base.to_v6().to_bytes();
    std::memcpy(x.data(), ab.data(), 16);
    std::memcpy(y.data(), bb.data(), 16);
    n = 16;
  }
  unsigned bits = prefix;
  for (size_t i = 0; i < n && bits > 0; ++i) {
    const unsigned take = bits >= 8 ? 8 : bits;
    const unsigned char mask = static_cast<unsigned char>(0xff << (8 - take));
    if ((x[i] & mask) != (y[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

}  // namespace

bool ValidHost(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  std::string_view name = host;
  if (host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    auto a = ParseAddress(host.substr(1, close - 1));
    if (!a || !a->is_v6()) return false;
    std::string_view rest = host.substr(close + 1);
    if (rest.empty()) return true;
    return rest.front() == ':' && ValidPort(rest.substr(1));
  }
  const size_t colon = host.find(':');
  if (colon != std::string_view::npos) {
    if (!ValidPort(host.substr(colon + 1))) return false;
    name = host.substr(0, colon);
  }
  if (name.empty() || name.front() == '.' || name.front() == '-') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Result<PublicUrl> PublicUrl::Make(std::string public_url,
                                  const std::vector<std::string>& trusted_proxies, bool tls) {
  PublicUrl p;
  p.tls_ = tls;
  if (!public_url.empty()) {
    std::string_view u = public_url;
    while (!u.empty() && u.back() == '/') u.remove_suffix(1);
    std::string_view scheme;
    if (u.substr(0, 7) == "http://") {
      scheme = "http";
    } else if (u.substr(0, 8) == "https://") {
      scheme = "https";
    } else {
      return Err(
          InvalidArgument("--public-url must start with http:// or https://: " + public_url));
    }
    std::string_view host = u.substr(scheme.size() + 3);
    if (!ValidHost(host)) {
      return Err(
          InvalidArgument("--public-url must be SCHEME://HOST[:PORT] with no path, query "
                          "or credentials: " +
                          public_url));
    }
    p.fixed_ = std::string(u);
  }
  for (const std::string& t : trusted_proxies) {
    std::string_view s = Trim(t);
    unsigned prefix = 0;
    const size_t slash = s.find('/');
    std::string_view addr = slash == std::string_view::npos ? s : s.substr(0, slash);
    auto a = ParseAddress(addr);
    if (!a) return Err(InvalidArgument("--trusted-proxy: not an IP address or network: " + t));
    const unsigned max = a->is_v4() ? 32 : 128;
    prefix = max;
    if (slash != std::string_view::npos) {
      std::string_view ps = s.substr(slash + 1);
      auto [end, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), prefix);
      if (ps.empty() || ec != std::errc() || end != ps.data() + ps.size() || prefix > max) {
        return Err(InvalidArgument("--trusted-proxy: bad prefix length: " + t));
      }
    }
    p.proxies_.push_back(Network{*a, prefix});
  }
  return p;
}

bool PublicUrl::Trusted(std::string_view remote) const {
  if (proxies_.empty()) return false;
  auto a = PeerAddress(remote);
  if (!a) return false;
  for (const Network& n : proxies_) {
    if (InNetwork(*a, n.base, n.prefix)) return true;
  }
  return false;
}

std::string PublicUrl::BaseFor(const Exchange& ex) const {
  if (!fixed_.empty()) return fixed_;
  std::string_view scheme = tls_ ? "https" : "http";
  std::string_view host = Trim(ex.header(http::field::host));
  if (Trusted(ex.remote())) {
    std::string_view proto = FirstOf(ex.header("X-Forwarded-Proto"));
    if (proto == "http" || proto == "https") scheme = proto;
    std::string_view fwd_host = FirstOf(ex.header("X-Forwarded-Host"));
    if (ValidHost(fwd_host)) host = fwd_host;
  }
  if (!ValidHost(host)) return std::string();
  std::string out;
  out.reserve(scheme.size() + 3 + host.size());
  out.append(scheme).append("://").append(host);
  return out;
}

std::string PublicUrl::Absolute(const Exchange& ex, std::string_view path) const {
  std::string out = BaseFor(ex);
  out.append(path);
  return out;
}

}  // namespace wharf
