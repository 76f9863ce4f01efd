#include "http/server.h"

#include <sys/sendfile.h>

#include <atomic>
#include <cerrno>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "common/async.h"
#include "common/buffer_pool.h"
#include "common/checksum.h"
#include "common/fs.h"
#include "common/metrics.h"
#include "http/tls.h"

namespace wharf {
namespace {

// Beast sizes each socket read by the free capacity of the connection's buffer, which after
// a header is about a kilobyte: reserve room so that bodies arrive in large reads.
constexpr size_t kBodyReadBuffer = 256 * 1024;
// Chunk extensions and trailer fields a chunked request body may carry, in total. wharf uses
// neither; a client that sends more is refused (a 64 MiB extension must not cost 64 MiB).
constexpr size_t kMaxChunkMetaBytes = 4096;

}  // namespace

struct Server::State {
  // Counts a new connection from `ip`; false when the address is at its limit.
  bool Admit(const std::string& ip) {
    std::lock_guard lock(per_address_mu);
    size_t& n = per_address[ip];
    if (options.max_connections_per_address > 0 && n >= options.max_connections_per_address) {
      if (n == 0) per_address.erase(ip);
      return false;
    }
    ++n;
    return true;
  }
  void Release(const std::string& ip) {
    std::lock_guard lock(per_address_mu);
    auto it = per_address.find(ip);
    if (it != per_address.end() && --it->second == 0) per_address.erase(it);
  }
  asio::any_io_executor ex;
  ServerOptions options;
  Handler handler;
  tcp::acceptor acceptor;
  Logger log;
  std::atomic<size_t> active{0};
  std::atomic<bool> stopped{false};
  std::mutex per_address_mu;
  std::unordered_map<std::string, size_t> per_address;  // open connections by remote IP
  CounterMetric* errors;
  CounterMetric* head_timeouts;
  CounterMetric* slow_bodies;
  CounterMetric* bad_framing;
  CounterMetric* tls_failures;
  CounterMetric* plain_on_tls;
  GaugeMetric* connections;
  HistogramMetric* latency;
  State(asio::any_io_executor e, ServerOptions o, Handler h)
      : ex(e),
        options(std::move(o)),
        handler(std::move(h)),
        acceptor(e),
        log(GetLogger(options.component)) {
    const std::string prefix = "wharf_" + options.component + "_http_";
    const Labels& l = options.metric_labels;
    errors = &Metrics().Counter(prefix + "handler_errors_total",
                                "Requests whose handler threw (a bug) or did not respond.", l);
    bad_framing = &Metrics().Counter(
        prefix + "bad_framing_total",
        "Requests refused for their framing: a transfer coding other than chunked alone, "
        "Transfer-Encoding with Content-Length, oversized chunk extensions or trailers.",
        l);
    connections = &Metrics().Gauge(prefix + "connections", "Open HTTP connections.", l);
    tls_failures = &Metrics().Counter(prefix + "tls_handshake_failures_total",
                                      "TLS handshakes that failed (no or a bad client "
                                      "certificate, no shared protocol version or cipher...).",
                                      l);
    plain_on_tls = &Metrics().Counter(prefix + "plaintext_on_tls_total",
                                      "Connections that spoke plain HTTP to the TLS port.", l);
    head_timeouts =
        &Metrics().Counter(prefix + "head_timeouts_total",
                           "Connections closed because a request head was too slow.", l);
    slow_bodies = &Metrics().Counter(
        prefix + "slow_bodies_total",
        "Connections closed because a request body arrived slower than the minimum rate.", l);
    latency = &Metrics().Histogram(prefix + "request_seconds", "Time to serve a request.", l);
  }
};

class Connection {
 public:
  Connection(std::shared_ptr<Server::State> st, tcp::socket sock)
      : st_(std::move(st)),
        stream_(std::move(sock)),
        // Bounds what one chunk-size line or trailer section can make the buffer hold.
        buffer_(kBodyReadBuffer + st_->options.max_header_bytes) {
    on_chunk_header_ = [this](std::uint64_t, std::string_view ext, boost::system::error_code& ec) {
      chunk_meta_bytes_ += ext.size();
      if (chunk_meta_bytes_ > kMaxChunkMetaBytes) ec = http::error::bad_chunk_extension;
    };
    boost::system::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }

  awaitable<void> Run();

