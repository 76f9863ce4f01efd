// MetaStoreSuite cases for the garbage collector's operations ("Garbage collection" in
// meta_store.h). Included by meta_store_suite.h; not a header of its own.
#pragma once

#include <set>
#include <utility>

namespace wharf::testing {

namespace gc_cases {

inline std::vector<std::pair<std::string, Digest>> Keys(const std::vector<GcItem>& items) {
  std::vector<std::pair<std::string, Digest>> out;
  for (const GcItem& i : items) out.emplace_back(i.repo, i.digest);
  return out;
}

}  // namespace gc_cases

// Links the store stamped at now_ and a cutoff just after it, so they qualify.
TEST_P(MetaStoreSuite, GcListsUnreferencedLinksOlderThanTheCutoff) {
  BlobRecord lone = Blob("lone", {Chunk("lo1", 4), Chunk("lo2", 1)});
  BlobRecord used = Blob("used", {Chunk("us1", 4)});
  BlobRecord twice = Blob("twice", {Chunk("tw1", 5)});
  META_ASSERT_OK(s().PutBlob("r1", lone));
  META_ASSERT_OK(s().PutBlob("r1", used));
  META_ASSERT_OK(s().PutBlob("r1", twice));
  META_ASSERT_OK(s().LinkBlob("r2", twice.digest));
  ManifestRecord m = Manifest("uses used");
  m.blobs = {used.digest};
  META_ASSERT_OK(s().PutManifest("r1", m, "latest"));
  const int64_t linked_at = now_.load();
  // Links made at the cutoff or after are in their grace period.
  auto young = s().ListUnreferencedBlobLinks({}, linked_at, 100);
  META_ASSERT_OK(young);
  EXPECT_TRUE(young->items.empty());
  EXPECT_TRUE(young->next.at_start());
  auto page = s().ListUnreferencedBlobLinks({}, linked_at + 1, 100);
  META_ASSERT_OK(page);
  std::vector<std::pair<std::string, Digest>> want = {
      {"r1", lone.digest}, {"r1", twice.digest}, {"r2", twice.digest}};
  std::sort(want.begin(), want.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.first, a.second.ToString()) <
           std::make_pair(b.first, b.second.ToString());
  });
  EXPECT_EQ(gc_cases::Keys(page->items), want);
  EXPECT_TRUE(page->next.at_start());
  for (const GcItem& i : page->items) {
    EXPECT_EQ(i.size, 5u);  // lone: 4 + 1; twice: 5
    EXPECT_EQ(i.links, i.digest == twice.digest ? 2u : 1u);
  }
  META_EXPECT_CODE(s().ListUnreferencedBlobLinks({}, linked_at + 1, 0), Code::kInvalidArgument);
  // Listing changes nothing.
  EXPECT_EQ(Must(s().GetLinkedBlob("r1", lone.digest)), lone);
  EXPECT_EQ(StateOf("lo1"), ChunkState::kLive);
}

