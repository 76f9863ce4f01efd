// A whole cluster in this process (LocalCluster, what `wharf up` runs) on free ports in a temp
// dir, driven through the gateway's file API with the project's HttpClient.
#include "cli/local_cluster.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/async.h"
#include "common/fs.h"
#include "common/metrics.h"
#include "http/client.h"

namespace wharf {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class LocalClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wharf_local_cluster_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  LocalClusterOptions Options() const {
    LocalClusterOptions o;
    o.data_dir = dir_ + "/data";
    o.base_port = 0;
    o.gateway.listen = "127.0.0.1:0";
    o.reserve = Reserve{false, 0};
    o.chunk_size = 64 * 1024;
    o.heartbeat = 200ms;
    return o;
  }

  // Runs `fn(client)` to completion on a loop of the test's own.
  template <typename F>
  void Run(F fn) {
    asio::io_context io;
    HttpClient client(io.get_executor());
    bool done = false;
    asio::co_spawn(
        io, [&]() -> awaitable<void> { co_await fn(client); },
        [&](std::exception_ptr e) {
          done = true;
          if (e) std::rethrow_exception(e);
        });
    while (!done) io.run_one();
  }

  std::string dir_;
};

TEST_F(LocalClusterTest, PutsAFileThroughTheGatewayAndReadsItBack) {
  LocalCluster cluster(Options());
  ASSERT_TRUE(cluster.Start().ok());
  ASSERT_EQ(cluster.members().size(), 4u);
  const std::string gw = cluster.gateway_address();
  ASSERT_FALSE(gw.empty());

  std::string content;  // 4 chunks of at most 64 KiB
  for (int i = 0; i < 200'000; ++i) content += static_cast<char>('a' + (i * 7919) % 26);
  // Each chunkserver counts its own requests (one process, four chunkservers).
  auto puts_of = [](const std::string& member) {
    return Metrics().Counter("wharf_chunkserver_puts_total", "", {{"member", member}}).Value();
  };
  auto http_puts_of = [](const std::string& member) {
    return Metrics()
        .Counter("wharf_chunkserver_http_requests_total", "",
                 {{"member", member}, {"method", "PUT"}, {"code", "201"}})
        .Value();
  };
  std::map<std::string, uint64_t> puts0, http0;
  for (const auto& m : cluster.members()) {
    puts0[m.id] = puts_of(m.id);
    http0[m.id] = http_puts_of(m.id);
  }
  const uint64_t unlabelled0 = Metrics().Counter("wharf_chunkserver_puts_total", "").Value();
  Run([&](HttpClient& client) -> awaitable<void> {
    // Healthy once the map it caches has a writable group (every member heartbeated).
    unsigned health = 0;
    for (auto deadline = std::chrono::steady_clock::now() + 30s;
         health != 200 && std::chrono::steady_clock::now() < deadline;) {
      auto r = co_await client.Request(gw, http::verb::get, "/healthz");
      health = r ? r->status : 0;
      if (health != 200) co_await SleepFor(100ms);
    }
    EXPECT_EQ(health, 200u) << "the gateway never became healthy";

    HeaderList headers = {{"Content-Type", "application/x-test"}};
    auto put = co_await client.Request(gw, http::verb::post, "/files", content, headers);
    EXPECT_TRUE(put.has_value());
    if (!put) co_return;
    EXPECT_EQ(put->status, 201u) << put->body;
    auto reply = nlohmann::json::parse(put->body, nullptr, false);
    EXPECT_TRUE(reply.is_object() && reply.contains("id") && reply["id"].is_string()) << put->body;
    if (!reply.is_object() || !reply.contains("id") || !reply["id"].is_string()) co_return;
    EXPECT_EQ(reply.value("size", uint64_t{0}), content.size());

    auto get =
        co_await client.Request(gw, http::verb::get, "/files/" + reply["id"].get<std::string>());
    EXPECT_TRUE(get.has_value());
    if (!get) co_return;
    EXPECT_EQ(get->status, 200u);
    EXPECT_EQ(get->header("Content-Type"), "application/x-test");
    EXPECT_TRUE(get->body == content) << "read back " << get->body.size() << " bytes";
  });

  // Every chunk went to both members of a group: 4 chunks, 8 puts, each counted by its member.
  uint64_t puts = 0;
  for (const auto& m : cluster.members()) {
    uint64_t n = puts_of(m.id) - puts0[m.id];
    EXPECT_EQ(http_puts_of(m.id) - http0[m.id], n) << m.id;
    puts += n;
  }
  EXPECT_EQ(puts, 8u);
  EXPECT_EQ(Metrics().Counter("wharf_chunkserver_puts_total", "").Value(), unlabelled0);

  cluster.Stop();
  cluster.Stop();  // idempotent
  EXPECT_TRUE(fs::exists(dir_ + "/data/meta.db"));
  EXPECT_TRUE(fs::exists(dir_ + "/data/master/members.json"));
  for (const char* m : {"g1-a", "g1-b", "g2-a", "g2-b"}) {
    EXPECT_TRUE(fs::is_directory(dir_ + "/data/" + m + "/chunks")) << m;
  }
}

TEST_F(LocalClusterTest, BadOptionsStartNothingAndCreateNothing) {
  std::vector<std::pair<std::string, LocalClusterOptions>> cases;
  auto add = [&](std::string name, auto mutate) {
    LocalClusterOptions o = Options();
    mutate(o);
    cases.emplace_back(std::move(name), o);
  };
  add("listen not HOST:PORT", [](auto& o) { o.gateway.listen = "nonsense"; });
  add("listen host not an IP", [](auto& o) { o.gateway.listen = "no.such.host:5000"; });
  add("listen port out of range", [](auto& o) { o.gateway.listen = "127.0.0.1:99999"; });
  add("cluster host not an IP", [](auto& o) { o.host = "not an address"; });
  add("cluster port negative", [](auto& o) { o.base_port = -1; });
  add("cluster port leaves no room", [](auto& o) { o.base_port = 65534; });
  add("reserve percent", [](auto& o) { o.reserve = Reserve{true, 150}; });
  add("tiny chunk size", [](auto& o) { o.chunk_size = 100; });
  add("empty data dir", [](auto& o) { o.data_dir = ""; });
  for (const auto& [name, o] : cases) {
    LocalCluster cluster(o);
    Status st = cluster.Start();
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << name << ": " << st.ToString();
    EXPECT_TRUE(cluster.master_address().empty()) << name;
    EXPECT_FALSE(fs::exists(dir_ + "/data")) << name << ": created the data dir";
  }
}

TEST_F(LocalClusterTest, WharfUpWithABadListenAddressCreatesNothing) {
  // issue 13: this used to start the master and four chunkservers and create the data dir.
  int rc = cli::RunUp({"--data", dir_ + "/data", "--listen", "nonsense", "--cluster-port", "0"});
  EXPECT_NE(rc, 0);
  EXPECT_FALSE(fs::exists(dir_ + "/data"));
}

TEST_F(LocalClusterTest, ADaemonThatCannotStartStopsTheOthers) {
  LocalCluster first(Options());
  ASSERT_TRUE(first.Start().ok());
  LocalClusterOptions o = Options();
  o.data_dir = dir_ + "/second";
  o.gateway.listen = first.gateway_address();  // in use
  LocalCluster second(o);
  Status st = second.Start();
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("gateway"), std::string::npos) << st.ToString();
  second.Stop();
  first.Stop();
}

}  // namespace
}  // namespace wharf
