#include "master/cluster_map.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace wharf {
namespace {

using nlohmann::json;

ClusterMap SampleMap() {
  ClusterMap map;
  map.version = 42;
  map.groups = {
      GroupInfo{.id = "g1",
                .writable = true,
                .members = {MemberInfo{.id = "a",
                                       .addr = "127.0.0.1:7001",
                                       .state = MemberState::kActive,
                                       .capacity = 1000,
                                       .free = 600,
                                       .reserve = 100,
                                       .chunks = 12,
                                       .busy = 3},
                            MemberInfo{.id = "b",
                                       .addr = "[::1]:7002",
                                       .state = MemberState::kActive,
                                       .capacity = 1000,
                                       .free = 500,
                                       .reserve = 100,
                                       .chunks = 12,
                                       .busy = 0}},
                .removed = {}},
      GroupInfo{.id = "g2",
                .writable = false,
                .members = {MemberInfo{
                    .id = "c", .addr = "host-c.example:7003", .state = MemberState::kOffline}},
                .removed = {}},
  };
  return map;
}

TEST(MemberStateTest, NamesRoundTrip) {
  for (auto s : {MemberState::kSyncing, MemberState::kActive, MemberState::kReadonly,
                 MemberState::kOffline}) {
    EXPECT_EQ(*ParseMemberState(MemberStateName(s)), s);
  }
  EXPECT_EQ(MemberStateName(MemberState::kReadonly), "readonly");
  EXPECT_FALSE(ParseMemberState("Active"));
  EXPECT_FALSE(ParseMemberState(""));
}

TEST(ValidateTest, IdsAndAddresses) {
  EXPECT_TRUE(ValidateId("id", "cs-1.a_b").ok());
  EXPECT_FALSE(ValidateId("id", "").ok());
  EXPECT_FALSE(ValidateId("id", std::string(65, 'a')).ok());
  EXPECT_TRUE(ValidateId("id", std::string(64, 'a')).ok());
  EXPECT_FALSE(ValidateId("id", "a/b").ok());
  EXPECT_FALSE(ValidateId("id", "a b").ok());
  EXPECT_FALSE(ValidateId("id", std::string("a\0b", 3)).ok());

  EXPECT_TRUE(ValidateAddr("127.0.0.1:7001").ok());
  EXPECT_TRUE(ValidateAddr("[::1]:65535").ok());
  EXPECT_TRUE(ValidateAddr("chunk-1.local:80").ok());
  for (const char* bad : {"", "127.0.0.1", ":7001", "h:0", "h:65536", "h:", "h:7o01",
                          "h:99999999999999999999", "h:7001/x", "h :7001", "h:-1"}) {
    EXPECT_EQ(ValidateAddr(bad).code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ValidateAddr(std::string(300, 'a') + ":1").ok());
}

TEST(ClusterMapTest, StatusShapeIsExact) {
  json j = SampleMap().ToJson(/*full=*/false);
  json expected = json::parse(R"({"version": 42, "groups": [
    {"id": "g1", "writable": true, "under_replicated": 0, "removed": [], "members": [
      {"id": "a", "addr": "127.0.0.1:7001", "state": "active", "capacity": 1000, "free": 600,
       "chunks": 12, "missing": 0},
      {"id": "b", "addr": "[::1]:7002", "state": "active", "capacity": 1000, "free": 500,
       "chunks": 12, "missing": 0}]},
    {"id": "g2", "writable": false, "under_replicated": 0, "removed": [], "members": [
      {"id": "c", "addr": "host-c.example:7003", "state": "offline", "capacity": 0, "free": 0,
       "chunks": 0, "missing": 0}]}]})");
  EXPECT_EQ(j, expected) << j.dump(2);
}

TEST(ClusterMapTest, FullShapeAddsReserveAndBusy) {
  json j = SampleMap().ToJson(/*full=*/true);
  const json& a = j["groups"][0]["members"][0];
  EXPECT_EQ(a["reserve"], 100);
  EXPECT_EQ(a["busy"], 3);
  EXPECT_EQ(a.size(), 9u);
}

