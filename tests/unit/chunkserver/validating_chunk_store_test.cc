// ValidatingChunkStore refuses bad arguments before the inner store is called, and times every
// call. (It joins the ChunkStore conformance suite in local_chunk_store_test.cc: the suite
// is defined in a header, once per test binary.)
#include "chunkserver/validating_chunk_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "chunkserver/chunk_id.h"
#include "chunkserver/local_chunk_store.h"
#include "common/checksum.h"
#include "common/fs.h"
#include "support/fault_env.h"

namespace wharf {
namespace {

namespace fs = std::filesystem;

// An inner store that records which methods were called and answers "stored, 10 bytes".
class RecordingStore : public ChunkStore {
 public:
  int calls = 0;
  Result<std::unique_ptr<ChunkWriter>> BeginWrite(const std::string&, uint64_t, uint64_t) override {
    ++calls;
    return Err(Unavailable("not needed"));
  }
  Result<ChunkInfo> Stat(const std::string& id) override {
    ++stats;
    return ChunkInfo{id, 10, 0, 0};
  }
  Result<OpenChunk> Open(const std::string&) override {
    ++calls;
    return Err(NotFound("x"));
  }
  Result<std::string> ReadRange(const std::string&, uint64_t, uint64_t len) override {
    ++calls;
    return std::string(len, 'x');
  }
  Status Delete(const std::string&) override {
    ++calls;
    return Status::Ok();
  }
  Result<std::vector<ChunkInfo>> List(std::string_view, size_t) override {
    ++calls;
    return std::vector<ChunkInfo>{};
  }
  Result<ChunkInfo> Verify(const std::string& id) override {
    ++calls;
    return ChunkInfo{id, 10, 0, 0};
  }
  Status Quarantine(const std::string&) override {
    ++calls;
    return Status::Ok();
  }
  uint64_t Count() override { return 0; }
  Result<SpaceInfo> Space() override { return SpaceInfo{}; }
  Status Health() override { return Status::Ok(); }
  Status ProbeWrite() override { return Status::Ok(); }
  int stats = 0;
};

TEST(ValidatingChunkStoreTest, BadIdsAndRangesNeverReachTheInnerStore) {
  auto inner = std::make_unique<RecordingStore>();
  RecordingStore* rec = inner.get();
  MetricsRegistry metrics;
  ValidatingChunkStore store(std::move(inner), {}, metrics);
  const std::vector<std::string> bad_ids = {"", "../../etc/passwd",
                                            "ABCDEF0123456789ABCDEF0123456789",
                                            std::string(33, 'a'), std::string(31, 'a')};
  for (const std::string& bad : bad_ids) {
    EXPECT_EQ(store.BeginWrite(bad, 1, 0).error().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(store.Stat(bad).error().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(store.Open(bad).error().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(store.ReadRange(bad, 0, 1).error().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(store.Delete(bad).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(store.Verify(bad).error().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(store.Quarantine(bad).code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(rec->calls, 0);
  EXPECT_EQ(rec->stats, 0);

  const std::string id = NewChunkId();  // the inner store says it has 10 bytes
  EXPECT_EQ(store.ReadRange(id, 11, 0).error().code(), Code::kRangeInvalid);
  EXPECT_EQ(store.ReadRange(id, 5, 6).error().code(), Code::kRangeInvalid);
  EXPECT_EQ(store.ReadRange(id, 1, UINT64_MAX).error().code(), Code::kRangeInvalid);
  EXPECT_EQ(rec->calls, 0) << "ranges past the end are refused before the inner read";
  EXPECT_EQ(*store.ReadRange(id, 4, 6), "xxxxxx");
  EXPECT_EQ(*store.ReadRange(id, 10, 0), "");
  EXPECT_EQ(rec->calls, 2);
}

TEST(ValidatingChunkStoreTest, TimesEveryCallByOperation) {
  std::string root = (fs::temp_directory_path() / ("wharf-validating-" + RandomHex(8))).string();
  LocalChunkStore::Options o;
  o.dirs = {root};
  auto local = LocalChunkStore::Open(o);
  ASSERT_TRUE(local.has_value());
  MetricsRegistry metrics;
  const Labels member = {{"member", "cs1"}};
  ValidatingChunkStore store(std::move(*local), member, metrics);
  auto count = [&](const std::string& op) {
    uint64_t n = 0;
    double sum = 0;
    std::vector<uint64_t> buckets;
    metrics.Histogram("wharf_chunkserver_store_op_seconds", "", {{"member", "cs1"}, {"op", op}})
        .Snapshot(&buckets, &sum, &n);
    return n;
  };
  const std::string id = NewChunkId();
  {
    auto w = store.BeginWrite(id, 5, ChecksumOf("hello"));
    ASSERT_TRUE(w.has_value());
    ASSERT_TRUE((*w)->Append("hel").ok());
    ASSERT_TRUE((*w)->Append("lo").ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  EXPECT_EQ(*store.ReadRange(id, 1, 3), "ell");
  EXPECT_TRUE(store.Verify(id).has_value());
  EXPECT_TRUE(store.Delete(id).ok());
  EXPECT_EQ(count("begin_write"), 1u);
  EXPECT_EQ(count("append"), 2u);
  EXPECT_EQ(count("commit"), 1u);
  EXPECT_EQ(count("read_range"), 1u);
  EXPECT_EQ(count("verify"), 1u);
  EXPECT_EQ(count("delete"), 1u);
  EXPECT_EQ(store.Stat("bad id").error().code(), Code::kInvalidArgument);
  EXPECT_EQ(count("stat"), 0u) << "a refused call never reaches the store";

  // Appending past the announced size is refused and aborts the write.
  auto w = store.BeginWrite(NewChunkId(), 2, ChecksumOf("ab"));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ((*w)->Append("abc").code(), Code::kInvalidArgument);
  EXPECT_EQ((*w)->Commit().code(), Code::kInvalidArgument);
  w->reset();
  EXPECT_EQ(store.Count(), 0u);
  fs::remove_all(root);
}

}  // namespace
}  // namespace wharf
