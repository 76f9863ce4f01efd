// The roster union (master/topology.h): members' reported rosters and peer masters' lists make
// a master that lost its data dir know every member of a group, so that the group is writable
// only when all of them are active.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "master/heartbeat.h"
#include "master/topology.h"

namespace wharf {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using TimePoint = std::chrono::steady_clock::time_point;

HeartbeatReport Report(std::string group, std::string id, std::vector<std::string> roster = {},
                       uint64_t missing = 0) {
  HeartbeatReport r;
  r.group = std::move(group);
  r.id = std::move(id);
  r.addr = "127.0.0.1:" + std::to_string(7000 + r.id.back());
  r.state = MemberState::kActive;
  r.capacity = 2000;
  r.free = 1000;
  r.interval_ms = 1000;
  r.missing = missing;
  for (auto& m : roster) r.roster.push_back({m, "127.0.0.1:" + std::to_string(7000 + m.back())});
  return r;
}

class RosterTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wharf_roster_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Topology> Make(bool on_disk = false) {
    Topology::Options opts;
    opts.data_dir = on_disk ? dir_ : "";
    opts.chunk_size = 100;
    return std::make_unique<Topology>(opts, [this] { return now_; });
  }
  static const GroupInfo* Group(const ClusterMap& map, const std::string& id) {
    return map.FindGroup(id);
  }

  std::string dir_;
  TimePoint now_ = TimePoint{} + 1000h;
};

TEST(HeartbeatRosterTest, RoundTripAndDefaults) {
  HeartbeatReport r = Report("g1", "a", {"a", "b"}, 7);
  auto back = HeartbeatReport::FromJson(r.ToJson());
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->roster, r.roster);
  EXPECT_EQ(back->missing, 7u);
  json old = r.ToJson();  // what a member of an older version sends
  old.erase("roster");
  old.erase("missing");
  auto parsed = HeartbeatReport::FromJson(old);
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  EXPECT_TRUE(parsed->roster.empty());
  EXPECT_EQ(parsed->missing, 0u);
}

TEST(HeartbeatRosterTest, HostileRostersAreRejected) {
  const json good = Report("g1", "a", {"a", "b"}).ToJson();
  json many = json::array();
  for (int i = 0; i <= static_cast<int>(kMaxRosterEntries); ++i) {
    many.push_back({{"id", "m" + std::to_string(i)}, {"addr", "h:1"}});
  }
  std::vector<json> rosters = {
      json("x"),
      json(7),
      json::object(),
      json::array({7}),
      json::array({json::object()}),
      json::array({{{"id", "a"}}}),
      json::array({{{"addr", "h:1"}}}),
      json::array({{{"id", "../x"}, {"addr", "h:1"}}}),
      json::array({{{"id", "a"}, {"addr", "h:0"}}}),
      json::array({{{"id", "a"}, {"addr", 5}}}),
      json::array({{{"id", std::string(65, 'a')}, {"addr", "h:1"}}}),
      json::array({{{"id", "a"}, {"addr", "h:1"}}, {{"id", "a"}, {"addr", "h:2"}}}),
      many};
  for (const json& roster : rosters) {
    json j = good;
    j["roster"] = roster;
    Result<HeartbeatReport> r = Err(Internal("unset"));
    EXPECT_NO_THROW(r = HeartbeatReport::FromJson(j)) << roster.dump();
    ASSERT_FALSE(r) << roster.dump();
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  }
  for (json missing : {json(-1), json("1"), json(1.5)}) {
    json j = good;
    j["missing"] = missing;
    EXPECT_FALSE(HeartbeatReport::FromJson(j)) << missing.dump();
  }
}

TEST(HeartbeatReplyTest, ParsesOldAndNewRepliesAndRefusesHostileOnes) {
  auto old = HeartbeatReply::Parse(R"({"version": 7})");
  ASSERT_TRUE(old) << old.error().ToString();
  EXPECT_EQ(old->version, 7u);
  EXPECT_TRUE(old->roster.empty() && old->removed.empty());
  HeartbeatReply r;
  r.version = 9;
  r.roster = {{"a", "h:1"}, {"b", "h:2"}};
  r.removed = {"c"};
  auto back = HeartbeatReply::Parse(r.ToJson().dump());
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->roster, r.roster);
  EXPECT_EQ(back->removed, r.removed);
  for (const char* bad : {"", "[]", "7", "{", R"({"version": -1})", R"({"roster": []})",
                          R"({"version": 1, "roster": 5})", R"({"version": 1, "removed": "c"})",
                          R"({"version": 1, "removed": [5]})", R"({"version": 1, "removed": [""]})",
                          R"({"version": 1, "removed": ["../c"]})",
                          R"({"version": 1, "roster": [{"id": "a", "addr": "nope"}]})"}) {
    Result<HeartbeatReply> p = Err(Internal("unset"));
    EXPECT_NO_THROW(p = HeartbeatReply::Parse(bad)) << bad;
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error().code(), Code::kInvalidArgument) << bad;
  }
}

