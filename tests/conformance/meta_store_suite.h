// The MetaStore conformance suite: every contract of src/meta/meta_store.h, written once.
// An implementation joins with one line in its test file:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, MetaStoreSuite, ::testing::Values(SqliteCase()));
//
// where the MetaStoreCase says how to get the url of a fresh, empty database. Every test
// opens its store through OpenMetaStore(url, options) with an injected clock, and may reopen
// the same url to check durability. Tests never sleep.
//
// The TEST_P cases below must be compiled into a test binary once: a second .cc of the same
// binary that instantiates the suite (say postgres_meta_store_test.cc) first does
//   #define WHARF_META_STORE_SUITE_FIXTURE_ONLY
// and then includes this header for the fixture alone.
#pragma once

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "common/status.h"
#include "meta/meta_store.h"

namespace wharf::testing {

struct MetaStoreCase {
  std::string name;
  std::string skip_reason;  // not empty: skip every test (e.g. no database reachable)
  // Returns the url of a fresh, empty database; called once per test. "" when it cannot (it
  // reports why with ADD_FAILURE): the test fails.
  std::function<std::string()> fresh_url;
  // Set: the store under test is this wrapper of the opened store (a decorator must answer as
  // the store it wraps). OpenAnother's second store is not wrapped.
  std::function<std::unique_ptr<MetaStore>(std::unique_ptr<MetaStore>)> wrap;
};

inline void PrintTo(const MetaStoreCase& c, std::ostream* os) { *os << c.name; }

inline Code CodeOf(const Status& s) { return s.code(); }
template <typename T>
Code CodeOf(const Result<T>& r) {
  return r ? Code::kOk : r.error().code();
}
inline std::string TextOf(const Status& s) { return s.ToString(); }
template <typename T>
std::string TextOf(const Result<T>& r) {
  return r ? "OK" : r.error().ToString();
}

#define META_EXPECT_CODE(expr, code)                       \
  do {                                                     \
    auto&& meta_x_ = (expr);                               \
    EXPECT_EQ(CodeOf(meta_x_), (code)) << TextOf(meta_x_); \
  } while (0)
#define META_ASSERT_OK(expr)                                  \
  do {                                                        \
    auto&& meta_x_ = (expr);                                  \
    ASSERT_EQ(CodeOf(meta_x_), Code::kOk) << TextOf(meta_x_); \
  } while (0)

class MetaStoreSuite : public ::testing::TestWithParam<MetaStoreCase> {
 protected:
  void SetUp() override {
    if (!GetParam().skip_reason.empty()) GTEST_SKIP() << GetParam().skip_reason;
    url_ = GetParam().fresh_url();
    if (url_.empty()) GTEST_FAIL() << GetParam().name << ": no database to test on";
    Reopen();
  }

  // A second store object on the same database: what another gateway sees.
  std::unique_ptr<MetaStore> OpenAnother() {
    MetaStoreOptions options;
    options.now_unix = [this] { return now_.load(); };
    auto r = OpenMetaStore(url_, std::move(options));
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? std::move(*r) : nullptr;
  }

  // Closes the store and opens the same database again.
  void Reopen() {
    store_.reset();
    MetaStoreOptions options;
    options.now_unix = [this] { return now_.load(); };
    auto r = OpenMetaStore(url_, std::move(options));
    ASSERT_TRUE(r) << r.error().ToString();
    store_ = GetParam().wrap ? GetParam().wrap(std::move(*r)) : std::move(*r);
  }

  MetaStore& s() { return *store_; }

  static ChunkRef Chunk(std::string id, uint64_t size, std::string group = "g1") {
    return ChunkRef{std::move(group), std::move(id), size, size * 2654435761u + 1};
  }

  // Creates upload `id` in `repo` and appends `chunks` to it.
  void NewUpload(const std::string& id, const std::string& repo,
                 const std::vector<ChunkRef>& chunks = {}) {
    UploadSession u;
    u.id = id;
    u.repo = repo;
    META_ASSERT_OK(s().CreateUpload(u));
    META_ASSERT_OK(s().RecordChunks(ChunkOwner::Upload(id), chunks));
    uint64_t size = 0;
    for (const ChunkRef& c : chunks) size += c.size;
    META_ASSERT_OK(s().AppendUpload(id, 0, size, "state", chunks, ""));
  }

  static BlobRecord Blob(std::string_view content, std::vector<ChunkRef> chunks) {
    BlobRecord b;
    b.digest = DigestOf(content);
    for (const ChunkRef& c : chunks) b.size += c.size;
    b.chunks = std::move(chunks);
    b.created_unix = 1234;
    return b;
  }

  static ManifestRecord Manifest(std::string content, std::optional<Digest> subject = {}) {
    ManifestRecord m;
    m.digest = DigestOf(content);
    m.media_type = "application/vnd.oci.image.manifest.v1+json";
    m.content = std::move(content);
    m.subject = std::move(subject);
    m.created_unix = 42;
    return m;
  }

  // The value of `r`, or T{} after recording a failure.
  template <typename T>
  static T Must(Result<T> r) {
    if (r) return std::move(*r);
    ADD_FAILURE() << r.error().ToString();
    return T{};
  }

  ChunkState StateOf(const std::string& id) {
    auto r = s().GetChunkState(id);
    EXPECT_TRUE(r) << TextOf(r);
    return r ? *r : ChunkState::kUnknown;
  }

  std::string url_;
  std::atomic<int64_t> now_{1'700'000'000};
  std::unique_ptr<MetaStore> store_;
};

#ifndef WHARF_META_STORE_SUITE_FIXTURE_ONLY

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// ---- Chunk ledger ----

TEST_P(MetaStoreSuite, ChunkStatesLiveGarbageUnknown) {
  NewUpload("u1", "");
  META_ASSERT_OK(s().RecordChunks(ChunkOwner::Upload("u1"), {Chunk("c1", 10), Chunk("c2", 20)}));
  EXPECT_EQ(StateOf("c1"), ChunkState::kLive);
  EXPECT_EQ(StateOf("nope"), ChunkState::kUnknown);
  META_ASSERT_OK(s().ReleaseChunks({"c1", "unknown-id"}));
  EXPECT_EQ(StateOf("c1"), ChunkState::kGarbage);
  EXPECT_EQ(StateOf("c2"), ChunkState::kLive);
  EXPECT_EQ(StateOf("unknown-id"), ChunkState::kUnknown);
}

TEST_P(MetaStoreSuite, RecordChunksValidatesOwner) {
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner{}, {Chunk("c1", 1)}), Code::kInvalidArgument);
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner::Upload(""), {Chunk("c1", 1)}),
                   Code::kInvalidArgument);
  META_EXPECT_CODE(
      s().RecordChunks(ChunkOwner{static_cast<ChunkOwnerKind>(7), "x"}, {Chunk("c1", 1)}),
      Code::kInvalidArgument);
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner::Upload("missing"), {Chunk("c1", 1)}),
                   Code::kNotFound);
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner::File("missing"), {Chunk("c1", 1)}),
                   Code::kNotFound);
  EXPECT_EQ(StateOf("c1"), ChunkState::kUnknown);
  NewUpload("u1", "");
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner::Upload("u1"), {Chunk("", 1)}),
                   Code::kInvalidArgument);
}

TEST_P(MetaStoreSuite, RecordChunksIsIdempotentButExclusive) {
  NewUpload("u1", "");
  NewUpload("u2", "");
  META_ASSERT_OK(s().RecordChunks(ChunkOwner::Upload("u1"), {Chunk("c1", 10)}));
  META_ASSERT_OK(s().RecordChunks(ChunkOwner::Upload("u1"), {Chunk("c1", 11)}));  // retry, new size
  // Another owner cannot take it, and the whole call records nothing.
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner::Upload("u2"), {Chunk("c9", 1), Chunk("c1", 10)}),
                   Code::kConflict);
  EXPECT_EQ(StateOf("c9"), ChunkState::kUnknown);
  // Garbage never comes back to life.
  META_ASSERT_OK(s().ReleaseChunks({"c1"}));
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner::Upload("u1"), {Chunk("c1", 10)}), Code::kConflict);
  EXPECT_EQ(StateOf("c1"), ChunkState::kGarbage);
}