TEST(ClusterMapTest, UnderReplicatedAndRemovedAreOptionalAndValidated) {
  ClusterMap map = SampleMap();
  map.groups[0].under_replicated = 4;
  map.groups[0].removed = {"x", "y"};
  map.groups[0].members[0].missing = 4;
  auto back = ClusterMap::Parse(map.ToJson(false).dump());
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->groups[0].under_replicated, 4u);
  EXPECT_EQ(back->groups[0].removed, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(back->groups[0].members[0].missing, 4u);
  for (json bad : {json(-1), json("x"), json::array({5}), json::array({"../x"}), json(true)}) {
    json j = map.ToJson(false);
    j["groups"][0]["removed"] = bad;
    j["groups"][0]["under_replicated"] = bad;
    EXPECT_FALSE(ClusterMap::FromJson(j)) << bad.dump();
    json k = map.ToJson(false);
    k["groups"][0]["members"][0]["missing"] = bad;
    EXPECT_FALSE(ClusterMap::FromJson(k)) << bad.dump();
  }
}

TEST(ClusterMapTest, RoundTrips) {
  ClusterMap map = SampleMap();
  auto full = ClusterMap::FromJson(map.ToJson(true));
  ASSERT_TRUE(full) << full.error().ToString();
  EXPECT_EQ(*full, map);

  auto status = ClusterMap::Parse(map.ToJson(false).dump());
  ASSERT_TRUE(status) << status.error().ToString();
  ClusterMap without_extras = map;
  for (auto& g : without_extras.groups) {
    for (auto& m : g.members) m.reserve = m.busy = 0;
  }
  EXPECT_EQ(*status, without_extras);
}

TEST(ClusterMapTest, FromJsonSortsGroupsAndMembers) {
  auto map = ClusterMap::Parse(R"({"version": 1, "groups": [
    {"id": "g2", "writable": true, "members": []},
    {"id": "g1", "writable": true, "members": [
      {"id": "z", "addr": "h:1", "state": "active", "capacity": 1, "free": 1, "chunks": 0},
      {"id": "m", "addr": "h:2", "state": "syncing", "capacity": 1, "free": 1, "chunks": 0}]}]})");
  ASSERT_TRUE(map) << map.error().ToString();
  ASSERT_EQ(map->groups.size(), 2u);
  EXPECT_EQ(map->groups[0].id, "g1");
  EXPECT_EQ(map->groups[0].members[0].id, "m");
  EXPECT_EQ(map->groups[0].members[0].state, MemberState::kSyncing);
  EXPECT_NE(map->FindGroup("g2"), nullptr);
  EXPECT_EQ(map->FindGroup("g3"), nullptr);
}

TEST(GroupInfoTest, MinAvailableAndBusy) {
  GroupInfo g = SampleMap().groups[0];
  EXPECT_EQ(g.MinAvailable(), 400u);
  EXPECT_EQ(g.Busy(), 3u);
  g.members[1].free = 50;  // under its reserve
  EXPECT_EQ(g.MinAvailable(), 0u);
  EXPECT_EQ(GroupInfo{}.MinAvailable(), 0u);
  g.members[0].busy = UINT64_MAX;
  g.members[1].busy = 5;
  EXPECT_EQ(g.Busy(), UINT64_MAX);  // saturates
}

