// GarbageCollector over the in-memory FakeChunkCluster, one round at a time.
#include "gateway/garbage_collector.h"

#include <gtest/gtest.h>

#include "common/checksum.h"
#include "common/chunk_id.h"
#include "gateway/gc_report_json.h"
#include "unit/gateway/gateway_fixture.h"

namespace wharf {
namespace {

class GarbageCollectorTest : public GatewayFixture {
 protected:
  void SetUp() override {
    GatewayFixture::SetUp();
    gc_options_.upload_expiry = std::chrono::seconds(3600);
    gc_options_.upload_stale = std::chrono::seconds(7200);  // the expiry alone, unless a test
    gc_options_.sweep_every = 0;
  }

  std::unique_ptr<GarbageCollector> MakeGc() {
    int64_t* now = &now_;
    return std::make_unique<GarbageCollector>(&cluster_, meta_.get(), gc_options_,
                                              [now] { return *now; });
  }

  // A chunk stored on every member of `group` and recorded, then released: garbage.
  ChunkRef Garbage(const std::string& group) {
    ChunkRef ref{group, NewChunkId(), 5, ChecksumOf("bytes")};
    for (const char* m : group == "g1" ? std::vector<const char*>{"a1", "a2"}
                                       : std::vector<const char*>{"b1", "b2"}) {
      cluster_.PutCopyForTest(m, ref.id, "bytes", now_);
    }
    const std::string upload = NewUpload();
    EXPECT_TRUE(meta_->RecordChunks(ChunkOwner::Upload(upload), {ref}).ok());
    EXPECT_TRUE(meta_->ReleaseChunks({ref.id}).ok());
    ++now_;  // garbage is listed oldest release first
    return ref;
  }

  ChunkState StateOf(const std::string& id) {
    auto st = meta_->GetChunkState(id);
    EXPECT_TRUE(st.has_value());
    return st ? *st : ChunkState::kLive;
  }

  void Round(GarbageCollector& gc) {
    Run([&]() -> awaitable<void> { co_await gc.RunOnce(); });
  }

