// The master daemon over real HTTP on a free port: what its counters, gauges and /healthz say.
#include "master/master_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/fs.h"
#include "common/metrics.h"
#include "http/client.h"

namespace wharf {
namespace {

uint64_t CounterValue(const std::string& name) { return Metrics().Counter(name, "").Value(); }

// Sum of every series of metric family `name` in the process's /metrics text.
double SumOfFamily(const std::string& name) {
  std::istringstream in(Metrics().Render());
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string series = line.substr(0, line.find(' '));
    if (series != name && !series.starts_with(name + "{")) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

HeartbeatReport Report(std::string id) {
  HeartbeatReport r;
  r.group = "g1";
  r.id = std::move(id);
  r.addr = "127.0.0.1:1";
  r.capacity = 1u << 30;
  r.free = 1u << 29;
  r.interval_ms = 60000;
  return r;
}

class MasterServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wharf_master_server_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    MasterOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = dir_ + "/master";
    o.chunk_size = 1u << 20;
    master_ = std::make_unique<MasterServer>(io_.get_executor(), o);
    ASSERT_TRUE(master_->Start().ok());
  }
  void TearDown() override {
    master_->Stop();
    io_.poll();
    master_.reset();
    std::filesystem::remove_all(dir_);
  }

  // One request to the master, run on the master's own event loop until it is answered.
  ClientResponse Call(http::verb method, std::string target, std::string body = {}) {
    HttpClient client(io_.get_executor());
    Result<ClientResponse> out = Err(Internal("not run"));
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          out = co_await client.Request(master_->address(), method, target, body);
        },
        [&](std::exception_ptr) { done = true; });
    while (!done) io_.run_one();
    EXPECT_TRUE(out.has_value()) << out.error().ToString();
    return out ? *out : ClientResponse{};
  }
  unsigned Heartbeat(const HeartbeatReport& r) {
    return Call(http::verb::post, "/v1/heartbeat", r.ToJson().dump()).status;
  }

  asio::io_context io_;
  std::string dir_;
  std::unique_ptr<MasterServer> master_;
};

TEST_F(MasterServerTest, EachHeartbeatIsCountedOnce) {
  uint64_t accepted = CounterValue("wharf_master_heartbeats_total");
  uint64_t rejected = CounterValue("wharf_master_heartbeats_rejected_total");
  EXPECT_EQ(Heartbeat(Report("a")), 200u);
  EXPECT_EQ(CounterValue("wharf_master_heartbeats_total"), accepted + 1);
  EXPECT_EQ(CounterValue("wharf_master_heartbeats_rejected_total"), rejected);

  HeartbeatReport bad = Report("b");
  bad.interval_ms = 0;  // well-formed JSON, an invalid report
  EXPECT_EQ(Heartbeat(bad), 400u);
  EXPECT_EQ(Call(http::verb::post, "/v1/heartbeat", "not json").status, 400u);
  HeartbeatReport conflict = Report("a");
  conflict.group = "g2";  // a is in g1
  EXPECT_EQ(Heartbeat(conflict), 409u);
  EXPECT_EQ(CounterValue("wharf_master_heartbeats_total"), accepted + 1);
  EXPECT_EQ(CounterValue("wharf_master_heartbeats_rejected_total"), rejected + 3);
}

TEST_F(MasterServerTest, MembersGaugeSumsToTheNumberOfMembers) {
  EXPECT_EQ(Heartbeat(Report("a")), 200u);
  EXPECT_EQ(Heartbeat(Report("b")), 200u);
  EXPECT_EQ(Call(http::verb::get, "/v1/status").status, 200u);
  EXPECT_EQ(SumOfFamily("wharf_master_members"), 2);
  EXPECT_EQ(Metrics().Gauge("wharf_master_members", "", {{"state", "active"}}).Value(), 2);
}

TEST_F(MasterServerTest, HealthzIsUnavailableWhileTheMemberListCannotBeSaved) {
  EXPECT_EQ(Call(http::verb::get, "/healthz").status, 200u);
  // A file where the data directory should be: members.json cannot be written (even as root).
  std::filesystem::remove_all(dir_ + "/master");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/master", "not a directory").ok());
  EXPECT_EQ(Heartbeat(Report("a")), 200u);  // accepted regardless
  ClientResponse health = Call(http::verb::get, "/healthz");
  EXPECT_EQ(health.status, 503u);
  EXPECT_NE(health.body.find("members.json"), std::string::npos) << health.body;

  std::filesystem::remove(dir_ + "/master");
  EXPECT_EQ(Heartbeat(Report("a")), 200u);  // retries the save, which now works
  EXPECT_EQ(Call(http::verb::get, "/healthz").status, 200u);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/master/members.json"));
}

