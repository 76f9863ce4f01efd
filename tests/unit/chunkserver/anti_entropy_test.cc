#include "chunkserver/anti_entropy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "chunkserver/member_roster.h"

namespace wharf {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string Id(int i) {
  // Spread over ranges: the first byte varies with i.
  char buf[33];
  snprintf(buf, sizeof buf, "%02x%030d", (i * 37) % 256, i);
  return buf;
}

RangeDigests DigestsOf(std::set<std::string> ids) {
  RangeDigester d;
  for (const auto& id : ids) d.Add(id);  // std::set: ascending
  return d.Finish();
}

TEST(RangeDigestTest, EqualInventoriesEqualDigestsAndOneChunkChangesOneRange) {
  std::set<std::string> ids;
  for (int i = 0; i < 2000; ++i) ids.insert(Id(i));
  RangeDigests a = DigestsOf(ids);
  EXPECT_EQ(a, DigestsOf(ids));
  uint64_t total = 0;
  for (uint64_t c : a.counts) total += c;
  EXPECT_EQ(total, ids.size());

  std::set<std::string> fewer = ids;
  fewer.erase(Id(5));
  RangeDigests b = DigestsOf(fewer);
  size_t differing = 0;
  for (size_t r = 0; r < kDigestRanges; ++r) {
    if (a.digests[r] != b.digests[r]) {
      ++differing;
      EXPECT_EQ(r, RangeOfId(Id(5)));
      EXPECT_EQ(RangePrefix(r), Id(5).substr(0, 2));
    }
  }
  EXPECT_EQ(differing, 1u);
  // Same count, different ids: the digest still differs.
  std::set<std::string> swapped = fewer;
  std::string other = Id(5);
  other.back() = other.back() == '0' ? '1' : '0';
  swapped.insert(other);
  RangeDigests c = DigestsOf(swapped);
  EXPECT_EQ(c.counts, a.counts);
  EXPECT_NE(c.digests, a.digests);
}

TEST(RangeDigestTest, EmptyRangesAgreeAndInvalidIdsAreSkipped) {
  RangeDigester d;
  d.Add("not-a-chunk-id");
  d.Add("");
  RangeDigests empty = d.Finish();
  EXPECT_EQ(empty, DigestsOf({}));
  for (uint64_t c : empty.counts) EXPECT_EQ(c, 0u);
  EXPECT_EQ(RangeOfId("ff00"), 255u);
  EXPECT_EQ(RangePrefix(10), "0a");
}

TEST(RangeDigestTest, JsonRoundTripAndHostileBodies) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.insert(Id(i));
  RangeDigests a = DigestsOf(ids);
  auto back = RangeDigests::Parse(a.ToJson().dump());
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(*back, a);

  const json good = a.ToJson();
  std::vector<json> bad = {json(), json::array(), json(1)};
  for (const char* field : {"ranges", "digests", "counts"}) {
    json j = good;
    j.erase(field);
    bad.push_back(j);
    for (json wrong : {json(), json(-1), json("x"), json::object(), json::array()}) {
      json k = good;
      k[field] = wrong;
      bad.push_back(k);
    }
  }
  for (auto [index, value] : std::vector<std::pair<int, json>>{
           {0, "xyz"}, {1, "0123456789abcdeg"}, {2, 5}, {3, "0123456789abcdef0"}}) {
    json j = good;
    j["digests"][index] = value;
    bad.push_back(j);
  }
  json short_counts = good;
  short_counts["counts"].erase(0);
  bad.push_back(short_counts);
  json neg = good;
  neg["counts"][7] = -1;
  bad.push_back(neg);
  json ranges = good;
  ranges["ranges"] = 16;
  bad.push_back(ranges);
  for (const json& j : bad) {
    Result<RangeDigests> r = Err(Internal("unset"));
    EXPECT_NO_THROW(r = RangeDigests::Parse(j.dump())) << j.dump().substr(0, 200);
    ASSERT_FALSE(r) << j.dump().substr(0, 200);
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  }
  for (const char* text : {"", "{", "\xff", "[1,2"}) EXPECT_FALSE(RangeDigests::Parse(text));
}

TEST(TombstonesTest, ExpireAfterTheirTtlAndTheOldestGoFirst) {
  const auto t0 = std::chrono::steady_clock::time_point{} + 100h;
  Tombstones t(60s, 3);
  t.Add("a", t0);
  EXPECT_TRUE(t.Contains("a", t0 + 59s));
  EXPECT_FALSE(t.Contains("a", t0 + 60s));
  t.Add("b", t0);
  t.Add("c", t0 + 1s);
  t.Add("b", t0 + 2s);  // deleted again: its latest deletion counts
  t.Add("d", t0 + 3s);
  t.Add("e", t0 + 4s);  // over the cap: the oldest entries go
  EXPECT_TRUE(t.Contains("b", t0 + 61s));
  EXPECT_TRUE(t.Contains("e", t0 + 61s));
  EXPECT_FALSE(t.Contains("c", t0 + 5s));
  EXPECT_LE(t.size(), 3u);
}

TEST(MemberRosterTest, MergesRepliesKeepsItselfAndDropsRemoved) {
  MemberRoster r("g1", "a", "h:1");
  ASSERT_EQ(r.entries().size(), 1u);
  HeartbeatReply reply;
  reply.roster = {{"a", "other:9"}, {"b", "h:2"}, {"c", "h:3"}};
  EXPECT_TRUE(r.Merge(reply));
  EXPECT_FALSE(r.Merge(reply));  // nothing new
  ASSERT_EQ(r.entries().size(), 3u);
  EXPECT_EQ(r.entries()[0].addr, "h:1");  // its own address is its own
  reply.roster = {{"b", "h:22"}};
  reply.removed = {"c", "a"};
  EXPECT_TRUE(r.Merge(reply));
  ASSERT_EQ(r.entries().size(), 2u);
  EXPECT_EQ(r.entries()[0].id, "a");
  EXPECT_EQ(r.entries()[1].addr, "h:22");

  // It survives a restart through its file; a file of another group is ignored.
  MemberRoster again("g1", "a", "h:5");
  bool ignored = true;
  ASSERT_TRUE(again.ParseFile(r.ToFile(), &ignored).ok());
  EXPECT_FALSE(ignored);
  ASSERT_EQ(again.entries().size(), 2u);
  EXPECT_EQ(again.entries()[0].addr, "h:5");
  MemberRoster moved("g2", "a", "h:1");
  ASSERT_TRUE(moved.ParseFile(r.ToFile(), &ignored).ok());
  EXPECT_TRUE(ignored);
  EXPECT_EQ(moved.entries().size(), 1u);
}

TEST(MemberRosterTest, HostileFilesAreRefused) {
  for (const char* bad :
       {"", "[]", "{}", R"({"format": 2, "group": "g1", "members": []})",
        R"({"format": 1, "members": []})", R"({"format": 1, "group": "../g", "members": []})",
        R"({"format": 1, "group": "g1", "members": 5})",
        R"({"format": 1, "group": "g1", "members": [{"id": "b"}]})",
        R"({"format": 1, "group": "g1", "members": [{"id": "b", "addr": "x"}]})"}) {
    MemberRoster r("g1", "a", "h:1");
    bool ignored = false;
    Status st = Status::Ok();
    EXPECT_NO_THROW(st = r.ParseFile(bad, &ignored)) << bad;
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(r.entries().size(), 1u);
  }
}

}  // namespace
}  // namespace wharf