TEST_P(MetaStoreSuite, GarbageListingLimitOrderAndForget) {
  NewUpload("u1", "");
  META_ASSERT_OK(s().RecordChunks(
      ChunkOwner::Upload("u1"),
      {Chunk("a", 1, "g1"), Chunk("b", 2, "g2"), Chunk("c", 3), Chunk("live", 4)}));
  META_ASSERT_OK(s().ReleaseChunks({"b"}));
  now_ += 10;
  META_ASSERT_OK(s().ReleaseChunks({"a", "c"}));
  auto none = s().ListGarbageChunks(0);
  META_ASSERT_OK(none);
  EXPECT_THAT(*none, IsEmpty());
  auto two = s().ListGarbageChunks(2);
  META_ASSERT_OK(two);
  EXPECT_THAT(*two, ElementsAre(Chunk("b", 2, "g2"), Chunk("a", 1, "g1")));  // oldest first
  auto all = s().ListGarbageChunks(100);
  META_ASSERT_OK(all);
  EXPECT_EQ(all->size(), 3u);
  // Forget drops garbage rows only; live and unknown ids are left alone.
  META_ASSERT_OK(s().ForgetChunks({"a", "b", "live", "never-seen"}));
  EXPECT_EQ(StateOf("a"), ChunkState::kUnknown);
  EXPECT_EQ(StateOf("live"), ChunkState::kLive);
  auto rest = s().ListGarbageChunks(100);
  META_ASSERT_OK(rest);
  EXPECT_THAT(*rest, ElementsAre(Chunk("c", 3)));
}

TEST_P(MetaStoreSuite, ListedChunksCannotBeReleased) {
  NewUpload("u1", "", {Chunk("c1", 5)});
  META_ASSERT_OK(s().ReleaseChunks({"c1"}));  // listed by the session: stays live
  EXPECT_EQ(StateOf("c1"), ChunkState::kLive);
  META_ASSERT_OK(s().ForgetChunks({"c1"}));
  EXPECT_EQ(StateOf("c1"), ChunkState::kLive);
}

// ---- Upload sessions ----

TEST_P(MetaStoreSuite, UploadRoundTripIsBinarySafe) {
  UploadSession u;
  u.id = "up-1";
  u.repo = "library/alpine";
  u.offset = 7;
  u.hash_state = std::string("\0\x01\xff\0state\0", 10);
  META_ASSERT_OK(s().CreateUpload(u));
  auto got = s().GetUpload("up-1");
  META_ASSERT_OK(got);
  EXPECT_EQ(got->repo, "library/alpine");
  EXPECT_EQ(got->offset, 7u);
  EXPECT_EQ(got->hash_state, u.hash_state);
  EXPECT_EQ(got->hash_state.size(), 10u);
  EXPECT_EQ(got->created_unix, now_.load());
  EXPECT_EQ(got->updated_unix, now_.load());
  EXPECT_THAT(got->chunks, IsEmpty());
  META_EXPECT_CODE(s().CreateUpload(u), Code::kConflict);
  META_EXPECT_CODE(s().GetUpload("up-2"), Code::kNotFound);
  UploadSession bad;
  META_EXPECT_CODE(s().CreateUpload(bad), Code::kInvalidArgument);
}

TEST_P(MetaStoreSuite, CreateUploadWithChunksOwnsThem) {
  UploadSession u;
  u.id = "u1";
  u.offset = 3;
  u.chunks = {Chunk("c1", 3)};
  META_ASSERT_OK(s().CreateUpload(u));
  EXPECT_EQ(StateOf("c1"), ChunkState::kLive);
  auto got = s().GetUpload("u1");
  META_ASSERT_OK(got);
  EXPECT_THAT(got->chunks, ElementsAre(Chunk("c1", 3)));
}

TEST_P(MetaStoreSuite, AppendUploadAdvancesInOrder) {
  NewUpload("u1", "r");
  now_ += 5;
  std::string state2("\0two", 4);
  META_ASSERT_OK(s().RecordChunks(ChunkOwner::Upload("u1"), {Chunk("c1", 4), Chunk("c2", 6)}));
  META_ASSERT_OK(s().AppendUpload("u1", 0, 10, state2, {Chunk("c1", 4), Chunk("c2", 6)}, ""));
  now_ += 5;
  // Chunks not recorded beforehand are adopted too.
  META_ASSERT_OK(s().AppendUpload("u1", 10, 13, "three", {Chunk("c3", 3)}, ""));
  META_ASSERT_OK(s().AppendUpload("u1", 13, 15, "four", {}, ""));  // bytes still buffered
  auto got = s().GetUpload("u1");
  META_ASSERT_OK(got);
  EXPECT_EQ(got->offset, 15u);
  EXPECT_EQ(got->hash_state, "four");
  EXPECT_THAT(got->chunks, ElementsAre(Chunk("c1", 4), Chunk("c2", 6), Chunk("c3", 3)));
  EXPECT_EQ(got->updated_unix, now_.load());
  EXPECT_EQ(got->created_unix, now_.load() - 10);
  EXPECT_EQ(StateOf("c3"), ChunkState::kLive);
}

// The bytes past an upload's last chunk (small appends coalesced) are kept with the session:
// binary-safe, replaced by each append, visible to every reader of the store, bounded.
TEST_P(MetaStoreSuite, AppendUploadKeepsTheTail) {
  NewUpload("u1", "r");
  std::string tail1(
      "\0a\xff"
      "b",
      4);
  META_ASSERT_OK(s().AppendUpload("u1", 0, 4, "h1", {}, tail1));
  auto got = s().GetUpload("u1");
  META_ASSERT_OK(got);
  EXPECT_EQ(got->tail, tail1);
  EXPECT_EQ(got->offset, 4u);
  // The next append makes a chunk of the old tail and keeps a new one.
  META_ASSERT_OK(s().AppendUpload("u1", 4, 7, "h2", {Chunk("c1", 6)}, "z"));
  got = s().GetUpload("u1");
  META_ASSERT_OK(got);
  EXPECT_EQ(got->tail, "z");
  EXPECT_THAT(got->chunks, ElementsAre(Chunk("c1", 6)));
  // A refused append leaves the tail as it was; a tail over the bound is refused.
  META_EXPECT_CODE(s().AppendUpload("u1", 0, 9, "x", {}, "other"), Code::kConflict);
  META_EXPECT_CODE(s().AppendUpload("u1", 7, 8, "x", {}, std::string(kMaxUploadTailBytes + 1, 'x')),
                   Code::kInvalidArgument);
  const std::string full(kMaxUploadTailBytes, '\x01');
  META_ASSERT_OK(s().AppendUpload("u1", 7, 7 + full.size(), "h3", {}, full));
  got = s().GetUpload("u1");
  META_ASSERT_OK(got);
  EXPECT_EQ(got->tail, full);
  // An append without one clears it.
  META_ASSERT_OK(s().AppendUpload("u1", 7 + full.size(), 8 + full.size(), "h4",
                                  {Chunk("c2", full.size() + 1)}, ""));
  got = s().GetUpload("u1");
  META_ASSERT_OK(got);
  EXPECT_EQ(got->tail, "");
}

TEST_P(MetaStoreSuite, AppendUploadErrorsChangeNothing) {
  NewUpload("u1", "", {Chunk("c1", 4)});
  META_EXPECT_CODE(s().AppendUpload("nope", 0, 1, "", {}, ""), Code::kNotFound);
  META_EXPECT_CODE(s().AppendUpload("u1", 0, 9, "x", {Chunk("c2", 5)}, ""), Code::kConflict);
  META_EXPECT_CODE(s().AppendUpload("u1", 4, 3, "x", {}, ""), Code::kInvalidArgument);
  NewUpload("u2", "", {Chunk("other", 1)});
  META_EXPECT_CODE(s().AppendUpload("u1", 4, 5, "x", {Chunk("other", 1)}, ""), Code::kConflict);
  auto got = s().GetUpload("u1");
  META_ASSERT_OK(got);
  EXPECT_EQ(got->offset, 4u);
  EXPECT_EQ(got->hash_state, "state");
  EXPECT_THAT(got->chunks, ElementsAre(Chunk("c1", 4)));
  EXPECT_EQ(StateOf("c2"), ChunkState::kUnknown);
}

