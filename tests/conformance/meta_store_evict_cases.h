// MetaStoreSuite cases for a site cache's eviction ("Site cache eviction" in meta_store.h):
// TouchBlobs, the candidates' order and what they leave out (queued content), EvictBlob's
// re-checks, what an eviction leaves (manifests) and frees (links, the record, chunks as
// garbage), storing an evicted blob again, and two store objects evicting one blob. Included by
// meta_store_suite.h; not a header of its own.
#pragma once

namespace wharf::testing {

namespace evict_cases {

// The digests of `c`, in order.
inline std::vector<Digest> DigestsOf(const std::vector<EvictionCandidate>& c) {
  std::vector<Digest> out;
  for (const EvictionCandidate& e : c) out.push_back(e.digest);
  return out;
}

}  // namespace evict_cases

using namespace evict_cases;  // NOLINT: test-local helpers

TEST_P(MetaStoreSuite, EvictionCandidatesByLastUseOldestFirst) {
  BlobRecord a = Blob("evict a", {Chunk("ea", 3)});
  BlobRecord b = Blob("evict b", {Chunk("eb", 5)});
  BlobRecord c = Blob("evict c", {Chunk("ec", 7)});
  a.created_unix = 100;
  b.created_unix = 200;
  c.created_unix = 300;
  META_ASSERT_OK(s().PutBlob("r1", a));
  META_ASSERT_OK(s().PutBlob("r1", b));
  META_ASSERT_OK(s().PutBlob("r2", c));
  META_EXPECT_CODE(s().ListEvictionCandidates(0), Code::kInvalidArgument);
  // Never pulled: by creation.
  auto all = Must(s().ListEvictionCandidates(10));
  EXPECT_THAT(DigestsOf(all), ElementsAre(a.digest, b.digest, c.digest));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], (EvictionCandidate{a.digest, 3, 100}));
  // A pull of a moves it last; an older pull time than what is stored changes nothing; unknown
  // digests are skipped.
  META_ASSERT_OK(s().TouchBlobs({a.digest, DigestOf("never stored")}, 400));
  META_ASSERT_OK(s().TouchBlobs({a.digest}, 350));
  META_ASSERT_OK(s().TouchBlobs({}, 999));
  all = Must(s().ListEvictionCandidates(10));
  EXPECT_THAT(DigestsOf(all), ElementsAre(b.digest, c.digest, a.digest));
  EXPECT_EQ(all.back().last_used_unix, 400);
  // A pull older than the creation: the creation counts.
  META_ASSERT_OK(s().TouchBlobs({c.digest}, 250));
  EXPECT_EQ(Must(s().ListEvictionCandidates(10))[1], (EvictionCandidate{c.digest, 7, 300}));
  EXPECT_THAT(DigestsOf(Must(s().ListEvictionCandidates(2))), ElementsAre(b.digest, c.digest));
  // Survives a reopen.
  Reopen();
  EXPECT_THAT(DigestsOf(Must(s().ListEvictionCandidates(10))),
              ElementsAre(b.digest, c.digest, a.digest));
}

TEST_P(MetaStoreSuite, EvictBlobRemovesEveryLinkAndTheRecordButNotTheManifest) {
  BlobRecord layer = Blob("evicted layer", {Chunk("el1", 4), Chunk("el2", 6)});
  META_ASSERT_OK(s().PutBlob("team/app", layer));
  META_ASSERT_OK(s().LinkBlob("team/other", layer.digest));
  ManifestRecord m = Manifest("{\"evict\":1}");
  m.blobs = {layer.digest};
  META_ASSERT_OK(s().PutManifest("team/app", m, "v1"));
  const int64_t used = Must(s().ListEvictionCandidates(1)).at(0).last_used_unix;
  // Pulled since the listing: kept.
  META_ASSERT_OK(s().TouchBlobs({layer.digest}, used + 10));
  EXPECT_EQ(Must(s().EvictBlob(layer.digest, used)), GcFreed{});
  EXPECT_TRUE(Must(s().BlobLinked("team/app", layer.digest)));
  // Not pulled since: gone from every repository, its chunks garbage.
  GcFreed freed = Must(s().EvictBlob(layer.digest, used + 10));
  EXPECT_EQ(freed, (GcFreed{0, 2, 1, 10, 2}));
  META_EXPECT_CODE(s().GetBlob(layer.digest), Code::kNotFound);
  EXPECT_FALSE(Must(s().BlobLinked("team/app", layer.digest)));
  EXPECT_FALSE(Must(s().BlobLinked("team/other", layer.digest)));
  EXPECT_EQ(StateOf("el1"), ChunkState::kGarbage);
  EXPECT_EQ(StateOf("el2"), ChunkState::kGarbage);
  EXPECT_THAT(Must(s().ListEvictionCandidates(10)), IsEmpty());
  // The manifest and its tag stay.
  EXPECT_EQ(Must(s().ResolveTag("team/app", "v1")), m.digest);
  EXPECT_EQ(Must(s().GetManifest("team/app", m.digest)).blobs, m.blobs);
  // Again, or an unknown blob: nothing.
  EXPECT_EQ(Must(s().EvictBlob(layer.digest, used + 10)), GcFreed{});
  EXPECT_EQ(Must(s().EvictBlob(DigestOf("unknown"), used + 10)), GcFreed{});
  // Fetched again from the upstream: stored anew under new chunks, and a manifest that
  // references it may be put again.
  BlobRecord again = Blob("evicted layer", {Chunk("el3", 10)});
  again.created_unix = used + 20;
  EXPECT_TRUE(Must(s().PutBlob("team/app", again)));
  EXPECT_EQ(Must(s().GetLinkedBlob("team/app", layer.digest)).chunks, again.chunks);
  META_ASSERT_OK(s().PutManifest("team/app", m, "v2"));
  // Its new creation is its last use: a stale listing does not evict it.
  EXPECT_EQ(Must(s().EvictBlob(layer.digest, used + 10)), GcFreed{});
}