TEST_P(MetaStoreSuite, GcCollectBlobLinksDeletesABlobWithItsLastLink) {
  BlobRecord lone = Blob("lone", {Chunk("lo1", 4), Chunk("lo2", 1)});
  BlobRecord twice = Blob("twice", {Chunk("tw1", 5)});
  META_ASSERT_OK(s().PutBlob("r1", lone));
  META_ASSERT_OK(s().PutBlob("r1", twice));
  META_ASSERT_OK(s().LinkBlob("r2", twice.digest));
  const int64_t cutoff = now_.load() + 1;
  auto page = s().ListUnreferencedBlobLinks({}, cutoff, 100);
  META_ASSERT_OK(page);
  std::vector<GcItem> r1_only;
  for (const GcItem& i : page->items) {
    if (i.repo == "r1") r1_only.push_back(i);
  }
  ASSERT_EQ(r1_only.size(), 2u);
  GcFreed freed = Must(s().CollectBlobLinks(r1_only, cutoff));
  EXPECT_EQ(freed, (GcFreed{0, 2, 1, 5, 2}));
  // "lone" is gone with its chunks; "twice" stays, linked in r2 only.
  META_EXPECT_CODE(s().GetBlob(lone.digest), Code::kNotFound);
  EXPECT_EQ(StateOf("lo1"), ChunkState::kGarbage);
  EXPECT_EQ(StateOf("lo2"), ChunkState::kGarbage);
  META_EXPECT_CODE(s().GetLinkedBlob("r1", twice.digest), Code::kNotFound);
  EXPECT_EQ(Must(s().GetLinkedBlob("r2", twice.digest)), twice);
  EXPECT_EQ(StateOf("tw1"), ChunkState::kLive);
  // Collecting again, or unknown items, frees nothing.
  EXPECT_EQ(Must(s().CollectBlobLinks(r1_only, cutoff)), GcFreed{});
  EXPECT_EQ(Must(s().CollectBlobLinks({GcItem{"nowhere", lone.digest, 0, 0}}, cutoff)), GcFreed{});
  EXPECT_EQ(Must(s().CollectBlobLinks({}, cutoff)), GcFreed{});
}

// The race that must never lose data, at the store: the collector lists a blob as unreferenced,
// then a client (which saw the blob present) commits a manifest referencing it, then the
// collector collects. The collection re-decides in its transaction and keeps the blob.
TEST_P(MetaStoreSuite, GcCollectRedecidesAfterAManifestCommitted) {
  BlobRecord layer = Blob("layer", {Chunk("la1", 5)});
  META_ASSERT_OK(s().PutBlob("r", layer));
  const int64_t cutoff = now_.load() + 1;
  auto page = s().ListUnreferencedBlobLinks({}, cutoff, 100);
  META_ASSERT_OK(page);
  ASSERT_EQ(page->items.size(), 1u);                     // the collector has decided
  EXPECT_TRUE(Must(s().BlobLinked("r", layer.digest)));  // the client's HEAD
  ManifestRecord m = Manifest("image");
  m.blobs = {layer.digest};
  META_ASSERT_OK(s().PutManifest("r", m, "v1"));
  EXPECT_EQ(Must(s().CollectBlobLinks(page->items, cutoff)), GcFreed{});
  EXPECT_EQ(Must(s().GetLinkedBlob("r", layer.digest)), layer);
  EXPECT_EQ(StateOf("la1"), ChunkState::kLive);
}

// A blob linked again after the listing (a dedup push, a mount) starts a new grace period.
TEST_P(MetaStoreSuite, GcCollectSkipsALinkMadeAgainAfterTheListing) {
  BlobRecord layer = Blob("layer", {Chunk("la1", 5)});
  META_ASSERT_OK(s().PutBlob("r", layer));
  now_ += 100;
  const int64_t cutoff = now_.load() - 10;  // a grace of 10s: the link is 100s old
  auto page = s().ListUnreferencedBlobLinks({}, cutoff, 100);
  META_ASSERT_OK(page);
  ASSERT_EQ(page->items.size(), 1u);
  META_ASSERT_OK(s().LinkBlob("r", layer.digest));  // stamped now_, after the cutoff
  EXPECT_EQ(Must(s().CollectBlobLinks(page->items, cutoff)), GcFreed{});
  EXPECT_TRUE(Must(s().BlobLinked("r", layer.digest)));
  EXPECT_TRUE(Must(s().ListUnreferencedBlobLinks({}, cutoff, 100)).items.empty());
}