TEST_F(MasterServerTest, NamespaceIsSetByTheFirstClaimAndSurvivesARestart) {
  ClientResponse none = Call(http::verb::get, "/v1/namespace");
  EXPECT_EQ(none.status, 200u);
  EXPECT_EQ(nlohmann::json::parse(none.body)["store_id"], nullptr);
  EXPECT_EQ(Call(http::verb::put, "/v1/namespace", R"({"store_id": "ms-aaa"})").status, 200u);
  EXPECT_EQ(Call(http::verb::put, "/v1/namespace", R"({"store_id": "ms-aaa"})").status, 200u);
  ClientResponse other = Call(http::verb::put, "/v1/namespace", R"({"store_id": "ms-bbb"})");
  EXPECT_EQ(other.status, 409u);
  EXPECT_NE(other.body.find("ms-aaa"), std::string::npos) << other.body;
  // Hostile bodies: 400, and nothing changes.
  for (const char* bad : {"", "null", "[]", "{}", R"({"store_id": 7})", R"({"store_id": ""})",
                          R"({"store_id": "a/b"})", R"({"store_id": "ms aaa"})", "{\"store_id\""}) {
    EXPECT_EQ(Call(http::verb::put, "/v1/namespace", bad).status, 400u) << bad;
  }
  // What a restarted master reads back.
  NamespaceRegistry again(dir_ + "/master");
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(again.store_id(), std::optional<std::string>("ms-aaa"));
  auto claim = again.Claim("ms-bbb");
  ASSERT_FALSE(claim);
  EXPECT_EQ(claim.error().code(), Code::kConflict);
}

TEST(NamespaceFileTest, ParsesOnlyWellFormedFiles) {
  auto ok = ParseNamespaceFile(R"({"format": 1, "store_id": "ms-0123"})");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(*ok, "ms-0123");
  for (const char* bad :
       {"", "{", "[]", R"({"store_id": "ms-1"})", R"({"format": 2, "store_id": "ms-1"})",
        R"({"format": "1", "store_id": "ms-1"})", R"({"format": 1})",
        R"({"format": 1, "store_id": null})", R"({"format": 1, "store_id": "../x"})"}) {
    EXPECT_FALSE(ParseNamespaceFile(bad)) << bad;
  }
  EXPECT_TRUE(ValidStoreId("ms-" + std::string(125, 'a')));
  EXPECT_FALSE(ValidStoreId("ms-" + std::string(126, 'a')));
  EXPECT_FALSE(ValidStoreId(std::string("ms-\0x", 5)));
}

TEST(NamespaceFileTest, AnUnreadableFileStopsTheMaster) {
  char tmpl[] = "/tmp/wharf_namespace_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_TRUE(WriteFileAtomic(dir + "/namespace.json", "{garbage").ok());
  NamespaceRegistry reg(dir);
  Status st = reg.Load();
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  std::filesystem::remove_all(dir);
}

TEST_F(MasterServerTest, HeartbeatRepliesCarryTheRosterAndRosterServesPeers) {
  HeartbeatReport a = Report("a");
  a.roster = {{"a", "127.0.0.1:1"}, {"b", "127.0.0.1:2"}};
  ClientResponse r = Call(http::verb::post, "/v1/heartbeat", a.ToJson().dump());
  ASSERT_EQ(r.status, 200u) << r.body;
  auto reply = HeartbeatReply::Parse(r.body);
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_GT(reply->version, 0u);
  ASSERT_EQ(reply->roster.size(), 2u);  // b, learned from a's roster
  EXPECT_EQ(reply->roster[1], (RosterEntry{"b", "127.0.0.1:2"}));
  EXPECT_TRUE(reply->removed.empty());

  ClientResponse roster = Call(http::verb::get, "/v1/roster");
  ASSERT_EQ(roster.status, 200u);
  auto doc = nlohmann::json::parse(roster.body, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << roster.body;
  EXPECT_EQ(doc["format"], 1);
  EXPECT_EQ(doc["members"].size(), 2u);

  EXPECT_EQ(Call(http::verb::delete_, "/v1/members/b").status, 204u);  // b is offline
  r = Call(http::verb::post, "/v1/heartbeat", a.ToJson().dump());
  reply = HeartbeatReply::Parse(r.body);
  ASSERT_TRUE(reply) << r.body;
  EXPECT_EQ(reply->roster.size(), 1u);  // a's stale roster does not bring b back
  EXPECT_EQ(reply->removed, std::vector<std::string>{"b"});
}

}  // namespace
}  // namespace wharf
