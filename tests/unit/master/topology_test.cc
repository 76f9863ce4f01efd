#include "master/topology.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/fs.h"
#include "common/metrics.h"

namespace wharf {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using TimePoint = std::chrono::steady_clock::time_point;

constexpr uint64_t kChunk = 100;

HeartbeatReport Report(std::string group, std::string id, uint64_t free = 1000,
                       MemberState state = MemberState::kActive) {
  HeartbeatReport r;
  r.group = std::move(group);
  r.id = std::move(id);
  r.addr = "127.0.0.1:" + std::to_string(7000 + r.id.size());
  r.state = state;
  r.capacity = 2000;
  r.free = free;
  r.reserve = 100;
  r.chunks = 5;
  r.busy = 1;
  r.interval_ms = 1000;
  return r;
}

uint64_t CounterValue(const std::string& name) { return Metrics().Counter(name, "").Value(); }

class TopologyTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wharf_master_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Topology> Make(std::string data_dir = "") {
    Topology::Options opts;
    opts.data_dir = data_dir.empty() ? dir_ : data_dir;
    opts.chunk_size = kChunk;
    return std::make_unique<Topology>(opts, [this] { return now_; });
  }

  MemberState StateOf(Topology& t, const std::string& group, const std::string& id) {
    ClusterMap map = t.Snapshot();
    const GroupInfo* g = map.FindGroup(group);
    if (g == nullptr) ADD_FAILURE() << "no group " << group;
    const MemberInfo* m = g ? g->FindMember(id) : nullptr;
    if (m == nullptr) ADD_FAILURE() << "no member " << id;
    return m ? m->state : MemberState::kOffline;
  }

  bool Writable(Topology& t, const std::string& group) {
    ClusterMap map = t.Snapshot();
    const GroupInfo* g = map.FindGroup(group);
    return g != nullptr && g->writable;
  }

  std::string dir_;
  TimePoint now_ = TimePoint{} + 1000h;
};

TEST(HeartbeatReportTest, JsonRoundTrip) {
  HeartbeatReport r = Report("g1", "cs1", 1234, MemberState::kSyncing);
  auto back = HeartbeatReport::FromJson(r.ToJson());
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->ToJson(), r.ToJson());
  EXPECT_EQ(r.ToJson().size(), 12u);  // with "missing" and "roster"
  EXPECT_EQ(r.ToJson()["state"], "syncing");
}

TEST(HeartbeatReportTest, ChunksAndBusyDefaultToZero) {
  json j = Report("g1", "cs1").ToJson();
  j.erase("chunks");
  j.erase("busy");
  auto r = HeartbeatReport::FromJson(j);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->chunks, 0u);
  EXPECT_EQ(r->busy, 0u);
}

TEST(HeartbeatReportTest, HostileJsonIsRejected) {
  const json good = Report("g1", "cs1").ToJson();
  std::vector<json> bad = {json(), json::array(), json(7), json("x")};
  for (const char* field :
       {"group", "id", "addr", "state", "capacity", "free", "reserve", "interval_ms"}) {
    json missing = good;
    missing.erase(field);
    bad.push_back(missing);
    for (json wrong : {json(), json(-1), json(1.5), json::array(), json::object(), json(true),
                       json(1e300), json(std::string(field) == "addr" ? "7" : "")}) {
      json j = good;
      j[field] = wrong;
      bad.push_back(j);
    }
  }
  for (auto [field, value] : std::vector<std::pair<const char*, json>>{{"state", "offline"},
                                                                       {"state", "ACTIVE"},
                                                                       {"interval_ms", 0},
                                                                       {"interval_ms", 3600001},
                                                                       {"group", ""},
                                                                       {"id", std::string(65, 'x')},
                                                                       {"id", "../etc"},
                                                                       {"addr", "no-port"},
                                                                       {"addr", "h:70000"},
                                                                       {"busy", -1},
                                                                       {"chunks", "many"}}) {
    json j = good;
    j[field] = value;
    bad.push_back(j);
  }
  for (const json& j : bad) {
    Result<HeartbeatReport> r = Err(Internal("unset"));
    EXPECT_NO_THROW(r = HeartbeatReport::FromJson(j)) << j.dump();
    ASSERT_FALSE(r) << j.dump();
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << j.dump();
  }
}

