#include "http/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/async.h"
#include "common/log.h"
#include "common/metrics.h"
#include "http/access_log.h"
#include "http/client.h"

namespace wharf {
namespace {

using V = http::verb;

Handler Answer(http::status code, std::string body) {
  return [code, body](Exchange& ex) -> awaitable<void> {
    ex.AddHeader("X-Route", ex.context().route);
    (void)co_await ex.Respond(code, body, "text/plain");
  };
}

HeaderList Id(std::string id) {
  HeaderList h;
  h.emplace_back("X-Request-Id", std::move(id));
  return h;
}

TEST(PathMatchTest, ExactPrefixSubtree) {
  EXPECT_TRUE(PathMatch::Exact("/a").Matches("/a"));
  EXPECT_FALSE(PathMatch::Exact("/a").Matches("/a/"));
  EXPECT_FALSE(PathMatch::Exact("/a").Matches("/ab"));
  EXPECT_TRUE(PathMatch::Prefix("/v1/chunks/").Matches("/v1/chunks/abc"));
  EXPECT_TRUE(PathMatch::Prefix("/v1/chunks/").Matches("/v1/chunks/"));
  EXPECT_FALSE(PathMatch::Prefix("/v1/chunks/").Matches("/v1/chunks"));
  EXPECT_TRUE(PathMatch::Subtree("/v2").Matches("/v2"));
  EXPECT_TRUE(PathMatch::Subtree("/v2").Matches("/v2/"));
  EXPECT_TRUE(PathMatch::Subtree("/v2").Matches("/v2/team/app/blobs/x"));
  EXPECT_FALSE(PathMatch::Subtree("/v2").Matches("/v2x"));
  EXPECT_FALSE(PathMatch::Subtree("/v2").Matches("/v"));
}

TEST(RouterResolveTest, FirstMatchWinsAndAllowLists) {
  Router r({});
  r.Add({"get", {V::get, V::head}, PathMatch::Prefix("/c/"), Answer(http::status::ok, "")});
  r.Add({"put", {V::put}, PathMatch::Prefix("/c/"), Answer(http::status::ok, "")});
  r.Add({"any", {}, PathMatch::Subtree("/v2"), Answer(http::status::ok, "")});
  r.Add({"shadowed", {}, PathMatch::Exact("/v2/x"), Answer(http::status::ok, "")});
  auto g = r.Resolve(V::head, "/c/1");
  ASSERT_NE(g.route, nullptr);
  EXPECT_EQ(g.route->name, "get");
  ASSERT_NE(r.Resolve(V::put, "/c/1").route, nullptr);
  EXPECT_EQ(r.Resolve(V::put, "/c/1").route->name, "put");
  auto bad = r.Resolve(V::delete_, "/c/1");
  EXPECT_EQ(bad.route, nullptr);
  EXPECT_EQ(bad.allow, "GET, HEAD, PUT");
  EXPECT_EQ(r.Resolve(V::post, "/v2/x").route->name, "any");
  auto none = r.Resolve(V::get, "/nope");
  EXPECT_EQ(none.route, nullptr);
  EXPECT_EQ(none.allow, "");
}

TEST(RequestIdTest, SaneIds) {
  EXPECT_TRUE(SaneRequestId("abc-123"));
  EXPECT_TRUE(SaneRequestId("a.b_c~d!e#f$g%h&i'j*k+l^m`n|o"));
  EXPECT_TRUE(SaneRequestId(std::string(kMaxRequestIdBytes, 'x')));
  EXPECT_FALSE(SaneRequestId(""));
  EXPECT_FALSE(SaneRequestId(std::string(kMaxRequestIdBytes + 1, 'x')));
  for (const char* s : {"a b", "a\"b", "a,b", "a;b", "a\tb", "a=b", "a(b)", "a\x7f", "é"}) {
    EXPECT_FALSE(SaneRequestId(s)) << s;
  }
}

// Records its name, and answers with `answer` (ends the request) when it is set.
class RecordingFilter : public Filter {
 public:
  RecordingFilter(std::string name, std::vector<std::string>* trace,
                  std::optional<http::status> answer = std::nullopt)
      : name_(std::move(name)), trace_(trace), answer_(answer) {}
  awaitable<Result> OnRequest(Exchange& ex) override {
    trace_->push_back(name_ + ":" + ex.context().route);
    ex.AtEnd([trace = trace_, name = name_](const Exchange& e) {
      trace->push_back("end-" + name + ":" + std::to_string(e.status_code()));
    });
    if (!answer_) co_return Result::kContinue;
    (void)co_await ex.Respond(*answer_, "denied by " + name_, "text/plain");
    co_return Result::kStop;
  }

