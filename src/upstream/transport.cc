#include "upstream/transport.h"

#include <algorithm>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <limits>

#include "http/client.h"

namespace wharf::upstream {

std::string Endpoint::Key() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

std::string Endpoint::HostHeader() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + host + "]" : host;
  if ((tls && port == 443) || (!tls && port == 80)) return h;
  return h + ":" + std::to_string(port);
}

Result<Endpoint> ParseUrl(std::string_view url, std::string* rest) {
  Endpoint ep;
  std::string_view s = url;
  if (s.substr(0, 8) == "https://") {
    ep.tls = true;
    s.remove_prefix(8);
  } else if (s.substr(0, 7) == "http://") {
    s.remove_prefix(7);
  } else {
    return Err(InvalidArgument("URL must start with http:// or https://: " + std::string(url)));
  }
  size_t end = s.find_first_of("/?#");
  std::string_view authority = s.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : s.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return Err(InvalidArgument("URL must not carry credentials: use the user/password flags"));
  }
  ep.port = ep.tls ? 443 : 80;
  std::string_view host = authority;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Err(InvalidArgument("bad IPv6 host in URL"));
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Err(InvalidArgument("bad URL authority"));
      authority = after;  // ":port"
    } else {
      authority = {};
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      authority = authority.substr(colon);
    } else {
      authority = {};
    }
  }
  if (!authority.empty()) {  // ":port"
    std::string_view port = authority.substr(1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Err(InvalidArgument("bad port in URL: " + std::string(url)));
    }
    unsigned long p = std::stoul(std::string(port));
    if (p == 0 || p > 65535) return Err(InvalidArgument("bad port in URL: " + std::string(url)));
    ep.port = static_cast<uint16_t>(p);
  }
  if (host.empty()) return Err(InvalidArgument("URL has no host: " + std::string(url)));
  ep.host = std::string(host);
  if (size_t hash = tail.find('#'); hash != std::string_view::npos) tail = tail.substr(0, hash);
  if (rest) *rest = std::string(tail);
  return ep;
}

struct Call::Conn {
  explicit Conn(asio::any_io_executor ex) : plain(ex) {}
  beast::tcp_stream plain;  // unused once `tls` wraps the socket
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::buffer_body>> parser;
  bool reused = false;
  bool broken = false;

  beast::tcp_stream& lowest() { return tls ? tls->next_layer() : plain; }
  bool open() { return lowest().socket().is_open(); }