TEST(TopologyOptionsTest, Validate) {
  Topology::Options opts;
  EXPECT_FALSE(opts.Validate().ok());  // no chunk size
  opts.chunk_size = 16 << 20;
  EXPECT_TRUE(opts.Validate().ok());
  opts.readonly_after_intervals = 3;
  EXPECT_FALSE(opts.Validate().ok());
  opts.readonly_after_intervals = 0;
  EXPECT_FALSE(opts.Validate().ok());
}

TEST_F(TopologyTest, RejectsMalformedHeartbeats) {
  auto t = Make();
  uint64_t rejected = CounterValue("wharf_master_heartbeats_rejected_total");
  HeartbeatReport r = Report("g1", "cs1");
  r.addr = "";
  EXPECT_EQ(t->Heartbeat(r).code(), Code::kInvalidArgument);
  r = Report("g1", "cs1");
  r.state = MemberState::kOffline;
  EXPECT_EQ(t->Heartbeat(r).code(), Code::kInvalidArgument);
  EXPECT_EQ(CounterValue("wharf_master_heartbeats_rejected_total"), rejected + 2);
  EXPECT_TRUE(t->Snapshot().groups.empty());
}

TEST_F(TopologyTest, StateFollowsHeartbeatAge) {
  auto t = Make();
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  EXPECT_EQ(StateOf(*t, "g1", "a"), MemberState::kActive);
  now_ += 1500ms;  // exactly 1.5 intervals: not yet a missed heartbeat
  EXPECT_EQ(StateOf(*t, "g1", "a"), MemberState::kActive);
  now_ += 1ms;
  EXPECT_EQ(StateOf(*t, "g1", "a"), MemberState::kReadonly);
  now_ += 1498ms;  // 2999 ms
  EXPECT_EQ(StateOf(*t, "g1", "a"), MemberState::kReadonly);
  now_ += 1ms;  // 3 intervals
  EXPECT_EQ(StateOf(*t, "g1", "a"), MemberState::kOffline);
  now_ += 1h;
  EXPECT_EQ(StateOf(*t, "g1", "a"), MemberState::kOffline);
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  EXPECT_EQ(StateOf(*t, "g1", "a"), MemberState::kActive);
}

TEST_F(TopologyTest, IntervalIsPerMember) {
  auto t = Make();
  HeartbeatReport slow = Report("g1", "slow");
  slow.interval_ms = 10000;
  ASSERT_TRUE(t->Heartbeat(slow).ok());
  ASSERT_TRUE(t->Heartbeat(Report("g1", "fast")).ok());
  now_ += 5s;
  EXPECT_EQ(StateOf(*t, "g1", "slow"), MemberState::kActive);
  EXPECT_EQ(StateOf(*t, "g1", "fast"), MemberState::kOffline);
}

TEST_F(TopologyTest, ReportedStatesArePublished) {
  auto t = Make();
  ASSERT_TRUE(t->Heartbeat(Report("g1", "s", 1000, MemberState::kSyncing)).ok());
  ASSERT_TRUE(t->Heartbeat(Report("g1", "r", 1000, MemberState::kReadonly)).ok());
  EXPECT_EQ(StateOf(*t, "g1", "s"), MemberState::kSyncing);
  EXPECT_EQ(StateOf(*t, "g1", "r"), MemberState::kReadonly);
  now_ += 1200ms;
  EXPECT_EQ(StateOf(*t, "g1", "s"), MemberState::kSyncing);  // syncing stays syncing
  now_ += 400ms;
  EXPECT_EQ(StateOf(*t, "g1", "s"), MemberState::kReadonly);  // missed one
  EXPECT_EQ(StateOf(*t, "g1", "r"), MemberState::kReadonly);
  now_ += 2s;
  EXPECT_EQ(StateOf(*t, "g1", "r"), MemberState::kOffline);
  ASSERT_TRUE(t->Heartbeat(Report("g1", "s", 1000, MemberState::kActive)).ok());
  EXPECT_EQ(StateOf(*t, "g1", "s"), MemberState::kActive);  // sync done
}

