// LookupCache and the caching MetaStore: the whole MetaStore conformance suite over a caching
// SQLite store (a cache that forgot an invalidation answers a deleted blob, manifest or moved
// tag, and a case fails), plus the cache's own bounds, expiry and generation rule.
#include "meta/lookup_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/fs.h"
#include "conformance/meta_store_suite.h"

namespace wharf::testing {
namespace {

namespace fs = std::filesystem;

std::string FreshDir() {
  static const fs::path root = [] {
    fs::path p = fs::path(::testing::TempDir()) / ("wharf-lookup-" + std::to_string(getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    std::atexit([] {
      fs::remove_all(fs::path(::testing::TempDir()) / ("wharf-lookup-" + std::to_string(getpid())));
    });
    return p;
  }();
  static std::atomic<int> n{0};
  fs::path dir = root / std::to_string(n++);
  fs::create_directories(dir);
  return dir.string();
}

// The caches live as long as the test binary: a store may be reopened within a test.
LookupCache& NewCache(LookupCacheOptions o) {
  static std::mutex mu;
  static std::deque<std::unique_ptr<LookupCache>> caches;
  std::lock_guard lock(mu);
  caches.push_back(std::make_unique<LookupCache>(o));
  return *caches.back();
}

MetaStoreCase CachingSqliteCase() {
  MetaStoreCase c{"CachingSqlite", "", [] { return "sqlite:" + FreshDir() + "/meta.db"; }, {}};
  c.wrap = [](std::unique_ptr<MetaStore> inner) {
    // Long-lived entries and tags cached: only invalidation keeps the answers right.
    LookupCacheOptions o;
    o.ttl = std::chrono::hours(1);
    o.tags = true;
    return MakeCachingMetaStore(std::move(inner), NewCache(o));
  };
  return c;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(CachingSqlite, MetaStoreSuite, ::testing::Values(CachingSqliteCase()));

namespace {

BlobRecord Blob(const std::string& text) {
  BlobRecord b;
  b.digest = DigestOf(text);
  b.size = text.size();
  b.chunks.push_back(ChunkRef{"g1", "c-" + text, text.size(), 7});
  return b;
}

ManifestRecord Manifest(const std::string& content) {
  ManifestRecord m;
  m.digest = DigestOf(content);
  m.media_type = "application/vnd.oci.image.manifest.v1+json";
  m.content = content;
  return m;
}

TEST(LookupCacheTest, AnswersWhatWasPutUntilItExpires) {
  LookupCacheOptions o;
  o.ttl = std::chrono::milliseconds(200);
  LookupCache cache(o);
  const BlobRecord b = Blob("layer");
  EXPECT_FALSE(cache.FindLinkedBlob("a/b", b.digest));
  cache.PutLinkedBlob(cache.Generation(), "a/b", b);
  ASSERT_TRUE(cache.FindLinkedBlob("a/b", b.digest));
  EXPECT_EQ(*cache.FindLinkedBlob("a/b", b.digest), b);
  EXPECT_FALSE(cache.FindLinkedBlob("a/c", b.digest)) << "links are per repository";
  EXPECT_FALSE(cache.FindManifest("a/b", b.digest)) << "kinds do not mix";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(cache.FindLinkedBlob("a/b", b.digest));
  EXPECT_EQ(cache.entries(), 0u);
}

TEST(LookupCacheTest, DropsAnAnswerReadBeforeAnInvalidation) {
  LookupCache cache(LookupCacheOptions{});
  const ManifestRecord m = Manifest("{}");
  const uint64_t before = cache.Generation();  // a reader starts its query
  cache.Clear();                               // a delete commits meanwhile
  cache.PutManifest(before, "a/b", m);         // the reader's (old) answer arrives
  EXPECT_FALSE(cache.FindManifest("a/b", m.digest));
  cache.PutManifest(cache.Generation(), "a/b", m);
  EXPECT_TRUE(cache.FindManifest("a/b", m.digest));
}

TEST(LookupCacheTest, ALinkFoundGoneIsForgotten) {
  LookupCache cache(LookupCacheOptions{});
  const BlobRecord b = Blob("collected elsewhere");
  EXPECT_FALSE(cache.InvalidateLinkedBlob("a/b", b.digest));
  cache.PutLinkedBlob(cache.Generation(), "a/b", b);
  const uint64_t before = cache.Generation();
  EXPECT_TRUE(cache.InvalidateLinkedBlob("a/b", b.digest));
  EXPECT_FALSE(cache.FindLinkedBlob("a/b", b.digest));
  cache.PutLinkedBlob(before, "a/b", b);  // a read that started before: dropped
  EXPECT_FALSE(cache.FindLinkedBlob("a/b", b.digest));
}

TEST(LookupCacheTest, TagsOnlyWhenAsked) {
  LookupCache off(LookupCacheOptions{});
  off.PutTag(off.Generation(), "a/b", "v1", DigestOf("x"));
  EXPECT_FALSE(off.FindTag("a/b", "v1"));
  LookupCacheOptions o;
  o.tags = true;
  LookupCache on(o);
  on.PutTag(on.Generation(), "a/b", "v1", DigestOf("x"));
  ASSERT_TRUE(on.FindTag("a/b", "v1"));
  EXPECT_EQ(*on.FindTag("a/b", "v1"), DigestOf("x"));
  on.InvalidateTag("a/b", "v1");
  EXPECT_FALSE(on.FindTag("a/b", "v1"));
}

TEST(LookupCacheTest, StaysWithinItsBounds) {
  LookupCacheOptions o;
  o.max_entries = 100;
  o.max_bytes = 1u << 20;
  LookupCache cache(o);
  for (int i = 0; i < 1000; ++i) {
    cache.PutLinkedBlob(cache.Generation(), "r", Blob("b" + std::to_string(i)));
  }
  EXPECT_EQ(cache.entries(), 100u);
  EXPECT_TRUE(cache.FindLinkedBlob("r", DigestOf("b999"))) << "the newest stay";
  EXPECT_FALSE(cache.FindLinkedBlob("r", DigestOf("b0")));
  // Manifests count their content: 64 KiB each, at most a quarter of the budget per entry.
  for (int i = 0; i < 100; ++i) {
    cache.PutManifest(cache.Generation(), "r",
                      Manifest(std::string(64 << 10, 'a' + i % 26) + std::to_string(i)));
  }
  EXPECT_LE(cache.bytes(), o.max_bytes);
  cache.PutManifest(cache.Generation(), "r", Manifest(std::string(300 << 10, 'x')));
  EXPECT_FALSE(cache.FindManifest("r", DigestOf(std::string(300 << 10, 'x'))));
}

TEST(LookupCacheTest, OffMeansOff) {
  LookupCacheOptions o;
  o.ttl = std::chrono::milliseconds(0);
  LookupCache cache(o);
  EXPECT_FALSE(cache.enabled());
  cache.PutLinkedBlob(cache.Generation(), "r", Blob("x"));
  EXPECT_FALSE(cache.FindLinkedBlob("r", DigestOf("x")));
}

TEST(CachingMetaStoreTest, AnotherWritersDeleteIsSeenWithinTheTtl) {
  const std::string url = "sqlite:" + FreshDir() + "/meta.db";
  auto a = OpenMetaStore(url);
  auto b = OpenMetaStore(url);
  ASSERT_TRUE(a && b);
  LookupCacheOptions o;
  o.ttl = std::chrono::milliseconds(300);
  LookupCache cache(o);
  auto cached = MakeCachingMetaStore(std::move(*a), cache);
  const BlobRecord blob = Blob("shared");
  UploadSession u;
  u.id = "u1";
  u.repo = "team/app";
  META_ASSERT_OK((*b)->CreateUpload(u));
  META_ASSERT_OK((*b)->RecordChunks(ChunkOwner::Upload(u.id), blob.chunks));
  META_ASSERT_OK((*b)->CommitBlob(u.id, "team/app", blob));
  META_ASSERT_OK(cached->GetLinkedBlob("team/app", blob.digest));  // fills the cache
  META_ASSERT_OK((*b)->UnlinkBlob("team/app", blob.digest));       // another gateway's delete
  EXPECT_TRUE(cache.FindLinkedBlob("team/app", blob.digest)) << "believed for the ttl";
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  META_EXPECT_CODE(cached->GetLinkedBlob("team/app", blob.digest), Code::kNotFound);
}

TEST(CachingMetaStoreTest, AManifestNamingGoneContentForgetsItsCachedLinks) {
  // Gateway A caches a link; gateway B's collector takes the blob; a manifest push through A
  // fails MANIFEST_BLOB_UNKNOWN, and from then on A answers the blob as absent (the client
  // pushes it again) instead of a stale 200 for the rest of the ttl.
  const std::string url = "sqlite:" + FreshDir() + "/meta.db";
  auto a = OpenMetaStore(url);
  auto b = OpenMetaStore(url);
  ASSERT_TRUE(a && b);
  LookupCacheOptions o;
  o.ttl = std::chrono::hours(1);
  LookupCache cache(o);
  auto cached = MakeCachingMetaStore(std::move(*a), cache);
  const BlobRecord blob = Blob("layer");
  UploadSession u;
  u.id = "u1";
  u.repo = "team/app";
  META_ASSERT_OK(cached->CreateUpload(u));
  META_ASSERT_OK(cached->RecordChunks(ChunkOwner::Upload(u.id), blob.chunks));
  META_ASSERT_OK(cached->CommitBlob(u.id, "team/app", blob));
  META_ASSERT_OK(cached->GetLinkedBlob("team/app", blob.digest));  // cached
  META_ASSERT_OK((*b)->UnlinkBlob("team/app", blob.digest));       // gone, behind A's back
  ASSERT_TRUE(cache.FindLinkedBlob("team/app", blob.digest));
  ManifestRecord m = Manifest(R"({"layers":1})");
  m.blobs = {blob.digest};
  Digest missing;
  META_EXPECT_CODE(cached->PutManifest("team/app", m, std::string("v1"), &missing),
                   Code::kNotFound);
  EXPECT_FALSE(cache.FindLinkedBlob("team/app", blob.digest));
  META_EXPECT_CODE(cached->GetLinkedBlob("team/app", blob.digest), Code::kNotFound);
}

}  // namespace
}  // namespace wharf::testing