  awaitable<boost::system::error_code> Write(asio::const_buffer b) {
    boost::system::error_code ec;
    if (tls) {
      co_await asio::async_write(*tls, b, asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await asio::async_write(plain, b, asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return ec;
  }
  awaitable<boost::system::error_code> ReadHeader() {
    boost::system::error_code ec;
    if (tls) {
      co_await http::async_read_header(*tls, buffer, *parser,
                                       asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await http::async_read_header(plain, buffer, *parser,
                                       asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return ec;
  }
  awaitable<boost::system::error_code> ReadBody() {
    boost::system::error_code ec;
    if (tls) {
      co_await http::async_read(*tls, buffer, *parser,
                                asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await http::async_read(plain, buffer, *parser,
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    co_return ec;
  }
};

Result<std::unique_ptr<Transport>> Transport::Create(asio::any_io_executor ex,
                                                     TransportOptions options) {
  std::unique_ptr<Transport> t(new Transport(ex, options));
  t->ssl_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  t->ssl_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
  t->ssl_->set_verify_mode(asio::ssl::verify_peer);
  if (options.ca_file.empty()) {
    t->ssl_->set_default_verify_paths(ec);
    if (ec) return Err(InvalidArgument("cannot load the system CAs: " + ec.message()));
  } else {
    t->ssl_->load_verify_file(options.ca_file, ec);
    if (ec) {
      return Err(InvalidArgument("cannot load CA file " + options.ca_file + ": " + ec.message()));
    }
  }
  return t;
}

Transport::Transport(asio::any_io_executor ex, TransportOptions options)
    : ex_(ex), options_(std::move(options)) {}

Transport::~Transport() = default;

awaitable<Result<std::unique_ptr<Call::Conn>>> Transport::Connect(const Endpoint& ep) {
  auto& pool = idle_[ep.Key()];
  while (!pool.empty()) {
    auto conn = std::move(pool.back());
    pool.pop_back();
    if (conn->open()) {
      conn->reused = true;
      co_return conn;
    }
  }
  auto conn = std::make_unique<Call::Conn>(ex_);
  tcp::resolver resolver(ex_);
  boost::system::error_code ec;
  auto results = co_await resolver.async_resolve(ep.host, std::to_string(ep.port),
                                                 asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Err(Unavailable("resolve " + ep.Key() + ": " + ec.message()));
  conn->plain.expires_after(options_.connect_timeout);
  co_await conn->plain.async_connect(results, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Err(Unavailable("connect " + ep.Key() + ": " + ec.message()));
  conn->plain.socket().set_option(tcp::no_delay(true), ec);
  if (ep.tls) {
    conn->tls.emplace(std::move(conn->plain), *ssl_);
    if (!SSL_set_tlsext_host_name(conn->tls->native_handle(), ep.host.c_str())) {
      co_return Err(Unavailable("TLS: cannot set the server name " + ep.host));
    }
    conn->tls->set_verify_callback(asio::ssl::host_name_verification(ep.host));
    conn->tls->next_layer().expires_after(options_.connect_timeout);
    co_await conn->tls->async_handshake(asio::ssl::stream_base::client,
                                        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Err(Unavailable("TLS handshake with " + ep.Key() + ": " + ec.message()));
  }
  ++opened_;
  co_return conn;
}

void Transport::ReturnToPool(const Endpoint& ep, std::unique_ptr<Call::Conn> conn) {
  auto& pool = idle_[ep.Key()];
  if (pool.size() >= options_.max_idle_per_endpoint) return;
  conn->parser.reset();
  conn->lowest().expires_never();
  pool.push_back(std::move(conn));
}

awaitable<Result<std::unique_ptr<Call>>> Transport::Open(Endpoint ep, http::verb method,
                                                         std::string target, HeaderList headers,
                                                         std::optional<uint64_t> content_length) {
  WHARF_CO_ASSIGN_OR_RETURN(std::string head, FormatRequestHead(method, target, ep.HostHeader(),
                                                                headers, content_length));
  WHARF_CO_ASSIGN_OR_RETURN(auto conn, co_await Connect(ep));
  conn->lowest().expires_after(options_.io_timeout);
  boost::system::error_code ec = co_await conn->Write(asio::buffer(head));
  if (ec) {
    if (conn->reused) idle_[ep.Key()].clear();
    co_return Err(Unavailable(std::string(conn->reused ? "stale connection: " : "") + "write " +
                              ep.Key() + ": " + ec.message()));
  }
  co_return std::unique_ptr<Call>(
      new Call(this, std::move(ep), std::move(conn), method == http::verb::head));
}

Call::Call(Transport* t, Endpoint ep, std::unique_ptr<Conn> conn, bool head)
    : transport_(t), endpoint_(std::move(ep)), conn_(std::move(conn)), head_(head) {}

Call::~Call() {
  if (conn_ && !conn_->broken && body_done_ && conn_->parser && conn_->parser->keep_alive()) {
    transport_->ReturnToPool(endpoint_, std::move(conn_));
  }
}

bool Call::reused() const { return conn_->reused; }

awaitable<Status> Call::WriteBody(const void* data, size_t n) {
  constexpr size_t kPiece = 1u << 20;
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const size_t piece = std::min(n, kPiece);
    conn_->lowest().expires_after(transport_->options().io_timeout);
    boost::system::error_code ec = co_await conn_->Write(asio::buffer(p, piece));
    if (ec) {
      conn_->broken = true;
      co_return Unavailable("write " + endpoint_.Key() + ": " + ec.message());
    }
    p += piece;
    n -= piece;
  }
  co_return Status::Ok();
}

awaitable<Status> Call::FinishRequest() {
  conn_->parser.emplace();
  conn_->parser->body_limit(std::numeric_limits<std::uint64_t>::max());
  if (head_) conn_->parser->skip(true);
  conn_->lowest().expires_after(transport_->options().io_timeout);
  boost::system::error_code ec = co_await conn_->ReadHeader();
  if (ec) {
    conn_->broken = true;
    co_return Unavailable(std::string(conn_->reused ? "stale connection: " : "") +
                          "read response from " + endpoint_.Key() + ": " + ec.message());
  }
  status_ = conn_->parser->get().result_int();
  body_done_ = conn_->parser->is_done();
  co_return Status::Ok();
}

std::string_view Call::header(std::string_view name) const {
  if (!conn_ || !conn_->parser) return {};
  auto& h = conn_->parser->get().base();
  auto it = h.find(name);
  return it == h.end() ? std::string_view() : it->value();
}

std::optional<uint64_t> Call::content_length() const {
  auto len = conn_->parser->content_length();
  if (len) return *len;
  return std::nullopt;
}

awaitable<Result<size_t>> Call::ReadSome(void* buf, size_t n) {
  auto& p = *conn_->parser;
  if (conn_->buffer.capacity() < (256u << 10)) conn_->buffer.reserve(256u << 10);
  while (!p.is_done()) {
    p.get().body().data = buf;
    p.get().body().size = n;
    conn_->lowest().expires_after(transport_->options().io_timeout);
    boost::system::error_code ec = co_await conn_->ReadBody();
    if (ec == http::error::need_buffer) ec = {};
    size_t got = n - p.get().body().size;
    if (ec) {
      conn_->broken = true;
      co_return Err(Unavailable("read body from " + endpoint_.Key() + ": " + ec.message()));
    }
    if (got > 0) {
      body_done_ = p.is_done();
      co_return got;
    }
  }
  body_done_ = true;
  co_return size_t{0};
}

awaitable<Result<std::string>> Call::ReadAll(size_t limit) {
  std::string out;
  if (auto len = content_length(); len && *len > limit) {
    co_return Err(TooLarge("response body over the limit"));
  }
  char buf[16384];
  for (;;) {
    WHARF_CO_ASSIGN_OR_RETURN(size_t n, co_await ReadSome(buf, sizeof buf));
    if (n == 0) break;
    if (out.size() + n > limit) co_return Err(TooLarge("response body over the limit"));
    out.append(buf, n);
  }
  co_return out;
}

awaitable<void> Call::Drain(size_t limit) {
  if (auto len = content_length(); len && *len > limit) {
    conn_->broken = true;
    co_return;
  }
  auto all = co_await ReadAll(limit);
  if (!all) conn_->broken = true;
}

}  // namespace wharf::upstream