// Each of these must come back kInvalidArgument, never throw.
TEST(ClusterMapTest, HostileJsonIsRejected) {
  const char* bad[] = {
      "",
      "null",
      "[]",
      "42",
      "\"x\"",
      "{",
      R"({})",
      R"({"groups": []})",
      R"({"version": 1})",
      R"({"version": -1, "groups": []})",
      R"({"version": 1.5, "groups": []})",
      R"({"version": "1", "groups": []})",
      R"({"version": 1e300, "groups": []})",
      R"({"version": 18446744073709551616, "groups": []})",
      R"({"version": 1, "groups": {}})",
      R"({"version": 1, "groups": [null]})",
      R"({"version": 1, "groups": [[]]})",
      R"({"version": 1, "groups": [{"id": 7, "writable": true, "members": []}]})",
      R"({"version": 1, "groups": [{"id": "g", "writable": "yes", "members": []}]})",
      R"({"version": 1, "groups": [{"id": "g", "writable": true}]})",
      R"({"version": 1, "groups": [{"id": "g/..", "writable": true, "members": []}]})",
      R"({"version": 1, "groups": [{"id": "g", "writable": true, "members": [{}]}]})",
      R"({"version": 1, "groups": [{"id": "g", "writable": true, "members": [
          {"id": "a", "addr": "h:1", "state": "dead", "capacity": 1, "free": 1, "chunks": 0}]}]})",
      R"({"version": 1, "groups": [{"id": "g", "writable": true, "members": [
          {"id": "a", "addr": "h", "state": "active", "capacity": 1, "free": 1, "chunks": 0}]}]})",
      R"({"version": 1, "groups": [{"id": "g", "writable": true, "members": [
          {"id": "a", "addr": "h:1", "state": "active", "capacity": -5, "free": 1, "chunks": 0}]}]})",
      R"({"version": 1, "groups": [{"id": "g", "writable": true, "members": [
          {"id": "a", "addr": "h:1", "state": "active", "capacity": 1, "free": 1e400, "chunks": 0}]}]})",
      R"({"version": 1, "groups": [{"id": "g", "writable": true, "members": [
          {"id": "a", "addr": "h:1", "state": "active", "capacity": 1, "free": 1, "chunks": 0,
           "busy": true}]}]})",
      R"({"version": 1, "groups": [{"id": "g", "writable": true, "members": []},
                                    {"id": "g", "writable": true, "members": []}]})",
      R"({"version": 1, "groups": [
          {"id": "g1", "writable": true, "members": [
            {"id": "a", "addr": "h:1", "state": "active", "capacity": 1, "free": 1, "chunks": 0}]},
          {"id": "g2", "writable": true, "members": [
            {"id": "a", "addr": "h:2", "state": "active", "capacity": 1, "free": 1, "chunks": 0}]}]})",
  };
  for (const char* text : bad) {
    Result<ClusterMap> map = Err(Internal("unset"));
    EXPECT_NO_THROW(map = ClusterMap::Parse(text)) << text;
    ASSERT_FALSE(map) << text;
    EXPECT_EQ(map.error().code(), Code::kInvalidArgument) << text;
  }
}

TEST(ClusterMapTest, DeeplyNestedGarbageIsRejected) {
  const int depth = 100000;
  std::string arrays = std::string(depth, '[') + std::string(depth, ']');
  std::string objects;
  for (int i = 0; i < depth; ++i) objects += "{\"groups\":";
  objects += "1" + std::string(depth, '}');
  std::string in_groups = R"({"version": 1, "groups": )" + arrays + "}";
  for (const std::string* text : {&arrays, &objects, &in_groups}) {
    Result<ClusterMap> map = Err(Internal("unset"));
    EXPECT_NO_THROW(map = ClusterMap::Parse(*text));
    ASSERT_FALSE(map);
    EXPECT_EQ(map.error().code(), Code::kInvalidArgument);
  }
}

TEST(ClusterMapTest, BuiltJsonWithSignedIntegersIsAccepted) {
  json j = {{"version", 3}, {"groups", json::array()}};  // int, not unsigned
  auto map = ClusterMap::FromJson(j);
  ASSERT_TRUE(map) << map.error().ToString();
  EXPECT_EQ(map->version, 3u);
  j["version"] = -3;
  EXPECT_FALSE(ClusterMap::FromJson(j));
}

TEST(ClusterMapTest, HugeValidNumbersSurvive) {
  ClusterMap map = SampleMap();
  map.version = UINT64_MAX;
  map.groups[0].members[0].capacity = UINT64_MAX;
  auto back = ClusterMap::Parse(map.ToJson(true).dump());
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(*back, map);
}

}  // namespace
}  // namespace wharf
