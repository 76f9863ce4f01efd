// Request framing and connection limits of the HTTP server, with raw sockets: what a proxy
// in front of us, or an attacker, may send that a well-behaved client never does.
#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "http/router.h"
#include "http/server.h"

namespace wharf {
namespace {

using V = http::verb;

// What the handlers executed, in order: "POST /up body=3", "DELETE /victim".
class Recorder {
 public:
  void Add(std::string s) {
    std::lock_guard lock(mu_);
    seen_.push_back(std::move(s));
  }
  std::vector<std::string> Seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> seen_;
};

// A server on its own thread; tests talk to it with blocking sockets.
class RawServer {
 public:
  explicit RawServer(ServerOptions so = {}) : router_({.component = "rawtest"}) {
    AddOpsRoutes(router_, nullptr);
    router_.Add({"up", {V::post}, PathMatch::Exact("/up"), [this](Exchange& ex) -> awaitable<void> {
                   auto body = co_await ex.ReadAll(64u << 20);
                   if (!body) {
                     rec_.Add("POST /up failed");
                     (void)co_await ex.Respond(http::status::bad_request, "", "text/plain");
                     co_return;
                   }
                   rec_.Add("POST /up body=" + std::to_string(body->size()));
                   (void)co_await ex.Respond(http::status::created, std::to_string(body->size()),
                                             "text/plain");
                 }});
    router_.Add(
        {"victim", {}, PathMatch::Exact("/victim"), [this](Exchange& ex) -> awaitable<void> {
           rec_.Add(std::string(ex.method_string()) + " /victim");
           (void)co_await ex.Respond(http::status::no_content);
         }});
    server_ = std::make_unique<Server>(io_.get_executor(), so, router_.AsHandler());
    EXPECT_TRUE(server_->Listen("127.0.0.1:0").ok());
    server_->Start();
    port_ = server_->port();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~RawServer() {
    server_->Stop();
    io_.stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  Recorder& rec() { return rec_; }
  Server& server() { return *server_; }

 private:
  asio::io_context io_;
  Router router_;
  Recorder rec_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
  std::thread thread_;
};

struct RawReply {
  std::string bytes;
  bool closed = false;  // the server closed the connection (EOF or reset)
};

// Connects (from `from`, e.g. "127.0.0.2"), sends `req`, reads until the server closes or
// `wait` passes without data.
RawReply RawExchange(uint16_t port, const std::string& req,
                     std::chrono::milliseconds wait = std::chrono::milliseconds(1500),
                     const std::string& from = "") {
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.open(tcp::v4(), ec);
  if (!from.empty()) s.bind(tcp::endpoint(asio::ip::make_address(from), 0), ec);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  RawReply out;
  if (ec) {
    out.closed = true;
    return out;
  }
  timeval tv{static_cast<time_t>(wait.count() / 1000),
             static_cast<suseconds_t>((wait.count() % 1000) * 1000)};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  asio::write(s, asio::buffer(req), ec);
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
    if (n > 0) {
      out.bytes.append(buf, static_cast<size_t>(n));
      continue;
    }
    out.closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    break;
  }
  return out;
}

std::string Post(const std::string& framing_headers, const std::string& body_and_more) {
  return "POST /up HTTP/1.1\r\nHost: t\r\n" + framing_headers + "\r\n" + body_and_more;
}

const std::string kSmuggled =
    "DELETE /victim HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

TEST(FramingTest, OnlyChunkedAloneIsATransferCodingAndNothingIsSmuggled) {
  RawServer srv;
  for (std::string te : {"xchunked", "identity", "chunked, identity", "gzip, chunked",
                         "chunked, chunked", "chunkedx", "deflate"}) {
    for (bool with_length : {true, false}) {
      std::string framing = "Transfer-Encoding: " + te + "\r\n";
      if (with_length) framing += "Content-Length: 3\r\n";
      RawReply r = RawExchange(srv.port(), Post(framing, "abc" + kSmuggled));
      EXPECT_TRUE(r.bytes.starts_with("HTTP/1.1 400 "))
          << te << " " << with_length << ": " << r.bytes;
      EXPECT_TRUE(r.closed) << te;
    }
  }
  // Transfer-Encoding: chunked together with Content-Length, in either order.
  for (std::string framing : {"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                              "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                              "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"}) {
    RawReply r = RawExchange(srv.port(), Post(framing, "3\r\nabc\r\n0\r\n\r\n" + kSmuggled));
    EXPECT_TRUE(r.bytes.starts_with("HTTP/1.1 400 ")) << framing << ": " << r.bytes;
    EXPECT_TRUE(r.closed) << framing;
  }
  EXPECT_EQ(srv.rec().Seen(), std::vector<std::string>{}) << "a request was executed";
}

TEST(FramingTest, ChunkedBodiesStillWork) {
  RawServer srv;
  for (std::string te : {"chunked", "Chunked", "CHUNKED"}) {
    RawReply r = RawExchange(
        srv.port(), Post("Transfer-Encoding: " + te + "\r\n",
                         "3;name=val\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n" + kSmuggled));
    EXPECT_TRUE(r.bytes.starts_with("HTTP/1.1 201 ")) << r.bytes;
    // A well-framed second request on the connection is just the next request.
    EXPECT_NE(r.bytes.find("HTTP/1.1 204 "), std::string::npos) << r.bytes;
  }
  EXPECT_EQ(srv.rec().Seen(),
            (std::vector<std::string>{"POST /up body=5", "DELETE /victim", "POST /up body=5",
                                      "DELETE /victim", "POST /up body=5", "DELETE /victim"}));
}

TEST(FramingTest, ChunkExtensionsAndTrailersAreBounded) {
  RawServer srv;
  const std::string ext(5000, 'y');
  // One long extension; many short ones that add up; a long trailer; a huge extension.
  std::vector<std::string> bodies = {
      "3;x=" + ext + "\r\nabc\r\n0\r\n\r\n",
      [] {
        std::string b;
        for (int i = 0; i < 100; ++i) b += "1;name=" + std::string(60, 'z') + "\r\na\r\n";
        return b + "0\r\n\r\n";
      }(),
      "3\r\nabc\r\n0\r\nX-Trailer: " + ext + "\r\n\r\n",
      "3;x=" + std::string(8u << 20, 'y') + "\r\nabc\r\n0\r\n\r\n",
  };
  for (const auto& body : bodies) {
    RawReply r = RawExchange(srv.port(), Post("Transfer-Encoding: chunked\r\n", body));
    EXPECT_FALSE(r.bytes.starts_with("HTTP/1.1 201 ")) << body.substr(0, 60);
    EXPECT_TRUE(r.closed) << body.substr(0, 60);
  }
  for (const auto& s : srv.rec().Seen()) EXPECT_EQ(s, "POST /up failed");
}

// An idle connection from `from` (nothing sent); closed when the object goes.
class IdleSocket {
 public:
  IdleSocket(uint16_t port, const std::string& from) : s_(io_) {
    boost::system::error_code ec;
    s_.open(tcp::v4(), ec);
    s_.bind(tcp::endpoint(asio::ip::make_address(from), 0), ec);
    s_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    EXPECT_FALSE(ec) << ec.message();
  }