  std::shared_ptr<Server::State> st_;
  beast::tcp_stream stream_;  // the socket and its timeouts, under TLS too
  // Under TLS: the context the connection started with (a reload does not touch it) and the
  // TLS stream over stream_.
  std::shared_ptr<asio::ssl::context> tls_ctx_;
  std::unique_ptr<asio::ssl::stream<beast::tcp_stream&>> tls_;
  std::string tls_client_subject_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  std::string remote_;
  bool reserved_ = false;  // holds one of the reserved (ops only) slots
  bool broken_ = false;    // the stream can no longer be used for another request
  // Chunk extension and trailer bytes of the current request (bounded by kMaxChunkMetaBytes).
  size_t chunk_meta_bytes_ = 0;
  size_t head_field_bytes_ = 0;  // of the request head, to tell the trailers' size
  std::function<void(std::uint64_t, std::string_view, boost::system::error_code&)>
      on_chunk_header_;  // the parser keeps a reference
  // The large body read buffer's share of ServerOptions::memory_budget, while held.
  MemoryGrant read_grant_;
  // The minimum body rate (ReadBody): how long the current request's body may still wait for
  // bytes, and the body bytes it brought.
  std::chrono::steady_clock::duration body_allowance_{};
  uint64_t body_bytes_ = 0;
  bool rate_deadline_ = false;  // the armed timeout is the allowance's end, not io_timeout

  void Arm(bool idle) {
    stream_.expires_after(idle ? st_->options.idle_timeout : st_->options.io_timeout);
  }
  // Gives the body reads a large buffer (fewer, larger reads), from the budget if there is one.
  void ReserveBodyBuffer() {
    if (buffer_.capacity() >= kBodyReadBuffer) return;
    if (MemoryBudget* b = st_->options.memory_budget) {
      // At most half the budget: a connection may hold this while it waits for a chunk
      // buffer, so these buffers must never take what those waits need.
      if (!read_grant_) read_grant_ = b->TryTakeBelow(kBodyReadBuffer, b->limit() / 2);
      if (!read_grant_) return;  // spent: the small buffer does
    }
    buffer_.reserve(kBodyReadBuffer);
  }
  // Between requests: an idle connection does not pin a large body buffer.
  void ShrinkBodyBuffer() {
    if (buffer_.size() == 0 && buffer_.capacity() > 64 * 1024) buffer_.shrink_to_fit();
    if (buffer_.capacity() < kBodyReadBuffer) read_grant_.Release();
  }
  // One read of the request body through the parser into its body buffer, under io_timeout and
  // the minimum body rate. Sets *slow (and logs and counts it) when the body is too slow: the
  // connection is then to be closed.
  awaitable<boost::system::error_code> ReadBody(bool* slow);
  // The awaitable of `op(stream)`, on the TLS stream or the plain one (`op` is a generic
  // lambda returning one Asio operation's awaitable; callers name it before co_await).
  template <typename Op>
  auto Io(Op& op) {
    if (tls_) return op(*tls_);
    return op(stream_);
  }
  // TLS: reads the first bytes, refuses plain HTTP with a 400, handshakes. false: close.
  awaitable<bool> StartTls();
  awaitable<Status> Write(std::vector<asio::const_buffer> bufs) {
    boost::system::error_code ec;
    Arm(false);
    auto write = [&](auto& s) {
      return asio::async_write(s, bufs, asio::redirect_error(asio::use_awaitable, ec));
    };
    co_await Io(write);
    if (ec) {
      broken_ = true;
      co_return Cancelled("write to client: " + ec.message());
    }
    co_return Status::Ok();
  }
  // Reads and discards what is left of the request body (bounded), so keep-alive can go on.
  awaitable<bool> Drain();
  // Once the body has ended: kInvalidArgument when its trailer fields (which Beast adds to
  // the request's fields) exceed what is left of kMaxChunkMetaBytes.
  Status CheckTrailers() {
    if (!parser_->chunked()) return Status::Ok();
    size_t fields = FieldBytes(parser_->get());
    size_t trailers = fields > head_field_bytes_ ? fields - head_field_bytes_ : 0;
    if (chunk_meta_bytes_ + trailers <= kMaxChunkMetaBytes) return Status::Ok();
    st_->bad_framing->Inc();
    broken_ = true;
    return InvalidArgument("chunk extensions and trailers over " +
                           std::to_string(kMaxChunkMetaBytes) + " bytes");
  }
  static size_t FieldBytes(const http::fields& f) {
    size_t n = 0;
    for (const auto& field : f) n += field.name_string().size() + field.value().size() + 4;
    return n;
  }
  // Answers 400 to a request head we refuse, and the connection closes.
  awaitable<void> RefuseHead() {
    std::string_view msg =
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    boost::system::error_code ec;
    Arm(false);
    auto write = [&](auto& s) {
      return asio::async_write(s, asio::buffer(msg), asio::redirect_error(asio::use_awaitable, ec));
    };
    co_await Io(write);
  }
  awaitable<void> Serve(Exchange& ex);
  // Runs the exchange's end-of-request observers; one that throws is a bug: logged, counted.
  void RunAtEnd(const Exchange& ex) {
    for (auto& fn : ex.at_end_) {
      try {
        fn(ex);
      } catch (const std::exception& e) {
        st_->errors->Inc();
        st_->log->error("end-of-request observer threw request_id={} err={}", ex.request_id(),
                        e.what());
      }
    }
  }
};

bool SaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) return false;
  static constexpr std::string_view kTchar = "!#$%&'*+-.^_`|~";
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && kTchar.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

