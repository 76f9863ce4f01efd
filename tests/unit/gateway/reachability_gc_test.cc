// GarbageCollector's reachability collection (untagged manifests, unreferenced blob links, their
// chunks on every member) over SQLite and the in-memory FakeChunkCluster, and the race "blob
// seen present, collected, manifest commits", forced at the collector's steps (hook_for_test).
#include <gtest/gtest.h>

#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/metrics.h"
#include "gateway/garbage_collector.h"
#include "unit/gateway/gateway_fixture.h"

namespace wharf {
namespace {

class ReachabilityGcTest : public GatewayFixture {
 protected:
  void SetUp() override {
    GatewayFixture::SetUp();
    gc_options_.sweep_every = 0;
    gc_options_.grace = std::chrono::seconds(60);
  }

  std::unique_ptr<GarbageCollector> MakeGc() {
    int64_t* now = &now_;
    return std::make_unique<GarbageCollector>(&cluster_, meta_.get(), gc_options_,
                                              [now] { return *now; });
  }

  // A blob of `parts` chunks stored on both members of g1 and linked into `repo`.
  BlobRecord PushBlob(const std::string& repo, const std::string& content, int parts = 2) {
    BlobRecord b;
    b.digest = DigestOf(content);
    for (int i = 0; i < parts; ++i) {
      const std::string bytes = content + "#" + std::to_string(i);
      ChunkRef ref{"g1", NewChunkId(), bytes.size(), ChecksumOf(bytes)};
      for (const char* m : {"a1", "a2"}) cluster_.PutCopyForTest(m, ref.id, bytes, now_);
      b.size += ref.size;
      b.chunks.push_back(ref);
    }
    auto stored = meta_->PutBlob(repo, b);
    EXPECT_TRUE(stored.has_value()) << stored.error().ToString();
    return b;
  }

  static ManifestRecord Image(const std::string& content, std::vector<Digest> blobs) {
    ManifestRecord m;
    m.content = content;
    m.digest = DigestOf(content);
    m.media_type = "application/vnd.oci.image.manifest.v1+json";
    m.blobs = std::move(blobs);
    return m;
  }

  // Whether every chunk of `b` is on both members.
  bool OnDisk(const BlobRecord& b) {
    for (const ChunkRef& c : b.chunks) {
      if (!cluster_.Copy("a1", c.id) || !cluster_.Copy("a2", c.id)) return false;
    }
    return true;
  }
  // Whether no chunk of `b` is on any member.
  bool Gone(const BlobRecord& b) {
    for (const ChunkRef& c : b.chunks) {
      if (cluster_.Copy("a1", c.id) || cluster_.Copy("a2", c.id)) return false;
    }
    return true;
  }

  GcReport Round(GarbageCollector& gc) {
    GcReport r;
    Run([&]() -> awaitable<void> { r = co_await gc.RunOnce(); });
    return r;
  }