// The defect: a master that lost its data dir heard from one member only and made the group
// writable on one copy. The member's roster names its peer, so the group waits for it.
TEST_F(RosterTest, AWipedMasterWaitsForTheWholeReportedRoster) {
  auto t = Make();
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a", {"a", "b"})).ok());
  ClusterMap map = t->Snapshot();
  const GroupInfo* g = Group(map, "g1");
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->members.size(), 2u);
  const MemberInfo* b = g->FindMember("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->state, MemberState::kOffline);
  EXPECT_EQ(b->addr, "127.0.0.1:7098");
  EXPECT_FALSE(g->writable);

  now_ += 500ms;
  ASSERT_TRUE(t->Heartbeat(Report("g1", "b", {"a", "b"})).ok());
  EXPECT_TRUE(Group(t->Snapshot(), "g1")->writable);
  // b falls silent: readonly after 1.5 intervals, offline after 3; never writable meanwhile.
  now_ += 1600ms;
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a", {"a", "b"})).ok());
  map = t->Snapshot();
  EXPECT_EQ(Group(map, "g1")->FindMember("b")->state, MemberState::kReadonly);
  EXPECT_FALSE(Group(map, "g1")->writable);
  now_ += 1500ms;
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a", {"a", "b"})).ok());
  map = t->Snapshot();
  EXPECT_EQ(Group(map, "g1")->FindMember("b")->state, MemberState::kOffline);
  EXPECT_FALSE(Group(map, "g1")->writable);
  // The roster a master answers with names both.
  std::vector<RosterEntry> roster;
  std::vector<std::string> removed;
  t->RosterOf("g1", &roster, &removed);
  ASSERT_EQ(roster.size(), 2u);
  EXPECT_EQ(roster[1].id, "b");
  EXPECT_TRUE(removed.empty());
}

TEST_F(RosterTest, ARosterDoesNotMoveAMemberNorOverrideItsAddress) {
  auto t = Make();
  HeartbeatReport c = Report("g2", "c");
  c.addr = "10.0.0.3:7000";
  ASSERT_TRUE(t->Heartbeat(c).ok());
  HeartbeatReport a = Report("g1", "a", {"a", "c"});
  ASSERT_TRUE(t->Heartbeat(a).ok());
  ClusterMap map = t->Snapshot();
  EXPECT_EQ(Group(map, "g1")->members.size(), 1u);
  EXPECT_EQ(Group(map, "g2")->FindMember("c")->addr, "10.0.0.3:7000");
  EXPECT_TRUE(Group(map, "g1")->writable);
}

TEST_F(RosterTest, ADecommissionedMemberStaysGoneUntilItReportsItself) {
  auto t = Make(/*on_disk=*/true);
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a", {"a", "b"})).ok());
  ASSERT_TRUE(t->Heartbeat(Report("g1", "b", {"a", "b"})).ok());
  ASSERT_TRUE(t->ForgetMember("b").ok());
  // a has not heard of the removal yet: its stale roster does not bring b back.
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a", {"a", "b"})).ok());
  ClusterMap map = t->Snapshot();
  EXPECT_EQ(Group(map, "g1")->FindMember("b"), nullptr);
  EXPECT_TRUE(Group(map, "g1")->writable);
  EXPECT_EQ(Group(map, "g1")->removed, std::vector<std::string>{"b"});
  std::vector<RosterEntry> roster;
  std::vector<std::string> removed;
  t->RosterOf("g1", &roster, &removed);
  EXPECT_EQ(roster.size(), 1u);
  EXPECT_EQ(removed, std::vector<std::string>{"b"});
  // The removal survives a restart of the master.
  auto t2 = Make(/*on_disk=*/true);
  ASSERT_TRUE(t2->Load().ok());
  ASSERT_TRUE(t2->Heartbeat(Report("g1", "a", {"a", "b"})).ok());
  EXPECT_EQ(Group(t2->Snapshot(), "g1")->FindMember("b"), nullptr);
  EXPECT_EQ(Group(t2->Snapshot(), "g1")->removed, std::vector<std::string>{"b"});
  // A new member replaces it: the group is back to its size, no longer reduced.
  ASSERT_TRUE(t2->Heartbeat(Report("g1", "d")).ok());
  EXPECT_TRUE(Group(t2->Snapshot(), "g1")->removed.empty());
  // b itself reporting again is simply a new member.
  ASSERT_TRUE(t2->ForgetMember("d").ok());
  ASSERT_TRUE(t2->Heartbeat(Report("g1", "b")).ok());
  EXPECT_NE(Group(t2->Snapshot(), "g1")->FindMember("b"), nullptr);
}

