#include "master/placement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>

namespace wharf {
namespace {

MemberInfo Member(std::string id, uint64_t free, uint64_t busy = 0, uint64_t reserve = 0) {
  return MemberInfo{.id = std::move(id),
                    .addr = "127.0.0.1:7001",
                    .state = MemberState::kActive,
                    .capacity = 1000000,
                    .free = free,
                    .reserve = reserve,
                    .chunks = 0,
                    .busy = busy};
}

PlacementRequest Request(PlacementPolicy policy, std::atomic<uint64_t>* counter = nullptr,
                         std::string group = "") {
  PlacementRequest req;
  req.policy = policy;
  req.round_robin_counter = counter;
  req.group = std::move(group);
  return req;
}

GroupInfo Group(std::string id, std::vector<MemberInfo> members, bool writable = true) {
  return GroupInfo{
      .id = std::move(id), .writable = writable, .members = std::move(members), .removed = {}};
}

TEST(PlacementPolicyTest, ParsesNames) {
  EXPECT_EQ(*ParsePlacementPolicy("most_free"), PlacementPolicy::kMostFree);
  EXPECT_EQ(*ParsePlacementPolicy("round_robin"), PlacementPolicy::kRoundRobin);
  EXPECT_EQ(*ParsePlacementPolicy("named"), PlacementPolicy::kNamed);
  for (auto p :
       {PlacementPolicy::kMostFree, PlacementPolicy::kRoundRobin, PlacementPolicy::kNamed}) {
    EXPECT_EQ(*ParsePlacementPolicy(PlacementPolicyName(p)), p);
  }
  auto bad = ParsePlacementPolicy("random");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kInvalidArgument);
  EXPECT_FALSE(ParsePlacementPolicy(""));
}

TEST(MostFreeTest, PicksTheGroupWithMostRoomOutsideTheWindow) {
  ClusterMap map;
  map.groups = {Group("g1", {Member("a", 500), Member("b", 1000)}),   // min 500
                Group("g2", {Member("c", 1000), Member("d", 900)})};  // min 900
  auto g = ChooseGroup(map, {});
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_EQ(*g, "g2");
}

TEST(MostFreeTest, SmallestMemberCountsAfterReserve) {
  ClusterMap map;
  // g1 has more raw free space but a large reserve on one member.
  map.groups = {Group("g1", {Member("a", 1000, 0, 600), Member("b", 1000)}),  // min 400
                Group("g2", {Member("c", 700), Member("d", 700)})};           // min 700
  EXPECT_EQ(*ChooseGroup(map, {}), "g2");
}

TEST(MostFreeTest, LeastBusyAmongTopGroups) {
  ClusterMap map;
  map.groups = {Group("g1", {Member("a", 1000, 5), Member("b", 1000, 5)}),  // busy 10
                Group("g2", {Member("c", 950, 1), Member("d", 960, 2)}),    // within 10%, busy 3
                Group("g3", {Member("e", 800, 0), Member("f", 800, 0)})};   // outside the window
  EXPECT_EQ(*ChooseGroup(map, {}), "g2");
}

TEST(MostFreeTest, WindowIsTenPercentOfTheBest) {
  ClusterMap map;
  map.groups = {Group("g1", {Member("a", 1000, 9)}), Group("g2", {Member("b", 900, 1)})};
  EXPECT_EQ(*ChooseGroup(map, {}), "g2");  // 900 is exactly 10% under: in the window
  map.groups[1].members[0].free = 899;
  EXPECT_EQ(*ChooseGroup(map, {}), "g1");  // just outside
}

TEST(MostFreeTest, TieBreaksById) {
  ClusterMap map;
  map.groups = {Group("g3", {Member("a", 1000, 1)}), Group("g1", {Member("b", 1000, 1)}),
                Group("g2", {Member("c", 1000, 1)})};
  EXPECT_EQ(*ChooseGroup(map, {}), "g1");
}

TEST(MostFreeTest, TiedGroupsTakeTurnsWithACounter) {
  // wharf up: two empty groups, idle between heartbeats. Every write went to g1 before.
  ClusterMap map;
  map.groups = {Group("g1", {Member("a", 1000)}), Group("g2", {Member("b", 1000)}),
                Group("g3", {Member("c", 1000)}), Group("g4", {Member("d", 1000, 2)})};
  std::atomic<uint64_t> counter{0};
  PlacementRequest req;
  req.round_robin_counter = &counter;
  std::map<std::string, int> picks;
  for (int i = 0; i < 30; ++i) ++picks[*ChooseGroup(map, req)];
  EXPECT_EQ(picks["g1"], 10);
  EXPECT_EQ(picks["g2"], 10);
  EXPECT_EQ(picks["g3"], 10);
  EXPECT_EQ(picks.count("g4"), 0u);  // busier: not a tie
  // A single least-busy group does not consume the counter's turn order.
  map.groups[0].members[0].busy = 0;
  map.groups[1].members[0].busy = 1;
  map.groups[2].members[0].busy = 1;
  EXPECT_EQ(*ChooseGroup(map, req), "g1");
}

TEST(MostFreeTest, SkipsUnwritableExcludedAndTooFullGroups) {
  ClusterMap map;
  map.groups = {Group("g1", {Member("a", 5000)}, /*writable=*/false),
                Group("g2", {Member("b", 4000)}), Group("g3", {Member("c", 100)}),
                Group("g4", {Member("d", 300)})};
  PlacementRequest req;
  req.exclude = {"g2"};
  EXPECT_EQ(*ChooseGroup(map, req), "g4");
  req.chunk_bytes = 400;  // g3 and g4 cannot hold it
  auto g = ChooseGroup(map, req);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), Code::kUnavailable);
}