// The other order: once the collection committed, the blob is absent for every reader, a
// manifest referencing it is refused naming it, and pushing the content again stores a new
// blob with new chunks while the old ones stay garbage.
TEST_P(MetaStoreSuite, GcCollectedBlobIsAbsentAndCanBePushedAgain) {
  BlobRecord layer = Blob("layer", {Chunk("old1", 5)});
  META_ASSERT_OK(s().PutBlob("r", layer));
  META_ASSERT_OK(s().PutBlob("src", Blob("other", {Chunk("ot1", 5)})));
  const int64_t cutoff = now_.load() + 1;
  auto page = s().ListUnreferencedBlobLinks({}, cutoff, 100);
  META_ASSERT_OK(page);
  std::vector<GcItem> items;
  for (const GcItem& i : page->items) {
    if (i.repo == "r") items.push_back(i);
  }
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(Must(s().CollectBlobLinks(items, cutoff)).blobs, 1u);
  META_EXPECT_CODE(s().GetBlob(layer.digest), Code::kNotFound);
  META_EXPECT_CODE(s().GetLinkedBlob("r", layer.digest), Code::kNotFound);
  EXPECT_FALSE(Must(s().BlobLinked("r", layer.digest)));
  META_EXPECT_CODE(s().LinkBlob("elsewhere", layer.digest), Code::kNotFound);  // a mount
  ManifestRecord m = Manifest("image");
  m.blobs = {layer.digest};
  Digest missing;
  META_EXPECT_CODE(s().PutManifest("r", m, "v1", &missing), Code::kNotFound);
  EXPECT_EQ(missing, layer.digest);
  EXPECT_EQ(StateOf("old1"), ChunkState::kGarbage);
  EXPECT_TRUE(Must(s().PutBlob("r", Blob("layer", {Chunk("new1", 5)}))));
  META_ASSERT_OK(s().PutManifest("r", m, "v1"));
  EXPECT_EQ(Must(s().GetLinkedBlob("r", layer.digest)).chunks, std::vector{Chunk("new1", 5)});
  EXPECT_EQ(StateOf("old1"), ChunkState::kGarbage);
  auto garbage = Must(s().ListGarbageChunks(10));
  ASSERT_EQ(garbage.size(), 1u);
  EXPECT_EQ(garbage[0].id, "old1");
}

// Pages are bounded by rows scanned (qualifying or not), in (repo, digest) order, and the
// cursor walks every row exactly once.
TEST_P(MetaStoreSuite, GcScansAreBoundedPagesWithACursor) {
  std::set<std::pair<std::string, std::string>> want;
  for (int r = 0; r < 3; ++r) {
    const std::string repo = "repo" + std::to_string(r);
    for (int b = 0; b < 4; ++b) {
      BlobRecord blob = Blob("b" + std::to_string(b), {Chunk(repo + "-c" + std::to_string(b), 1)});
      if (r == 0) {
        META_ASSERT_OK(s().PutBlob(repo, blob));
      } else {
        META_ASSERT_OK(s().LinkBlob(repo, blob.digest));
      }
      if (b == 1) {  // referenced: scanned but not returned
        ManifestRecord m = Manifest("m" + repo);
        m.blobs = {blob.digest};
        META_ASSERT_OK(s().PutManifest(repo, m, "t"));
      } else {
        want.emplace(repo, blob.digest.ToString());
      }
      // Manifests for the manifest scan: the tagged one above, one untagged per blob.
      META_ASSERT_OK(s().PutManifest(repo, Manifest(repo + "u" + std::to_string(b)), std::nullopt));
    }
  }
  const int64_t cutoff = now_.load() + 1;
  std::set<std::pair<std::string, std::string>> got;
  std::pair<std::string, std::string> prev;
  GcCursor cursor;
  int pages = 0;
  do {
    auto page = s().ListUnreferencedBlobLinks(cursor, cutoff, 5);
    META_ASSERT_OK(page);
    ASSERT_LE(page->items.size(), 5u);
    for (const GcItem& i : page->items) {
      std::pair<std::string, std::string> key(i.repo, i.digest.ToString());
      EXPECT_LT(prev, key);
      prev = key;
      EXPECT_TRUE(got.insert(key).second);
    }
    cursor = page->next;
    ASSERT_LT(++pages, 10);
  } while (!cursor.at_start());
  EXPECT_EQ(got, want);
  EXPECT_EQ(pages, 3);  // 12 links scanned 5 at a time
  // The manifest scan: 15 manifests, 12 untagged.
  size_t untagged = 0;
  pages = 0;
  cursor = {};
  do {
    auto page = s().ListUntaggedManifests(cursor, 1000, 4);  // created_unix is 42
    META_ASSERT_OK(page);
    untagged += page->items.size();
    cursor = page->next;
    ASSERT_LT(++pages, 10);
  } while (!cursor.at_start());
  EXPECT_EQ(untagged, 12u);
  EXPECT_EQ(pages, 4);
  META_EXPECT_CODE(s().ListUntaggedManifests({}, 1000, 0), Code::kInvalidArgument);
}