 private:
  asio::io_context io_;
  tcp::socket s_;
};

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

const std::string kHealthz = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

TEST(ConnectionLimitsTest, OneAddressCannotTakeEverySlot) {
  ServerOptions so;
  so.max_connections_per_address = 3;
  RawServer srv(so);
  std::vector<std::unique_ptr<IdleSocket>> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(std::make_unique<IdleSocket>(srv.port(), "127.0.0.1"));
  ASSERT_TRUE(
      WaitFor([&] { return srv.server().active_connections() == 3; }, std::chrono::seconds(5)));
  RawReply over = RawExchange(srv.port(), kHealthz, std::chrono::milliseconds(1500), "127.0.0.1");
  EXPECT_TRUE(over.bytes.starts_with("HTTP/1.1 503 ")) << over.bytes;
  EXPECT_TRUE(over.closed);
  RawReply other = RawExchange(srv.port(), kHealthz, std::chrono::milliseconds(1500), "127.0.0.2");
  EXPECT_TRUE(other.bytes.starts_with("HTTP/1.1 200 ")) << other.bytes;
  idle.clear();
  ASSERT_TRUE(
      WaitFor([&] { return srv.server().active_connections() == 0; }, std::chrono::seconds(5)));
  RawReply again = RawExchange(srv.port(), kHealthz, std::chrono::milliseconds(1500), "127.0.0.1");
  EXPECT_TRUE(again.bytes.starts_with("HTTP/1.1 200 ")) << again.bytes;
}

TEST(ConnectionLimitsTest, SlowHeadIsCutAfterTheHeadTimeout) {
  ServerOptions so;
  so.head_timeout = std::chrono::milliseconds(500);
  so.idle_timeout = std::chrono::seconds(60);
  RawServer srv(so);
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), srv.port()));
  timeval tv{0, 100 * 1000};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto start = std::chrono::steady_clock::now();
  std::string line = "GET /healthz HTTP/1.1\r\n";
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    // One header line every 100 ms: the head never ends.
    if (::send(s.native_handle(), line.data(), line.size(), MSG_NOSIGNAL) < 0) closed = true;
    line = "X-Slow: 1\r\n";
    char buf[256];
    ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) closed = true;
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed) << "a head trickling for 5 s was not cut";
  EXPECT_LT(took, std::chrono::seconds(3));
  // A new connection that sends nothing is cut as fast.
  RawReply silent = RawExchange(srv.port(), "", std::chrono::seconds(3));
  EXPECT_TRUE(silent.closed);
}

TEST(ConnectionLimitsTest, HealthAndMetricsAnswerOnReservedSlots) {
  ServerOptions so;
  so.max_connections = 2;
  so.reserved_connections = 2;
  RawServer srv(so);
  IdleSocket a(srv.port(), "127.0.0.1"), b(srv.port(), "127.0.0.1");
  ASSERT_TRUE(
      WaitFor([&] { return srv.server().active_connections() == 2; }, std::chrono::seconds(5)));
  RawReply hz = RawExchange(srv.port(), kHealthz);
  EXPECT_TRUE(hz.bytes.starts_with("HTTP/1.1 200 ")) << hz.bytes;
  RawReply metrics =
      RawExchange(srv.port(), "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(metrics.bytes.starts_with("HTTP/1.1 200 ")) << metrics.bytes.substr(0, 100);
  RawReply up = RawExchange(srv.port(), Post("Content-Length: 0\r\n", ""));
  EXPECT_TRUE(up.bytes.starts_with("HTTP/1.1 503 ")) << up.bytes;
  EXPECT_TRUE(srv.rec().Seen().empty());
}

}  // namespace
}  // namespace wharf
