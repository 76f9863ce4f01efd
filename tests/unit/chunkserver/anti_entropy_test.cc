#include "chunkserver/anti_entropy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "chunkserver/member_roster.h"
#include "common/chunk_id.h"
#include "common/fs.h"

namespace wharf {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
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
  const auto t0 = Tombstones::TimePoint{} + 100h;
  Tombstones t(60s, 3);
  EXPECT_TRUE(t.Add("a", t0).ok());
  EXPECT_TRUE(t.Contains("a", t0 + 59s));
  EXPECT_FALSE(t.Contains("a", t0 + 60s));
  EXPECT_TRUE(t.Add("b", t0).ok());
  EXPECT_TRUE(t.Add("c", t0 + 1s).ok());
  EXPECT_TRUE(t.Add("b", t0 + 2s).ok());  // deleted again: its latest one counts
  EXPECT_TRUE(t.Add("d", t0 + 3s).ok());
  EXPECT_TRUE(t.Add("e", t0 + 4s).ok());  // over the cap: the oldest go
  EXPECT_TRUE(t.Contains("b", t0 + 61s));
  EXPECT_TRUE(t.Contains("e", t0 + 61s));
  EXPECT_FALSE(t.Contains("c", t0 + 5s));
  EXPECT_LE(t.size(), 3u);
}

// --------------------------------------------------------------- tombstones on disk

class TombstoneFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // On tmpfs when there is one: every Add syncs.
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir_ = base / ("wharf-tombstones-" + RandomHex(6));
    fs::create_directories(dir_);
    path_ = (dir_ / "tombstones.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Text() {
    auto t = ReadFile(path_);
    return t ? *t : "";
  }
  void Write(const std::string& text) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << text;
  }
  static int64_t Ms(Tombstones::TimePoint t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }
  fs::path dir_;
  std::string path_;
  const Tombstones::TimePoint now_ = Tombstones::Clock::now();
};

TEST_F(TombstoneFileTest, DeletionsSurviveAReopenAndExpireAfterTheTtl) {
  const std::string a = NewChunkId(), b = NewChunkId(), c = NewChunkId();
  {
    Tombstones t(3600s, 1000);
    auto r = t.Open(path_, now_);
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->loaded, 0u);
    ASSERT_TRUE(t.Add(a, now_ - 3000s).ok());
    ASSERT_TRUE(t.Add(b, now_ - 10s).ok());
    ASSERT_TRUE(t.Add(c, now_).ok());
    EXPECT_EQ(t.records_on_disk(), 3u);
  }  // as after a crash: nothing but the appended, synced records
  Tombstones again(3600s, 1000);
  auto r = again.Open(path_, now_ + 1000s);  // a is 4000 s old now: past the ttl
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->loaded, 2u);
  EXPECT_EQ(r->expired, 1u);
  EXPECT_EQ(r->skipped, 0u);
  EXPECT_FALSE(again.Contains(a, now_ + 1000s));
  EXPECT_TRUE(again.Contains(b, now_ + 1000s));
  EXPECT_TRUE(again.Contains(c, now_ + 1000s));
  EXPECT_EQ(again.records_on_disk(), 2u);  // rewritten without the expired one
  EXPECT_EQ(Text(), "wharf-tombstones 1\n" + Tombstones::Record(b, Ms(now_ - 10s)) +
                        Tombstones::Record(c, Ms(now_)));
  EXPECT_FALSE(again.Contains(b, now_ + 3600s));  // and they expire in memory too
}