TEST_P(MetaStoreSuite, ConcurrentAppendsExactlyOneWins) {
  NewUpload("u1", "");
  constexpr int kThreads = 8;
  std::atomic<int> ok{0}, conflict{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      std::string id = "c" + std::to_string(i);
      Status st = s().AppendUpload("u1", 0, 100, "s" + std::to_string(i), {Chunk(id, 100)}, "");
      (st.ok() ? ok : st.code() == Code::kConflict ? conflict : other)++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflict.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  auto got = s().GetUpload("u1");
  META_ASSERT_OK(got);
  EXPECT_EQ(got->offset, 100u);
  ASSERT_EQ(got->chunks.size(), 1u);
  EXPECT_EQ(got->hash_state, "s" + got->chunks[0].id.substr(1));
}

TEST_P(MetaStoreSuite, DeleteUploadReleasesItsChunks) {
  NewUpload("u1", "", {Chunk("c1", 1)});
  META_ASSERT_OK(
      s().RecordChunks(ChunkOwner::Upload("u1"), {Chunk("intent", 1)}));  // written, not appended
  META_ASSERT_OK(s().DeleteUpload("u1"));
  EXPECT_EQ(StateOf("c1"), ChunkState::kGarbage);
  EXPECT_EQ(StateOf("intent"), ChunkState::kGarbage);
  META_EXPECT_CODE(s().GetUpload("u1"), Code::kNotFound);
  META_EXPECT_CODE(s().DeleteUpload("u1"), Code::kNotFound);
  // Late writers find the session gone instead of leaking chunks.
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner::Upload("u1"), {Chunk("late", 1)}), Code::kNotFound);
  META_EXPECT_CODE(s().AppendUpload("u1", 1, 2, "", {Chunk("late", 1)}, ""), Code::kNotFound);
}

TEST_P(MetaStoreSuite, ListExpiredUploadsUsesUpdateTime) {
  NewUpload("old", "");
  now_ += 100;
  NewUpload("older-but-touched", "");
  now_ += 100;
  NewUpload("new", "");
  now_ += 1;
  META_ASSERT_OK(s().AppendUpload("older-but-touched", 0, 1, "x", {}, ""));
  int64_t t0 = now_.load() - 201;
  auto r = s().ListExpiredUploads(t0 + 150, 10);
  META_ASSERT_OK(r);
  EXPECT_THAT(*r, ElementsAre("old"));
  r = s().ListExpiredUploads(t0 + 201, 10);
  META_ASSERT_OK(r);
  EXPECT_THAT(*r, ElementsAre("old", "new"));
  r = s().ListExpiredUploads(t0 + 1000, 1);
  META_ASSERT_OK(r);
  EXPECT_THAT(*r, ElementsAre("old"));
  r = s().ListExpiredUploads(t0 + 1000, 0);
  META_ASSERT_OK(r);
  EXPECT_THAT(*r, IsEmpty());
}

TEST_P(MetaStoreSuite, TouchUploadMovesTheExpiryToTheLastProgress) {
  NewUpload("streaming", "repo");
  NewUpload("idle", "repo");
  const int64_t t0 = now_.load();
  now_ += 100;
  META_ASSERT_OK(s().TouchUpload("streaming"));
  auto got = s().GetUpload("streaming");
  META_ASSERT_OK(got);
  EXPECT_EQ(got->updated_unix, t0 + 100);
  EXPECT_EQ(got->created_unix, t0);
  EXPECT_EQ(got->offset, 0u);
  auto r = s().ListExpiredUploads(t0 + 50, 10);
  META_ASSERT_OK(r);
  EXPECT_THAT(*r, ElementsAre("idle"));
  META_EXPECT_CODE(s().TouchUpload("nope"), Code::kNotFound);
}

TEST_P(MetaStoreSuite, ReleaseStaleUploadsCollectsWhatDeadRequestsLeft) {
  // A file-API upload and an OCI one whose requests died mid-body (chunks recorded, never
  // appended), an OCI session idle between PATCHes (its chunks appended), and a live upload.
  NewUpload("dead-file", "", {Chunk("f1", 1)});
  NewUpload("dead-oci", "repo");
  META_ASSERT_OK(s().AppendUpload("dead-oci", 0, 1, "h", {Chunk("o-listed", 1)}, ""));
  META_ASSERT_OK(s().RecordChunks(ChunkOwner::Upload("dead-oci"), {Chunk("o-orphan", 1)}));
  NewUpload("live", "", {Chunk("l1", 1)});
  const int64_t t0 = now_.load();
  now_ += 100;
  META_ASSERT_OK(s().TouchUpload("live"));  // bytes still arriving
  // A chunk the dead OCI session got after the cutoff (a request that is not dead after all).
  META_ASSERT_OK(s().RecordChunks(ChunkOwner::Upload("dead-oci"), {Chunk("o-new", 1)}));
  // Nothing is older than t0: nothing goes.
  auto none = s().ReleaseStaleUploads(t0, 100);
  META_ASSERT_OK(none);
  EXPECT_EQ(none->sessions, 0u);
  EXPECT_EQ(none->chunks, 0u);
  auto r = s().ReleaseStaleUploads(t0 + 50, 100);
  META_ASSERT_OK(r);
  EXPECT_EQ(r->sessions, 1u);
  EXPECT_EQ(r->chunks, 1u);
  META_EXPECT_CODE(s().GetUpload("dead-file"), Code::kNotFound);
  EXPECT_EQ(StateOf("f1"), ChunkState::kGarbage);
  // The OCI session stays resumable at its offset, with its listed chunk; its orphan goes.
  auto oci = s().GetUpload("dead-oci");
  META_ASSERT_OK(oci);
  EXPECT_EQ(oci->offset, 1u);
  EXPECT_EQ(StateOf("o-listed"), ChunkState::kLive);
  EXPECT_EQ(StateOf("o-orphan"), ChunkState::kGarbage);
  EXPECT_EQ(StateOf("o-new"), ChunkState::kLive);
  EXPECT_EQ(StateOf("l1"), ChunkState::kLive);
  META_ASSERT_OK(s().GetUpload("live"));
  // A released orphan cannot be appended afterwards: the late writer gets a conflict.
  META_EXPECT_CODE(s().AppendUpload("dead-oci", 1, 2, "h2", {Chunk("o-orphan", 1)}, ""),
                   Code::kConflict);
  // Done once: a second pass finds nothing more.
  auto again = s().ReleaseStaleUploads(t0 + 50, 100);
  META_ASSERT_OK(again);
  EXPECT_EQ(again->sessions, 0u);
  EXPECT_EQ(again->chunks, 0u);
}

// ---- Plain files ----

inline FileRecord MakeFile(std::string id, std::vector<ChunkRef> chunks) {
  FileRecord f;
  f.id = std::move(id);
  f.digest = DigestOf("file content");
  for (const ChunkRef& c : chunks) f.size += c.size;
  f.chunks = std::move(chunks);
  f.content_type = "image/png";
  f.created_unix = 99;
  return f;
}

TEST_P(MetaStoreSuite, CommitFileTransfersOwnership) {
  NewUpload("u1", "", {Chunk("c1", 5), Chunk("c2", 7), Chunk("extra", 1)});
  FileRecord f = MakeFile("f1", {Chunk("c1", 5), Chunk("c2", 7)});
  META_ASSERT_OK(s().CommitFile("u1", f));
  EXPECT_EQ(Must(s().GetFile("f1")), f);
  META_EXPECT_CODE(s().GetUpload("u1"), Code::kNotFound);
  EXPECT_EQ(StateOf("c1"), ChunkState::kLive);
  EXPECT_EQ(StateOf("extra"), ChunkState::kGarbage);
  // Deleting the session's owner name no longer touches the file's chunks.
  META_EXPECT_CODE(s().DeleteUpload("u1"), Code::kNotFound);
  META_ASSERT_OK(s().ReleaseChunks({"c1"}));  // listed by the file: stays live
  EXPECT_EQ(StateOf("c1"), ChunkState::kLive);
}

TEST_P(MetaStoreSuite, FileKeepsItsName) {
  NewUpload("u1", "", {Chunk("c1", 5)});
  FileRecord named = MakeFile("f1", {Chunk("c1", 5)});
  named.name = "photo \xc3\xa9t\xc3\xa9 \"1\".jpg";
  META_ASSERT_OK(s().CommitFile("u1", named));
  EXPECT_EQ(Must(s().GetFile("f1")).name, named.name);
  NewUpload("u2", "", {Chunk("c2", 5)});
  META_ASSERT_OK(s().CommitFile("u2", MakeFile("f2", {Chunk("c2", 5)})));
  EXPECT_EQ(Must(s().GetFile("f2")).name, "");
  EXPECT_EQ(Must(s().DeleteFile("f1")).name, named.name);
}