  GarbageCollectorOptions gc_options_;
};

TEST_F(ReachabilityGcTest, DeletingAnImageFreesItsExclusiveLayersAndKeepsSharedOnes) {
  BlobRecord shared = PushBlob("app", "shared base");
  BlobRecord mine = PushBlob("app", "only in a", 3);
  BlobRecord config_b = PushBlob("app", "config b", 1);
  ManifestRecord a = Image("image a", {shared.digest, mine.digest});
  ManifestRecord b = Image("image b", {config_b.digest, shared.digest});
  ASSERT_TRUE(meta_->PutManifest("app", a, "a").ok());
  ASSERT_TRUE(meta_->PutManifest("app", b, "b").ok());
  now_ += 3600;
  auto gc = MakeGc();
  GcReport nothing = Round(*gc);
  EXPECT_EQ(nothing.links, 0u);
  EXPECT_TRUE(OnDisk(shared) && OnDisk(mine) && OnDisk(config_b));
  auto& freed_bytes = Metrics().Counter("wharf_gc_bytes_freed_total", "");
  const uint64_t bytes_before = freed_bytes.Value();
  ASSERT_TRUE(meta_->DeleteManifest("app", a.digest).ok());
  GcReport r = Round(*gc);
  EXPECT_EQ(r.links, 1u);
  EXPECT_EQ(r.blobs, 1u);
  EXPECT_EQ(r.blob_bytes, mine.size);
  EXPECT_EQ(r.chunks_released, 3u);
  EXPECT_EQ(r.chunks_deleted, 3u);
  EXPECT_EQ(r.bytes_deleted, mine.size);
  EXPECT_EQ(freed_bytes.Value() - bytes_before, mine.size);
  EXPECT_TRUE(Gone(mine));
  EXPECT_TRUE(OnDisk(shared));
  EXPECT_TRUE(OnDisk(config_b));
  for (const ChunkRef& c : mine.chunks) {
    EXPECT_EQ(*meta_->GetChunkState(c.id), ChunkState::kUnknown);  // forgotten
  }
  EXPECT_TRUE(meta_->GetLinkedBlob("app", shared.digest).has_value());
}

TEST_F(ReachabilityGcTest, AnUnreferencedBlobStaysForTheGracePeriod) {
  BlobRecord blob = PushBlob("app", "pushed, manifest not yet");
  auto gc = MakeGc();
  now_ += 60;  // linked exactly `grace` ago: not older than it
  EXPECT_EQ(Round(*gc).links, 0u);
  EXPECT_TRUE(OnDisk(blob));
  now_ += 1;
  EXPECT_EQ(Round(*gc).blobs, 1u);
  EXPECT_TRUE(Gone(blob));
}

// The race, one order: the collector has listed the blob as unreferenced, then the client
// checks it is there and commits a manifest referencing it, then the collector collects. The
// collection re-decides in its transaction: the blob and its chunks stay.
TEST_F(ReachabilityGcTest, ManifestCommittedAfterTheDecisionKeepsItsBlob) {
  BlobRecord layer = PushBlob("app", "layer");
  now_ += 3600;
  ManifestRecord m = Image("image", {layer.digest});
  int hooked = 0;
  gc_options_.hook_for_test = [&](GcStep step) {
    if (step != GcStep::kLinksListed || hooked++ > 0) return;
    auto head = meta_->GetLinkedBlob("app", layer.digest);  // the client's HEAD
    ASSERT_TRUE(head.has_value());
    ASSERT_TRUE(meta_->PutManifest("app", m, "v1").ok());
  };
  auto gc = MakeGc();
  GcReport r = Round(*gc);
  EXPECT_EQ(hooked, 1);
  EXPECT_EQ(r.links, 0u);
  EXPECT_EQ(r.chunks_deleted, 0u);
  for (int i = 0; i < 3; ++i) Round(*gc);
  EXPECT_TRUE(OnDisk(layer));
  auto blob = meta_->GetLinkedBlob("app", layer.digest);
  ASSERT_TRUE(blob.has_value());
  EXPECT_EQ(blob->chunks, layer.chunks);
}

// The race, the other order: once the collection committed, the blob is absent (HEAD, mount),
// the manifest is refused naming it, and the chunks are still on disk until the garbage step;
// the client pushes the blob again and its manifest then commits and survives.
TEST_F(ReachabilityGcTest, ManifestAfterTheCollectionIsRefusedAndTheRepushSurvives) {
  BlobRecord layer = PushBlob("app", "layer");
  now_ += 3600;
  ManifestRecord m = Image("image", {layer.digest});
  bool checked = false;
  gc_options_.hook_for_test = [&](GcStep step) {
    if (step != GcStep::kLinksCollected || checked) return;
    checked = true;
    EXPECT_FALSE(meta_->GetLinkedBlob("app", layer.digest).has_value());
    EXPECT_FALSE(*meta_->BlobLinked("app", layer.digest));
    EXPECT_EQ(meta_->LinkBlob("other", layer.digest).code(), Code::kNotFound);  // a mount
    Digest missing;
    EXPECT_EQ(meta_->PutManifest("app", m, "v1", &missing).code(), Code::kNotFound);
    EXPECT_EQ(missing, layer.digest);
    EXPECT_TRUE(OnDisk(layer));  // deletion from the cluster comes after the commit
  };
  auto gc = MakeGc();
  GcReport r = Round(*gc);
  ASSERT_TRUE(checked);
  EXPECT_EQ(r.blobs, 1u);
  EXPECT_TRUE(Gone(layer));
  // The client retries: the blob again (new chunks), then the manifest.
  BlobRecord again = PushBlob("app", "layer");
  ASSERT_TRUE(meta_->PutManifest("app", m, "v1").ok());
  now_ += 3600;
  for (int i = 0; i < 3; ++i) Round(*gc);
  EXPECT_TRUE(OnDisk(again));
  EXPECT_EQ(meta_->GetLinkedBlob("app", layer.digest)->chunks, again.chunks);
}

TEST_F(ReachabilityGcTest, UntaggedManifestsAreKeptUnlessAskedFor) {
  BlobRecord layer = PushBlob("app", "untagged layer");
  BlobRecord kept = PushBlob("app", "tagged layer");
  ManifestRecord untagged = Image("untagged image", {layer.digest});
  untagged.created_unix = now_;
  ManifestRecord tagged = Image("tagged image", {kept.digest});
  tagged.created_unix = now_;
  ASSERT_TRUE(meta_->PutManifest("app", untagged, std::nullopt).ok());
  ASSERT_TRUE(meta_->PutManifest("app", tagged, "latest").ok());
  ManifestRecord sig = Image("signature", {});
  sig.subject = untagged.digest;
  sig.created_unix = now_ + 500;
  ASSERT_TRUE(meta_->PutManifest("app", sig, std::nullopt).ok());
  now_ += 1000;
  {
    auto gc = MakeGc();  // untagged_after off: everything stays
    for (int i = 0; i < 2; ++i) EXPECT_EQ(Round(*gc).manifests, 0u);
    EXPECT_TRUE(*meta_->ManifestExists("app", untagged.digest));
    EXPECT_TRUE(OnDisk(layer));
  }
  gc_options_.untagged_after = std::chrono::seconds(2000);
  EXPECT_EQ(Round(*MakeGc()).manifests, 0u);  // pushed 1000s ago: not old enough
  gc_options_.untagged_after = std::chrono::seconds(900);
  auto gc = MakeGc();
  GcReport r = Round(*gc);     // manifests, then their links, then the chunks: one round
  EXPECT_EQ(r.manifests, 2u);  // with its (younger) signature
  EXPECT_EQ(r.blobs, 1u);
  EXPECT_FALSE(*meta_->ManifestExists("app", untagged.digest));
  EXPECT_FALSE(*meta_->ManifestExists("app", sig.digest));
  EXPECT_TRUE(*meta_->ManifestExists("app", tagged.digest));
  EXPECT_TRUE(Gone(layer));
  EXPECT_TRUE(OnDisk(kept));
}

TEST_F(ReachabilityGcTest, EachRoundExaminesABoundedPage) {
  gc_options_.scan_page = 2;
  std::vector<BlobRecord> blobs;
  for (int i = 0; i < 5; ++i)
    blobs.push_back(PushBlob("r" + std::to_string(i), "b" + std::to_string(i)));
  now_ += 3600;
  auto gc = MakeGc();
  EXPECT_EQ(Round(*gc).links, 2u);
  EXPECT_EQ(Round(*gc).links, 2u);
  EXPECT_EQ(Round(*gc).links, 1u);  // the end of the scan: the next round starts over
  for (const auto& b : blobs) EXPECT_TRUE(Gone(b));
  EXPECT_EQ(Round(*gc).links, 0u);
}

TEST_F(ReachabilityGcTest, DryRunReportsAndFreesNothingThenAPassFrees) {
  gc_options_.scan_page = 2;  // several pages either way
  BlobRecord shared = PushBlob("a", "shared", 2);
  ASSERT_TRUE(meta_->LinkBlob("b", shared.digest).ok());
  BlobRecord lone = PushBlob("a", "lone", 3);
  BlobRecord used = PushBlob("a", "used", 1);
  ASSERT_TRUE(meta_->PutManifest("a", Image("img", {used.digest}), "t").ok());
  for (int i = 0; i < 3; ++i) PushBlob("c", "more" + std::to_string(i), 1);
  now_ += 3600;
  auto gc = MakeGc();
  GcReport dry;
  Run([&]() -> awaitable<void> {
    auto r = co_await gc->DryRun();
    EXPECT_TRUE(r.has_value());
    if (r) dry = *r;
  });
  EXPECT_EQ(dry.links, 6u);  // shared twice, lone, three in c
  EXPECT_EQ(dry.blobs, 5u);
  EXPECT_EQ(dry.chunks_released, 2u + 3u + 3u);
  EXPECT_EQ(dry.chunks_deleted, 0u);
  EXPECT_TRUE(OnDisk(shared) && OnDisk(lone) && OnDisk(used));
  EXPECT_TRUE(meta_->GetLinkedBlob("a", lone.digest).has_value());
  GcReport real;
  Run([&]() -> awaitable<void> { real = co_await gc->RunPass(); });
  EXPECT_EQ(real.links, dry.links);
  EXPECT_EQ(real.blobs, dry.blobs);
  EXPECT_EQ(real.blob_bytes, dry.blob_bytes);
  EXPECT_EQ(real.chunks_released, dry.chunks_released);
  EXPECT_EQ(real.chunks_deleted, dry.chunks_released);
  EXPECT_TRUE(Gone(shared) && Gone(lone));
  EXPECT_TRUE(OnDisk(used));
  EXPECT_EQ(cluster_.CopyCount("a1"), 1u);
}

}  // namespace
}  // namespace wharf
