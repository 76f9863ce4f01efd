// BlobWriter and ReadChunks over the in-memory FakeChunkCluster: pipelining and back-pressure,
// a member failing mid-chunk, read failover, corrupt copies.
#include "blob/blob_writer.h"

#include <gtest/gtest.h>

#include <cstring>

#include "blob/blob_service.h"
#include "common/async.h"
#include "common/checksum.h"
#include "common/digest.h"
#include "common/metrics.h"
#include "unit/gateway/gateway_fixture.h"

namespace wharf {
namespace {

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

class BlobWriterTest : public GatewayFixture {
 protected:
  // Writes `data` through a BlobWriter in 1000-byte pieces; returns Finish()'s result.
  Result<std::vector<ChunkRef>> WriteBlob(const std::string& upload, const std::string& data,
                                          Digest* digest = nullptr) {
    Result<std::vector<ChunkRef>> out = Err(Internal("not run"));
    blob_ctx_ = BlobContextOf(ctx_);  // a test may have changed options_ since SetUp
    Run([&]() -> awaitable<void> {
      BlobWriter writer(blob_ctx_, upload, Hasher(DigestAlgorithm::kSha256));
      for (size_t off = 0; off < data.size(); off += 1000) {
        const size_t n = std::min<size_t>(1000, data.size() - off);
        Status st = co_await writer.Write(data.data() + off, n);
        if (!st.ok()) break;
      }
      out = co_await writer.Finish();
      if (digest) *digest = writer.hasher().Finish();
    });
    return out;
  }