TEST_P(MetaStoreSuite, CommitFileErrorsKeepTheSession) {
  NewUpload("u1", "", {Chunk("c1", 5)});
  META_EXPECT_CODE(s().CommitFile("nope", MakeFile("f1", {})), Code::kNotFound);
  FileRecord wrong_size = MakeFile("f1", {Chunk("c1", 5)});
  wrong_size.size = 6;
  META_EXPECT_CODE(s().CommitFile("u1", wrong_size), Code::kInvalidArgument);
  META_EXPECT_CODE(s().CommitFile("u1", MakeFile("", {Chunk("c1", 5)})), Code::kInvalidArgument);
  NewUpload("u2", "", {Chunk("theirs", 1)});
  META_EXPECT_CODE(s().CommitFile("u1", MakeFile("f1", {Chunk("c1", 5), Chunk("theirs", 1)})),
                   Code::kConflict);
  META_EXPECT_CODE(s().GetFile("f1"), Code::kNotFound);
  NewUpload("u3", "", {Chunk("d1", 2)});
  META_ASSERT_OK(s().CommitFile("u3", MakeFile("f1", {Chunk("d1", 2)})));
  META_EXPECT_CODE(s().CommitFile("u1", MakeFile("f1", {Chunk("c1", 5)})), Code::kConflict);
  auto u1 = s().GetUpload("u1");
  META_ASSERT_OK(u1);
  EXPECT_THAT(u1->chunks, ElementsAre(Chunk("c1", 5)));
  EXPECT_EQ(StateOf("c1"), ChunkState::kLive);
  auto f1 = s().GetFile("f1");
  META_ASSERT_OK(f1);
  EXPECT_THAT(f1->chunks, ElementsAre(Chunk("d1", 2)));
}

TEST_P(MetaStoreSuite, DeleteFileReturnsRecordAndFreesChunks) {
  NewUpload("u1", "", {Chunk("c1", 5)});
  FileRecord f = MakeFile("f1", {Chunk("c1", 5)});
  META_ASSERT_OK(s().CommitFile("u1", f));
  EXPECT_EQ(Must(s().DeleteFile("f1")), f);
  EXPECT_EQ(StateOf("c1"), ChunkState::kGarbage);
  META_EXPECT_CODE(s().GetFile("f1"), Code::kNotFound);
  META_EXPECT_CODE(s().DeleteFile("f1"), Code::kNotFound);
  META_ASSERT_OK(s().ForgetChunks({"c1"}));
  EXPECT_EQ(StateOf("c1"), ChunkState::kUnknown);
}

TEST_P(MetaStoreSuite, EmptyFile) {
  NewUpload("u1", "");
  FileRecord f = MakeFile("empty", {});
  META_ASSERT_OK(s().CommitFile("u1", f));
  auto got = s().GetFile("empty");
  META_ASSERT_OK(got);
  EXPECT_EQ(got->size, 0u);
  EXPECT_THAT(got->chunks, IsEmpty());
}

// ---- Blobs ----

TEST_P(MetaStoreSuite, CommitBlobStoresLinksAndTransfers) {
  NewUpload("u1", "lib/a", {Chunk("c1", 3), Chunk("c2", 4), Chunk("spare", 1)});
  BlobRecord b = Blob("layer", {Chunk("c1", 3), Chunk("c2", 4)});
  EXPECT_TRUE(Must(s().CommitBlob("u1", "lib/a", b)));
  EXPECT_EQ(Must(s().GetBlob(b.digest)), b);
  EXPECT_EQ(StateOf("c1"), ChunkState::kLive);
  EXPECT_EQ(StateOf("spare"), ChunkState::kGarbage);
  META_EXPECT_CODE(s().GetUpload("u1"), Code::kNotFound);
  EXPECT_TRUE(Must(s().BlobLinked("lib/a", b.digest)));
  EXPECT_TRUE(Must(s().RepositoryExists("lib/a")));
  META_EXPECT_CODE(s().GetBlob(DigestOf("other")), Code::kNotFound);
}

TEST_P(MetaStoreSuite, CommitBlobDeduplicates) {
  NewUpload("u1", "lib/a", {Chunk("first", 5)});
  BlobRecord b1 = Blob("same", {Chunk("first", 5)});
  META_ASSERT_OK(s().CommitBlob("u1", "lib/a", b1));
  NewUpload("u2", "lib/b", {Chunk("second", 5)});
  EXPECT_FALSE(Must(s().CommitBlob("u2", "lib/b", Blob("same", {Chunk("second", 5)}))));
  EXPECT_EQ(StateOf("first"), ChunkState::kLive);
  EXPECT_EQ(StateOf("second"), ChunkState::kGarbage);
  META_EXPECT_CODE(s().GetUpload("u2"), Code::kNotFound);
  EXPECT_EQ(Must(s().GetBlob(b1.digest)), b1);
  EXPECT_TRUE(Must(s().BlobLinked("lib/b", b1.digest)));
}

TEST_P(MetaStoreSuite, CommitBlobErrors) {
  NewUpload("u1", "lib/a", {Chunk("c1", 5)});
  BlobRecord b = Blob("x", {Chunk("c1", 5)});
  META_EXPECT_CODE(s().CommitBlob("nope", "lib/a", b), Code::kNotFound);
  META_EXPECT_CODE(s().CommitBlob("u1", "", b), Code::kInvalidArgument);
  META_EXPECT_CODE(s().CommitBlob("u1", "lib/other", b), Code::kInvalidArgument);
  BlobRecord bad = b;
  bad.size = 4;
  META_EXPECT_CODE(s().CommitBlob("u1", "lib/a", bad), Code::kInvalidArgument);
  NewUpload("u2", "lib/a", {Chunk("theirs", 1)});
  META_EXPECT_CODE(s().CommitBlob("u1", "lib/a", Blob("y", {Chunk("c1", 5), Chunk("theirs", 1)})),
                   Code::kConflict);
  META_EXPECT_CODE(s().GetBlob(DigestOf("y")), Code::kNotFound);
  auto u1 = s().GetUpload("u1");
  META_ASSERT_OK(u1);  // nothing changed
  EXPECT_FALSE(Must(s().RepositoryExists("lib/a")));
}

TEST_P(MetaStoreSuite, PutBlobIsIdempotent) {
  BlobRecord b = Blob("put", {Chunk("p1", 2), Chunk("p2", 2)});
  EXPECT_TRUE(Must(s().PutBlob("lib/a", b)));
  EXPECT_FALSE(Must(s().PutBlob("lib/b", b)));
  EXPECT_EQ(StateOf("p1"), ChunkState::kLive);  // still the blob's own chunks
  auto dup = s().PutBlob("lib/a", Blob("put", {Chunk("dup", 4)}));
  META_ASSERT_OK(dup);
  EXPECT_FALSE(*dup);
  EXPECT_EQ(StateOf("dup"), ChunkState::kGarbage);  // written for nothing: collect it
}

TEST_P(MetaStoreSuite, LinkAndUnlinkBlob) {
  BlobRecord b = Blob("shared", {Chunk("s1", 6)});
  META_ASSERT_OK(s().PutBlob("lib/a", b));
  META_ASSERT_OK(s().LinkBlob("lib/b", b.digest));
  META_ASSERT_OK(s().LinkBlob("lib/b", b.digest));  // idempotent
  META_EXPECT_CODE(s().LinkBlob("lib/b", DigestOf("unknown")), Code::kNotFound);
  META_EXPECT_CODE(s().LinkBlob("", b.digest), Code::kInvalidArgument);
  EXPECT_FALSE(Must(s().BlobLinked("lib/c", b.digest)));
  META_EXPECT_CODE(s().UnlinkBlob("lib/c", b.digest), Code::kNotFound);
  EXPECT_FALSE(Must(s().UnlinkBlob("lib/a", b.digest)));
  EXPECT_EQ(StateOf("s1"), ChunkState::kLive);
  META_EXPECT_CODE(s().UnlinkBlob("lib/a", b.digest), Code::kNotFound);
  EXPECT_TRUE(Must(s().UnlinkBlob("lib/b", b.digest)));
  EXPECT_EQ(StateOf("s1"), ChunkState::kGarbage);
  META_EXPECT_CODE(s().GetBlob(b.digest), Code::kNotFound);
  EXPECT_FALSE(Must(s().RepositoryExists("lib/a")));
  // The same content pushed again is a new blob with new chunks.
  EXPECT_TRUE(Must(s().PutBlob("lib/a", Blob("shared", {Chunk("s2", 6)}))));
}