TEST_F(TopologyTest, WritableNeedsEveryMemberActiveWithRoom) {
  auto t = Make();
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  ASSERT_TRUE(t->Heartbeat(Report("g1", "b", 1000, MemberState::kSyncing)).ok());
  EXPECT_FALSE(Writable(*t, "g1"));
  ASSERT_TRUE(t->Heartbeat(Report("g1", "b")).ok());
  EXPECT_TRUE(Writable(*t, "g1"));

  // free - reserve must hold one chunk on every member: 200 - 100 = 100 is exactly enough.
  ASSERT_TRUE(t->Heartbeat(Report("g1", "b", 200)).ok());
  EXPECT_TRUE(Writable(*t, "g1"));
  ASSERT_TRUE(t->Heartbeat(Report("g1", "b", 199)).ok());
  EXPECT_FALSE(Writable(*t, "g1"));
  ASSERT_TRUE(t->Heartbeat(Report("g1", "b", 50)).ok());  // under its reserve
  EXPECT_FALSE(Writable(*t, "g1"));
  ASSERT_TRUE(t->Heartbeat(Report("g1", "b")).ok());
  EXPECT_TRUE(Writable(*t, "g1"));

  // A member that went silent keeps its group unwritable: it is still a member.
  now_ += 1600ms;
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  EXPECT_FALSE(Writable(*t, "g1"));
  now_ += 10s;
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  ClusterMap map = t->Snapshot();
  ASSERT_EQ(map.groups.size(), 1u);
  EXPECT_EQ(map.groups[0].members.size(), 2u);
  EXPECT_FALSE(map.groups[0].writable);
  EXPECT_EQ(map.groups[0].members[1].state, MemberState::kOffline);
}

TEST_F(TopologyTest, SnapshotCarriesReportedNumbersSorted) {
  auto t = Make();
  ASSERT_TRUE(t->Heartbeat(Report("g2", "z")).ok());
  ASSERT_TRUE(t->Heartbeat(Report("g1", "y", 700)).ok());
  ASSERT_TRUE(t->Heartbeat(Report("g1", "x", 800)).ok());
  ClusterMap map = t->Snapshot();
  ASSERT_EQ(map.groups.size(), 2u);
  EXPECT_EQ(map.groups[0].id, "g1");
  ASSERT_EQ(map.groups[0].members.size(), 2u);
  const MemberInfo& x = map.groups[0].members[0];
  EXPECT_EQ(x.id, "x");
  EXPECT_EQ(x.addr, "127.0.0.1:7001");
  EXPECT_EQ(x.capacity, 2000u);
  EXPECT_EQ(x.free, 800u);
  EXPECT_EQ(x.reserve, 100u);
  EXPECT_EQ(x.chunks, 5u);
  EXPECT_EQ(x.busy, 1u);
  EXPECT_EQ(map.groups[0].members[1].id, "y");
}

TEST_F(TopologyTest, MemberIdIsUniqueAcrossGroups) {
  auto t = Make();
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  Status st = t->Heartbeat(Report("g2", "a"));
  EXPECT_EQ(st.code(), Code::kConflict);
  EXPECT_THAT(st.message(), testing::HasSubstr("g1"));
  EXPECT_EQ(t->Snapshot().FindGroup("g2"), nullptr);
  // Once forgotten, it may join another group.
  ASSERT_TRUE(t->ForgetMember("a").ok());
  EXPECT_TRUE(t->Heartbeat(Report("g2", "a")).ok());
}

