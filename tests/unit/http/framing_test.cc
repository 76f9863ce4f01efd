// Request framing and connection limits of the HTTP server, with raw sockets: what a proxy
// in front of us, or an attacker, may send that a well-behaved client never does.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace wharf