// ---- Manifests, tags, repositories, referrers ----

TEST_P(MetaStoreSuite, ManifestRoundTripIsByteExact) {
  ManifestRecord m = Manifest(std::string("{\"a\":\"\0\xff\xfe\"}\n", 12), DigestOf("subject"));
  m.artifact_type = "application/vnd.example+type";
  m.annotations_json = R"({"org.opencontainers.image.title":"ünïcode ✓"})";
  m.blobs = {DigestOf("config"), DigestOf("layer1"), DigestOf("layer0")};
  m.manifests = {DigestOf("child2"), DigestOf("child1")};
  // What it references must be in the repository (PutManifestChecksReferences).
  int n = 0;
  for (const char* b : {"config", "layer1", "layer0"}) {
    META_ASSERT_OK(s().PutBlob("lib/a", Blob(b, {Chunk("rt" + std::to_string(n++), 1)})));
  }
  for (const char* c : {"child2", "child1"}) {
    META_ASSERT_OK(s().PutManifest("lib/a", Manifest(c), std::nullopt));
  }
  META_ASSERT_OK(s().PutManifest("lib/a", m, std::nullopt));
  auto got = s().GetManifest("lib/a", m.digest);
  META_ASSERT_OK(got);
  EXPECT_EQ(*got, m);
  EXPECT_EQ(got->content.size(), 12u);
  META_EXPECT_CODE(s().GetManifest("lib/b", m.digest), Code::kNotFound);
  EXPECT_TRUE(Must(s().ManifestExists("lib/a", m.digest)));
  EXPECT_FALSE(Must(s().ManifestExists("lib/b", m.digest)));
}

TEST_P(MetaStoreSuite, PutManifestChecksReferences) {
  BlobRecord layer = Blob("layer", {Chunk("l1", 5)});
  META_ASSERT_OK(s().PutBlob("other", layer));  // stored, but not linked in "r"
  ManifestRecord m = Manifest("needs layer");
  m.blobs = {layer.digest};
  Digest missing;
  META_EXPECT_CODE(s().PutManifest("r", m, "latest", &missing), Code::kNotFound);
  EXPECT_EQ(missing, layer.digest);
  // Nothing of it was stored: no manifest, no tag, no repository.
  EXPECT_FALSE(Must(s().ManifestExists("r", m.digest)));
  META_EXPECT_CODE(s().ResolveTag("r", "latest"), Code::kNotFound);
  EXPECT_FALSE(Must(s().RepositoryExists("r")));
  // Linked, it goes in.
  META_ASSERT_OK(s().LinkBlob("r", layer.digest));
  META_ASSERT_OK(s().PutManifest("r", m, "latest", &missing));
  EXPECT_EQ(Must(s().ResolveTag("r", "latest")), m.digest);
  // An index needs its children in the same repository.
  ManifestRecord index = Manifest("index");
  index.manifests = {m.digest, DigestOf("absent child")};
  META_EXPECT_CODE(s().PutManifest("r", index, std::nullopt, &missing), Code::kNotFound);
  EXPECT_EQ(missing, DigestOf("absent child"));
  META_EXPECT_CODE(s().PutManifest("other", index, std::nullopt), Code::kNotFound);
  EXPECT_FALSE(Must(s().ManifestExists("r", index.digest)));
  // Once the blob is unlinked, a manifest needing it is refused again.
  META_ASSERT_OK(s().UnlinkBlob("r", layer.digest));
  ManifestRecord again = Manifest("needs layer again");
  again.blobs = {layer.digest};
  META_EXPECT_CODE(s().PutManifest("r", again, std::nullopt), Code::kNotFound);
}

TEST_P(MetaStoreSuite, PutManifestCheckIsAtomicWithUnlink) {
  // Puts race a thread that links and unlinks the blob they reference: each put either
  // stores the manifest or is refused with kNotFound and leaves nothing (never another error,
  // never half a manifest), and once the blob is unlinked for good nothing referencing it
  // goes in.
  BlobRecord layer = Blob("shared layer", {Chunk("sl", 3)});
  META_ASSERT_OK(s().PutBlob("keep", layer));  // keeps the blob alive across unlinks in "r"
  META_ASSERT_OK(s().LinkBlob("r", layer.digest));
  META_ASSERT_OK(s().UnlinkBlob("r", layer.digest));  // "r" starts unlinked
  std::atomic<bool> stop{false};
  std::thread flipper([this, &stop, &layer] {
    // Links the blob only for short windows, then unlinks it again.
    for (int i = 0; i < 200 && !stop; ++i) {
      (void)s().LinkBlob("r", layer.digest);
      (void)s().UnlinkBlob("r", layer.digest);
    }
  });
  for (int i = 0; i < 200; ++i) {
    ManifestRecord m = Manifest("racer " + std::to_string(i));
    m.blobs = {layer.digest};
    Status st = s().PutManifest("r", m, std::nullopt);
    if (st.ok()) {
      EXPECT_TRUE(Must(s().ManifestExists("r", m.digest)));
    } else {
      EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
      EXPECT_FALSE(Must(s().ManifestExists("r", m.digest)));
    }
  }
  stop = true;
  flipper.join();
  // With the blob finally unlinked, nothing referencing it can be stored.
  ManifestRecord late = Manifest("late racer");
  late.blobs = {layer.digest};
  META_EXPECT_CODE(s().PutManifest("r", late, std::nullopt), Code::kNotFound);
}

TEST_P(MetaStoreSuite, GetLinkedBlobNeedsTheLink) {
  BlobRecord b = Blob("linked", {Chunk("k1", 4), Chunk("k2", 2)});
  META_ASSERT_OK(s().PutBlob("a", b));
  EXPECT_EQ(Must(s().GetLinkedBlob("a", b.digest)), b);
  META_EXPECT_CODE(s().GetLinkedBlob("b", b.digest), Code::kNotFound);          // not linked there
  META_EXPECT_CODE(s().GetLinkedBlob("a", DigestOf("nope")), Code::kNotFound);  // unknown blob
  META_ASSERT_OK(s().LinkBlob("b", b.digest));
  EXPECT_EQ(Must(s().GetLinkedBlob("b", b.digest)), b);
  META_ASSERT_OK(s().UnlinkBlob("a", b.digest));
  META_EXPECT_CODE(s().GetLinkedBlob("a", b.digest), Code::kNotFound);
  EXPECT_EQ(Must(s().GetLinkedBlob("b", b.digest)), b);
}

TEST_P(MetaStoreSuite, ChunkOwnersAreTyped) {
  EXPECT_EQ(ChunkOwner::Upload("u").ToString(), "upload:u");
  EXPECT_EQ(ChunkOwner::File("f").ToString(), "file:f");
  EXPECT_EQ(ChunkOwner::Blob(DigestOf("x")).ToString(), "blob:" + DigestOf("x").ToString());
  EXPECT_FALSE(ChunkOwner::File("").valid());
  EXPECT_TRUE(ChunkOwner::Blob(DigestOf("x")).valid());
  // Each kind names its own table: an id of one kind is not an owner of another.
  NewUpload("same", "r");
  META_ASSERT_OK(s().RecordChunks(ChunkOwner::Upload("same"), {Chunk("t1", 1)}));
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner::File("same"), {Chunk("t2", 1)}), Code::kNotFound);
  BlobRecord b = Blob("typed", {Chunk("t3", 2)});
  META_ASSERT_OK(s().PutBlob("r", b));
  META_ASSERT_OK(s().RecordChunks(ChunkOwner::Blob(b.digest), {Chunk("t3", 2)}));  // its own
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner::Blob(DigestOf("untyped")), {Chunk("t4", 1)}),
                   Code::kNotFound);
  // A chunk of one owner is not another's.
  META_EXPECT_CODE(s().RecordChunks(ChunkOwner::Blob(b.digest), {Chunk("t1", 1)}), Code::kConflict);
  EXPECT_EQ(StateOf("t1"), ChunkState::kLive);
  EXPECT_EQ(StateOf("t2"), ChunkState::kUnknown);
}