  GarbageCollectorOptions gc_options_;
};

TEST_F(GarbageCollectorTest, DeletesGarbageFromEveryMemberThenForgetsIt) {
  ChunkRef a = Garbage("g1"), b = Garbage("g2");
  auto gc = MakeGc();
  Round(*gc);
  for (const char* m : {"a1", "a2", "b1", "b2"}) EXPECT_EQ(cluster_.CopyCount(m), 0u) << m;
  EXPECT_EQ(StateOf(a.id), ChunkState::kUnknown);
  EXPECT_EQ(StateOf(b.id), ChunkState::kUnknown);
  EXPECT_EQ(gc->deferred_count(), 0u);
}

TEST_F(GarbageCollectorTest, KeepsGarbageWhileAMemberCannotDelete) {
  ChunkRef a = Garbage("g1");
  cluster_.faults("a2").unreachable = true;  // the map says active; the delete fails
  auto gc = MakeGc();
  Round(*gc);
  EXPECT_EQ(StateOf(a.id), ChunkState::kGarbage);
  EXPECT_EQ(gc->deferred_count(), 1u);
  cluster_.faults("a2").unreachable = false;
  Round(*gc);
  EXPECT_EQ(StateOf(a.id), ChunkState::kUnknown);
  EXPECT_FALSE(cluster_.Copy("a2", a.id).has_value());
  EXPECT_EQ(gc->deferred_count(), 0u);
}

TEST_F(GarbageCollectorTest, DefersAGroupWithAnOfflineMemberWithoutCallingIt) {
  gc_options_.page = 2;
  // Older garbage on g2, whose member b1 is offline, more of it than a page...
  std::vector<ChunkRef> stuck;
  for (int i = 0; i < 3; ++i) stuck.push_back(Garbage("g2"));
  // ...and newer garbage on the healthy g1.
  std::vector<ChunkRef> fresh;
  for (int i = 0; i < 2; ++i) fresh.push_back(Garbage("g1"));
  cluster_.faults("b1").offline = true;
  auto gc = MakeGc();
  for (int round = 0; round < 3; ++round) Round(*gc);
  // No call went to the group with the offline member, not even to its live member.
  EXPECT_EQ(cluster_.calls("b1"), 0u);
  EXPECT_EQ(cluster_.calls("b2"), 0u);
  for (const auto& r : stuck) EXPECT_EQ(StateOf(r.id), ChunkState::kGarbage);
  EXPECT_EQ(gc->deferred_count(), 3u);
  // The deferred chunks did not starve the newer garbage.
  for (const auto& r : fresh) EXPECT_EQ(StateOf(r.id), ChunkState::kUnknown);
  EXPECT_EQ(cluster_.CopyCount("a1"), 0u);
  // The member returns: its group's garbage goes too.
  cluster_.faults("b1").offline = false;
  for (int round = 0; round < 2; ++round) Round(*gc);
  for (const auto& r : stuck) EXPECT_EQ(StateOf(r.id), ChunkState::kUnknown);
  EXPECT_EQ(cluster_.CopyCount("b1"), 0u);
  EXPECT_EQ(cluster_.CopyCount("b2"), 0u);
  EXPECT_EQ(gc->deferred_count(), 0u);
}

TEST_F(GarbageCollectorTest, NoMapNoGarbageCalls) {
  ChunkRef a = Garbage("g1");
  cluster_.set_has_map(false);
  auto gc = MakeGc();
  Round(*gc);
  EXPECT_EQ(StateOf(a.id), ChunkState::kGarbage);
  EXPECT_EQ(cluster_.calls("a1"), 0u);
}

// The upload-expiry cutoff and updated_unix come from one clock: the store's. With the system
// clock as cutoff, a session stamped by the store's (here: far in the past) clock looked
// expired at once.
TEST_F(GarbageCollectorTest, UploadExpiresExactlyWhenTheStoresClockSaysSo) {
  const std::string upload = NewUpload();  // updated_unix = now_
  auto gc = MakeGc();
  now_ += 3600;  // exactly the expiry: not idle for longer than it yet
  Round(*gc);
  EXPECT_TRUE(meta_->GetUpload(upload).has_value());
  now_ += 1;
  Round(*gc);
  auto gone = meta_->GetUpload(upload);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code(), Code::kNotFound);
}

TEST_F(GarbageCollectorTest, SweepDeletesOldChunksTheLedgerDoesNotKnow) {
  gc_options_.sweep_every = 1;
  gc_options_.sweep_grace = std::chrono::seconds(600);
  const std::string old_orphan = NewChunkId(), young_orphan = NewChunkId(), live = NewChunkId();
  cluster_.PutCopyForTest("a1", old_orphan, "x", now_ - 601);
  cluster_.PutCopyForTest("b2", young_orphan, "y", now_ - 10);
  cluster_.PutCopyForTest("a2", live, "z", now_ - 10'000);
  const std::string upload = NewUpload();
  ASSERT_TRUE(meta_->RecordChunks(ChunkOwner::Upload(upload), {ChunkRef{"g1", live, 1, 0}}).ok());
  cluster_.faults("b1").offline = true;  // not swept, and not called
  auto gc = MakeGc();
  Round(*gc);
  EXPECT_FALSE(cluster_.Copy("a1", old_orphan).has_value());
  EXPECT_TRUE(cluster_.Copy("b2", young_orphan).has_value());
  EXPECT_TRUE(cluster_.Copy("a2", live).has_value());
  EXPECT_EQ(cluster_.calls("b1"), 0u);
}

TEST_F(GarbageCollectorTest, SweepWaitsUntilTheNamespaceIsConfirmed) {
  gc_options_.sweep_every = 1;
  gc_options_.sweep_grace = std::chrono::seconds(600);
  bool confirmed = false;
  gc_options_.may_sweep = [&confirmed] { return confirmed; };
  const std::string orphan = NewChunkId();
  cluster_.PutCopyForTest("a1", orphan, "x", now_ - 601);
  auto gc = MakeGc();
  Round(*gc);
  EXPECT_TRUE(cluster_.Copy("a1", orphan).has_value());  // another store's chunk, maybe
  EXPECT_EQ(cluster_.calls("a1"), 0u);
  confirmed = true;
  Round(*gc);
  EXPECT_FALSE(cluster_.Copy("a1", orphan).has_value());
}

}  // namespace
}  // namespace wharf