TEST(PlacementTest, NoWritableGroupIsUnavailable) {
  ClusterMap map;
  for (auto policy : {PlacementPolicy::kMostFree, PlacementPolicy::kRoundRobin}) {
    std::atomic<uint64_t> counter{0};
    PlacementRequest req = Request(policy, &counter);
    auto empty = ChooseGroup(map, req);
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().code(), Code::kUnavailable);
    EXPECT_THAT(empty.error().message(), testing::HasSubstr("no writable group"));
  }
  map.groups = {Group("g1", {Member("a", 5000)}, false)};
  auto none = ChooseGroup(map, {});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Code::kUnavailable);
}

TEST(RoundRobinTest, CyclesOverWritableGroupsById) {
  ClusterMap map;
  map.groups = {Group("g2", {Member("a", 10)}), Group("g1", {Member("b", 10000)}),
                Group("g9", {Member("x", 10000)}, false), Group("g3", {Member("c", 500)})};
  std::atomic<uint64_t> counter{0};
  PlacementRequest req = Request(PlacementPolicy::kRoundRobin, &counter);
  std::vector<std::string> got;
  for (int i = 0; i < 6; ++i) got.push_back(*ChooseGroup(map, req));
  EXPECT_THAT(got, testing::ElementsAre("g1", "g2", "g3", "g1", "g2", "g3"));
  EXPECT_EQ(counter.load(), 6u);
  req.exclude = {"g2"};
  got.clear();
  for (int i = 0; i < 4; ++i) got.push_back(*ChooseGroup(map, req));
  EXPECT_THAT(got, testing::ElementsAre("g1", "g3", "g1", "g3"));
}

TEST(RoundRobinTest, NeedsACounter) {
  ClusterMap map;
  map.groups = {Group("g1", {Member("a", 10)})};
  auto g = ChooseGroup(map, Request(PlacementPolicy::kRoundRobin));
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), Code::kInvalidArgument);
}

TEST(NamedTest, ChoosesTheGivenGroupOrSaysWhyNot) {
  ClusterMap map;
  map.groups = {Group("g1", {Member("a", 100)}), Group("g2", {Member("b", 10000)}, false)};
  PlacementRequest req = Request(PlacementPolicy::kNamed, nullptr, "g1");
  EXPECT_EQ(*ChooseGroup(map, req), "g1");

  req.group = "g2";
  auto unwritable = ChooseGroup(map, req);
  ASSERT_FALSE(unwritable);
  EXPECT_EQ(unwritable.error().code(), Code::kUnavailable);

  req.group = "nope";
  auto unknown = ChooseGroup(map, req);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Code::kNotFound);

  req.group = "g1";
  req.exclude = {"g1"};
  auto excluded = ChooseGroup(map, req);
  ASSERT_FALSE(excluded);
  EXPECT_EQ(excluded.error().code(), Code::kUnavailable);

  req.exclude.clear();
  req.chunk_bytes = 101;
  auto full = ChooseGroup(map, req);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Code::kUnavailable);

  req.group = "";
  auto missing = ChooseGroup(map, req);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kInvalidArgument);
}

TEST(MostFreeTest, SpreadsOverTopGroupsAsBusyChanges) {
  // What a gateway sees: as it loads the chosen group, the other top group takes over.
  ClusterMap map;
  map.groups = {Group("g1", {Member("a", 1000)}), Group("g2", {Member("b", 990)})};
  std::map<std::string, int> picks;
  for (int i = 0; i < 10; ++i) {
    std::string g = *ChooseGroup(map, {});
    ++picks[g];
    for (auto& group : map.groups) {
      if (group.id == g) ++group.members[0].busy;
    }
  }
  EXPECT_EQ(picks["g1"], 5);
  EXPECT_EQ(picks["g2"], 5);
}

}  // namespace
}  // namespace wharf