TEST_P(MetaStoreSuite, PutManifestValidates) {
  ManifestRecord m = Manifest("{}");
  META_EXPECT_CODE(s().PutManifest("", m, std::nullopt), Code::kInvalidArgument);
  META_EXPECT_CODE(s().PutManifest("r", m, std::string()), Code::kInvalidArgument);
  ManifestRecord wrong = m;
  wrong.content = "{ }";
  META_EXPECT_CODE(s().PutManifest("r", wrong, std::nullopt), Code::kDigestMismatch);
  ManifestRecord big = Manifest(std::string(kMaxManifestBytes + 1, 'x'));
  META_EXPECT_CODE(s().PutManifest("r", big, std::nullopt), Code::kInvalidArgument);
  ManifestRecord max = Manifest(std::string(kMaxManifestBytes, '\0'));
  META_ASSERT_OK(s().PutManifest("r", max, std::nullopt));
  auto got = s().GetManifest("r", max.digest);
  META_ASSERT_OK(got);
  EXPECT_EQ(got->content, max.content);
}

TEST_P(MetaStoreSuite, TagsResolveMoveAndDelete) {
  ManifestRecord m1 = Manifest("one"), m2 = Manifest("two");
  META_ASSERT_OK(s().PutManifest("r", m1, "latest"));
  META_ASSERT_OK(s().PutManifest("r", m1, "v1"));  // existing manifest: kept, tag added
  auto d = s().ResolveTag("r", "latest");
  META_ASSERT_OK(d);
  EXPECT_EQ(*d, m1.digest);
  META_ASSERT_OK(s().PutManifest("r", m2, "latest"));  // the tag moves
  d = s().ResolveTag("r", "latest");
  META_ASSERT_OK(d);
  EXPECT_EQ(*d, m2.digest);
  d = s().ResolveTag("r", "v1");
  META_ASSERT_OK(d);
  EXPECT_EQ(*d, m1.digest);
  META_EXPECT_CODE(s().ResolveTag("r", "nope"), Code::kNotFound);
  META_EXPECT_CODE(s().ResolveTag("other", "latest"), Code::kNotFound);
  META_ASSERT_OK(s().DeleteTag("r", "v1"));
  META_EXPECT_CODE(s().DeleteTag("r", "v1"), Code::kNotFound);
  META_EXPECT_CODE(s().DeleteTag("other", "latest"), Code::kNotFound);
  META_EXPECT_CODE(s().ResolveTag("r", "v1"), Code::kNotFound);
  auto still = s().ManifestExists("r", m1.digest);  // untagged, not deleted
  META_ASSERT_OK(still);
  EXPECT_TRUE(*still);
}

TEST_P(MetaStoreSuite, PutManifestKeepsTheFirstCopy) {
  ManifestRecord m = Manifest("same");
  META_ASSERT_OK(s().PutManifest("r", m, std::nullopt));
  ManifestRecord later = m;
  later.created_unix = 777;
  later.annotations_json = R"({"x":"y"})";
  META_ASSERT_OK(s().PutManifest("r", later, "t"));
  EXPECT_EQ(Must(s().GetManifest("r", m.digest)), m);
}

TEST_P(MetaStoreSuite, DeleteManifestRemovesItsTagsOnlyInThatRepo) {
  ManifestRecord m = Manifest("img"), other = Manifest("other");
  META_ASSERT_OK(s().PutManifest("r", m, "a"));
  META_ASSERT_OK(s().PutManifest("r", m, "b"));
  META_ASSERT_OK(s().PutManifest("r", other, "c"));
  META_ASSERT_OK(s().PutManifest("r2", m, "a"));
  META_ASSERT_OK(s().DeleteManifest("r", m.digest));
  META_EXPECT_CODE(s().DeleteManifest("r", m.digest), Code::kNotFound);
  META_EXPECT_CODE(s().DeleteManifest("nope", m.digest), Code::kNotFound);
  META_EXPECT_CODE(s().GetManifest("r", m.digest), Code::kNotFound);
  META_EXPECT_CODE(s().ResolveTag("r", "a"), Code::kNotFound);
  auto tags = s().ListTags("r", "", 10);
  META_ASSERT_OK(tags);
  EXPECT_THAT(tags->items, ElementsAre("c"));
  EXPECT_EQ(Must(s().ResolveTag("r2", "a")), m.digest);
  META_ASSERT_OK(s().PutManifest("r", m, std::nullopt));  // can come back, untagged
  tags = s().ListTags("r", "", 10);
  META_ASSERT_OK(tags);
  EXPECT_THAT(tags->items, ElementsAre("c"));
}

TEST_P(MetaStoreSuite, ListTagsPagination) {
  ManifestRecord m = Manifest("m");
  for (const char* t : {"v2", "v10", "latest", "V1", "a"}) {
    META_ASSERT_OK(s().PutManifest("r", m, std::string(t)));
  }
  auto all = s().ListTags("r", "", 100);
  META_ASSERT_OK(all);
  EXPECT_THAT(all->items, ElementsAre("V1", "a", "latest", "v10", "v2"));  // byte order
  EXPECT_FALSE(all->more);
  auto exact = s().ListTags("r", "", 5);
  META_ASSERT_OK(exact);
  EXPECT_EQ(exact->items.size(), 5u);
  EXPECT_FALSE(exact->more);
  auto p1 = s().ListTags("r", "", 2);
  META_ASSERT_OK(p1);
  EXPECT_THAT(p1->items, ElementsAre("V1", "a"));
  EXPECT_TRUE(p1->more);
  auto p2 = s().ListTags("r", p1->items.back(), 2);
  META_ASSERT_OK(p2);
  EXPECT_THAT(p2->items, ElementsAre("latest", "v10"));
  EXPECT_TRUE(p2->more);
  auto p3 = s().ListTags("r", "v10", 2);
  META_ASSERT_OK(p3);
  EXPECT_THAT(p3->items, ElementsAre("v2"));
  EXPECT_FALSE(p3->more);
  auto zero = s().ListTags("r", "", 0);
  META_ASSERT_OK(zero);
  EXPECT_THAT(zero->items, IsEmpty());
  EXPECT_TRUE(zero->more);
  auto beyond = s().ListTags("r", "zzz", 10);
  META_ASSERT_OK(beyond);
  EXPECT_THAT(beyond->items, IsEmpty());
  EXPECT_FALSE(beyond->more);
  auto between = s().ListTags("r", "b", 1);  // `last` need not be a tag
  META_ASSERT_OK(between);
  EXPECT_THAT(between->items, ElementsAre("latest"));
  auto unknown = s().ListTags("nope", "", 10);
  META_ASSERT_OK(unknown);
  EXPECT_THAT(unknown->items, IsEmpty());
  EXPECT_FALSE(unknown->more);
}

TEST_P(MetaStoreSuite, ListRepositoriesOnlyNonEmpty) {
  META_ASSERT_OK(s().PutManifest("b/img", Manifest("m"), std::nullopt));
  META_ASSERT_OK(s().PutBlob("a/blobonly", Blob("x", {Chunk("x1", 1)})));
  META_ASSERT_OK(s().PutManifest("c", Manifest("n"), "t"));
  NewUpload("u1", "d/upload-only");  // a session alone does not make a repository
  auto all = s().ListRepositories("", 10);
  META_ASSERT_OK(all);
  EXPECT_THAT(all->items, ElementsAre("a/blobonly", "b/img", "c"));
  EXPECT_FALSE(all->more);
  auto p1 = s().ListRepositories("", 1);
  META_ASSERT_OK(p1);
  EXPECT_THAT(p1->items, ElementsAre("a/blobonly"));
  EXPECT_TRUE(p1->more);
  auto p2 = s().ListRepositories("a/blobonly", 2);
  META_ASSERT_OK(p2);
  EXPECT_THAT(p2->items, ElementsAre("b/img", "c"));
  EXPECT_FALSE(p2->more);
  auto zero = s().ListRepositories("", 0);
  META_ASSERT_OK(zero);
  EXPECT_THAT(zero->items, IsEmpty());
  EXPECT_TRUE(zero->more);
  auto beyond = s().ListRepositories("c", 5);
  META_ASSERT_OK(beyond);
  EXPECT_THAT(beyond->items, IsEmpty());
  EXPECT_FALSE(beyond->more);
  // Emptied repositories disappear from the catalog.
  META_ASSERT_OK(s().DeleteManifest("b/img", DigestOf("m")));
  META_ASSERT_OK(s().UnlinkBlob("a/blobonly", DigestOf("x")));
  all = s().ListRepositories("", 10);
  META_ASSERT_OK(all);
  EXPECT_THAT(all->items, ElementsAre("c"));
  for (const char* repo : {"a/blobonly", "b/img", "d/upload-only", "never"}) {
    EXPECT_FALSE(Must(s().RepositoryExists(repo))) << repo;
  }
}