 private:
  std::string name_;
  std::vector<std::string>* trace_;
  std::optional<http::status> answer_;
};

class RouterTest : public ::testing::Test {
 protected:
  void Start(const Router& router, ServerOptions so = {}) {
    server_ = std::make_unique<Server>(io_.get_executor(), so, router.AsHandler());
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

TEST_F(RouterTest, FiltersRunInOrderAndOneThatAnswersEndsTheRequest) {
  std::vector<std::string> trace;
  Router r({.component = "rt1"});
  r.AddFilter(std::make_shared<RecordingFilter>("a", &trace));
  r.AddFilter(std::make_shared<RecordingFilter>("b", &trace));
  r.Add({"open", {V::get}, PathMatch::Exact("/open"), [&trace](Exchange& ex) -> awaitable<void> {
           trace.push_back("handler:" + ex.context().route);
           (void)co_await ex.Respond(http::status::ok, "hi", "text/plain");
         }});
  Router deny({.component = "rt1d"});
  deny.AddFilter(std::make_shared<RecordingFilter>("a", &trace));
  deny.AddFilter(std::make_shared<RecordingFilter>("auth", &trace, http::status::forbidden));
  deny.AddFilter(std::make_shared<RecordingFilter>("never", &trace));
  bool handler_ran = false;
  deny.Add({"open", {V::get}, PathMatch::Exact("/open"), [&](Exchange& ex) -> awaitable<void> {
              handler_ran = true;
              (void)co_await ex.Respond(http::status::ok, "hi", "text/plain");
            }});
  Router* current = &r;
  Router outer({.component = "rt1o"});
  outer.Add({"all", {}, PathMatch::Prefix("/"), [&current](Exchange& ex) {
               return current->Dispatch(ex);
             }});
  Start(outer);
  Run([&]() -> awaitable<void> {
    HttpClient client(io_.get_executor());
    auto ok = co_await client.Request(addr_, V::get, "/open");
    EXPECT_TRUE(ok && ok->status == 200u && ok->body == "hi");
    co_await SleepFor(std::chrono::milliseconds(20));  // end-of-request observers ran
    EXPECT_EQ(trace, (std::vector<std::string>{"a:open", "b:open", "handler:open", "end-a:200",
                                               "end-b:200"}));
    trace.clear();
    current = &deny;
    auto denied = co_await client.Request(addr_, V::get, "/open");
    EXPECT_TRUE(denied && denied->status == 403u && denied->body == "denied by auth");
    EXPECT_FALSE(handler_ran);
    co_await SleepFor(std::chrono::milliseconds(20));
    EXPECT_EQ(trace,
              (std::vector<std::string>{"a:open", "auth:open", "end-a:403", "end-auth:403"}));
    trace.clear();
    // Filters see unrouted requests too (an access log must log 404s).
    auto nf = co_await client.Request(addr_, V::get, "/missing");
    EXPECT_TRUE(nf && nf->status == 403u);
    EXPECT_EQ(trace.front(), "a:");
  });
}

TEST_F(RouterTest, NotFoundAndMethodNotAllowed) {
  Router with405({.component = "rt2"});
  with405.Add({"get", {V::get, V::head}, PathMatch::Prefix("/c/"), Answer(http::status::ok, "")});
  with405.Add({"put", {V::put}, PathMatch::Prefix("/c/"), Answer(http::status::created, "")});
  Router without405({.component = "rt2n", .answer_405 = false});
  without405.Add({"get", {V::get}, PathMatch::Exact("/x"), Answer(http::status::ok, "")});
  Router* current = &with405;
  Router outer({.component = "rt2o"});
  outer.Add({"all", {}, PathMatch::Prefix("/"), [&current](Exchange& ex) {
               return current->Dispatch(ex);
             }});
  Start(outer);
  Run([&]() -> awaitable<void> {
    HttpClient client(io_.get_executor());
    auto put = co_await client.Request(addr_, V::put, "/c/1", "body");
    EXPECT_TRUE(put && put->status == 201u && put->header("X-Route") == "put");
    auto del = co_await client.Request(addr_, V::delete_, "/c/1");
    EXPECT_TRUE(del && del->status == 405u);
    if (del) {
      EXPECT_EQ(del->header("Allow"), "GET, HEAD, PUT");
    }
    auto nf = co_await client.Request(addr_, V::get, "/d");
    EXPECT_TRUE(nf && nf->status == 404u);
    if (nf) {
      EXPECT_NE(nf->body.find("no such endpoint"), std::string::npos);
    }
    current = &without405;
    auto post = co_await client.Request(addr_, V::post, "/x", "b");
    EXPECT_TRUE(post && post->status == 404u);
    if (post) {
      EXPECT_NE(post->body.find("not_found"), std::string::npos) << post->body;
    }
  });
}

TEST_F(RouterTest, CountsByRouteAndEchoesRequestId) {
  Router r({.component = "rt3", .metric_labels = {{"member", "m1"}}});
  AddOpsRoutes(r, [] { return Unavailable("not yet"); });
  r.Add({"thing", {V::get}, PathMatch::Exact("/thing"), Answer(http::status::ok, "t")});
  Start(r);
  Run([&]() -> awaitable<void> {
    HttpClient client(io_.get_executor());
    auto given = co_await client.Request(addr_, V::get, "/thing", std::string_view(), Id("abc-1"));
    EXPECT_TRUE(given && given->header("X-Request-Id") == "abc-1");
    auto insane = co_await client.Request(addr_, V::get, "/thing", {}, Id(std::string(200, 'z')));
    EXPECT_TRUE(insane && insane->header("X-Request-Id").size() == 16u);
    auto none = co_await client.Request(addr_, V::get, "/thing");
    EXPECT_TRUE(none && none->header("X-Request-Id").size() == 16u);
    auto hz = co_await client.Request(addr_, V::get, "/healthz");
    EXPECT_TRUE(hz && hz->status == 503u);
    (void)co_await client.Request(addr_, V::get, "/nowhere");
  });
  auto count = [](const std::string& route, const std::string& code) {
    return Metrics()
        .Counter("wharf_rt3_requests_total", "",
                 {{"route", route}, {"code", code}, {"member", "m1"}})
        .Value();
  };
  EXPECT_EQ(count("thing", "200"), 3u);
  EXPECT_EQ(count("healthz", "503"), 1u);
  EXPECT_EQ(count("none", "404"), 1u);
}

std::string ReadWhole(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST_F(RouterTest, AccessLogWritesOneLinePerRequestToAFile) {
  std::string path = ::testing::TempDir() + "/access_" + std::to_string(::getpid()) + ".log";
  std::filesystem::remove(path);
  auto log = AccessLog::Open(path);
  ASSERT_TRUE(log.has_value());
  EXPECT_FALSE(AccessLog::Open("/nonexistent-dir/x.log").has_value());
  EXPECT_EQ(*AccessLog::Open("off"), nullptr);
  Router r({.component = "rt4"});
  r.AddFilter(std::make_shared<AccessLogFilter>(*log));
  r.Add({"echo", {V::put}, PathMatch::Exact("/echo"), [](Exchange& ex) -> awaitable<void> {
           auto body = co_await ex.ReadAll(1 << 20);
           std::string reply = body ? *body + "!" : "";
           (void)co_await ex.Respond(http::status::ok, std::move(reply), "text/plain");
         }});
  Start(r);
  Run([&]() -> awaitable<void> {
    HttpClient client(io_.get_executor());
    (void)co_await client.Request(addr_, V::put, "/echo", "12345", Id("log-1"));
    (void)co_await client.Request(addr_, V::get, "/gone", std::string_view(), Id("log-2"));
  });
  std::string text;
  for (int i = 0; i < 200; ++i) {
    text = ReadWhole(path);
    if (std::count(text.begin(), text.end(), '\n') >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_NE(text.find("method=PUT path=/echo status=200 bytes_in=5 bytes_out=6 "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("request_id=log-1 route=echo user=-\n"), std::string::npos) << text;
  EXPECT_NE(text.find("method=GET path=/gone status=404 "), std::string::npos) << text;
  EXPECT_NE(text.find("request_id=log-2 route=none user=-\n"), std::string::npos) << text;
  EXPECT_NE(text.find("remote=127.0.0.1:"), std::string::npos) << text;
  // Reopen after a rotation: later lines go to the new file.
  std::filesystem::rename(path, path + ".1");
  AccessLog::ReopenAll();
  server_.reset();
  io_.restart();
  Start(r);
  Run([&]() -> awaitable<void> {
    HttpClient client(io_.get_executor());
    (void)co_await client.Request(addr_, V::get, "/gone", std::string_view(), Id("log-3"));
  });
  for (int i = 0; i < 200 && ReadWhole(path).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(ReadWhole(path).find("request_id=log-3"), std::string::npos);
  EXPECT_EQ(ReadWhole(path + ".1").find("request_id=log-3"), std::string::npos);
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".1");
}

TEST_F(RouterTest, HeaderByFieldIsTheFirstOfItsNameInAnyCase) {
  Router r({.component = "rt5"});
  r.Add({"echo", {V::get}, PathMatch::Exact("/echo"), [](Exchange& ex) -> awaitable<void> {
           std::string seen = std::string(ex.header(http::field::authorization)) + "|" +
                              std::string(ex.header(http::field::accept)) + "|" +
                              std::string(ex.header(http::field::unknown));
           (void)co_await ex.Respond(http::status::ok, seen, "text/plain");
         }});
  Start(r);
  Run([&]() -> awaitable<void> {
    HttpClient client(io_.get_executor());
    HeaderList h;
    h.emplace_back("X-Other", "x");
    h.emplace_back("authorization", "Bearer first");
    h.emplace_back("AUTHORIZATION", "Bearer second");
    auto got = co_await client.Request(addr_, V::get, "/echo", std::string_view(), h);
    EXPECT_TRUE(got && got->status == 200u && got->body == "Bearer first||") << got->body;
  });
}

}  // namespace
}  // namespace wharf