TEST_F(TombstoneFileTest, TornTailAndHostileRecordsAreSkippedAndTheFileRewrittenClean) {
  const std::string a = NewChunkId(), b = NewChunkId();
  const std::string good_a = Tombstones::Record(a, Ms(now_ - 5s));
  const std::string good_b = Tombstones::Record(b, Ms(now_ - 4s));
  std::string bad_sum = Tombstones::Record(NewChunkId(), Ms(now_));
  bad_sum[bad_sum.size() - 2] = bad_sum[bad_sum.size() - 2] == '0' ? '1' : '0';
  std::string bad_id = Tombstones::Record(std::string(32, 'A'), Ms(now_));
  std::string torn = Tombstones::Record(NewChunkId(), Ms(now_));
  torn.resize(torn.size() / 2);
  Write("wharf-tombstones 1\n" + good_a + "garbage\n" + bad_sum + bad_id + "\n" +
        std::string(100000, 'x') + "\n" + std::string("D \0\xff\n", 5) + good_b + torn);
  {
    Tombstones t(3600s, 1000);
    auto r = t.Open(path_, now_);
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->loaded, 2u);
    EXPECT_EQ(r->skipped, 7u);  // garbage, bad checksum, bad id, blank, long, binary, torn
    EXPECT_TRUE(t.Contains(a, now_));
    EXPECT_TRUE(t.Contains(b, now_));
    EXPECT_EQ(t.size(), 2u);
    EXPECT_EQ(Text(), "wharf-tombstones 1\n" + good_a + good_b);
    // Appends after a torn tail are whole records again (the tail was rewritten away).
    ASSERT_TRUE(t.Add(a, now_).ok());
  }
  Tombstones again(3600s, 1000);
  auto r = again.Open(path_, now_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->skipped, 0u);
  EXPECT_EQ(r->loaded, 2u);

  // Files that are not a log at all: nothing loaded, nothing thrown, a clean log after.
  for (std::string hostile :
       {std::string(), std::string("\n\n\n"), std::string(1 << 20, '\0'),
        std::string("wharf-tombstones 2\n") + good_a, good_a.substr(0, good_a.size() - 1)}) {
    Write(hostile);
    Tombstones t(3600s, 1000);
    Result<Tombstones::LoadReport> got = Err(Internal("unset"));
    EXPECT_NO_THROW(got = t.Open(path_, now_));
    ASSERT_TRUE(got) << got.error().ToString();
    EXPECT_LE(got->loaded, 1u);  // a record after a foreign header still speaks for itself
    EXPECT_EQ(Text().substr(0, 19), "wharf-tombstones 1\n");
  }
}

TEST_F(TombstoneFileTest, EveryDamagedVariantOfARecordIsRefused) {
  const std::string id = NewChunkId();
  std::string line = Tombstones::Record(id, 1700000000123);
  line.pop_back();  // the '\n'
  auto good = Tombstones::ParseRecord(line);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->first, id);
  EXPECT_EQ(good->second, 1700000000123);
  for (size_t i = 0; i < line.size(); ++i) {
    for (char c : {'0', 'f', ' ', 'D', 'x', '\0'}) {
      if (line[i] == c) continue;
      std::string bad = line;
      bad[i] = c;
      EXPECT_FALSE(Tombstones::ParseRecord(bad)) << bad;
    }
    EXPECT_FALSE(Tombstones::ParseRecord(line.substr(0, i))) << i;
  }
  EXPECT_FALSE(Tombstones::ParseRecord(line + "0"));
  EXPECT_FALSE(Tombstones::ParseRecord(Tombstones::Record(id, 0).substr(1)));
  std::string huge = "D " + id + " 99999999999999999999999 0000000000000000";
  EXPECT_FALSE(Tombstones::ParseRecord(huge));
}

TEST_F(TombstoneFileTest, TheFileIsCompactedAndBoundedAndFutureTimesCountAsNow) {
  Tombstones t(3600s, 100);
  ASSERT_TRUE(t.Open(path_, now_));
  const std::string again = NewChunkId();
  // 1,200 deletions of one id: compacted once past 2 x 1 + 1,024 records.
  for (int i = 0; i < 1200; ++i) {
    ASSERT_TRUE(t.Add(again, now_ + std::chrono::milliseconds(i)).ok());
    ASSERT_LE(t.records_on_disk(), 2 * t.size() + 1025);
  }
  EXPECT_LT(t.records_on_disk(), 1200u);
  for (int i = 0; i < 1200; ++i) ASSERT_TRUE(t.Add(NewChunkId(), now_).ok());
  EXPECT_LE(t.size(), 100u);  // max_entries
  EXPECT_LE(t.records_on_disk(), 2 * 100 + 1025);
  EXPECT_LE(fs::file_size(path_), (2 * 100 + 1025 + 1) * 72u);

  // A record from the future (the clock was set back) expires a ttl from now, not later.
  const std::string future = NewChunkId();
  Write("wharf-tombstones 1\n" + Tombstones::Record(future, Ms(now_ + 100000s)));
  Tombstones u(3600s, 100);
  ASSERT_TRUE(u.Open(path_, now_));
  EXPECT_TRUE(u.Contains(future, now_ + 3599s));
  EXPECT_FALSE(u.Contains(future, now_ + 3600s));
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