TEST_P(MetaStoreSuite, ListReferrers) {
  ManifestRecord image = Manifest("image");
  META_ASSERT_OK(s().PutManifest("r", image, "latest"));
  ManifestRecord sig = Manifest("signature", image.digest);
  sig.artifact_type = "application/vnd.dev.cosign";
  sig.annotations_json = R"({"k":"v"})";
  ManifestRecord sbom = Manifest("sbom", image.digest);
  sbom.media_type = "application/vnd.oci.artifact.manifest.v1+json";
  ManifestRecord unrelated = Manifest("unrelated", DigestOf("something else"));
  for (const ManifestRecord* m : {&sig, &sbom, &unrelated}) {
    META_ASSERT_OK(s().PutManifest("r", *m, std::nullopt));
  }
  META_ASSERT_OK(s().PutManifest("r2", Manifest("elsewhere", image.digest), std::nullopt));
  auto refs = s().ListReferrers("r", image.digest);
  META_ASSERT_OK(refs);
  std::vector<ReferrerRecord> want = {
      {sig.media_type, sig.digest, sig.content.size(), sig.artifact_type, sig.annotations_json},
      {sbom.media_type, sbom.digest, sbom.content.size(), "", "{}"}};
  std::sort(want.begin(), want.end(), [](auto& a, auto& b) { return a.digest < b.digest; });
  EXPECT_EQ(*refs, want);
  META_ASSERT_OK(s().DeleteManifest("r", sig.digest));
  refs = s().ListReferrers("r", image.digest);
  META_ASSERT_OK(refs);
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_EQ((*refs)[0].digest, sbom.digest);
  refs = s().ListReferrers("nope", image.digest);
  META_ASSERT_OK(refs);
  EXPECT_THAT(*refs, IsEmpty());
}

// ---- Durability, hostile input, concurrency ----

TEST_P(MetaStoreSuite, ReopenKeepsEverything) {
  NewUpload("pending", "r", {Chunk("p1", 3)});
  NewUpload("uf", "", {Chunk("f1", 4)});
  FileRecord f = MakeFile("file", {Chunk("f1", 4)});
  META_ASSERT_OK(s().CommitFile("uf", f));
  BlobRecord b = Blob("blob", {Chunk("b1", 8)});
  META_ASSERT_OK(s().PutBlob("r", b));
  ManifestRecord m = Manifest("manifest", DigestOf("subj"));
  m.blobs = {b.digest};
  META_ASSERT_OK(s().PutManifest("r", m, "latest"));
  META_ASSERT_OK(s().RecordChunks(ChunkOwner::Upload("pending"), {Chunk("g1", 1)}));
  META_ASSERT_OK(s().ReleaseChunks({"g1"}));
  Reopen();
  auto u = s().GetUpload("pending");
  META_ASSERT_OK(u);
  EXPECT_THAT(u->chunks, ElementsAre(Chunk("p1", 3)));
  EXPECT_EQ(Must(s().GetFile("file")), f);
  EXPECT_EQ(Must(s().GetBlob(b.digest)), b);
  EXPECT_EQ(Must(s().GetManifest("r", m.digest)), m);
  EXPECT_EQ(Must(s().ResolveTag("r", "latest")), m.digest);
  EXPECT_EQ(StateOf("g1"), ChunkState::kGarbage);
  EXPECT_EQ(StateOf("b1"), ChunkState::kLive);
  auto refs = s().ListReferrers("r", DigestOf("subj"));
  META_ASSERT_OK(refs);
  EXPECT_EQ(refs->size(), 1u);
}

TEST_P(MetaStoreSuite, HostileStringsStoredVerbatim) {
  const std::string names[] = {"a'b\"c; DROP TABLE tags; --",
                               "robert'); DELETE FROM blobs;--",
                               "日本語/🐳/répö",
                               "%_\\*?[]",
                               std::string(10 * 1024, 'n') + "'",
                               "tab\there\nnewline"};
  ManifestRecord m = Manifest("hostile");
  for (const std::string& name : names) {
    META_ASSERT_OK(s().PutManifest(name, m, name));
    EXPECT_EQ(Must(s().ResolveTag(name, name)), m.digest);
    NewUpload(name, name, {Chunk("chunk-" + name, 1, "group-" + name)});
    auto u = s().GetUpload(name);
    META_ASSERT_OK(u);
    EXPECT_EQ(u->repo, name);
    EXPECT_EQ(u->chunks[0].group, "group-" + name);
    FileRecord f = MakeFile(name, {Chunk("chunk-" + name, 1, "group-" + name)});
    f.content_type = name;
    META_ASSERT_OK(s().CommitFile(name, f));
    EXPECT_EQ(Must(s().GetFile(name)), f);
  }
  auto repos = s().ListRepositories("", 100);
  META_ASSERT_OK(repos);
  EXPECT_EQ(repos->items.size(), std::size(names));
  for (const std::string& name : names) {
    auto tags = s().ListTags(name, "", 10);
    META_ASSERT_OK(tags);
    EXPECT_THAT(tags->items, ElementsAre(name));
    auto gm = s().GetManifest(name, m.digest);
    META_ASSERT_OK(gm);
  }
  // "%" and "_" are not wildcards, and nothing was dropped.
  META_EXPECT_CODE(s().ResolveTag("%", "%"), Code::kNotFound);
  auto still = s().ResolveTag(names[0], names[0]);
  META_ASSERT_OK(still);
}

TEST_P(MetaStoreSuite, ConcurrentMixedOperations) {
  constexpr int kThreads = 4, kPerThread = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = std::to_string(t) + "-" + std::to_string(i);
        std::string repo = "repo" + std::to_string(i % 3);
        UploadSession u{id, repo, 0, "", {}, 0, 0, ""};
        BlobRecord b = Blob("content" + std::to_string(i), {Chunk("c" + id, 2)});
        bool ok = s().CreateUpload(u).ok() &&
                  s().AppendUpload(id, 0, 2, "h", {Chunk("c" + id, 2)}, "").ok() &&
                  s().CommitBlob(id, repo, b).has_value() &&
                  s().PutManifest(repo, Manifest("m" + id), "t" + id).ok() &&
                  s().ListTags(repo, "", 5).has_value();
        if (!ok) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  // Each distinct content was stored once; the other copies' chunks are garbage.
  auto garbage = s().ListGarbageChunks(1000);
  META_ASSERT_OK(garbage);
  EXPECT_EQ(garbage->size(), size_t{(kThreads - 1) * kPerThread});
  auto tags = s().ListTags("repo0", "", 1000);
  META_ASSERT_OK(tags);
  EXPECT_EQ(tags->items.size(), size_t{kThreads * 7});
}

// ---- Two store objects on one database (two gateways sharing one namespace) ----

TEST_P(MetaStoreSuite, TwoStoresSeeEachOthersWrites) {
  std::unique_ptr<MetaStore> other = OpenAnother();
  ASSERT_TRUE(other);
  ManifestRecord m = Manifest("shared");
  META_ASSERT_OK(s().PutManifest("r", m, "latest"));
  EXPECT_EQ(Must(other->ResolveTag("r", "latest")), m.digest);
  META_ASSERT_OK(other->DeleteTag("r", "latest"));
  META_EXPECT_CODE(s().ResolveTag("r", "latest"), Code::kNotFound);
  NewUpload("u1", "r", {Chunk("c1", 3)});
  auto u = other->GetUpload("u1");
  META_ASSERT_OK(u);
  EXPECT_THAT(u->chunks, ElementsAre(Chunk("c1", 3)));
  META_ASSERT_OK(other->AppendUpload("u1", 3, 5, "next", {Chunk("c2", 2)}, ""));
  EXPECT_EQ(Must(s().GetUpload("u1")).offset, 5u);
}