// Untagged: no tag, no index of the repository lists it, no subject present. Referrers follow
// their subject; a collected manifest takes its untagged referrers along.
TEST_P(MetaStoreSuite, GcUntaggedManifestsAndTheirReferrers) {
  auto put = [this](ManifestRecord m, std::optional<std::string> tag, int64_t created) {
    m.created_unix = created;
    EXPECT_EQ(CodeOf(s().PutManifest("r", m, tag)), Code::kOk);
    return m;
  };
  ManifestRecord tagged = put(Manifest("tagged"), "latest", 10);
  ManifestRecord child = put(Manifest("child"), std::nullopt, 10);
  ManifestRecord index = Manifest("index");
  index.manifests = {child.digest};
  index = put(index, "multi", 10);
  ManifestRecord sig = put(Manifest("signature of tagged", tagged.digest), std::nullopt, 10);
  ManifestRecord old = put(Manifest("old untagged"), std::nullopt, 10);
  ManifestRecord sbom = put(Manifest("sbom of old", old.digest), std::nullopt, 500);
  ManifestRecord sbom_sig = put(Manifest("signature of sbom", sbom.digest), std::nullopt, 500);
  ManifestRecord kept_ref = put(Manifest("tagged referrer of old", old.digest), "keep", 10);
  ManifestRecord dangling = put(Manifest("referrer first", DigestOf("absent")), std::nullopt, 10);
  ManifestRecord young = put(Manifest("young untagged"), std::nullopt, 200);
  META_ASSERT_OK(s().PutManifest("other", Manifest("old untagged"), "elsewhere"));
  auto page = s().ListUntaggedManifests({}, 100, 100);
  META_ASSERT_OK(page);
  std::vector<std::pair<std::string, Digest>> want = {{"r", old.digest}, {"r", dangling.digest}};
  std::sort(want.begin(), want.end(),
            [](const auto& a, const auto& b) { return a.second.ToString() < b.second.ToString(); });
  EXPECT_EQ(gc_cases::Keys(page->items), want);
  for (const GcItem& i : page->items) {
    EXPECT_EQ(i.size, (i.digest == old.digest ? old : dangling).content.size());
  }
  GcFreed freed = Must(s().CollectManifests(page->items, 100));
  EXPECT_EQ(freed.manifests, 4u);  // old, its sbom and the sbom's signature; dangling
  for (const auto* gone : {&old, &sbom, &sbom_sig, &dangling}) {
    EXPECT_FALSE(Must(s().ManifestExists("r", gone->digest))) << gone->content;
  }
  for (const auto* kept : {&tagged, &child, &index, &sig, &kept_ref, &young}) {
    EXPECT_TRUE(Must(s().ManifestExists("r", kept->digest))) << kept->content;
  }
  EXPECT_TRUE(Must(s().ManifestExists("other", old.digest)));  // copies elsewhere stay
  // Untagging the index makes it collectable, and its child once the index is gone.
  META_ASSERT_OK(s().DeleteTag("r", "multi"));
  auto next = Must(s().ListUntaggedManifests({}, 100, 100));
  EXPECT_EQ(gc_cases::Keys(next.items),
            (std::vector<std::pair<std::string, Digest>>{{"r", index.digest}}));
  EXPECT_EQ(Must(s().CollectManifests(next.items, 100)).manifests, 1u);
  next = Must(s().ListUntaggedManifests({}, 100, 100));
  EXPECT_EQ(gc_cases::Keys(next.items),
            (std::vector<std::pair<std::string, Digest>>{{"r", child.digest}}));
}