TEST_P(MetaStoreSuite, EvictionLeavesQueuedContentAlone) {
  BlobRecord pushed = Blob("queued push", {Chunk("qp", 2)});
  BlobRecord layer = Blob("queued layer", {Chunk("ql", 3)});
  BlobRecord free = Blob("confirmed", {Chunk("qc", 4)});
  META_ASSERT_OK(s().PutBlob("team/app", pushed));
  META_ASSERT_OK(s().PutBlob("team/app", layer));
  META_ASSERT_OK(s().PutBlob("team/app", free));
  ManifestRecord m = Manifest("{\"queued\":1}");
  m.blobs = {layer.digest};
  META_ASSERT_OK(s().PutManifest("team/app", m, "v1"));
  META_ASSERT_OK(s().EnqueueItem(BlobKey("queued push")));
  META_ASSERT_OK(s().EnqueueItem(ManifestKey(m.digest)));
  EXPECT_THAT(DigestsOf(Must(s().ListEvictionCandidates(10))), ElementsAre(free.digest));
  EXPECT_EQ(Must(s().EvictBlob(pushed.digest, now_ + 1000)), GcFreed{});
  EXPECT_EQ(Must(s().EvictBlob(layer.digest, now_ + 1000)), GcFreed{});
  EXPECT_TRUE(Must(s().BlobLinked("team/app", pushed.digest)));
  EXPECT_TRUE(Must(s().BlobLinked("team/app", layer.digest)));
  // Shipped (done): confirmed upstream, so evictable.
  for (const QueueItem& it : Must(s().ClaimQueueItems(kTarget, "gw", 60, 10))) {
    META_ASSERT_OK(s().CompleteQueueItem(it));
  }
  EXPECT_EQ(Must(s().ListEvictionCandidates(10)).size(), 3u);
  EXPECT_EQ(Must(s().EvictBlob(layer.digest, now_ + 1000)).blobs, 1u);
  EXPECT_EQ(Must(s().EvictBlob(pushed.digest, now_ + 1000)).blobs, 1u);
}

TEST_P(MetaStoreSuite, EvictTwoStoresOneBlobEvictsOnce) {
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  constexpr int kBlobs = 20;
  std::vector<BlobRecord> blobs;
  for (int i = 0; i < kBlobs; ++i) {
    blobs.push_back(Blob("race " + std::to_string(i), {Chunk("race" + std::to_string(i), 1)}));
    META_ASSERT_OK(s().PutBlob("r", blobs.back()));
  }
  std::atomic<uint64_t> evicted{0};
  std::atomic<int> failures{0};
  auto evict = [&](MetaStore* store) {
    for (const BlobRecord& b : blobs) {
      auto r = store->EvictBlob(b.digest, now_ + 1000);
      if (!r) {
        failures++;
      } else {
        evicted += r->blobs;
      }
    }
  };
  std::thread t1(evict, &s());
  std::thread t2(evict, other.get());
  t1.join();
  t2.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(evicted.load(), static_cast<uint64_t>(kBlobs));
  EXPECT_EQ(Must(s().ListGarbageChunks(100)).size(), static_cast<size_t>(kBlobs));
}

}  // namespace wharf::testing
