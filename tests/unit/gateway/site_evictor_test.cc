// SiteEvictor over a real SQLite store, a cluster map the test sets, and a BlobService that
// records pulls: when it evicts, what, how much, and what it leaves.
#include "gateway/site_evictor.h"

#include <gtest/gtest.h>

#include "common/metrics.h"
#include "unit/gateway/gateway_fixture.h"

namespace wharf {
namespace {

MemberInfo Member(std::string id, uint64_t capacity, uint64_t free) {
  MemberInfo m;
  m.id = std::move(id);
  m.addr = "127.0.0.1:1";
  m.state = MemberState::kActive;
  m.capacity = capacity;
  m.free = free;
  return m;
}

class SiteEvictorTest : public GatewayFixture {
 protected:
  void SetUp() override {
    GatewayFixture::SetUp();
    blobs_ = std::make_unique<BlobService>(blob_ctx_);
    SetFree(1000);
  }

  // Two groups of two members, each member 1000 bytes: `free` is each group's smallest member's
  // (the other member has more).
  void SetFree(uint64_t free) {
    ClusterMap m;
    for (const char* g : {"g1", "g2"}) {
      GroupInfo group;
      group.id = g;
      group.members = {Member(std::string(g) + "a", 1000, free),
                       Member(std::string(g) + "b", 1200, free + 50)};
      m.groups.push_back(group);
    }
    map_ = m;
  }

  std::unique_ptr<SiteEvictor> Make(double low = 20, double high = 40) {
    SiteEvictionOptions o;
    o.low_percent = low;
    o.high_percent = high;
    o.settle_seconds = 10;
    int64_t* now = &now_;
    std::optional<ClusterMap>* map = &map_;
    return std::make_unique<SiteEvictor>([map] { return *map; }, meta_.get(), blobs_.get(), o,
                                         [now] { return *now; }, GetLogger("site"));
  }

  // Blob `name` of 250 bytes in one chunk, created at `created`.
  Digest Stored(const std::string& name, int64_t created) {
    BlobRecord b;
    b.digest = DigestOf(name);
    b.size = 250;
    b.chunks = {ChunkRef{"g1", "chunk-" + name, 250, 1}};
    b.created_unix = created;
    EXPECT_TRUE(meta_->PutBlob("site/app", b).has_value());
    return b.digest;
  }

  EvictionPass Pass(SiteEvictor& e) {
    EvictionPass out;
    Run([&]() -> awaitable<void> {
      co_await e.FlushPulls();
      out = co_await e.RunOnce();
    });
    return out;
  }

  void Pull(const Digest& d) {
    Run([&]() -> awaitable<void> {
      auto r = co_await blobs_->OpenBlob("site/app", d);
      EXPECT_TRUE(r.has_value());
    });
  }

  bool Present(const Digest& d) { return meta_->GetBlob(d).has_value(); }

  std::unique_ptr<BlobService> blobs_;
  std::optional<ClusterMap> map_;
};

TEST_F(SiteEvictorTest, FreeSpaceIsTheSumOfEachGroupsSmallestMember) {
  SetFree(250);
  uint64_t cap = 0, free = 0;
  EXPECT_EQ(SiteEvictor::FreePercent(*map_, &cap, &free), 25.0);
  EXPECT_EQ(cap, 2000u);
  EXPECT_EQ(free, 500u);
  EXPECT_EQ(SiteEvictor::FreePercent(ClusterMap{}), std::nullopt);
}

TEST_F(SiteEvictorTest, AboveTheLowWatermarkNothingIsEvicted) {
  Digest a = Stored("a", 10);
  auto e = Make();
  SetFree(210);  // 21%
  EvictionPass p = Pass(*e);
  EXPECT_EQ(p.free_percent, 21.0);
  EXPECT_FALSE(p.below_low);
  EXPECT_EQ(p.blobs, 0u);
  EXPECT_TRUE(Present(a));
  map_.reset();  // no map yet: nothing known, nothing done
  EXPECT_EQ(Pass(*e).free_percent, std::nullopt);
}

TEST_F(SiteEvictorTest, EvictsTheLeastRecentlyPulledUntilTheHighWatermark) {
  Digest a = Stored("a", 10), b = Stored("b", 20), c = Stored("c", 30), d = Stored("d", 40),
         f = Stored("f", 50);
  auto e = Make();
  const uint64_t blobs_before = Metrics().Counter("wharf_site_evictions_total", "").Value();
  // a is the oldest, but pulled now: the most recent.
  Pull(a);
  SetFree(100);  // 10% < 20%: 40% of 2000 is 800, 200 free: 600 bytes to go, 3 blobs
  EvictionPass p = Pass(*e);
  EXPECT_TRUE(p.below_low);
  EXPECT_EQ(p.blobs, 3u);
  EXPECT_EQ(p.bytes, 750u);
  EXPECT_FALSE(Present(b));
  EXPECT_FALSE(Present(c));
  EXPECT_FALSE(Present(d));
  EXPECT_TRUE(Present(f));
  EXPECT_TRUE(Present(a));
  EXPECT_EQ(Metrics().Counter("wharf_site_evictions_total", "").Value(), blobs_before + 3);
  EXPECT_EQ(meta_->GetChunkState("chunk-b").value(), ChunkState::kGarbage);
  // The map does not show the freed space yet: what was evicted counts, nothing more goes.
  p = Pass(*e);
  EXPECT_EQ(p.pending_bytes, 750u);
  EXPECT_EQ(p.blobs, 0u);
  EXPECT_TRUE(Present(f));
  // Collected, the map shows it: above the watermark, nothing pending once settled.
  ASSERT_TRUE(meta_->ForgetChunks({"chunk-b", "chunk-c", "chunk-d"}).ok());
  SetFree(475);
  now_ += 11;
  p = Pass(*e);
  EXPECT_FALSE(p.below_low);
  EXPECT_EQ(Pass(*e).pending_bytes, 0u);
}

TEST_F(SiteEvictorTest, StopsWhenNothingIsLeftToEvictAndSparesQueuedContent) {
  Digest a = Stored("a", 10), b = Stored("b", 20);
  ASSERT_TRUE(
      meta_->EnqueueItem({QueueKind::kBlob, "http://centre:5000", "site/app", b.ToString(), ""}));
  auto e = Make();
  SetFree(0);
  EvictionPass p = Pass(*e);
  EXPECT_EQ(p.blobs, 1u);
  EXPECT_FALSE(Present(a));
  EXPECT_TRUE(Present(b));  // not shipped upstream yet
  EXPECT_EQ(Pass(*e).blobs, 0u);
}

TEST(SiteWatermarkTest, ParsesPercentagesStrictlyBetween0And100) {
  EXPECT_EQ(ParseWatermark("--x", "10%").value(), 10);
  EXPECT_EQ(ParseWatermark("--x", "0.5%").value(), 0.5);
  for (const char* bad : {"0%", "100%", "150%", "10", "1GiB", "", "%", "-5%", "x%"}) {
    auto r = ParseWatermark("--x", bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_NE(r.error().message().find("--x: want a percentage"), std::string::npos)
        << r.error().ToString();
  }
}

}  // namespace
}  // namespace wharf
