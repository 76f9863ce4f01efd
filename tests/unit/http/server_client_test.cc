#include <gtest/gtest.h>

#include <thread>

#include "common/async.h"
#include "common/digest.h"
#include "common/log.h"
#include "http/client.h"
#include "http/server.h"

namespace wharf {
namespace {

// Echo server: PUT /echo streams the body back with its SHA-256 in a header; GET /big
// streams N bytes; anything else 404.
awaitable<void> Handle(Exchange& ex) {
  if (co_await ServeOps(ex, nullptr)) co_return;
  if (ex.path() == "/echo") {
    auto body = co_await ex.ReadAll(64u << 20);
    if (!body) {
      (void)co_await ex.Respond(http::status::payload_too_large, "");
      co_return;
    }
    ex.AddHeader("X-Sha", DigestOf(*body).ToString());
    ex.AddHeader("X-Query", ex.query("q").value_or("-"));
    (void)co_await ex.Respond(http::status::ok, std::move(*body), "application/octet-stream");
    co_return;
  }
  if (ex.path() == "/big") {
    uint64_t n = std::stoull(ex.query("n").value_or("0"));
    (void)co_await ex.BeginResponse(http::status::ok, n);
    std::string block(1 << 20, 'x');
    while (n > 0) {
      size_t k = std::min<uint64_t>(n, block.size());
      if (!(co_await ex.WriteBody(block.data(), k)).ok()) co_return;
      n -= k;
    }
    co_return;
  }
  (void)co_await ex.Respond(http::status::not_found, "{}");
}

class HttpTest : public ::testing::Test {
 public:
  HttpTest() { SetLogLevel("debug"); }

 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>(io_.get_executor(), ServerOptions{}, Handle);
    ASSERT_TRUE(server_->Listen("127.0.0.1:0").ok());
    server_->Start();
    addr_ = server_->local_address();
  }
  template <typename F>
  void Run(F f) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          co_await f();
          done = true;
          server_->Stop();
        },
        asio::detached);
    io_.run();
    EXPECT_TRUE(done);
  }
  asio::io_context io_;
  std::unique_ptr<Server> server_;
  std::string addr_;
};

TEST_F(HttpTest, EchoKeepAliveAndQuery) {
  Run([&]() -> awaitable<void> {
    HttpClient client(io_.get_executor());
    for (int i = 0; i < 5; ++i) {
      std::string body(100000 * i, static_cast<char>('a' + i));
      auto r = co_await client.Request(addr_, http::verb::put, "/echo?q=a%20b", body);
      EXPECT_TRUE(r.has_value());
      if (!r) co_return;
      EXPECT_EQ(r->status, 200u);
      EXPECT_EQ(r->body, body);
      EXPECT_EQ(r->header("X-Sha"), DigestOf(body).ToString());
      EXPECT_EQ(r->header("X-Query"), "a b");
    }
    EXPECT_EQ(server_->active_connections(), 1u);  // one keep-alive connection reused
  });
}

TEST_F(HttpTest, StreamsLargeResponse) {
  Run([&]() -> awaitable<void> {
    HttpClient client(io_.get_executor());
    auto call = co_await client.Open(addr_, http::verb::get, "/big?n=104857601", {}, {});
    EXPECT_TRUE(call.has_value());
    if (!call) co_return;
    EXPECT_TRUE((co_await (*call)->FinishRequest()).ok());
    EXPECT_EQ((*call)->status(), 200u);
    uint64_t total = 0;
    std::vector<char> buf(1 << 16);
    for (;;) {
      auto n = co_await (*call)->ReadSome(buf.data(), buf.size());
      EXPECT_TRUE(n.has_value());
      if (!n || *n == 0) break;
      total += *n;
    }
    EXPECT_EQ(total, 104857601u);
  });
}

TEST_F(HttpTest, HeadAndNotFoundAndMetrics) {
  Run([&]() -> awaitable<void> {
    HttpClient client(io_.get_executor());
    auto h = co_await client.Request(addr_, http::verb::head, "/big?n=12345");
    EXPECT_TRUE(h.has_value());
    if (h) {
      EXPECT_EQ(h->status, 200u);
      EXPECT_EQ(h->header("Content-Length"), "12345");
      EXPECT_TRUE(h->body.empty());
    }
    auto nf = co_await client.Request(addr_, http::verb::get, "/nope");
    EXPECT_TRUE(nf && nf->status == 404u);
    auto m = co_await client.Request(addr_, http::verb::get, "/metrics");
    EXPECT_TRUE(m && m->body.find("wharf_http_http_requests_total") != std::string::npos);
    auto hz = co_await client.Request(addr_, http::verb::get, "/healthz");
    EXPECT_TRUE(hz && hz->status == 200u);
  });
}

TEST_F(HttpTest, UnreachablePeerIsUnavailable) {
  Run([&]() -> awaitable<void> {
    HttpClient client(io_.get_executor());
    auto r = co_await client.Request("127.0.0.1:1", http::verb::get, "/");
    EXPECT_FALSE(r.has_value());
    if (!r) {
      EXPECT_EQ(r.error().code(), Code::kUnavailable);
    }
    auto bad = co_await client.Request("nohostport", http::verb::get, "/");
    EXPECT_FALSE(bad.has_value());
  });
}

TEST(SplitHostPortTest, Hostile) {
  EXPECT_TRUE(SplitHostPort("127.0.0.1:80").has_value());
  EXPECT_TRUE(SplitHostPort("[::1]:80").has_value());
  for (const char* s : {"", ":", "a:", ":80", "a:b", "a:65536", "a:999999", "[::1]80", "[::1"}) {
    EXPECT_FALSE(SplitHostPort(s).has_value()) << s;
  }
}

TEST(PercentTest, Decode) {
  EXPECT_EQ(PercentDecode("a%2Fb%zz%4"), "a/b%zz%4");
  EXPECT_EQ(PercentDecode(PercentEncode("sha256:ab/c d")), "sha256:ab/c d");
}

}  // namespace
}  // namespace wharf