TEST_F(TopologyTest, RestartKnowsAGroupIsDegradedAtOnce) {
  {
    auto t = Make();
    ASSERT_TRUE(t->Load().ok());
    ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
    ASSERT_TRUE(t->Heartbeat(Report("g1", "b")).ok());
    EXPECT_TRUE(Writable(*t, "g1"));
  }
  auto t = Make();
  ASSERT_TRUE(t->Load().ok());
  ClusterMap map = t->Snapshot();
  ASSERT_EQ(map.groups.size(), 1u);
  ASSERT_EQ(map.groups[0].members.size(), 2u);
  EXPECT_FALSE(map.groups[0].writable);
  EXPECT_EQ(map.groups[0].members[0].state, MemberState::kOffline);
  EXPECT_EQ(map.groups[0].members[0].addr, "127.0.0.1:7001");

  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  EXPECT_FALSE(Writable(*t, "g1"));  // b has not come back
  ASSERT_TRUE(t->Heartbeat(Report("g1", "b")).ok());
  EXPECT_TRUE(Writable(*t, "g1"));

  // A loaded member keeps its group: the id is already taken.
  auto t2 = Make();
  ASSERT_TRUE(t2->Load().ok());
  EXPECT_EQ(t2->Heartbeat(Report("g9", "a")).code(), Code::kConflict);
}

TEST_F(TopologyTest, ForgetMemberMakesTheGroupWritableAgainForGood) {
  {
    auto t = Make();
    ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
    ASSERT_TRUE(t->Heartbeat(Report("g1", "b")).ok());
    ASSERT_TRUE(t->Heartbeat(Report("g2", "c")).ok());
  }
  auto t = Make();
  ASSERT_TRUE(t->Load().ok());
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  EXPECT_FALSE(Writable(*t, "g1"));
  EXPECT_EQ(t->ForgetMember("nope").code(), Code::kNotFound);
  ASSERT_TRUE(t->ForgetMember("b").ok());
  EXPECT_TRUE(Writable(*t, "g1"));
  ASSERT_TRUE(t->ForgetMember("c").ok());  // the last member: the group goes away
  EXPECT_EQ(t->Snapshot().FindGroup("g2"), nullptr);

  auto t2 = Make();
  ASSERT_TRUE(t2->Load().ok());
  ClusterMap map = t2->Snapshot();
  ASSERT_EQ(map.groups.size(), 1u);
  ASSERT_EQ(map.groups[0].members.size(), 1u);
  EXPECT_EQ(map.groups[0].members[0].id, "a");
}

TEST_F(TopologyTest, AddressChangeIsPersisted) {
  {
    auto t = Make();
    HeartbeatReport r = Report("g1", "a");
    ASSERT_TRUE(t->Heartbeat(r).ok());
    r.addr = "10.0.0.9:7100";
    ASSERT_TRUE(t->Heartbeat(r).ok());
  }
  auto t = Make();
  ASSERT_TRUE(t->Load().ok());
  EXPECT_EQ(t->Snapshot().groups.at(0).members.at(0).addr, "10.0.0.9:7100");
}

TEST_F(TopologyTest, LoadWithoutFileIsEmptyAndCorruptFileIsAnError) {
  auto t = Make();
  ASSERT_TRUE(t->Load().ok());
  EXPECT_TRUE(t->Snapshot().groups.empty());
  for (const char* text : {"garbage", "{}", R"({"format": 2, "members": []})",
                           R"({"format": 1, "members": [{"group": "g1", "id": "a"}]})",
                           R"({"format": 1, "members": [{"group": "g1", "id": "a/b",
                              "addr": "h:1"}]})"}) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/members.json", text).ok());
    EXPECT_EQ(Make()->Load().code(), Code::kCorruption) << text;
  }
}