TEST_P(MetaStoreSuite, GcCollectManifestsRedecides) {
  ManifestRecord m = Manifest("untagged for now");
  META_ASSERT_OK(s().PutManifest("r", m, std::nullopt));
  auto page = Must(s().ListUntaggedManifests({}, 100, 100));
  ASSERT_EQ(page.items.size(), 1u);
  META_ASSERT_OK(s().PutManifest("r", m, "tagged-meanwhile"));
  EXPECT_EQ(Must(s().CollectManifests(page.items, 100)), GcFreed{});
  EXPECT_TRUE(Must(s().ManifestExists("r", m.digest)));
  // A cutoff that does not cover its creation time keeps it too.
  META_ASSERT_OK(s().DeleteTag("r", "tagged-meanwhile"));
  EXPECT_EQ(Must(s().CollectManifests(page.items, 42)), GcFreed{});
  EXPECT_EQ(Must(s().CollectManifests(page.items, 43)).manifests, 1u);
  EXPECT_EQ(Must(s().CollectManifests({GcItem{"nowhere", m.digest, 0, 0}}, 43)), GcFreed{});
}

// Collecting a deleted image: its exclusive layers go, a layer another image shares stays.
TEST_P(MetaStoreSuite, GcAfterDeletingAnImageFreesOnlyItsExclusiveLayers) {
  BlobRecord shared = Blob("shared", {Chunk("sh1", 3)});
  BlobRecord mine = Blob("mine", {Chunk("mi1", 2), Chunk("mi2", 2)});
  META_ASSERT_OK(s().PutBlob("r", shared));
  META_ASSERT_OK(s().PutBlob("r", mine));
  ManifestRecord a = Manifest("image a");
  a.blobs = {shared.digest, mine.digest};
  ManifestRecord b = Manifest("image b");
  b.blobs = {shared.digest};
  META_ASSERT_OK(s().PutManifest("r", a, "a"));
  META_ASSERT_OK(s().PutManifest("r", b, "b"));
  const int64_t cutoff = now_.load() + 1;
  EXPECT_TRUE(Must(s().ListUnreferencedBlobLinks({}, cutoff, 100)).items.empty());
  META_ASSERT_OK(s().DeleteManifest("r", a.digest));
  auto page = Must(s().ListUnreferencedBlobLinks({}, cutoff, 100));
  EXPECT_EQ(gc_cases::Keys(page.items),
            (std::vector<std::pair<std::string, Digest>>{{"r", mine.digest}}));
  EXPECT_EQ(Must(s().CollectBlobLinks(page.items, cutoff)), (GcFreed{0, 1, 1, 4, 2}));
  EXPECT_EQ(StateOf("mi1"), ChunkState::kGarbage);
  EXPECT_EQ(StateOf("sh1"), ChunkState::kLive);
}