namespace {

// 16 hex digits, unique within the process without a syscall per request (a getrandom per
// request was ~3% of a blob HEAD's CPU): a random start per thread, then splitmix64 of a
// counter, a bijection, so one thread never repeats an id. Request ids join log lines; they
// are not secrets.
std::string NewRequestId() {
  thread_local uint64_t next = [] {
    uint64_t seed = 0;
    const std::string r = RandomHex(8);
    for (char c : r) seed = seed * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    return seed;
  }();
  uint64_t z = (next += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, z >>= 4) id[i] = kHex[z & 15];
  return id;
}

std::string MakeRequestId(std::string_view given) {
  if (SaneRequestId(given)) return std::string(given);
  return NewRequestId();
}

// Request framing (RFC 9112 section 6). The one transfer coding taken is "chunked", alone:
// any other coding, a list, several Transfer-Encoding fields, or Transfer-Encoding with
// Content-Length is refused. Beast would frame such a body by Content-Length or as empty,
// while a proxy in front may frame it otherwise: the bytes one of them takes for a body, the
// other runs as the next request (request smuggling). kInvalidArgument.
Status CheckFraming(const http::fields& head) {
  size_t te_fields = 0;
  std::string_view te;
  for (const auto& f : head) {
    if (f.name() == http::field::transfer_encoding) {
      ++te_fields;
      te = f.value();
    }
  }
  if (te_fields == 0) return Status::Ok();
  if (te_fields > 1) return InvalidArgument("more than one Transfer-Encoding field");
  if (head.find(http::field::content_length) != head.end()) {
    return InvalidArgument("Transfer-Encoding together with Content-Length");
  }
  while (!te.empty() && (te.front() == ' ' || te.front() == '\t')) te.remove_prefix(1);
  while (!te.empty() && (te.back() == ' ' || te.back() == '\t')) te.remove_suffix(1);
  if (!beast::iequals(te, "chunked")) {
    return InvalidArgument("unsupported Transfer-Encoding '" + std::string(te) +
                           "': only chunked is accepted");
  }
  return Status::Ok();
}

void RecordRequest(const ServerOptions& options, std::string_view method, unsigned code) {
  // Cached per thread: avoids the registry lock on the hot path.
  thread_local std::map<std::pair<std::string, unsigned>, CounterMetric*> cache;
  std::string key(options.component);
  key += RenderLabels(options.metric_labels);
  key += ' ';
  key += method;
  auto& slot = cache[{key, code}];
  if (!slot) {
    Labels labels = options.metric_labels;
    labels.emplace_back("method", std::string(method));
    labels.emplace_back("code", std::to_string(code));
    slot = &Metrics().Counter("wharf_" + options.component + "_http_requests_total",
                              "HTTP requests served, by method and status code.", labels);
  }
  slot->Inc();
}

}  // namespace