namespace wharf {
namespace {

TEST_F(GarbageCollectorTest, ADeadRequestsChunksGoAfterTheStaleIntervalAndALiveOneStays) {
  gc_options_.upload_stale = std::chrono::seconds(120);
  // A file upload whose request died (its gateway crashed) after a chunk was written, and one
  // still streaming: touched as its bytes arrive.
  const std::string dead = NewUpload(), live = NewUpload();
  ChunkRef orphan{"g1", NewChunkId(), 5, ChecksumOf("bytes")};
  ChunkRef streaming{"g1", NewChunkId(), 5, ChecksumOf("bytes")};
  for (const char* m : {"a1", "a2"}) {
    cluster_.PutCopyForTest(m, orphan.id, "bytes", now_);
    cluster_.PutCopyForTest(m, streaming.id, "bytes", now_);
  }
  ASSERT_TRUE(meta_->RecordChunks(ChunkOwner::Upload(dead), {orphan}).ok());
  ASSERT_TRUE(meta_->RecordChunks(ChunkOwner::Upload(live), {streaming}).ok());
  auto gc = MakeGc();
  now_ += 120;  // exactly the stale interval: not yet
  ASSERT_TRUE(meta_->TouchUpload(live).ok());
  Round(*gc);
  EXPECT_TRUE(meta_->GetUpload(dead).has_value());
  EXPECT_EQ(StateOf(orphan.id), ChunkState::kLive);
  now_ += 1;
  Round(*gc);
  // Gone, session and chunk, from the store and every member, long before the 1 h expiry.
  EXPECT_EQ(meta_->GetUpload(dead).error().code(), Code::kNotFound);
  EXPECT_EQ(StateOf(orphan.id), ChunkState::kUnknown);
  EXPECT_FALSE(cluster_.Copy("a1", orphan.id).has_value());
  EXPECT_FALSE(cluster_.Copy("a2", orphan.id).has_value());
  EXPECT_TRUE(meta_->GetUpload(live).has_value());
  EXPECT_EQ(StateOf(streaming.id), ChunkState::kLive);
  EXPECT_TRUE(cluster_.Copy("a1", streaming.id).has_value());
}

// `wharf gc --json` and GET /admin/gc print this one mapping: every count under its own name.
TEST(GcReportJsonTest, EveryCountUnderItsName) {
  GcReport r;
  r.manifests = 1;
  r.links = 2;
  r.blobs = 3;
  r.blob_bytes = 4;
  r.chunks_released = 5;
  r.chunks_deleted = 6;
  r.bytes_deleted = 7;
  r.chunks_pending = 8;
  r.bytes_pending = 9;
  r.uploads_expired = 10;
  r.uploads_stale = 11;
  r.stale_chunks = 12;
  const nlohmann::json want = {
      {"manifests", 1},       {"blob_links", 2},       {"blobs", 3},          {"blob_bytes", 4},
      {"chunks_released", 5}, {"chunks_deleted", 6},   {"bytes_deleted", 7},  {"chunks_pending", 8},
      {"bytes_pending", 9},   {"uploads_expired", 10}, {"uploads_stale", 11}, {"stale_chunks", 12}};
  EXPECT_EQ(GcReportJson(r), want) << GcReportJson(r).dump();
}

}  // namespace
}  // namespace wharf