// Runs a(round) and b(round) at the same time, `rounds` times, each round starting together.
inline void RaceRounds(int rounds, const std::function<void(int)>& a,
                       const std::function<void(int)>& b) {
  std::atomic<int> ready{0};
  auto run = [&](const std::function<void(int)>& f) {
    for (int r = 0; r < rounds; ++r) {
      ready++;
      while (ready.load() < 2 * (r + 1)) std::this_thread::yield();
      f(r);
    }
  };
  std::thread ta([&] { run(a); });
  std::thread tb([&] { run(b); });
  ta.join();
  tb.join();
}

TEST_P(MetaStoreSuite, TwoStoresRaceOnOneUpload) {
  std::unique_ptr<MetaStore> other = OpenAnother();
  ASSERT_TRUE(other);
  NewUpload("u1", "r");
  constexpr int kRounds = 20;
  std::vector<Status> sa(kRounds), sb(kRounds);
  RaceRounds(
      kRounds,
      [&](int r) {
        sa[r] = s().AppendUpload("u1", r, r + 1, "a", {Chunk(fmt::format("a{}", r), 1)}, "");
      },
      [&](int r) {
        sb[r] = other->AppendUpload("u1", r, r + 1, "b", {Chunk(fmt::format("b{}", r), 1)}, "");
      });
  for (int r = 0; r < kRounds; ++r) {
    // Exactly one PATCH of each round wins; the other sees the offset moved.
    EXPECT_NE(sa[r].ok(), sb[r].ok()) << r << ": " << sa[r].ToString() << " / " << sb[r].ToString();
    const Status& lost = sa[r].ok() ? sb[r] : sa[r];
    EXPECT_EQ(lost.code(), Code::kConflict) << lost.ToString();
    std::string loser = fmt::format("{}{}", sa[r].ok() ? "b" : "a", r);
    EXPECT_EQ(StateOf(loser), ChunkState::kUnknown) << loser;
  }
  auto u = other->GetUpload("u1");
  META_ASSERT_OK(u);
  EXPECT_EQ(u->offset, uint64_t{kRounds});
  EXPECT_EQ(u->chunks.size(), size_t{kRounds});
}

TEST_P(MetaStoreSuite, TwoStoresRaceOnOneBlob) {
  std::unique_ptr<MetaStore> other = OpenAnother();
  ASSERT_TRUE(other);
  constexpr int kRounds = 10;
  for (int r = 0; r < kRounds; ++r) {
    NewUpload(fmt::format("ua{}", r), "ra", {Chunk(fmt::format("ca{}", r), 4)});
    NewUpload(fmt::format("ub{}", r), "rb", {Chunk(fmt::format("cb{}", r), 4)});
  }
  std::vector<Result<bool>> ra(kRounds, false), rb(kRounds, false);
  RaceRounds(
      kRounds,
      [&](int r) {
        ra[r] = s().CommitBlob(fmt::format("ua{}", r), "ra",
                               Blob(fmt::format("same {}", r), {Chunk(fmt::format("ca{}", r), 4)}));
      },
      [&](int r) {
        rb[r] =
            other->CommitBlob(fmt::format("ub{}", r), "rb",
                              Blob(fmt::format("same {}", r), {Chunk(fmt::format("cb{}", r), 4)}));
      });
  for (int r = 0; r < kRounds; ++r) {
    ASSERT_TRUE(ra[r] && rb[r]) << TextOf(ra[r]) << " / " << TextOf(rb[r]);
    EXPECT_NE(*ra[r], *rb[r]) << "round " << r << ": exactly one stores the blob";
    std::string winner = fmt::format("{}{}", *ra[r] ? "ca" : "cb", r);
    std::string loser = fmt::format("{}{}", *ra[r] ? "cb" : "ca", r);
    BlobRecord b = Must(other->GetBlob(DigestOf(fmt::format("same {}", r))));
    ASSERT_EQ(b.chunks.size(), 1u);
    EXPECT_EQ(b.chunks[0].id, winner);
    EXPECT_EQ(StateOf(winner), ChunkState::kLive);
    EXPECT_EQ(StateOf(loser), ChunkState::kGarbage);
    EXPECT_TRUE(Must(s().BlobLinked("ra", b.digest)));
    EXPECT_TRUE(Must(s().BlobLinked("rb", b.digest)));
  }
}

TEST_P(MetaStoreSuite, TwoStoresRaceOnOneTag) {
  std::unique_ptr<MetaStore> other = OpenAnother();
  ASSERT_TRUE(other);
  constexpr int kRounds = 20;
  std::vector<Status> sa(kRounds), sb(kRounds);
  RaceRounds(
      kRounds,
      [&](int r) { sa[r] = s().PutManifest("r", Manifest(fmt::format("a{}", r)), "latest"); },
      [&](int r) { sb[r] = other->PutManifest("r", Manifest(fmt::format("b{}", r)), "latest"); });
  for (int r = 0; r < kRounds; ++r) {
    EXPECT_TRUE(sa[r].ok()) << sa[r].ToString();
    EXPECT_TRUE(sb[r].ok()) << sb[r].ToString();
  }
  // One tag, pointing at the last round's winner; every manifest stored once.
  auto tags = other->ListTags("r", "", 10);
  META_ASSERT_OK(tags);
  EXPECT_THAT(tags->items, ElementsAre("latest"));
  Digest d = Must(s().ResolveTag("r", "latest"));
  Digest last_a = DigestOf(fmt::format("a{}", kRounds - 1));
  Digest last_b = DigestOf(fmt::format("b{}", kRounds - 1));
  EXPECT_TRUE(d == last_a || d == last_b) << d.ToString();
  for (int r = 0; r < kRounds; ++r) {
    EXPECT_TRUE(Must(other->ManifestExists("r", DigestOf(fmt::format("a{}", r)))));
    EXPECT_TRUE(Must(s().ManifestExists("r", DigestOf(fmt::format("b{}", r)))));
  }
}

TEST_P(MetaStoreSuite, TwoStoresRaceOnOneManifest) {
  // One store deletes the manifest while the other tags it: never a tag left pointing at a
  // manifest that is gone, and each call either does its work or finds nothing to do.
  std::unique_ptr<MetaStore> other = OpenAnother();
  ASSERT_TRUE(other);
  ManifestRecord m = Manifest("contested");
  constexpr int kRounds = 20;
  std::vector<Status> del(kRounds), put(kRounds);
  for (int r = 0; r < kRounds; ++r) {
    META_ASSERT_OK(s().PutManifest("r", m, "base"));
    RaceRounds(
        1, [&](int) { del[r] = s().DeleteManifest("r", m.digest); },
        [&](int) { put[r] = other->PutManifest("r", m, fmt::format("t{}", r)); });
    EXPECT_TRUE(del[r].ok() || del[r].code() == Code::kNotFound) << del[r].ToString();
    EXPECT_TRUE(put[r].ok()) << put[r].ToString();
    bool exists = Must(s().ManifestExists("r", m.digest));
    auto tags = other->ListTags("r", "", 100);
    META_ASSERT_OK(tags);
    if (!exists) {
      EXPECT_THAT(tags->items, IsEmpty()) << "round " << r;
    } else {
      EXPECT_THAT(tags->items, ElementsAre(fmt::format("t{}", r))) << "round " << r;
      META_ASSERT_OK(s().DeleteManifest("r", m.digest));
    }
  }
}

#endif  // WHARF_META_STORE_SUITE_FIXTURE_ONLY

}  // namespace wharf::testing

#ifndef WHARF_META_STORE_SUITE_FIXTURE_ONLY
// The garbage collector's operations.
#include "conformance/meta_store_gc_cases.h"
// GetStoredTotals.
#include "conformance/meta_store_lease_cases.h"
// The work queue.
#include "conformance/meta_store_queue_cases.h"
#include "conformance/meta_store_totals_cases.h"
// A site cache's eviction (uses the queue cases' keys).
#include "conformance/meta_store_evict_cases.h"
#endif