std::optional<std::string> Exchange::query(std::string_view key) const {
  std::string_view q = query_;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    size_t eq = part.find('=');
    std::string k = PercentDecode(part.substr(0, eq));
    if (k == key) {
      return eq == std::string_view::npos ? std::string() : PercentDecode(part.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string_view Exchange::header(http::field f) const {
  // A walk of the few fields in arrival order comparing enums: Beast's find(field) looks the
  // name up in its set with a case-insensitive compare of every node on the way (800
  // instructions for an Authorization header, asked for on every request of a closed gateway).
  if (f == http::field::unknown) return {};  // (no name to match: use header(name))
  for (const auto& h : head_) {
    if (h.name() == f) return h.value();
  }
  return {};
}

std::string_view Exchange::header(std::string_view name) const {
  auto it = head_.find(name);
  return it == head_.end() ? std::string_view() : it->value();
}

std::optional<uint64_t> Exchange::content_length() const {
  auto len = conn_->parser_->content_length();
  if (len) return *len;
  return std::nullopt;
}

bool Exchange::chunked() const { return conn_->parser_->chunked(); }

bool Exchange::body_done() const { return conn_->parser_->is_done(); }

bool Exchange::on_reserved_slot() const { return conn_->reserved_; }

void Exchange::ExpectBodyChecksum(uint64_t xxh3) {
  expected_body_checksum_ = xxh3;
  body_checksum_ = std::make_shared<Checksummer>();
}

awaitable<Result<size_t>> Exchange::ReadSome(void* buf, size_t n) {
  auto& p = *conn_->parser_;
  conn_->ReserveBodyBuffer();
  if (!continue_sent_ && !p.is_done() && !responded_) {
    // A client that sent "Expect: 100-continue" waits for this before sending the body.
    continue_sent_ = true;
    if (beast::iequals(header(http::field::expect), "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      std::vector<asio::const_buffer> bufs{asio::buffer(kContinue)};
      Status st = co_await conn_->Write(std::move(bufs));
      if (!st.ok()) co_return Err(st);
    }
  }
  while (!p.is_done()) {
    p.get().body().data = buf;
    p.get().body().size = n;
    bool slow = false;
    boost::system::error_code ec = co_await conn_->ReadBody(&slow);
    size_t got = n - p.get().body().size;
    if (slow) {
      conn_->broken_ = true;
      body_too_slow_ = true;
      close_after_ = true;
      co_return Err(Cancelled("request body slower than the minimum rate"));
    }
    if (ec) {
      conn_->broken_ = true;
      if (ec == http::error::partial_message || ec == asio::error::eof ||
          ec == beast::error::timeout || ec == asio::error::connection_reset) {
        co_return Err(Cancelled("client went away mid-body: " + ec.message()));
      }
      if (ec == http::error::bad_chunk_extension || ec == http::error::buffer_overflow) {
        conn_->st_->bad_framing->Inc();
      }
      co_return Err(InvalidArgument("malformed request body: " + ec.message()));
    }
    if (got > 0 && body_checksum_) body_checksum_->Update(buf, got);
    if (p.is_done()) {
      WHARF_CO_RETURN_IF_ERROR(conn_->CheckTrailers());
      if (body_checksum_ && body_checksum_->Value() != expected_body_checksum_) {
        co_return Err(DigestMismatch("request body does not match its X-Wharf-Checksum"));
      }
    }
    if (got > 0) {
      context_.bytes_in += got;
      co_return got;
    }
  }
  co_return size_t{0};
}

awaitable<Result<std::string>> Exchange::ReadAll(size_t limit) {
  std::string out;
  if (auto len = content_length()) {
    if (*len > limit) co_return Err(TooLarge("request body over the limit"));
    out.reserve(*len);
  }
  char buf[65536];
  for (;;) {
    WHARF_CO_ASSIGN_OR_RETURN(size_t n, co_await ReadSome(buf, sizeof buf));
    if (n == 0) break;
    if (out.size() + n > limit) co_return Err(TooLarge("request body over the limit"));
    out.append(buf, n);
  }
  co_return out;
}

void Exchange::AddHeader(std::string name, std::string value) {
  extra_headers_.emplace_back(std::move(name), std::move(value));
}

void Exchange::RemoveHeader(std::string_view name) {
  std::erase_if(extra_headers_, [name](const auto& h) { return beast::iequals(h.first, name); });
}

awaitable<Status> Exchange::WriteHead(http::status status, uint64_t content_length,
                                      std::string_view content_type) {
  if (responded_) co_return Internal("response already started");
  responded_ = true;
  // A body cut for its rate: whatever error the handler made of it, the client was too slow.
  if (body_too_slow_ && static_cast<unsigned>(status) >= 400)
    status = http::status::request_timeout;
  status_ = static_cast<unsigned>(status);
  std::string head = "HTTP/1.1 ";
  head += std::to_string(status_);
  head += ' ';
  head += http::obsolete_reason(status);
  head += "\r\nServer: wharf\r\nX-Request-Id: ";
  head += context_.request_id;
  if (!content_type.empty() && status != http::status::no_content &&
      status != http::status::not_modified) {
    head += "\r\nContent-Type: ";
    head += content_type;
  }
  if (status != http::status::no_content && status != http::status::not_modified) {
    head += "\r\nContent-Length: ";
    head += std::to_string(content_length);
  }
  for (auto& [k, v] : extra_headers_) {
    head += "\r\n";
    head += k;
    head += ": ";
    head += v;
  }
  bool keep = !close_after_ && keep_alive_;
  head += keep ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  if (!keep) close_after_ = true;
  body_remaining_ = method() == http::verb::head ? 0 : content_length;
  if (status == http::status::no_content || status == http::status::not_modified) {
    body_remaining_ = 0;
  }
  head_bytes_.swap(head);
  co_return Status::Ok();
}

awaitable<Status> Exchange::Respond(http::status status, std::string body,
                                    std::string_view content_type) {
  WHARF_CO_RETURN_IF_ERROR(co_await WriteHead(status, body.size(), content_type));
  std::vector<asio::const_buffer> bufs{asio::buffer(head_bytes_)};
  if (body_remaining_ > 0) {
    bufs.push_back(asio::buffer(body));
    context_.bytes_out += body.size();
  }
  body_remaining_ = 0;
  Status st = co_await conn_->Write(std::move(bufs));
  head_bytes_.clear();
  co_return st;
}

awaitable<Status> Exchange::BeginResponse(http::status status, uint64_t content_length,
                                          std::string_view content_type) {
  WHARF_CO_RETURN_IF_ERROR(co_await WriteHead(status, content_length, content_type));
  // The head goes out with the first body bytes (one syscall for small responses).
  if (body_remaining_ == 0) {
    std::vector<asio::const_buffer> bufs{asio::buffer(head_bytes_)};
    Status st = co_await conn_->Write(std::move(bufs));
    head_bytes_.clear();
    co_return st;
  }
  co_return Status::Ok();
}

awaitable<Status> Exchange::WriteBody(const void* data, size_t n) {
  if (method() == http::verb::head || n == 0) co_return Status::Ok();
  if (!responded_) co_return Internal("WriteBody before BeginResponse");
  if (n > body_remaining_) co_return Internal("response body longer than its Content-Length");
  std::vector<asio::const_buffer> bufs;
  if (!head_bytes_.empty()) bufs.push_back(asio::buffer(head_bytes_));
  bufs.push_back(asio::buffer(data, n));
  Status st = co_await conn_->Write(std::move(bufs));
  head_bytes_.clear();
  body_remaining_ -= n;
  if (st.ok()) context_.bytes_out += n;
  co_return st;
}

awaitable<Status> Exchange::SendFile(int fd, uint64_t offset, uint64_t len) {
  if (method() == http::verb::head || len == 0) co_return Status::Ok();
  if (len > body_remaining_) co_return Internal("response body longer than its Content-Length");
  if (!head_bytes_.empty()) {
    std::vector<asio::const_buffer> bufs{asio::buffer(head_bytes_)};
    WHARF_CO_RETURN_IF_ERROR(co_await conn_->Write(std::move(bufs)));
    head_bytes_.clear();
  }
  if (conn_->tls_) co_return co_await CopyFile(fd, offset, len);
  auto& sock = conn_->stream_.socket();
  boost::system::error_code ec;
  sock.native_non_blocking(true, ec);
  off_t off = static_cast<off_t>(offset);
  uint64_t left = len;
  while (left > 0) {
    ssize_t n = ::sendfile(sock.native_handle(), fd, &off, std::min<uint64_t>(left, 1 << 30));
    if (n > 0) {
      left -= static_cast<uint64_t>(n);
      body_remaining_ -= static_cast<uint64_t>(n);
      context_.bytes_out += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The stream's timeout does not cover a raw wait: a timer cancels it instead, so a
      // client that stops reading cannot hold the connection forever.
      asio::steady_timer timeout(sock.get_executor(), conn_->st_->options.io_timeout);
      tcp::socket* sp = &sock;
      timeout.async_wait([sp](const boost::system::error_code& e) {
        if (!e) sp->cancel();
      });
      co_await sock.async_wait(tcp::socket::wait_write,
                               asio::redirect_error(asio::use_awaitable, ec));
      timeout.cancel();
      if (ec) break;
      continue;
    }
    conn_->broken_ = true;
    co_return n == 0 ? IOError("sendfile: file shorter than expected")
                     : ErrnoError("sendfile", errno);
  }
  if (ec) {
    conn_->broken_ = true;
    co_return Cancelled("client went away during sendfile: " + ec.message());
  }
  co_return Status::Ok();
}

awaitable<Status> Exchange::CopyFile(int fd, uint64_t offset, uint64_t len) {
  // sendfile(2) cannot encrypt: read the file in pieces off the event loop and write them.
  // A pooled buffer (no allocation and zero-fill per call: local chunk reads of `wharf up`
  // with TLS come here once per chunk), shared with the pool task that fills it.
  constexpr size_t kPiece = 256 * 1024;
  PooledBuffer pooled = co_await SharedBufferPool(kPiece).Acquire();
  if (!pooled) co_return Internal("no memory for a file read buffer");
  auto buf = std::make_shared<PooledBuffer>(std::move(pooled));
  while (len > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(len, kPiece));
    auto read = [fd, offset, want, buf]() -> ssize_t {
      for (;;) {
        ssize_t n = ::pread(fd, buf->data(), want, static_cast<off_t>(offset));
        if (n >= 0 || errno != EINTR) return n < 0 ? -errno : n;
      }
    };
    ssize_t n = co_await Offload(read);
    if (n <= 0) {
      conn_->broken_ = true;
      co_return n == 0 ? IOError("file shorter than expected") : ErrnoError("pread", -n);
    }
    std::vector<asio::const_buffer> bufs;
    if (!head_bytes_.empty()) bufs.push_back(asio::buffer(head_bytes_));
    bufs.push_back(asio::buffer(buf->data(), static_cast<size_t>(n)));
    WHARF_CO_RETURN_IF_ERROR(co_await conn_->Write(std::move(bufs)));
    head_bytes_.clear();
    offset += static_cast<uint64_t>(n);
    len -= static_cast<uint64_t>(n);
    body_remaining_ -= static_cast<uint64_t>(n);
    context_.bytes_out += static_cast<uint64_t>(n);
  }
  co_return Status::Ok();
}

awaitable<boost::system::error_code> Connection::ReadBody(bool* slow) {
  using Clock = std::chrono::steady_clock;
  const auto& o = st_->options;
  const bool rated = o.min_body_rate > 0 && o.min_body_rate_window.count() > 0;
  auto timeout = std::chrono::duration_cast<Clock::duration>(o.io_timeout);
  rate_deadline_ = false;
  if (rated && body_allowance_ < timeout) {
    timeout = std::max(body_allowance_, Clock::duration(std::chrono::milliseconds(1)));
    rate_deadline_ = true;
  }
  boost::system::error_code ec;
  auto& p = *parser_;
  const size_t room = p.get().body().size;
  // One socket read at a time (async_read would wait until the body buffer is full), so the
  // rate sees each arrival.
  auto read = [&](auto& s) {
    return http::async_read_some(s, buffer_, p, asio::redirect_error(asio::use_awaitable, ec));
  };
  const auto t0 = Clock::now();
  if (rate_deadline_ && !tls_) {
    // The rate's deadline cancels the read instead of closing the socket (as the stream's own
    // expiry does), so that the 408 can still be answered. (Under TLS a cancelled read may
    // leave the record layer mid-record: the stream's expiry, and no answer, there.)
    stream_.expires_never();
    struct Deadline {
      bool waiting = true;  // the read is still pending
      bool fired = false;
    };
    auto d = std::make_shared<Deadline>();
    asio::steady_timer timer(stream_.get_executor(), timeout);
    timer.async_wait([this, d](const boost::system::error_code& e) {
      if (e || !d->waiting) return;
      d->fired = true;
      boost::system::error_code ignored;
      stream_.socket().cancel(ignored);
    });
    co_await Io(read);
    d->waiting = false;
    timer.cancel();
    if (d->fired && ec == asio::error::operation_aborted) ec = beast::error::timeout;
  } else {
    stream_.expires_after(timeout);
    co_await Io(read);
  }
  if (ec == http::error::need_buffer) ec = {};
  if (!rated) co_return ec;
  // A leaky bucket of waiting time: each byte buys 1/min_body_rate s of it, at most one window
  // is banked, and waiting spends it. Spent: the body is slower than the minimum rate.
  const uint64_t got = room - p.get().body().size;
  const auto waited = Clock::now() - t0;
  const auto window = std::chrono::duration_cast<Clock::duration>(o.min_body_rate_window);
  body_allowance_ -= waited;
  body_allowance_ += std::chrono::duration_cast<Clock::duration>(
      std::chrono::nanoseconds(got * 1'000'000'000ull / o.min_body_rate));
  body_allowance_ = std::min(body_allowance_, window);
  body_bytes_ += got;
  const bool spent = body_allowance_ <= Clock::duration{} && !p.is_done();
  if ((ec == beast::error::timeout && rate_deadline_) || spent) {
    *slow = true;
    st_->slow_bodies->Inc();
    st_->log->info(
        "request body too slow, closing the connection remote={} body_bytes={} min_rate={}B/s "
        "window={}ms",
        remote_, body_bytes_, o.min_body_rate, o.min_body_rate_window.count());
  }
  co_return ec;
}

awaitable<bool> Connection::Drain() {
  // Up to 1 MiB of unread request body is read and dropped; more than that is cheaper to
  // cut by closing the connection.
  if (!parser_ || parser_->is_done()) co_return true;
  auto len = parser_->content_length_remaining();
  if (len && *len > (1u << 20)) co_return false;
  static thread_local char sink[65536];
  size_t total = 0;
  while (!parser_->is_done() && total <= (1u << 20)) {
    parser_->get().body().data = sink;
    parser_->get().body().size = sizeof sink;
    bool slow = false;
    boost::system::error_code ec = co_await ReadBody(&slow);
    if (ec || slow) co_return false;
    total += sizeof sink - parser_->get().body().size;
  }
  co_return parser_->is_done() && CheckTrailers().ok();
}

awaitable<void> Connection::Serve(Exchange& ex) {
  try {
    co_await st_->handler(ex);
  } catch (const std::exception& e) {
    st_->errors->Inc();
    st_->log->error("handler threw request_id={} target={} err={}", ex.request_id(),
                    std::string(ex.target()), e.what());
    ex.CloseAfter();
  }
  if (!ex.responded()) {
    st_->errors->Inc();
    ex.CloseAfter();
    (void)co_await ex.Respond(http::status::internal_server_error,
                              R"({"errors":[{"code":"INTERNAL","message":"no response"}]})");
  }
}

awaitable<bool> Connection::StartTls() {
  boost::system::error_code ec;
  stream_.expires_after(st_->options.head_timeout);
  size_t n = co_await stream_.async_read_some(buffer_.prepare(1024),
                                              asio::redirect_error(asio::use_awaitable, ec));
  buffer_.commit(n);
  if (ec || n == 0) co_return false;
  // A TLS connection opens with a handshake record (content type 22); anything else is most
  // likely a plain HTTP request: say so in plain HTTP rather than leave the client guessing.
  if (static_cast<const unsigned char*>(buffer_.data().data())[0] != 0x16) {
    st_->plain_on_tls->Inc();
    static constexpr std::string_view kPlain =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 34\r\n"
        "Connection: close\r\n\r\nthis port speaks HTTPS, not HTTP\r\n";
    co_await asio::async_write(stream_, asio::buffer(kPlain),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_return false;
  }
  tls_ctx_ = st_->options.tls->current();
  tls_ = std::make_unique<asio::ssl::stream<beast::tcp_stream&>>(stream_, *tls_ctx_);
  size_t used = co_await tls_->async_handshake(asio::ssl::stream_base::server, buffer_.data(),
                                               asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    st_->tls_failures->Inc();
    st_->log->debug("tls handshake failed remote={} err={}", remote_, ec.message());
    tls_.reset();  // nothing more is said over it
    co_return false;
  }
  buffer_.consume(used);
  tls_client_subject_ = VerifiedPeerSubject(tls_->native_handle());
  co_return true;
}

awaitable<void> Connection::Run() {
  if (st_->options.tls && !co_await StartTls()) {
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
    co_return;
  }
  for (bool first = true;; first = false) {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(st_->options.max_header_bytes));
    parser_->body_limit(
        std::numeric_limits<std::uint64_t>::max());  // boost::none is broken in 1.74
    parser_->on_chunk_header(on_chunk_header_);
    chunk_meta_bytes_ = 0;
    body_allowance_ = st_->options.min_body_rate_window;  // a new body starts with one window
    body_bytes_ = 0;
    boost::system::error_code ec;
    if (!first && buffer_.size() == 0) {
      // Keep-alive: the next request may come after idle_timeout; from its first byte on, the
      // head has head_timeout, so that a slow head (slowloris) cannot hold the slot for long.
      Arm(true);
      auto read_some = [&](auto& s) {
        return s.async_read_some(buffer_.prepare(1024),
                                 asio::redirect_error(asio::use_awaitable, ec));
      };
      size_t n = co_await Io(read_some);
      buffer_.commit(n);
      if (ec) break;
    }
    stream_.expires_after(st_->options.head_timeout);
    auto read_header = [&](auto& s) {
      return http::async_read_header(s, buffer_, *parser_,
                                     asio::redirect_error(asio::use_awaitable, ec));
    };
    co_await Io(read_header);
    if (ec == beast::error::timeout) st_->head_timeouts->Inc();
    if (ec) {
      st_->log->debug("read header failed remote={} err={}", remote_, ec.message());
      if (ec == http::error::header_limit ||
          ec.category() == http::make_error_code(http::error::bad_target).category()) {
        if (ec == http::error::bad_transfer_encoding) st_->bad_framing->Inc();
        co_await RefuseHead();
      }
      break;
    }
    if (Status framing = CheckFraming(parser_->get()); !framing.ok()) {
      st_->bad_framing->Inc();
      st_->log->info("request refused remote={} err={}", remote_, framing);
      co_await RefuseHead();
      break;
    }
    head_field_bytes_ = FieldBytes(parser_->get());
    Exchange ex(this);
    ex.context_.started = std::chrono::steady_clock::now();
    ex.head_ = parser_->get().base();
    ex.keep_alive_ = parser_->keep_alive();
    std::string_view target = ex.head_.target();
    size_t q = target.find('?');
    ex.path_ = std::string(target.substr(0, q));
    if (q != std::string_view::npos) ex.query_ = std::string(target.substr(q + 1));
    ex.context_.request_id = MakeRequestId(ex.header("X-Request-Id"));
    ex.context_.remote = remote_;
    ex.context_.tls_client_subject = tls_client_subject_;
    co_await Serve(ex);
    RecordRequest(st_->options, ex.method_string(), ex.status_code());
    st_->latency->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ex.context_.started)
            .count());
    RunAtEnd(ex);
    if (ex.body_remaining_ > 0 || !ex.head_bytes_.empty()) broken_ = true;  // short response
    if (broken_ || ex.close_after_ || st_->stopped) break;
    ShrinkBodyBuffer();
    if (!co_await Drain()) break;
  }
  boost::system::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream_.socket().close(ec);
}

Server::Server(asio::any_io_executor ex, ServerOptions options, Handler handler)
    : state_(std::make_shared<State>(ex, std::move(options), std::move(handler))) {}

Server::~Server() { Stop(); }

Status Server::Listen(const std::string& host_port) {
  WHARF_ASSIGN_OR_RETURN(auto hp, SplitHostPort(host_port));
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(hp.first == "localhost" ? "127.0.0.1" : hp.first, ec);
  if (ec) return InvalidArgument("listen address must be an IP address: " + host_port);
  tcp::endpoint ep(addr, hp.second);
  auto& a = state_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on " + host_port + ": " + ec.message());
  return Status::Ok();
}

std::string Server::local_address() const {
  boost::system::error_code ec;
  auto ep = state_->acceptor.local_endpoint(ec);
  if (ec) return "";
  std::string host = ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

uint16_t Server::port() const {
  boost::system::error_code ec;
  auto ep = state_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

size_t Server::active_connections() const { return state_->active.load(); }

void Server::Start() { asio::co_spawn(state_->ex, AcceptLoop(), asio::detached); }

void Server::Stop() {
  if (!state_ || state_->stopped.exchange(true)) return;
  asio::post(state_->ex, [st = state_] {
    boost::system::error_code ec;
    st->acceptor.close(ec);
  });
}

// Answers a connection that is not taken with a bare 503 and closes it, counting why in
// wharf_<component><counter_suffix>. The few bytes fit any fresh socket's send buffer.
static void RefuseConnection(Server::State& st, tcp::socket& sock, std::string_view counter_suffix,
                             std::string_view help) {
  Metrics()
      .Counter("wharf_" + st.options.component + std::string(counter_suffix), std::string(help),
               st.options.metric_labels)
      .Inc();
  std::string_view msg =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  boost::system::error_code ec;
  asio::write(sock, asio::buffer(msg), ec);
  sock.close(ec);
}

awaitable<void> Server::AcceptLoop() {
  auto st = state_;
  for (;;) {
    boost::system::error_code ec;
    tcp::socket sock =
        co_await st->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (st->stopped || ec == asio::error::operation_aborted) co_return;
      st->log->warn("accept failed err={}", ec.message());
      co_await SleepFor(std::chrono::milliseconds(100));
      continue;
    }
    const size_t active = st->active.load();
    if (active >= st->options.max_connections + st->options.reserved_connections) {
      RefuseConnection(*st, sock, "_http_connections_refused_total",
                       "Connections closed at once because the connection bound was reached.");
      continue;
    }
    std::string ip = sock.remote_endpoint(ec).address().to_string();
    if (!st->Admit(ip)) {
      RefuseConnection(*st, sock, "_http_connections_over_address_limit_total",
                       "Connections closed at once because their remote address held its limit.");
      continue;
    }
    st->active++;
    st->connections->Add(1);
    auto conn = std::make_shared<Connection>(st, std::move(sock));
    conn->reserved_ = active >= st->options.max_connections;
    asio::co_spawn(
        st->ex, [conn]() -> awaitable<void> { co_await conn->Run(); },
        [st, conn, ip](std::exception_ptr e) {
          st->Release(ip);
          st->active--;
          st->connections->Add(-1);
          if (e) {
            st->errors->Inc();
            try {
              std::rethrow_exception(e);
            } catch (const std::exception& ex) {
              st->log->error("connection coroutine threw err={}", ex.what());
            }
          }
        });
  }
}

Result<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view hp) {
  std::string host;
  std::string_view port;
  if (!hp.empty() && hp.front() == '[') {
    size_t close = hp.find(']');
    if (close == std::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':') {
      return Err(InvalidArgument("malformed address '" + std::string(hp) + "'"));
    }
    host = std::string(hp.substr(1, close - 1));
    port = hp.substr(close + 2);
  } else {
    size_t colon = hp.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Err(InvalidArgument("address must be HOST:PORT, got '" + std::string(hp) + "'"));
    }
    host = std::string(hp.substr(0, colon));
    port = hp.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) {
    return Err(InvalidArgument("bad port in '" + std::string(hp) + "'"));
  }
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return Err(InvalidArgument("bad port in '" + std::string(hp) + "'"));
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p > 65535) return Err(InvalidArgument("port out of range in '" + std::string(hp) + "'"));
  return std::make_pair(host, static_cast<uint16_t>(p));
}

std::string PercentDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

awaitable<void> ServeMetrics(Exchange& ex) {
  (void)co_await ex.Respond(http::status::ok, Metrics().Render(),
                            "text/plain; version=0.0.4; charset=utf-8");
}

awaitable<void> ServeHealthz(Exchange& ex, std::function<Status()> healthy) {
  Status st = healthy ? healthy() : Status::Ok();
  if (st.ok()) {
    (void)co_await ex.Respond(http::status::ok, "ok\n", "text/plain");
  } else {
    (void)co_await ex.Respond(http::status::service_unavailable, st.ToString() + "\n",
                              "text/plain");
  }
}

awaitable<bool> ServeOps(Exchange& ex, std::function<Status()> healthy) {
  if (ex.method() != http::verb::get && ex.method() != http::verb::head) co_return false;
  if (ex.path() == "/metrics") {
    co_await ServeMetrics(ex);
    co_return true;
  }
  if (ex.path() == "/healthz") {
    co_await ServeHealthz(ex, std::move(healthy));
    co_return true;
  }
  co_return false;
}

}  // namespace wharf
