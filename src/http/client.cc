#include "http/client.h"

#include <algorithm>
#include <limits>

#include "common/checksum.h"
#include "http/cluster_auth.h"

namespace wharf {

struct ClientCall::Conn {
  explicit Conn(asio::any_io_executor ex) : stream(ex) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::buffer_body>> parser;
  // A Content-Length body is read by ReadSome straight into the caller's buffer (Beast would
  // read it into `buffer` first and copy it out): the bytes of it still to come.
  std::optional<uint64_t> direct_left;
  bool reused = false;
  bool broken = false;
};

namespace {
bool Unsafe(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

std::string_view FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}
}  // namespace

Result<std::string> FormatRequestHead(http::verb method, std::string_view target,
                                      std::string_view host, const HeaderList& headers,
                                      std::optional<uint64_t> content_length) {
  if (Unsafe(target) || target.empty() || target[0] != '/') {
    return Err(InvalidArgument("bad request target"));
  }
  std::string head(http::to_string(method));
  head += ' ';
  head += target;
  head += " HTTP/1.1\r\nHost: ";
  head += host;
  head += "\r\nUser-Agent: wharf\r\n";
  for (const auto& [k, v] : headers) {
    if (Unsafe(k) || Unsafe(v)) return Err(InvalidArgument("bad header"));
    head += k;
    head += ": ";
    head += v;
    head += "\r\n";
  }
  if (content_length) {
    head += "Content-Length: ";
    head += std::to_string(*content_length);
    head += "\r\n";
  }
  head += "\r\n";
  return head;
}

HttpClient::HttpClient(asio::any_io_executor ex, ClientOptions options)
    : ex_(ex), options_(options) {}
HttpClient::~HttpClient() = default;

awaitable<Result<std::unique_ptr<ClientCall::Conn>>> HttpClient::Connect(
    const std::string& host_port) {
  auto& pool = idle_[host_port];
  while (!pool.empty()) {
    auto conn = std::move(pool.back());
    pool.pop_back();
    if (conn->stream.socket().is_open()) {
      conn->reused = true;
      co_return conn;
    }
  }
  WHARF_CO_ASSIGN_OR_RETURN(auto hp, SplitHostPort(host_port));
  auto conn = std::make_unique<ClientCall::Conn>(ex_);
  tcp::resolver resolver(ex_);
  boost::system::error_code ec;
  auto results = co_await resolver.async_resolve(hp.first, std::to_string(hp.second),
                                                 asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Err(Unavailable("resolve " + host_port + ": " + ec.message()));
  conn->stream.expires_after(options_.connect_timeout);
  co_await conn->stream.async_connect(results, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Err(Unavailable("connect " + host_port + ": " + ec.message()));
  conn->stream.socket().set_option(tcp::no_delay(true), ec);
  co_return conn;
}

void HttpClient::ReturnToPool(const std::string& host_port,
                              std::unique_ptr<ClientCall::Conn> conn) {
  auto& pool = idle_[host_port];
  if (pool.size() >= options_.max_idle_per_host) return;
  conn->parser.reset();
  conn->direct_left.reset();
  conn->stream.expires_never();
  pool.push_back(std::move(conn));
}

awaitable<Result<std::unique_ptr<ClientCall>>> HttpClient::Open(
    std::string host_port, http::verb method, std::string target, HeaderList headers,
    std::optional<uint64_t> content_length) {
  if (Unsafe(target) || target.empty() || target[0] != '/') {
    co_return Err(InvalidArgument("bad request target"));
  }
  if (options_.cluster_key) {
    const std::string_view checksum = FindHeader(headers, kChecksumHeader);
    if (content_length.value_or(0) > 0 && checksum.empty()) {
      co_return Err(InvalidArgument("a signed request with a body needs X-Wharf-Checksum"));
    }
    HeaderList proof = SignRequest(*options_.cluster_key, http::to_string(method), host_port,
                                   target, checksum, UnixMillisNow());
    headers.insert(headers.end(), proof.begin(), proof.end());
  }
  WHARF_CO_ASSIGN_OR_RETURN(std::string head,
                            FormatRequestHead(method, target, host_port, headers, content_length));
  WHARF_CO_ASSIGN_OR_RETURN(auto conn, co_await Connect(host_port));
  boost::system::error_code ec;
  conn->stream.expires_after(options_.io_timeout);
  co_await asio::async_write(conn->stream, asio::buffer(head),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    bool reused = conn->reused;
    if (reused) idle_[host_port].clear();
    co_return Err(Unavailable(std::string(reused ? "stale " : "") + "write " + host_port + ": " +
                              ec.message()));
  }
  co_return std::unique_ptr<ClientCall>(
      new ClientCall(this, host_port, std::move(conn), method == http::verb::head));
}

ClientCall::ClientCall(HttpClient* client, std::string host_port, std::unique_ptr<Conn> conn,
                       bool head)
    : client_(client),
      host_port_(std::move(host_port)),
      conn_(std::move(conn)),
      head_request_(head) {}

ClientCall::~ClientCall() {
  if (conn_ && !conn_->broken && body_done_ && conn_->parser && conn_->parser->keep_alive()) {
    client_->ReturnToPool(host_port_, std::move(conn_));
  }
}

awaitable<Status> ClientCall::WriteBody(const void* data, size_t n) {
  // io_timeout is a progress deadline, not one for the whole body: each piece gets it anew, so
  // a large body to a slow but moving peer goes through while a stalled peer fails within it.
  constexpr size_t kPiece = 1u << 20;
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const size_t piece = std::min(n, kPiece);
    boost::system::error_code ec;
    conn_->stream.expires_after(client_->options().io_timeout);
    co_await asio::async_write(conn_->stream, asio::buffer(p, piece),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      conn_->broken = true;
      co_return Unavailable("write " + host_port_ + ": " + ec.message());
    }
    p += piece;
    n -= piece;
  }
  co_return Status::Ok();
}

awaitable<Status> ClientCall::FinishRequest() {
  conn_->parser.emplace();
  conn_->parser->body_limit(
      std::numeric_limits<std::uint64_t>::max());  // boost::none is broken in 1.74
  if (head_request_) conn_->parser->skip(true);
  boost::system::error_code ec;
  conn_->stream.expires_after(client_->options().io_timeout);
  co_await http::async_read_header(conn_->stream, conn_->buffer, *conn_->parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    conn_->broken = true;
    co_return Unavailable(std::string(conn_->reused ? "stale " : "") + "read response from " +
                          host_port_ + ": " + ec.message());
  }
  status_ = conn_->parser->get().result_int();
  body_done_ = conn_->parser->is_done();
  conn_->direct_left.reset();
  if (!body_done_ && !conn_->parser->chunked() && conn_->parser->content_length()) {
    conn_->direct_left = *conn_->parser->content_length();
  }
  co_return Status::Ok();
}

const http::fields& ClientCall::headers() const { return conn_->parser->get().base(); }

std::string_view ClientCall::header(std::string_view name) const {
  auto& h = conn_->parser->get().base();
  auto it = h.find(name);
  return it == h.end() ? std::string_view() : it->value();
}

std::optional<uint64_t> ClientCall::content_length() const {
  auto len = conn_->parser->content_length();
  if (len) return *len;
  return std::nullopt;
}

awaitable<Result<size_t>> ClientCall::ReadSome(void* buf, size_t n) {
  if (conn_->direct_left) co_return co_await ReadDirect(buf, n);
  auto& p = *conn_->parser;
  // Beast reads as much as the buffer has room for: make that a lot, not ~1 KiB.
  if (conn_->buffer.capacity() < (256u << 10)) conn_->buffer.reserve(256u << 10);
  while (!p.is_done()) {
    p.get().body().data = buf;
    p.get().body().size = n;
    boost::system::error_code ec;
    conn_->stream.expires_after(client_->options().io_timeout);
    co_await http::async_read(conn_->stream, conn_->buffer, p,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    size_t got = n - p.get().body().size;
    if (ec) {
      conn_->broken = true;
      co_return Err(Unavailable("read body from " + host_port_ + ": " + ec.message()));
    }
    if (got > 0) {
      body_done_ = p.is_done();
      co_return got;
    }
  }
  body_done_ = true;
  co_return size_t{0};
}

awaitable<Result<size_t>> ClientCall::ReadDirect(void* buf, size_t n) {
  uint64_t& left = *conn_->direct_left;
  if (left == 0 || n == 0) {
    body_done_ = left == 0;
    co_return size_t{0};
  }
  n = std::min<uint64_t>(n, left);
  // What Beast read past the head first, then the socket (never past the body's end, so the
  // connection can carry the next response).
  size_t got = 0;
  if (conn_->buffer.size() > 0) {
    got = asio::buffer_copy(asio::buffer(buf, n), conn_->buffer.data());
    conn_->buffer.consume(got);
  } else {
    boost::system::error_code ec;
    conn_->stream.expires_after(client_->options().io_timeout);
    got = co_await conn_->stream.async_read_some(asio::buffer(buf, n),
                                                 asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      conn_->broken = true;
      co_return Err(Unavailable("read body from " + host_port_ + ": " + ec.message()));
    }
  }
  left -= got;
  body_done_ = left == 0;
  co_return got;
}

awaitable<Result<std::string>> ClientCall::ReadAll(size_t limit) {
  std::string out;
  if (auto len = content_length()) {
    if (*len > limit) co_return Err(TooLarge("response body over the limit"));
    out.resize(*len);
    size_t off = 0;
    while (off < *len) {
      WHARF_CO_ASSIGN_OR_RETURN(size_t n, co_await ReadSome(out.data() + off, *len - off));
      if (n == 0) break;
      off += n;
    }
    out.resize(off);
    if (!body_done_) {
      char c;
      WHARF_CO_ASSIGN_OR_RETURN(size_t n, co_await ReadSome(&c, 1));
      (void)n;
    }
    co_return out;
  }
  char buf[65536];
  for (;;) {
    WHARF_CO_ASSIGN_OR_RETURN(size_t n, co_await ReadSome(buf, sizeof buf));
    if (n == 0) break;
    if (out.size() + n > limit) co_return Err(TooLarge("response body over the limit"));
    out.append(buf, n);
  }
  co_return out;
}

awaitable<Result<ClientResponse>> HttpClient::RequestOnce(std::string host_port, http::verb method,
                                                          std::string target, std::string_view body,
                                                          HeaderList headers, size_t max_body,
                                                          bool* stale) {
  bool has_body = !body.empty() || method == http::verb::put || method == http::verb::post ||
                  method == http::verb::patch;
  if (options_.cluster_key && !body.empty() && FindHeader(headers, kChecksumHeader).empty()) {
    headers.emplace_back(std::string(kChecksumHeader), FormatChecksum(ChecksumOf(body)));
  }
  auto opened = co_await Open(host_port, method, target, std::move(headers),
                              has_body ? std::optional<uint64_t>(body.size()) : std::nullopt);
  if (!opened) {
    *stale = opened.error().message().rfind("stale ", 0) == 0;
    co_return Err(opened.error());
  }
  auto call = std::move(*opened);
  bool reused = call->conn_->reused;
  Status st = co_await call->WriteBody(body.data(), body.size());
  if (st.ok()) st = co_await call->FinishRequest();
  if (!st.ok()) {
    *stale = reused;
    if (reused) idle_[host_port].clear();
    co_return Err(st);
  }
  ClientResponse resp;
  resp.status = call->status();
  resp.headers = call->headers();
  WHARF_CO_ASSIGN_OR_RETURN(resp.body, co_await call->ReadAll(max_body));
  co_return resp;
}

awaitable<Result<ClientResponse>> HttpClient::Request(std::string host_port, http::verb method,
                                                      std::string target, std::string_view body,
                                                      HeaderList headers, size_t max_body) {
  bool stale = false;
  auto r = co_await RequestOnce(host_port, method, target, body, headers, max_body, &stale);
  if (!r && stale) {
    r = co_await RequestOnce(host_port, method, target, body, headers, max_body, &stale);
  }
  co_return r;
}

}  // namespace wharf