  Result<std::string> ReadAll(const std::vector<ChunkRef>& chunks, uint64_t offset, uint64_t len) {
    std::string got;
    Status st = Internal("not run");
    Run([&]() -> awaitable<void> {
      std::string* sink_to = &got;
      std::function<awaitable<Status>(std::string_view)> sink =
          [sink_to](std::string_view piece) -> awaitable<Status> {
        sink_to->append(piece);
        co_return Status::Ok();
      };
      st = co_await ReadChunks(blob_ctx_, chunks, offset, len, sink);
    });
    if (!st.ok()) return Err(st);
    return got;
  }
};

uint64_t CounterValue(const std::string& name) { return Metrics().Counter(name, "").Value(); }

TEST_F(BlobWriterTest, PipelinesChunksButNeverMoreThanInflightAtOnce) {
  for (const char* m : {"a1", "a2", "b1", "b2"})
    cluster_.faults(m).delay = std::chrono::milliseconds(20);
  const std::string data = Pattern(10 * 4096 + 123, 1);
  Digest digest;
  auto refs = WriteBlob(NewUpload(), data, &digest);
  ASSERT_TRUE(refs.has_value()) << refs.error().ToString();
  ASSERT_EQ(refs->size(), 11u);
  uint64_t total = 0;
  for (const auto& r : *refs) total += r.size;
  EXPECT_EQ(total, data.size());
  EXPECT_EQ(digest, DigestOf(data));
  // Pipelined: more than one chunk was in flight; bounded: never more than max_inflight.
  EXPECT_EQ(cluster_.max_puts_in_flight(), options_.max_inflight_chunks);
  EXPECT_EQ(cluster_.puts_in_flight(), 0u);
  auto back = ReadAll(*refs, 0, data.size());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(*back, data);
}

TEST_F(BlobWriterTest, BackPressureHoldsWithOneChunkInFlight) {
  options_.max_inflight_chunks = 1;
  cluster_.faults("a1").delay = std::chrono::milliseconds(10);
  auto refs = WriteBlob(NewUpload(), Pattern(5 * 4096, 2));
  ASSERT_TRUE(refs.has_value()) << refs.error().ToString();
  EXPECT_EQ(refs->size(), 5u);
  EXPECT_EQ(cluster_.max_puts_in_flight(), 1u);
}

TEST_F(BlobWriterTest, MemberFailingMidChunkSendsTheChunkToAnotherGroup) {
  cluster_.faults("a2").fail_mid_chunk = true;  // g1 is chosen first, and fails
  const std::string data = Pattern(3 * 4096, 3);
  auto refs = WriteBlob(NewUpload(), data);
  ASSERT_TRUE(refs.has_value()) << refs.error().ToString();
  ASSERT_EQ(refs->size(), 3u);
  for (size_t i = 0; i < refs->size(); ++i) {
    const ChunkRef& r = (*refs)[i];
    EXPECT_EQ(r.group, "g2");
    EXPECT_EQ(cluster_.Copy("b1", r.id), data.substr(i * 4096, 4096));
    EXPECT_EQ(cluster_.Copy("b2", r.id), data.substr(i * 4096, 4096));
    auto state = meta_->GetChunkState(r.id);
    ASSERT_TRUE(state.has_value());
    EXPECT_EQ(*state, ChunkState::kLive);
  }
  // Every failed attempt's id was released in the ledger (its landed copies are garbage), and
  // the retry took a new id.
  size_t failed = 0;
  for (const auto& a : cluster_.put_attempts()) {
    if (a.ok) continue;
    ++failed;
    EXPECT_EQ(a.group, "g1");
    auto state = meta_->GetChunkState(a.chunk_id);
    ASSERT_TRUE(state.has_value());
    EXPECT_EQ(*state, ChunkState::kGarbage) << a.chunk_id;
    for (const auto& r : *refs) EXPECT_NE(r.id, a.chunk_id);
  }
  EXPECT_EQ(failed, 3u);
  auto garbage = meta_->ListGarbageChunks(100);
  ASSERT_TRUE(garbage.has_value());
  EXPECT_EQ(garbage->size(), 3u);
  auto back = ReadAll(*refs, 0, data.size());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(*back, data);
}

TEST_F(BlobWriterTest, FailsWhenEveryGroupFails) {
  cluster_.faults("a1").fail_put = true;
  cluster_.faults("b2").fail_put = true;
  cluster_.set_max_write_attempts(2);
  auto refs = WriteBlob(NewUpload(), Pattern(4096, 4));
  ASSERT_FALSE(refs.has_value());
  EXPECT_EQ(refs.error().code(), Code::kUnavailable);
}

TEST_F(BlobWriterTest, ReadsFailOverFromADeadMember) {
  const std::string data = Pattern(6 * 4096 + 7, 5);
  auto refs = WriteBlob(NewUpload(), data);
  ASSERT_TRUE(refs.has_value()) << refs.error().ToString();
  const std::string group = refs->front().group;
  const std::string dead = group == "g1" ? "a1" : "b1";
  cluster_.faults(dead).unreachable = true;  // the map still says active
  const uint64_t failovers = CounterValue("wharf_gateway_read_failovers_total");
  for (int i = 0; i < 3; ++i) {
    auto back = ReadAll(*refs, 0, data.size());
    ASSERT_TRUE(back.has_value()) << back.error().ToString();
    EXPECT_EQ(*back, data);
  }
  auto part = ReadAll(*refs, 5000, 9000);
  ASSERT_TRUE(part.has_value()) << part.error().ToString();
  EXPECT_EQ(*part, data.substr(5000, 9000));
  EXPECT_GT(cluster_.calls(dead), 0u);
  EXPECT_GT(CounterValue("wharf_gateway_read_failovers_total"), failovers);
}

TEST_F(BlobWriterTest, CorruptCopyIsSkipped) {
  const std::string data = Pattern(4 * 4096, 6);
  auto refs = WriteBlob(NewUpload(), data);
  ASSERT_TRUE(refs.has_value()) << refs.error().ToString();
  const bool g1 = refs->front().group == "g1";
  cluster_.faults(g1 ? "a2" : "b2").corrupt = true;
  const uint64_t mismatches = CounterValue("wharf_gateway_read_checksum_mismatch_total");
  for (int i = 0; i < 2; ++i) {
    auto back = ReadAll(*refs, 0, data.size());
    ASSERT_TRUE(back.has_value()) << back.error().ToString();
    EXPECT_EQ(*back, data);
  }
  EXPECT_GT(CounterValue("wharf_gateway_read_checksum_mismatch_total"), mismatches);
  // Every copy bad: the read fails with kCorruption instead of serving bad bytes.
  cluster_.faults(g1 ? "a1" : "b1").corrupt = true;
  auto bad = ReadAll(*refs, 0, data.size());
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Code::kCorruption);
}

// A ByteSource over a string, 1000 bytes per read.
class TestSource final : public ByteSource {
 public:
  explicit TestSource(std::string data) : data_(std::move(data)) {}
  awaitable<Result<size_t>> Read(void* buf, size_t n) override {
    size_t k = std::min({n, size_t{1000}, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    co_return k;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
};

// The client's request id reaches every chunk call made for it, on writes and reads, so a
// chunkserver's log lines can be joined with the gateway's.
TEST_F(BlobWriterTest, ClientRequestIdTravelsWithEveryChunkCall) {
  BlobService blobs(blob_ctx_);
  const std::string data = Pattern(3 * 4096 + 5, 7);
  const Digest digest = DigestOf(data);
  Run([&]() -> awaitable<void> {
    TestSource body(data);
    auto put = co_await blobs.PutBlob("team/app", digest, body, "req-put");
    EXPECT_TRUE(put) << put.error().ToString();
  });
  ASSERT_FALSE(cluster_.request_ids().empty());
  for (const std::string& id : cluster_.request_ids()) EXPECT_EQ(id, "req-put");
  const size_t after_put = cluster_.request_ids().size();
  EXPECT_GE(after_put, 4u);  // one call per chunk at least
  std::string got;
  Run([&]() -> awaitable<void> {
    auto reader = co_await blobs.OpenBlob("team/app", digest, "req-get");
    EXPECT_TRUE(reader);
    if (!reader) co_return;
    std::string* out = &got;
    ByteSink sink = [out](std::string_view piece) -> awaitable<Status> {
      out->append(piece);
      co_return Status::Ok();
    };
    Status st = co_await (*reader)->Read(0, (*reader)->size(), sink);
    EXPECT_TRUE(st.ok()) << st.ToString();
  });
  EXPECT_EQ(got, data);
  ASSERT_GT(cluster_.request_ids().size(), after_put);
  for (size_t i = after_put; i < cluster_.request_ids().size(); ++i) {
    EXPECT_EQ(cluster_.request_ids()[i], "req-get");
  }
}

// A write that finds no writable group (members still starting) waits for one, a bounded
// time, instead of failing at once.
TEST_F(BlobWriterTest, WriteWaitsForAWritableGroup) {
  options_.writable_wait = std::chrono::milliseconds(5000);
  cluster_.set_has_map(false);
  asio::steady_timer later(io_, std::chrono::milliseconds(2500));
  FakeChunkCluster* cluster = &cluster_;
  later.async_wait([cluster](const boost::system::error_code&) { cluster->set_has_map(true); });
  const std::string data = Pattern(2 * 4096, 3);
  auto refs = WriteBlob(NewUpload(), data);
  ASSERT_TRUE(refs.has_value()) << refs.error().ToString();
  EXPECT_EQ(refs->size(), 2u);
}

TEST_F(BlobWriterTest, WriteGivesUpWhenNoGroupBecomesWritable) {
  options_.writable_wait = std::chrono::milliseconds(200);
  cluster_.set_max_write_attempts(1);
  cluster_.set_has_map(false);
  auto refs = WriteBlob(NewUpload(), Pattern(4096, 4));
  ASSERT_FALSE(refs.has_value());
  EXPECT_EQ(refs.error().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace wharf

namespace wharf {
namespace {

// A body arriving slowly: every read waits 2 ms and moves the store's clock 10 s on.
class SlowSource final : public ByteSource {
 public:
  SlowSource(std::string data, int64_t* now) : data_(std::move(data)), now_(now) {}
  awaitable<Result<size_t>> Read(void* buf, size_t n) override {
    co_await SleepFor(std::chrono::milliseconds(2));
    *now_ += 10;
    if (on_read) on_read();
    size_t k = std::min({n, size_t{1000}, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    co_return k;
  }
  std::function<void()> on_read;

 private:
  std::string data_;
  size_t pos_ = 0;
  int64_t* now_;
};

TEST_F(BlobWriterTest, AStreamingUploadTouchesItsSessionSoItsExpiryCountsFromTheLastBytes) {
  const std::string upload = NewUpload();
  const int64_t created = now_;
  blob_ctx_.touch_every = std::chrono::milliseconds(1);
  SlowSource body(Pattern(20 * 1000, 3), &now_);
  Run([&]() -> awaitable<void> {
    BlobWriter writer(blob_ctx_, upload, Hasher(DigestAlgorithm::kSha256));
    Status st = co_await writer.WriteFrom(body);
    EXPECT_TRUE(st.ok()) << st.ToString();
    auto chunks = co_await writer.Finish();
    EXPECT_TRUE(chunks.has_value());
  });
  auto s = meta_->GetUpload(upload);
  ASSERT_TRUE(s.has_value());
  // Touched as the bytes came: close to the last read's time, far from the creation's.
  EXPECT_GE(s->updated_unix, now_ - 20);
  EXPECT_GT(s->updated_unix, created + 100);
}

TEST_F(BlobWriterTest, AnUploadWhoseSessionWasCollectedMidBodyStops) {
  const std::string upload = NewUpload();
  blob_ctx_.touch_every = std::chrono::milliseconds(1);
  SlowSource body(Pattern(50 * 1000, 4), &now_);
  int reads = 0;
  MetaStore* meta = meta_.get();
  body.on_read = [&reads, meta, upload] {
    if (++reads == 5) {
      EXPECT_TRUE(meta->DeleteUpload(upload).ok());  // the collector's doing
    }
  };
  Status st;
  Run([&]() -> awaitable<void> {
    BlobWriter writer(blob_ctx_, upload, Hasher(DigestAlgorithm::kSha256));
    st = co_await writer.WriteFrom(body);
  });
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_LT(reads, 10);
}

// An upload's pending tail: Prefill puts already-hashed bytes at the stream's start (in the
// first chunk, not hashed again) and FinishKeepingTail hands a short last piece back (hashed)
// instead of writing it. Written in two rounds, the chunks and the digest are those of the
// whole stream written at once.
TEST_F(BlobWriterTest, PrefillAndKeptTailMakeTheChunksOfOneStream) {
  const uint64_t chunk = options_.chunk_size;
  const std::string data = Pattern(2 * chunk + chunk / 2 + 100, 9);
  const size_t first = chunk + chunk / 3;  // round 1: a chunk and a third
  blob_ctx_ = BlobContextOf(ctx_);
  const std::string upload = NewUpload();
  std::vector<ChunkRef> refs;
  std::string tail, hash_state;
  Digest digest;
  Run([&]() -> awaitable<void> {
    BlobWriter w1(blob_ctx_, upload, Hasher(DigestAlgorithm::kSha256));
    EXPECT_TRUE((co_await w1.Write(data.data(), first)).ok());
    auto r1 = co_await w1.FinishKeepingTail(chunk - 1, &tail);
    EXPECT_TRUE(r1.has_value());
    if (!r1) co_return;
    refs = *r1;
    hash_state = w1.hasher().SaveState();
    auto restored = Hasher::RestoreState(DigestAlgorithm::kSha256, hash_state);
    EXPECT_TRUE(restored.has_value());
    if (!restored) co_return;
    BlobWriter w2(blob_ctx_, upload, std::move(*restored));
    EXPECT_TRUE((co_await w2.Prefill(tail)).ok());
    EXPECT_TRUE((co_await w2.Write(data.data() + first, data.size() - first)).ok());
    EXPECT_EQ(w2.bytes(), data.size() - first);  // the prefill is not counted again
    auto r2 = co_await w2.Finish();
    EXPECT_TRUE(r2.has_value());
    if (!r2) co_return;
    refs.insert(refs.end(), r2->begin(), r2->end());
    digest = w2.hasher().Finish();
  });
  EXPECT_EQ(tail, data.substr(chunk, first - chunk));
  ASSERT_EQ(refs.size(), 3u);  // as if written at once: two whole chunks and the rest
  EXPECT_EQ(refs[0].size, chunk);
  EXPECT_EQ(refs[1].size, chunk);
  EXPECT_EQ(refs[2].size, data.size() - 2 * chunk);
  EXPECT_EQ(digest, DigestOf(data));
  auto back = ReadAll(refs, 0, data.size());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(*back, data);
}

}  // namespace
}  // namespace wharf