TEST_F(RosterTest, PeerRostersAreMergedAndTheirRemovalsAdopted) {
  auto peer = Make();
  ASSERT_TRUE(peer->Heartbeat(Report("g1", "a")).ok());
  ASSERT_TRUE(peer->Heartbeat(Report("g1", "b")).ok());
  ASSERT_TRUE(peer->Heartbeat(Report("g2", "c")).ok());
  auto t = Make();  // lost its data dir; heard from a only
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  ASSERT_TRUE(t->MergePeerRoster(peer->ExportRoster().dump()).ok());
  ClusterMap map = t->Snapshot();
  ASSERT_NE(Group(map, "g2"), nullptr);
  EXPECT_EQ(Group(map, "g2")->FindMember("c")->state, MemberState::kOffline);
  EXPECT_EQ(Group(map, "g1")->members.size(), 2u);
  EXPECT_FALSE(Group(map, "g1")->writable);

  // The operator removed b and c on the peer: this master forgets them too (it does not hear
  // from them), but not a, which it hears from.
  ASSERT_TRUE(peer->ForgetMember("b").ok());
  ASSERT_TRUE(peer->ForgetMember("c").ok());
  ASSERT_TRUE(peer->ForgetMember("a").ok());
  ASSERT_TRUE(t->MergePeerRoster(peer->ExportRoster().dump()).ok());
  map = t->Snapshot();
  EXPECT_EQ(Group(map, "g2"), nullptr);
  ASSERT_NE(Group(map, "g1"), nullptr);
  EXPECT_NE(Group(map, "g1")->FindMember("a"), nullptr);
  EXPECT_EQ(Group(map, "g1")->FindMember("b"), nullptr);
  EXPECT_TRUE(Group(map, "g1")->writable);
}

TEST_F(RosterTest, HostilePeerRostersAreRefusedWhole) {
  auto t = Make();
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a")).ok());
  for (const char* bad :
       {"", "[]", "{}", R"({"format": 2, "members": []})", R"({"format": 1})",
        R"({"format": 1, "members": [{"group": "g1", "id": "x", "addr": "nope"}]})",
        R"({"format": 1, "members": [{"group": "g1", "id": "x", "addr": "h:1"}], "removed": 3})",
        R"({"format": 1, "members": [{"group": "g1", "id": "x", "addr": "h:1"}],
            "removed": [{"group": "g1", "id": "../a"}]})",
        R"({"format": 1, "members": [{"group": "g1", "id": "x", "addr": "h:1"}],
            "removed": [{"group": "g1", "id": "a", "at_ms": -5}]})"}) {
    EXPECT_EQ(t->MergePeerRoster(bad).code(), Code::kInvalidArgument) << bad;
  }
  ClusterMap map = t->Snapshot();
  EXPECT_EQ(Group(map, "g1")->members.size(), 1u);  // nothing of them was merged
  EXPECT_TRUE(Group(map, "g1")->writable);
}

TEST_F(RosterTest, UnderReplicatedSumsWhatLiveMembersMiss) {
  auto t = Make();
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a", {}, 3)).ok());
  ASSERT_TRUE(t->Heartbeat(Report("g1", "b", {}, 2)).ok());
  ClusterMap map = t->Snapshot();
  EXPECT_EQ(Group(map, "g1")->under_replicated, 5u);
  EXPECT_EQ(Group(map, "g1")->FindMember("a")->missing, 3u);
  now_ += 1000ms;
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a", {}, 0)).ok());
  now_ += 2500ms;  // b offline: what it said is stale
  ASSERT_TRUE(t->Heartbeat(Report("g1", "a", {}, 0)).ok());
  EXPECT_EQ(Group(t->Snapshot(), "g1")->under_replicated, 0u);
  // The status JSON carries both and parses back.
  auto back = ClusterMap::Parse(t->Snapshot().ToJson(false).dump());
  ASSERT_TRUE(back) << back.error().ToString();
}

}  // namespace
}  // namespace wharf