// Many pushers and one collector that takes every unreferenced link at once (a zero grace
// period): a manifest that committed always has every blob it references, and a push refused
// with kNotFound re-pushes the blob and retries.
TEST_P(MetaStoreSuite, GcConcurrentWithPushesNeverLosesAReferencedBlob) {
  constexpr int kPushers = 3, kPushes = 25;
  std::atomic<bool> stop{false};
  std::atomic<int> chunk_seq{0};
  std::atomic<int> failures{0};
  std::thread collector([&] {
    while (!stop) {
      const int64_t cutoff = now_.load() + 1;
      auto page = s().ListUnreferencedBlobLinks({}, cutoff, 50);
      if (!page) {
        failures++;
        continue;
      }
      if (!s().CollectBlobLinks(page->items, cutoff)) failures++;
    }
  });
  std::vector<std::thread> pushers;
  std::vector<std::vector<ManifestRecord>> pushed(kPushers);
  for (int p = 0; p < kPushers; ++p) {
    pushers.emplace_back([&, p] {
      for (int i = 0; i < kPushes; ++i) {
        ManifestRecord m = Manifest("image " + std::to_string(p) + "-" + std::to_string(i));
        m.blobs = {DigestOf("base layer"), DigestOf("layer " + std::to_string(i % 5))};
        for (int attempt = 0; attempt < 50; ++attempt) {
          for (const Digest& d : m.blobs) {
            // HEAD, and push when absent (the collector may take it right after).
            auto linked = s().BlobLinked("r", d);
            if (linked && *linked) continue;
            BlobRecord b;
            b.digest = d;
            b.size = 1;
            b.chunks = {Chunk("cc" + std::to_string(chunk_seq++), 1)};
            if (!s().PutBlob("r", b)) failures++;
          }
          Status st = s().PutManifest("r", m, "t" + std::to_string(p) + "-" + std::to_string(i));
          if (st.ok()) {
            pushed[p].push_back(m);
            break;
          }
          if (st.code() != Code::kNotFound) failures++;
        }
      }
    });
  }
  for (auto& t : pushers) t.join();
  stop = true;
  collector.join();
  EXPECT_EQ(failures.load(), 0);
  for (const auto& list : pushed) {
    EXPECT_EQ(list.size(), size_t{kPushes});
    for (const ManifestRecord& m : list) {
      for (const Digest& d : m.blobs) {
        auto blob = s().GetLinkedBlob("r", d);
        ASSERT_TRUE(blob) << d.ToString() << ": " << TextOf(blob);
        for (const ChunkRef& c : blob->chunks) EXPECT_EQ(StateOf(c.id), ChunkState::kLive);
      }
    }
  }
}

// Two store objects on one database (two connections; for a shared database, two gateways):
// one pushes manifests referencing blobs that the other keeps collecting with a zero grace
// period. No manifest ever commits without its blobs.
TEST_P(MetaStoreSuite, GcTwoStoresRacingPushesAndCollections) {
  MetaStoreOptions options;
  options.now_unix = [this] { return now_.load(); };
  auto other = OpenMetaStore(url_, std::move(options));
  ASSERT_TRUE(other) << other.error().ToString();
  MetaStore& collector = **other;
  constexpr int kPushes = 40;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread gc([&] {
    while (!stop) {
      const int64_t cutoff = now_.load() + 1;
      auto page = collector.ListUnreferencedBlobLinks({}, cutoff, 50);
      if (!page || !collector.CollectBlobLinks(page->items, cutoff)) failures++;
    }
  });
  std::vector<ManifestRecord> committed;
  for (int i = 0; i < kPushes; ++i) {
    BlobRecord b = Blob("two stores " + std::to_string(i), {Chunk("ts" + std::to_string(i), 1)});
    ManifestRecord m = Manifest("two stores image " + std::to_string(i));
    m.blobs = {b.digest};
    if (!s().PutBlob("r", b)) failures++;
    Status st = s().PutManifest("r", m, "t" + std::to_string(i));
    if (st.ok()) {
      committed.push_back(m);
    } else if (st.code() != Code::kNotFound) {
      failures++;
    }
  }
  stop = true;
  gc.join();
  EXPECT_EQ(failures.load(), 0);
  for (const ManifestRecord& m : committed) {
    auto blob = s().GetLinkedBlob("r", m.blobs[0]);
    EXPECT_TRUE(blob) << m.blobs[0].ToString() << " lost under a committed manifest";
  }
  // Whatever was refused had its blob collected: nothing unreferenced is left either.
  const int64_t cutoff = now_.load() + 1;
  auto rest = Must(collector.ListUnreferencedBlobLinks({}, cutoff, 1000));
  Must(collector.CollectBlobLinks(rest.items, cutoff));
  auto page = Must(s().ListUnreferencedBlobLinks({}, cutoff, 1000));
  EXPECT_TRUE(page.items.empty());
}

}  // namespace wharf::testing