TEST_F(TopologyTest, FailedPersistIsCountedAndRetried) {
  std::string blocker = dir_ + "/blocker";
  ASSERT_TRUE(WriteFileAtomic(blocker, "x").ok());
  std::string data_dir = blocker + "/data";  // cannot be created: blocker is a file
  auto t = Make(data_dir);
  uint64_t errors = CounterValue("wharf_master_persist_errors_total");
  EXPECT_TRUE(t->Heartbeat(Report("g1", "a")).ok());  // accepted regardless
  EXPECT_EQ(CounterValue("wharf_master_persist_errors_total"), errors + 1);
  EXPECT_EQ(t->ForgetMember("a").code(), Code::kIOError);
  EXPECT_EQ(CounterValue("wharf_master_persist_errors_total"), errors + 2);

  std::filesystem::remove(blocker);
  EXPECT_TRUE(t->Heartbeat(Report("g1", "b")).ok());
  EXPECT_TRUE(t->Heartbeat(Report("g1", "b")).ok());  // nothing new, nothing pending
  EXPECT_EQ(CounterValue("wharf_master_persist_errors_total"), errors + 2);
  auto t2 = Make(data_dir);
  ASSERT_TRUE(t2->Load().ok());
  ClusterMap map = t2->Snapshot();
  ASSERT_EQ(map.groups.size(), 1u);
  ASSERT_EQ(map.groups[0].members.size(), 1u);
  EXPECT_EQ(map.groups[0].members[0].id, "b");
}

TEST_F(TopologyTest, VersionChangesIffContentChanges) {
  auto t = Make();
  uint64_t v0 = t->Snapshot().version;
  EXPECT_EQ(v0, 1u);
  EXPECT_EQ(t->Snapshot().version, v0);

  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  uint64_t v1 = t->Snapshot().version;
  EXPECT_GT(v1, v0);
  EXPECT_EQ(t->Snapshot().version, v1);

  now_ += 500ms;
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());  // same numbers
  EXPECT_EQ(t->Snapshot().version, v1);

  HeartbeatReport r = Report("g1", "a", 999);
  ASSERT_TRUE(t->Heartbeat(r).ok());  // free changed
  uint64_t v2 = t->Snapshot().version;
  EXPECT_GT(v2, v1);

  r.busy = 7;  // busy is in the full map the gateways use
  ASSERT_TRUE(t->Heartbeat(r).ok());
  uint64_t v3 = t->Snapshot().version;
  EXPECT_GT(v3, v2);

  now_ += 1600ms;  // only time passes: a -> readonly
  uint64_t v4 = t->Snapshot().version;
  EXPECT_GT(v4, v3);
  now_ += 100ms;
  EXPECT_EQ(t->Snapshot().version, v4);
  now_ += 2s;  // offline
  EXPECT_GT(t->Snapshot().version, v4);
}

TEST_F(TopologyTest, FirstVersionCanBeSeeded) {
  Topology::Options opts;
  opts.chunk_size = kChunk;
  opts.first_version = 1700000000000;
  Topology t(opts, [this] { return now_; });
  EXPECT_EQ(t.Snapshot().version, 1700000000000u);
  ASSERT_TRUE(t.Heartbeat(Report("g1", "a")).ok());
  EXPECT_EQ(t.Snapshot().version, 1700000000001u);
}

TEST_F(TopologyTest, SnapshotJsonHasTheStatusShape) {
  auto t = Make();
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  json j = t->Snapshot().ToJson(false);
  const json& m = j["groups"][0]["members"][0];
  EXPECT_EQ(j.size(), 2u);
  EXPECT_EQ(j["groups"][0].size(), 5u);
  EXPECT_EQ(m.size(), 7u);
  EXPECT_EQ(m["state"], "active");
  auto back = ClusterMap::FromJson(t->Snapshot().ToJson(true));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, t->Snapshot());
}

TEST_F(TopologyTest, ConcurrentHeartbeatsAndSnapshots) {
  Topology::Options opts;
  opts.chunk_size = kChunk;  // no data dir: memory only
  Topology t(opts);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&t, i] {
      for (int n = 0; n < 200; ++n) {
        HeartbeatReport r = Report("g" + std::to_string(i % 2), "m" + std::to_string(i), 1000 + n);
        EXPECT_TRUE(t.Heartbeat(r).ok());
        (void)t.Snapshot();
      }
    });
  }
  for (auto& th : threads) th.join();
  ClusterMap map = t.Snapshot();
  ASSERT_EQ(map.groups.size(), 2u);
  EXPECT_TRUE(map.groups[0].writable);
  EXPECT_EQ(map.groups[0].members.size() + map.groups[1].members.size(), 4u);
}

}  // namespace
}  // namespace wharf
